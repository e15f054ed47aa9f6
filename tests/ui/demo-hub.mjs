// The real demo hub for the browser tests (not a test file itself):
// hub_config/jupyterhub_config.py with configurable-http-proxy and the westtek
// spawner's local backend, run through `python -m tests.e2e.run_hub` on
// loopback ports in a fresh temp directory, and its login form.
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

import {
  PYTHON,
  REPO,
  SIDEBAR_TAB,
  stopProcessGroup,
  waitForExit,
  writeQuietLabSettings
} from './helpers.mjs';

/** The demo authenticator's shared password. */
export const DEMO_PASSWORD = 'westtek-demo';

const HUB_START_TIMEOUT_MS = 90_000;
// From submitting the login form to JupyterLab's side bar: spawn + lab load.
export const SPAWN_AND_LOAD_TIMEOUT_MS = 120_000;
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
 *
 * @param options.seed called with alice's home before the hub starts, to put
 *   files there (the spawner creates her ~/.venv on her first spawn)
 * @returns {{workdir: string, home: string, url: string, log: () => string,
 *   stop: () => Promise<void>}}
 */
export async function startHub({ seed } = {}) {
  const workdir = mkdtempSync(path.join(tmpdir(), 'westtek-hub-ui-'));
  // The local backend starts alice's server with HOME=<cwd>/westtek-users/alice,
  // and JupyterLab reads user settings from $HOME/.jupyter/lab/user-settings.
  const home = path.join(workdir, 'westtek-users', 'alice');
  mkdirSync(home, { recursive: true, mode: 0o700 });
  writeQuietLabSettings(path.join(home, '.jupyter', 'lab', 'user-settings'));
  seed?.(home);

  const child = spawn(
    PYTHON,
    ['-m', 'tests.e2e.run_hub', '--workdir', workdir],
    {
      cwd: REPO,
      detached: true, // own process group, so `stop` can kill all of it
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
    home,
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
  // a process of a stopped server may still write as it exits (a terminal's shell
  // saving its history on SIGHUP): retry while a folder is refilled under us
  rmSync(hub.workdir, {
    recursive: true,
    force: true,
    maxRetries: 10,
    retryDelay: 200
  });
}

/** Fill in the hub's login form as a person would, and submit it. */
export async function submitLogin(page, username, password) {
  await page.getByLabel('Username:', { exact: true }).fill(username);
  await page.getByLabel('Password:', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

/**
 * Log `username` in through the hub's form and wait until her JupyterLab
 * shows the West Tek tab in its side bar.
 */
export async function logIntoLab(page, hub, username) {
  await page.goto(`${hub.url}/hub/login`);
  const deadline = Date.now() + SPAWN_AND_LOAD_TIMEOUT_MS;
  await submitLogin(page, username, DEMO_PASSWORD);
  await page.waitForURL(
    url => url.pathname.startsWith(`/user/${username}/lab`),
    { timeout: deadline - Date.now() }
  );
  await page
    .locator(SIDEBAR_TAB)
    .waitFor({ state: 'visible', timeout: deadline - Date.now() });
}

/** The hub service's panel, under the hub. */
export const SERVICE = '/services/westtek/';
const AUTHORIZE = '/hub/api/oauth2/authorize';

/**
 * Sign `username` in to the West Tek panel through the hub's OAuth, as a person
 * does (the login form, then "Authorize" the first time), and wait for it.
 */
export async function openPanel(page, hub, username) {
  await page.goto(`${hub.url}${SERVICE}`);
  await submitLogin(page, username, DEMO_PASSWORD);
  await page.waitForURL(url => [SERVICE, AUTHORIZE].includes(url.pathname));
  if (new URL(page.url()).pathname === AUTHORIZE) {
    // JupyterHub asks once whether the service may know who they are.
    await page.getByRole('button', { name: 'Authorize', exact: true }).click();
    await page.waitForURL(url => url.pathname === SERVICE);
  }
  await page.locator('#westtek-panel').waitFor();
}
