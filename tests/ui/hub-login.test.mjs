// Browser test of the demo's promise: alice logs in through JupyterHub and her
// JupyterLab shows the West Tek side panel.
//
// Runs the real demo hub (hub_config/jupyterhub_config.py, with
// configurable-http-proxy and the westtek spawner's local backend) through
// `python -m tests.e2e.run_hub`, on loopback ports, in a fresh temp directory.
// Run with `jlpm test:ui`; see helpers.mjs for $WESTTEK_PYTHON and $CHROMIUM.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  PACKAGE,
  PYTHON,
  REPO,
  SIDEBAR_TAB,
  launchBrowser,
  newLoopbackContext,
  openSidebar,
  screenshot,
  stopProcessGroup,
  waitForExit,
  withLog,
  writeQuietLabSettings
} from './helpers.mjs';

const DEMO_PASSWORD = 'westtek-demo';

const HUB_START_TIMEOUT_MS = 90_000;
// From submitting the login form to JupyterLab's side bar: spawn + lab load.
const SPAWN_AND_LOAD_TIMEOUT_MS = 120_000;
// The launcher stops the hub (SIGTERM, up to 30 s + 10 s) and alice's server.
const LAUNCHER_EXIT_TIMEOUT_MS = 60_000;

/** The last `chars` characters of a text file, or '' if it does not exist. */
function tail(file, chars = 20_000) {
  return existsSync(file) ? readFileSync(file, 'utf8').slice(-chars) : '';
}

/**
 * Resolve to the URL the launcher prints as its first stdout line, as JSON
 * `{"url": ...}`; reject if it exits, fails to start or says nothing in time.
 */
function readHubUrl(child, ms) {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(
      () => finish(new Error(`the hub launcher printed no URL in ${ms} ms`)),
      ms
    );
    const onData = chunk => {
      out += chunk;
      const newline = out.indexOf('\n');
      if (newline >= 0) {
        try {
          finish(null, JSON.parse(out.slice(0, newline)).url);
        } catch (error) {
          finish(error);
        }
      }
    };
    const onExit = (code, signal) =>
      finish(new Error(`the hub launcher exited (${code ?? signal}) early`));
    const onError = error => finish(error);
    function finish(error, url) {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
      if (error) {
        reject(error);
      } else {
        resolve(url);
      }
    }
    child.stdout.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}

/**
 * Start `python -m tests.e2e.run_hub` in its own process group, with alice's
 * future home seeded with quiet lab settings; resolve once it printed the URL.
 */
