// Shared pieces of the browser tests in tests/ui (not a test file itself).
//
// Paths: the Python env is $WESTTEK_PYTHON (default: <repo>/.venv/bin/python),
// Chromium is $CHROMIUM (default: /usr/bin/chromium). Browser contexts made
// here may only reach 127.0.0.1.
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
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

// The left side-bar tab JupyterLab creates for a widget with id 'westtek-sidebar'.
export const SIDEBAR_TAB =
  '.jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id="westtek-sidebar"]';
export const SIDEBAR = '#westtek-sidebar.jp-WestTek-sidebar';

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

/** Click the West Tek tab in the left side bar and return the open panel. */
export async function openSidebar(page) {
  const tab = page.locator(SIDEBAR_TAB);
  await tab.waitFor({ state: 'visible' });
  await tab.click();
  const panel = page.locator(SIDEBAR);
  await panel.waitFor({ state: 'visible' });
  return panel;
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

/** Attach a server log (`log()`, named `name`) to a failing test's error. */
export async function withLog(name, log, body) {
  try {
    await body();
  } catch (error) {
    error.message += `\n--- ${name} log ---\n${log()}`;
    throw error;
  }
}
