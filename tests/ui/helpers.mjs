// Shared pieces of the browser tests in tests/ui (not a test file itself).
//
// Paths: the Python env is $WESTTEK_PYTHON (default: <repo>/.venv/bin/python),
// Chromium is $CHROMIUM (default: /usr/bin/chromium). Browser contexts made
// here may only reach 127.0.0.1.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

export const REPO = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..'
);
export const PACKAGE = JSON.parse(
  readFileSync(path.join(REPO, 'package.json'), 'utf8')
);
export const PYTHON =
  process.env.WESTTEK_PYTHON || path.join(REPO, '.venv', 'bin', 'python');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export const UI_TIMEOUT_MS = 30_000;

// Every UI test saves a screenshot here (gitignored).
export const OUTPUT_DIR = path.join(REPO, 'tests', 'ui', 'output');

const SERVER_START_TIMEOUT_MS = 60_000;

// The left side-bar tab JupyterLab creates for a widget with id 'westtek-sidebar'.
export const SIDEBAR_TAB =
  '.jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id="westtek-sidebar"]';
export const SIDEBAR = '#westtek-sidebar.jp-WestTek-sidebar';

/** How long the side bar must stay open after a click on its tab. */
const CLICK_SETTLE_MS = 300;

/** A free TCP port on 127.0.0.1, found by binding port 0. */
export async function freePort() {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

/**
 * Write JupyterLab user settings into `settingsDir` that skip the "official
 * Jupyter news?" prompt: no toast over the panel, no fetch.
 */
export function writeQuietLabSettings(settingsDir) {
  const notification = path.join(
    settingsDir,
    '@jupyterlab',
    'apputils-extension'
  );
  mkdirSync(notification, { recursive: true });
  writeFileSync(
    path.join(notification, 'notification.jupyterlab-settings'),
    JSON.stringify({ fetchNews: 'false' })
  );
}

/** Headless Chromium, with nothing phoning home. */
export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    timeout: UI_TIMEOUT_MS,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync'
    ]
  });
}

/** A fresh browser context that may only reach 127.0.0.1. */
export async function newLoopbackContext(browser) {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 }
  });
  context.setDefaultTimeout(UI_TIMEOUT_MS);
  await context.route('**/*', route => {
    const { hostname } = new URL(route.request().url());
    return hostname === '127.0.0.1' ? route.continue() : route.abort();
  });
  return context;
}

/**
 * Open the West Tek side bar (if JupyterLab did not open it by itself, as it
 * does on a fresh layout) and return the panel.
 */
export async function openSidebar(page) {
  const tab = page.locator(SIDEBAR_TAB);
  await tab.waitFor({ state: 'visible' });
  // JupyterLab is restored (and West Tek opened, on a fresh layout) once its
  // splash screen is gone; a click on the tab of the open panel would close it.
  await page.locator('#jupyterlab-splash').waitFor({ state: 'detached' });
  const panel = page.locator(SIDEBAR);
  // After a click, open only once it stays open: the click may have landed as
  // JupyterLab opened the panel itself, and closed it.
  let clicked = false;
  const isOpen = async () => {
    if (!(await panel.isVisible())) {
      return false;
    }
    if (clicked) {
      await page.waitForTimeout(CLICK_SETTLE_MS);
    }
    return panel.isVisible();
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    if (await isOpen()) {
      return panel;
    }
    clicked = true;
    await tab.click();
    await panel.waitFor({ state: 'visible', timeout: 5_000 }).catch(() => {});
  }
  await panel.waitFor({ state: 'visible' });
  return panel;
}

/**
 * Search JupyterLab's command palette and wait for each of `labels` among its
 * items; return the items. The modal palette closes when it loses the focus,
 * which a busy page may take at any moment: opened again and searched again,
 * up to three times.
 */
export async function searchPalette(page, text, labels = [text]) {
  const input = page.locator('.lm-CommandPalette-input');
  const items = page.locator(
    '.lm-CommandPalette-item .lm-CommandPalette-itemLabel'
  );
  // The palette filters after the input event: wait for each item rather than
  // reading the list at once (it may still be empty).
  const found = async timeout => {
    if (!(await input.isVisible())) {
      await page.keyboard.press('Control+Shift+C');
      await input.waitFor({ timeout });
    }
    await input.fill(text, { timeout });
    for (const label of labels) {
      await items
        .getByText(label, { exact: true })
        .first()
        .waitFor({ timeout });
    }
  };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await found(10_000);
      return items;
    } catch {
      // closed between the look and the typing, or before it filtered: again
    }
  }
  await found(UI_TIMEOUT_MS);
  return items;
}

