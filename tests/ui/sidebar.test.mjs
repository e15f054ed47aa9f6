// Browser tests of the West Tek side panel against a real `jupyter lab`.
//
// Run with `jlpm test:ui` (`node --test tests/ui/`). Needs the westtek package
// installed (with its built lab extension) in the Python env $WESTTEK_PYTHON
// (default: <repo>/.venv/bin/python) and Chromium at $CHROMIUM
// (default: /usr/bin/chromium). Only 127.0.0.1 is contacted.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  PACKAGE,
  PYTHON,
  SIDEBAR_TAB,
  freePort,
  launchBrowser,
  newLoopbackContext,
  openSidebar,
  stopProcessGroup,
  withLog as withServerLog,
  writeQuietLabSettings
} from './helpers.mjs';

const SCREENSHOT = '/tmp/westtek-sidebar.png';

const SERVER_START_TIMEOUT_MS = 60_000;

/**
 * Start `python -m jupyterlab` on a free loopback port, in its own process
 * group, with runtime, workspace and settings directories under a fresh temp
 * directory; resolve once `/api/status` answers.
 */
async function startLab({ serverExtension }) {
  const home = mkdtempSync(path.join(tmpdir(), 'westtek-ui-'));
  const dirs = {};
  for (const name of ['root', 'runtime', 'workspaces', 'settings']) {
    dirs[name] = path.join(home, name);
    mkdirSync(dirs[name]);
  }
  // Skip the "official Jupyter news?" prompt: no toast over the panel, no fetch.
  writeQuietLabSettings(dirs.settings);

  const port = await freePort();
  const token = randomBytes(24).toString('hex');
  const args = [
    '-m',
    'jupyterlab',
    '--no-browser',
    `--port=${port}`,
    '--ServerApp.port_retries=0',
    '--ip=127.0.0.1',
    `--ServerApp.token=${token}`,
    `--ServerApp.root_dir=${dirs.root}`,
    '--allow-root',
    `--LabApp.workspaces_dir=${dirs.workspaces}`,
    `--LabApp.user_settings_dir=${dirs.settings}`,
    '--LabApp.news_url=None',
    '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate',
    '--LabApp.extension_manager=readonly'
  ];
  if (!serverExtension) {
    // traitlets' Dict syntax on the command line is key=value (JSON is refused).
    args.push('--ServerApp.jpserver_extensions=westtek_server_ext=False');
  }
  const child = spawn(PYTHON, args, {
    cwd: dirs.root,
    detached: true, // own process group, so `after` can kill all of it
    env: { ...process.env, JUPYTER_RUNTIME_DIR: dirs.runtime },
    stdio: ['ignore', 'pipe', 'pipe']
  });
  let log = '';
  child.stdout.on('data', chunk => (log += chunk));
  child.stderr.on('data', chunk => (log += chunk));
  let exited = null;
  child.on('exit', (code, signal) => (exited = { code, signal }));
  child.on('error', error => (exited = { error }));

  const lab = {
    baseUrl: `http://127.0.0.1:${port}/`,
    token,
    child,
    home,
    log: () => log,
    stop: () => stopLab(lab)
  };

  const deadline = Date.now() + SERVER_START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited) {
      await lab.stop();
      throw new Error(
        `jupyter lab exited before answering (${JSON.stringify(exited)}):\n${log}`
      );
    }
    try {
      const response = await fetch(`${lab.baseUrl}api/status?token=${token}`, {
        signal: AbortSignal.timeout(2_000)
      });
      if (response.ok) {
        return lab;
      }
    } catch {
      // not listening yet
    }
    await new Promise(resolve => setTimeout(resolve, 250));
  }
  await lab.stop();
  throw new Error(`jupyter lab did not answer within 60 s:\n${log}`);
}

/** Stop a lab's whole process group: SIGTERM, then SIGKILL after 10 s. */
async function stopLab(lab) {
  await stopProcessGroup(lab.child, 10_000);
  rmSync(lab.home, { recursive: true, force: true });
}