async function startHub() {
  const workdir = mkdtempSync(path.join(tmpdir(), 'westtek-hub-ui-'));
  // The local backend starts alice's server with HOME=<cwd>/westtek-users/alice,
  // and JupyterLab reads user settings from $HOME/.jupyter/lab/user-settings.
  const aliceHome = path.join(workdir, 'westtek-users', 'alice');
  mkdirSync(aliceHome, { recursive: true, mode: 0o700 });
  writeQuietLabSettings(
    path.join(aliceHome, '.jupyter', 'lab', 'user-settings')
  );

  const child = spawn(
    PYTHON,
    ['-m', 'tests.e2e.run_hub', '--workdir', workdir],
    {
      cwd: REPO,
      detached: true, // own process group, so `after` can kill all of it
      stdio: ['pipe', 'pipe', 'pipe']
    }
  );
  child.stdin.on('error', () => {}); // EPIPE if the launcher is gone already
  child.stdout.setEncoding('utf8');
  let launcherLog = '';
  child.stdout.on('data', chunk => (launcherLog += chunk));
  child.stderr.on('data', chunk => (launcherLog += chunk));

  const hub = {
    workdir,
    child,
    url: null,
    log: () =>
      `${launcherLog}\n--- jupyterhub.log ---\n${tail(path.join(workdir, 'jupyterhub.log'))}` +
      `\n--- alice's singleuser.log ---\n${tail(path.join(workdir, 'westtek-state', 'alice', 'singleuser.log'))}`,
    stop: () => stopHub(hub)
  };
  try {
    hub.url = await readHubUrl(child, HUB_START_TIMEOUT_MS);
    assert.match(hub.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  } catch (error) {
    await hub.stop().catch(() => {});
    error.message += `\n--- hub log ---\n${hub.log()}`;
    throw error;
  }
  return hub;
}

/**
 * Close the launcher's stdin so it stops the hub and alice's server; if it is
 * still alive after a while, SIGTERM (then SIGKILL) its process group.
 */
async function stopHub(hub) {
  const { child } = hub;
  child.stdin.end();
  if (!(await waitForExit(child, LAUNCHER_EXIT_TIMEOUT_MS))) {
    await stopProcessGroup(child, 10_000);
  }
  rmSync(hub.workdir, { recursive: true, force: true });
}

/** Fill in the hub's login form as a person would, and submit it. */
async function submitLogin(page, username, password) {
  await page.getByLabel('Username:', { exact: true }).fill(username);
  await page.getByLabel('Password:', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

describe('the demo hub: log in and find the West Tek panel', () => {
  let browser;
  let hub;

  before(async () => {
    browser = await launchBrowser();
    hub = await startHub();
  });

  after(async () => {
    await browser?.close();
    await hub?.stop();
  });

  test('a wrong password stays on the login page with an error', async () => {
    await withLog('hub', hub.log, async () => {
      const context = await newLoopbackContext(browser);
      try {
        const page = await context.newPage();
        await page.goto(`${hub.url}/hub/login`);

        // When alice signs in with a wrong password
        const answer = page.waitForResponse(
          r =>
            r.request().method() === 'POST' &&
            new URL(r.url()).pathname === '/hub/login'
        );
        await submitLogin(page, 'alice', 'not-the-demo-password');
        assert.equal((await answer).status(), 403);
        await page.waitForLoadState();

        // Then she is still on the login form, told why, and not logged in
        assert.equal(new URL(page.url()).pathname, '/hub/login');
        const error = page.locator('.login_error');
        await error.waitFor();
        assert.match(await error.textContent(), /Invalid username or password/);
        assert.equal(
          await page.getByLabel('Username:', { exact: true }).inputValue(),
          'alice'
        );
        const cookies = (await context.cookies()).map(c => c.name);
        assert.ok(!cookies.includes('jupyterhub-hub-login'), `${cookies}`);

        await screenshot(page, 'hub-login-wrong-password');
      } finally {
        await context.close();
      }
    });
  });

  test('alice logs in and her JupyterLab shows the West Tek panel', async () => {
    await withLog('hub', hub.log, async () => {
      const context = await newLoopbackContext(browser);
      try {
        const page = await context.newPage();
        await page.goto(`${hub.url}/hub/login`);

        // When alice signs in through the hub's login form
        const deadline = Date.now() + SPAWN_AND_LOAD_TIMEOUT_MS;
        await submitLogin(page, 'alice', DEMO_PASSWORD);

        // Then the hub spawns her server and lands her in JupyterLab
        await page.waitForURL(
          url => url.pathname.startsWith('/user/alice/lab'),
          { timeout: deadline - Date.now() }
        );
        await page
          .locator(SIDEBAR_TAB)
          .waitFor({ state: 'visible', timeout: deadline - Date.now() });

        // And the West Tek panel asks her own server, through the proxy
        const status = page.waitForResponse(
          r => new URL(r.url()).pathname === '/user/alice/westtek/api/status'
        );
        const panel = await openSidebar(page);
        assert.equal((await status).status(), 200);
        await assert.doesNotReject(
          panel
            .getByRole('heading', { name: 'West Tek', exact: true })
            .waitFor()
        );
        const version = panel.getByTestId('westtek-version');
        await version.waitFor();
        assert.equal((await version.textContent()).trim(), PACKAGE.version);
        assert.equal(await panel.getByTestId('westtek-error').count(), 0);
        assert.ok(
          new URL(page.url()).pathname.startsWith('/user/alice/'),
          page.url()
        );

        await screenshot(page, 'hub-alice-lab');
      } finally {
        await context.close();
      }
    });
  });
});