/** Whether a child process has neither exited nor been killed yet. */
export function isRunning(child) {
  return child.exitCode === null && child.signalCode === null;
}

/**
 * Wait up to `ms` for `child` to exit; resolve to whether it did. Needs the
 * child's 'exit' not to have been emitted yet, or `isRunning` to be false.
 */
export async function waitForExit(child, ms) {
  if (!isRunning(child)) {
    return true;
  }
  let timer;
  const timeout = new Promise(resolve => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([once(child, 'exit').then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Stop a detached child's whole process group: SIGTERM, then SIGKILL after
 * `killAfterMs`.
 */
export async function stopProcessGroup(child, killAfterMs = 10_000) {
  if (isRunning(child) && child.pid) {
    const exited = once(child, 'exit');
    const signal = sig => {
      try {
        process.kill(-child.pid, sig);
      } catch {
        // already gone
      }
    };
    signal('SIGTERM');
    const timer = setTimeout(() => signal('SIGKILL'), killAfterMs);
    await exited;
    clearTimeout(timer);
  }
}

// A failure shows the log's end: its start is the server's start-up, and CI
// keeps only so much of a failure's message.
const LOG_TAIL_LINES = 60;

/**
 * Attach a server log (`log()`, named `name`) to a failing test's error: its
 * warnings and errors, then its last lines; with `page`, also what the West
 * Tek side bar showed and what the page logged as errors.
 */
export async function withLog(name, log, body, page = undefined) {
  const pageErrors = [];
  const onConsole = message => {
    if (message.type() === 'error' || message.type() === 'warning') {
      pageErrors.push(`${message.type()}: ${message.text()}`);
    }
  };
  page?.on('console', onConsole);
  try {
    await body();
  } catch (error) {
    // What the page showed comes first: CI keeps a failure's beginning when it cuts.
    if (page) {
      const shown = await page
        .locator(SIDEBAR)
        .innerText({ timeout: 1_000 })
        .catch(() => '(no side bar)');
      const palette = await page
        .locator('.lm-CommandPalette-content')
        .innerText({ timeout: 1_000 })
        .catch(() => '(not open)');
      error.message +=
        `\n--- the side bar showed ---\n${shown.slice(0, 2_000)}` +
        `\n--- the page logged ---\n${pageErrors.join('\n')}` +
        `\n--- the command palette showed ---\n${palette.slice(0, 2_000)}`;
    }
    const lines = log().split('\n');
    const notable = lines.filter(line => /^\[[WEC] |Traceback/.test(line));
    error.message +=
      `\n--- ${name} log: warnings and errors ---\n${notable.join('\n')}` +
      `\n--- ${name} log: last ${LOG_TAIL_LINES} lines ---\n` +
      lines.slice(-LOG_TAIL_LINES).join('\n');
    throw error;
  } finally {
    page?.off('console', onConsole);
  }
}

/** Save a full-window screenshot as tests/ui/output/<name>.png. */
export async function screenshot(page, name) {
  mkdirSync(OUTPUT_DIR, { recursive: true });
  const file = path.join(OUTPUT_DIR, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

/**
 * Start `python -m jupyterlab` on a free loopback port, in its own process
 * group, with its runtime, workspace, settings, Jupyter config and West Tek
 * data directories (store, baselines, event log) under a fresh temp directory;
 * resolve once `/api/status` answers.
 *
 * @param options.serverExtension whether westtek_server_ext is loaded
 * @param options.args extra command-line arguments (e.g. West Tek traits)
 * @param options.root the server's root directory (default: a fresh one)
 * @param options.settings more user settings: {'<plugin dir>/<file>': {...}}
 * @param options.attempts tries when the free port is taken before the server binds it
 */
export async function startLab({
  serverExtension = true,
  args: extraArgs = [],
  root,
  settings = {},
  attempts = 3
} = {}) {
  const home = mkdtempSync(path.join(tmpdir(), 'westtek-ui-'));
  const dirs = {};
  for (const name of [
    'root',
    'runtime',
    'workspaces',
    'settings',
    'data',
    'config',
    'jupyter-config'
  ]) {
    dirs[name] = path.join(home, name);
    mkdirSync(dirs[name]);
  }
  if (root) {
    dirs.root = root;
  }
  // Skip the "official Jupyter news?" prompt: no toast over the panel, no fetch.
  writeQuietLabSettings(dirs.settings);
  for (const [file, value] of Object.entries(settings)) {
    const target = path.join(dirs.settings, file);
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, JSON.stringify(value));
  }

  const port = await freePort();
  const token = randomBytes(24).toString('hex');
  const args = [
    '-m',
    'jupyterlab',
    '--no-browser',
    `--port=${port}`,
    '--ServerApp.port_retries=0',
    '--ip=127.0.0.1',
    `--IdentityProvider.token=${token}`,
    `--ServerApp.root_dir=${dirs.root}`,
    '--allow-root',
    `--LabApp.workspaces_dir=${dirs.workspaces}`,
    `--LabApp.user_settings_dir=${dirs.settings}`,
    '--LabApp.news_url=None',
    '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate',
    '--LabApp.extension_manager=readonly',
    ...extraArgs
  ];
  if (!serverExtension) {
    // traitlets' Dict syntax on the command line is key=value (JSON is refused).
    args.push('--ServerApp.jpserver_extensions=westtek_server_ext=False');
  }
  const child = spawn(PYTHON, args, {
    cwd: dirs.root,
    detached: true, // own process group, so `stop` can kill all of it
    env: {
      ...process.env,
      JUPYTER_RUNTIME_DIR: dirs.runtime,
      JUPYTER_CONFIG_DIR: dirs['jupyter-config'],
      // West Tek's store, baselines and event log stay in the temp directory.
      XDG_DATA_HOME: dirs.data,
      XDG_CONFIG_HOME: dirs.config,
      WESTTEK_STORE: path.join(dirs.data, 'store')
    },
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
    root: dirs.root,
    log: () => log,
    stop: async () => {
      await stopProcessGroup(child, 10_000);
      rmSync(home, { recursive: true, force: true });
    }
  };

  const deadline = Date.now() + SERVER_START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited) {
      await lab.stop();
      if (attempts > 1 && /no available port could be found/.test(log)) {
        // another process took the port between freePort() and the bind: pick another
        return startLab({
          serverExtension,
          args: extraArgs,
          root,
          settings,
          attempts: attempts - 1
        });
      }
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

/** Open JupyterLab in a fresh browser context that may only reach 127.0.0.1. */
export async function openLab(browser, lab) {
  const context = await newLoopbackContext(browser);
  const page = await context.newPage();
  await page.goto(`${lab.baseUrl}lab?token=${lab.token}`);
  return { context, page };
}

/**
 * A v4 notebook on the Python 3 kernel with one code cell per source, as
 * JupyterLab saves it (for writing into a test's workspace).
 */
export function notebookOf(...sources) {
  return {
    cells: sources.map(source => ({
      cell_type: 'code',
      execution_count: null,
      metadata: {},
      outputs: [],
      source: source.split(/(?<=\n)/)
    })),
    metadata: {
      kernelspec: {
        display_name: 'Python 3',
        language: 'python',
        name: 'python3'
      }
    },
    nbformat: 4,
    nbformat_minor: 5
  };
}

/**
 * A server (a JupyterLab, a hub) and a browser page on it, shared by the tests
 * of a suite: `start()` in its `before`, `close()` in its `after` (whatever
 * `before` got to), `step()` around each test's body.
 */
export class BrowserSession {
  /**
   * @param name the server's name in a failure's message
   * @param prefix with it, the name of a temp directory for the suite,
   *   `workdir`, deleted by `close()`
   */
  constructor(name, prefix = undefined) {
    this.name = name;
    this.workdir = prefix && mkdtempSync(path.join(tmpdir(), prefix));
  }

  /** Start the server (`startServer()`: has `log()` and `stop()`), a browser and its page. */
  async start(startServer) {
    this.server = await startServer();
    this.browser = await launchBrowser();
    this.context = await newLoopbackContext(this.browser);
    this.page = await this.context.newPage();
    return this;
  }

  /**
   * Run a test's body with the server's log, the side bar and the page's
   * errors attached to its failure.
   */
  step(body) {
    return withLog(this.name, () => this.server.log(), body, this.page);
  }

  /** Stop what was started and delete the temp directory. */
  async close() {
    await this.context?.close();
    await this.browser?.close();
    await this.server?.stop();
    if (this.workdir) {
      rmSync(this.workdir, { recursive: true, force: true });
    }
  }
}