/** Open JupyterLab in a fresh browser context that may only reach 127.0.0.1. */
async function openLab(browser, lab) {
  const context = await newLoopbackContext(browser);
  const page = await context.newPage();
  await page.goto(`${lab.baseUrl}lab?token=${lab.token}`);
  return { context, page };
}

/** Attach the server log to a failing test's error. */
function withLog(lab, body) {
  return withServerLog('jupyter lab', lab.log, body);
}

let browser;

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

describe('West Tek side panel with the server extension enabled', () => {
  let lab;

  before(async () => {
    lab = await startLab({ serverExtension: true });
  });

  after(async () => {
    await lab?.stop();
  });

  test('shows the server version, component and capabilities', async () => {
    await withLog(lab, async () => {
      const { context, page } = await openLab(browser, lab);
      try {
        // Given JupyterLab with the West Tek tab in the left side bar,
        // the tab carries the themed West Tek icon.
        await page.locator(SIDEBAR_TAB).waitFor({ state: 'visible' });
        assert.equal(
          await page.locator(`${SIDEBAR_TAB} svg path.jp-icon3`).count(),
          1,
          'the tab shows the westtek icon with the jp-icon3 fill'
        );

        // When the researcher opens it
        const panel = await openSidebar(page);

        // Then the panel reports what the server extension answered
        await assert.doesNotReject(
          panel
            .getByRole('heading', { name: 'West Tek', exact: true })
            .waitFor()
        );
        const version = panel.getByTestId('westtek-version');
        await version.waitFor();
        assert.equal((await version.textContent()).trim(), PACKAGE.version);
        assert.equal(
          (await panel.getByTestId('westtek-component').textContent()).trim(),
          'server-extension'
        );
        const capabilities = await panel
          .getByTestId('westtek-capabilities')
          .locator('li')
          .allTextContents();
        assert.ok(capabilities.includes('server-extension'), `${capabilities}`);
        assert.ok(capabilities.includes('status'), `${capabilities}`);
        assert.equal(await panel.getByTestId('westtek-error').count(), 0);

        await page.screenshot({ path: SCREENSHOT });

        // And Refresh asks the server again
        const request = page.waitForRequest(
          r => new URL(r.url()).pathname === '/westtek/api/status'
        );
        await panel.getByRole('button', { name: /Refresh/ }).click();
        await request;
        await version.waitFor();
        assert.equal((await version.textContent()).trim(), PACKAGE.version);
      } finally {
        await context.close();
      }
    });
  });
});

describe('West Tek side panel without the server extension', () => {
  let lab;

  before(async () => {
    lab = await startLab({ serverExtension: false });
  });

  after(async () => {
    await lab?.stop();
  });

  test('explains how to enable the server extension', async () => {
    await withLog(lab, async () => {
      // Given a server that does not load westtek_server_ext
      const direct = await fetch(
        `${lab.baseUrl}westtek/api/status?token=${lab.token}`,
        { signal: AbortSignal.timeout(5_000) }
      );
      assert.equal(direct.status, 404, 'the API must be absent for this test');

      const { context, page } = await openLab(browser, lab);
      try {
        // When the researcher opens the West Tek panel
        const panel = await openSidebar(page);

        // Then it says the server extension is not enabled and how to fix it
        const error = panel.getByTestId('westtek-error');
        await error.waitFor();
        const message = await error.textContent();
        assert.match(
          message,
          /^The West Tek server extension is not enabled on this Jupyter server\./
        );
        assert.match(
          message,
          /jupyter server extension enable westtek_server_ext/
        );
        assert.equal(await panel.getByTestId('westtek-version').count(), 0);

        await page.screenshot({
          path: SCREENSHOT.replace('.png', '-error.png')
        });
      } finally {
        await context.close();
      }
    });
  });
});
