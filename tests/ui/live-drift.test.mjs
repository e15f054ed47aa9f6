// Browser test of the demo as a researcher lives it (issue 16): alice logs in
// through the real demo hub, finds West Tek open, snapshots her environment
// from the side bar, then pip-installs from a notebook cell and from a
// JupyterLab terminal — and sees both changes arrive in the open Drift tab,
// graded by the notebook that imports the packages, with the header badge,
// the status bar, the tab's count and the Drift tab's counts all agreeing.
//
// The hub is `python -m tests.e2e.run_hub` (see demo-hub.mjs); alice's own
// ~/.venv is her kernel's environment and first on her terminal's PATH. The
// wheels are built offline with tests/core/conftest.py's build_wheel. Run with
// `node --test tests/ui/live-drift.test.mjs`; see helpers.mjs for
// $WESTTEK_PYTHON and $CHROMIUM. Only 127.0.0.1 is contacted.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';

import { logIntoLab, startHub } from './demo-hub.mjs';
import {
  PYTHON,
  REPO,
  SIDEBAR,
  SIDEBAR_TAB,
  launchBrowser,
  newLoopbackContext,
  notebookOf,
  openSidebar,
  screenshot,
  searchPalette,
  withLog
} from './helpers.mjs';

const run = promisify(execFile);

const NOTEBOOK = 'analysis.ipynb';
// Upgraded across a major version from the notebook: critical for it.
const FROM_NOTEBOOK = 'westtek_probe_pkg';
// Upgraded within a major version from the terminal: minor for it.
const FROM_TERMINAL = 'westtek_helper_pkg';

// The drift watcher batches a burst of writes for up to 5 s, then grades.
const DRIFT_SHOWN_MS = 30_000;
// A pip install of a tiny local wheel, kernel start included.
const INSTALL_MS = 120_000;
// A snapshot of alice's small home takes a few seconds.
const JOB_MS = 60_000;

/** Build the wheels of both packages offline; the directory holding them. */
async function buildWheels(dir) {
  const script = [
    'import sys',
    'from pathlib import Path',
    'from tests.core.conftest import build_wheel',
    'for spec in sys.argv[2:]:',
    '    name, version = spec.split("==")',
    '    wheels = build_wheel(Path(sys.argv[1]), name, version)',
    'print(wheels)'
  ].join('\n');
  const { stdout } = await run(
    PYTHON,
    [
      '-c',
      script,
      dir,
      `${FROM_NOTEBOOK}==1.0.0`,
      `${FROM_NOTEBOOK}==2.0.0`,
      `${FROM_TERMINAL}==1.0.0`,
      `${FROM_TERMINAL}==1.1.0`
    ],
    { cwd: REPO }
  );
  return stdout.trim();
}

/** Write alice's notebook: it imports both packages. */
function writeAnalysis(home) {
  const source = [FROM_NOTEBOOK, FROM_TERMINAL]
    .map(name => `import ${name}\nprint(${name}.VERSION)\n`)
    .join('');
  writeFileSync(path.join(home, NOTEBOOK), JSON.stringify(notebookOf(source)));
}

/** Run a command from JupyterLab's command palette by its label. */
async function runFromPalette(page, label) {
  const items = await searchPalette(page, label);
  await items.getByText(label, { exact: true }).first().click();
}

/**
 * What is cut off in the open West Tek side bar: the tab list, the header's
 * badge and the shown panel's package table, snapshot form and chat form,
 * each wider than its box (or a tab past the side bar's edge).
 */
function cutOff(page) {
  return page.evaluate(() => {
    const sidebar = globalThis.document.querySelector('#westtek-sidebar');
    const edge = sidebar.getBoundingClientRect().right;
    const tabs = sidebar.querySelector('.jp-WestTek-tabs');
    const found = [];
    const check = (name, node) => {
      if (node && node.scrollWidth > node.clientWidth) {
        found.push(`${name}: ${node.scrollWidth} > ${node.clientWidth} px`);
      }
    };
    check('tab list', tabs.shadowRoot.querySelector('[part=tablist]'));
    check('tabs', tabs);
    check(
      'header badge',
      sidebar.querySelector('.jp-WestTek-header .jp-WestTek-badge')
    );
    for (const tab of tabs.querySelectorAll(':scope > jp-tab')) {
      const right = tab.getBoundingClientRect().right;
      if (right > edge + 0.5) {
        found.push(`tab ${tab.textContent}: ends at ${right} > ${edge} px`);
      }
    }
    for (const selector of [
      '.jp-WestTek-tableWrap',
      '.jp-WestTek-form',
      '.jp-WestTek-chatControls',
      '.jp-WestTek-chatInput'
    ]) {
      for (const node of sidebar.querySelectorAll(selector)) {
        if (node.offsetParent !== null) {
          check(selector, node);
        }
      }
    }
    return found;
  });
}

/**
 * Add a cell below the notebook's first, type `code` into it and run it, the
 * way a person does (click, `b`, type, Shift+Enter), checking that each step
 * landed before the next: on a loaded machine a keystroke sent before the
 * notebook has focus goes nowhere. Resolves with the cell's output once it
 * matches `done`; fails at once, with the output, if the cell errs.
 */
async function runInNewCell(page, notebook, code, done) {
  const cells = notebook.locator('.jp-Cell');
  const count = await cells.count();
  await notebook.locator('.jp-Cell .jp-InputPrompt').first().click();
  await notebook.locator('.jp-Notebook.jp-mod-commandMode').waitFor();
  await page.keyboard.press('b');
  await cells.nth(count).waitFor();
  const cell = cells.nth(1);
  const editor = cell.locator('.cm-content');
  await editor.click();
  await notebook.locator('.jp-Notebook.jp-mod-editMode').waitFor();
  await page.keyboard.type(code);
  assert.equal((await editor.textContent()).trim(), code);
  await page.keyboard.press('Shift+Enter');
  const outputs = cell.locator('.jp-OutputArea-output');
  const prompt = cell.locator('.jp-InputPrompt');
  const deadline = Date.now() + INSTALL_MS;
  for (;;) {
    const text = (await outputs.allTextContents()).join('\n');
    if (done.test(text)) {
      return text;
    }
    // `[*]:` while it runs, `[n]:` once it has finished
    const finished = /\[\d+\]/.test(await prompt.textContent());
    assert.ok(
      !finished && Date.now() < deadline,
      `the cell ${finished ? 'finished' : `ran ${INSTALL_MS} ms`} without printing ${done}; its output:\n${text}`
    );
    await new Promise(resolve => setTimeout(resolve, 500));
  }
}

/** Resolve once `file` exists, or fail after `ms`. */
async function waitForFile(file, ms) {
  const deadline = Date.now() + ms;
  while (!existsSync(file)) {
    assert.ok(Date.now() < deadline, `${file} did not appear in ${ms} ms`);
    await new Promise(resolve => setTimeout(resolve, 250));
  }
}

describe('alice sees her pip installs arrive as drift in the side bar', () => {
  let workdir;
  let wheels;
  let hub;
  let browser;
  let context;
  let page;
  let panel;

  before(async () => {
    workdir = mkdtempSync(path.join(tmpdir(), 'westtek-ui-live-'));
    wheels = await buildWheels(workdir);
    hub = await startHub({ seed: writeAnalysis });
    browser = await launchBrowser();
    context = await newLoopbackContext(browser);
    page = await context.newPage();
  });

  after(async () => {
    await context?.close();
    await browser?.close();
    await hub?.stop();
    if (workdir) {
      rmSync(workdir, { recursive: true, force: true });
    }
  });

  /** Run a step with the hub's and alice's server's logs attached to its failure. */
  const step = body => withLog('hub', () => hub.log(), body);

  /** Open one of the side bar's tabs. */
  const openTab = async name => {
    await panel.getByTestId(`westtek-tab-${name}`).click();
    await panel.getByTestId(`westtek-${name}`).waitFor();
  };

  /** The Drift tab's entry for a package, as it stands now. */
  const entry = name =>
    panel.locator(
      `[data-testid=westtek-event][data-name=${name}][data-current=true]`
    );

  test('JupyterLab opens with West Tek visible, its tab labelled', async () => {
    await step(async () => {
      // When alice logs in for the first time
      await logIntoLab(page, hub, 'alice');

      // Then West Tek is open without a click, and its tab names it
      panel = page.locator(SIDEBAR);
      await panel.waitFor({ state: 'visible' });
      assert.equal(
        (
          await page.locator(`${SIDEBAR_TAB} .lm-TabBar-tabLabel`).textContent()
        ).trim(),
        'West Tek'
      );
      assert.match(
        await page.locator(SIDEBAR_TAB).getAttribute('title'),
        /West Tek/
      );
      await screenshot(page, 'live-drift-first-visit');
    });
  });

  test('nothing is cut off at the default width: tabs, package table, forms', async () => {
    await step(async () => {
      // Given the side bar at the width JupyterLab gives it
      panel = await openSidebar(page);

      // Then the tabs, her package table (hundreds of packages), the snapshot
      // form and the chat form each fit
      await openTab('environment');
      await panel
        .getByTestId('westtek-package-table')
        .waitFor({ timeout: JOB_MS });
      assert.deepEqual(await cutOff(page), []);
      await openTab('snapshots');
      await panel.getByTestId('westtek-snapshot-note').waitFor();
      assert.deepEqual(await cutOff(page), []);
      await openTab('chat');
      await panel.locator('.jp-WestTek-chatInput').waitFor();
      assert.deepEqual(await cutOff(page), []);
      await screenshot(page, 'live-drift-chat-width');
      await openTab('environment');
      await screenshot(page, 'live-drift-environment-width');
    });
  });

  test('a snapshot taken from the side bar is listed at once and becomes the baseline', async () => {
    await step(async () => {
      // Given the packages her notebook imports, in her own environment
      const pip = path.join(hub.home, '.venv', 'bin', 'pip');
      await run(pip, [
        'install',
        '--quiet',
        '--no-index',
        '--find-links',
        wheels,
        '--disable-pip-version-check',
        `${FROM_NOTEBOOK}==1.0.0`,
        `${FROM_TERMINAL}==1.0.0`
      ]);
      panel = await openSidebar(page);
      await openTab('snapshots');
      await panel.getByText('No snapshots yet.', { exact: false }).waitFor();

      // When she takes a snapshot with a note
      await panel
        .getByTestId('westtek-snapshot-note')
        .locator('input')
        .fill('clean analysis environment');
      await panel.getByTestId('westtek-snapshot-create').click();

      // Then it is listed without a reload, as the baseline
      const card = panel
        .getByTestId('westtek-snapshot')
        .filter({ hasText: 'clean analysis environment' });
      await card.waitFor({ timeout: JOB_MS });
      await card.getByTestId('westtek-baseline-tag').waitFor();

      // And its details open beside: her note and the packages it holds
      await card.getByTestId('westtek-snapshot-details').click();
      const details = page.getByTestId('westtek-snapshot-details-view');
      await details
        .getByTestId('westtek-details-note')
        .filter({ hasText: 'clean analysis environment' })
        .waitFor({ timeout: JOB_MS });
      await details
        .getByTestId('westtek-details-search')
        .locator('input')
        .fill(FROM_NOTEBOOK);
      const row = details
        .getByTestId('westtek-details-package-table')
        .locator('tbody tr', { hasText: FROM_NOTEBOOK });
      await row.waitFor();
      assert.deepEqual(
        (await row.locator('td').allTextContents()).slice(0, 2),
        [FROM_NOTEBOOK, '1.0.0']
      );
      const notebooks = await details
        .getByTestId('westtek-details-notebooks')
        .textContent();
      assert.ok(notebooks.includes(NOTEBOOK), notebooks);
      await screenshot(page, 'live-drift-snapshot-details');

      // And her environment is stable against it, watched live
      await openTab('drift');
      await panel
        .locator('[data-testid=westtek-drift-status][data-status=STABLE]')
        .waitFor({ timeout: JOB_MS });
      await panel
        .locator('[data-testid=westtek-stream][data-stream=live]')
        .waitFor();
      await page.evaluate(() => {
        globalThis.westtekSamePage = true;
      });
    });
  });

  test('a %pip install in a notebook cell shows as critical for the notebook', async () => {
    await step(async () => {
      // Given her notebook, open in JupyterLab with her kernel
      await runFromPalette(page, 'Open from Path…');
      const pathInput = page.locator('.jp-Dialog input');
      await pathInput.fill(NOTEBOOK);
      await page.locator('.jp-Dialog-button.jp-mod-accept').click();
      const notebook = page.locator('.jp-NotebookPanel:visible');
      await notebook.locator('.jp-Cell').first().waitFor();
      await notebook
        .locator('.jp-Notebook-ExecutionIndicator[data-status=idle]')
        .waitFor({ timeout: INSTALL_MS })
        .catch(() => {}); // the indicator is only a hint; the cell's output decides
      // (Open from Path shows the file browser: back to West Tek's Drift tab.)
      panel = await openSidebar(page);
      await panel.getByTestId('westtek-drift').waitFor();

      // When she adds a cell below the first, types a %pip install and runs it
      const output = await runInNewCell(
        page,
        notebook,
        `%pip install --no-index --find-links ${wheels} --disable-pip-version-check ${FROM_NOTEBOOK}==2.0.0`,
        /Successfully installed/
      );
      assert.match(output, /-2\.0\.0/);
      const installed = Date.now();

      // Then the open Drift tab shows the upgrade, critical, for her notebook
      const critical = entry(FROM_NOTEBOOK);
      await critical.waitFor({ timeout: DRIFT_SHOWN_MS });
      const elapsed = Date.now() - installed;
      console.log(`# notebook install shown ${elapsed} ms after it finished`);
      assert.equal(await critical.getAttribute('data-severity'), 'critical');
      assert.equal(
        await critical.evaluate(
          node =>
            node.closest('[data-testid=westtek-event-group]').dataset.severity
        ),
        'critical'
      );
      assert.match(await critical.textContent(), /1\.0\.0 → 2\.0\.0/);
      await critical.getByTitle(`Open ${NOTEBOOK}`, { exact: true }).waitFor();
      assert.equal(await page.evaluate(() => globalThis.westtekSamePage), true);
    });
  });

  test('a pip install in a terminal shows as minor for the notebook, and every view agrees', async () => {
    await step(async () => {
      // When she opens a terminal and pip-installs there
      await runFromPalette(page, 'New Terminal');
      const terminal = page.locator('.jp-Terminal:visible');
      await terminal.locator('.xterm-screen').waitFor();
      await terminal.click();
      const out = path.join(workdir, 'terminal.log');
      const done = path.join(workdir, 'terminal.rc');
      await page.keyboard.type(
        `{ command -v pip; pip install --no-index --find-links ${wheels} ` +
          `--disable-pip-version-check ${FROM_TERMINAL}==1.1.0; } ` +
          `> ${out} 2>&1; echo $? > ${done}\n`
      );
      await waitForFile(done, INSTALL_MS);
      const installed = Date.now();
      const log = readFileSync(out, 'utf8');
      assert.equal(readFileSync(done, 'utf8').trim(), '0', log);
      // (her own environment's pip, first on her terminal's PATH)
      assert.equal(
        log.split('\n')[0],
        path.join(hub.home, '.venv', 'bin', 'pip'),
        log
      );

      // Then the Drift tab shows it too, minor, for her notebook
      const minor = entry(FROM_TERMINAL);
      await minor.waitFor({ timeout: DRIFT_SHOWN_MS });
      const elapsed = Date.now() - installed;
      console.log(`# terminal install shown ${elapsed} ms after it finished`);
      assert.equal(await minor.getAttribute('data-severity'), 'minor');
      assert.equal(
        await minor.evaluate(
          node =>
            node.closest('[data-testid=westtek-event-group]').dataset.severity
        ),
        'minor'
      );
      assert.match(await minor.textContent(), /1\.0\.0 → 1\.1\.0/);
      await minor.getByTitle(`Open ${NOTEBOOK}`, { exact: true }).waitFor();

      // And both are still there, once each
      await entry(FROM_NOTEBOOK).waitFor();
      const names = await panel
        .locator('[data-testid=westtek-event][data-current=true]')
        .evaluateAll(nodes => nodes.map(node => node.dataset.name));
      assert.equal(new Set(names).size, names.length, `${names}`);

      // And the header badge, the status bar, the tab and the Drift tab's
      // counts all say the same: critical drift, two minor-or-critical changes
      await panel
        .locator(
          '[data-testid=westtek-header-drift][data-status=CRITICAL_DRIFT]'
        )
        .waitFor();
      await panel
        .locator(
          '[data-testid=westtek-drift-status][data-status=CRITICAL_DRIFT]'
        )
        .waitFor();
      const statusBar = page.locator(
        '[data-testid=westtek-statusbar][data-status=CRITICAL_DRIFT]'
      );
      await statusBar.waitFor();
      const serious = Number(
        await panel
          .getByTestId('westtek-drift-counts')
          .getAttribute('data-serious')
      );
      assert.equal(serious, 2);
      assert.equal(
        (
          await statusBar.getByTestId('westtek-statusbar-count').textContent()
        ).trim(),
        String(serious)
      );
      assert.equal(
        (
          await panel.getByTestId('westtek-tab-drift-count').textContent()
        ).trim(),
        String(serious)
      );
      const groupCount = async severity =>
        Number(
          await panel
            .locator(
              `[data-testid=westtek-event-group][data-severity=${severity}] [data-testid=westtek-event-group-count]`
            )
            .textContent()
        );
      assert.equal(
        (await groupCount('critical')) + (await groupCount('minor')),
        serious
      );
      const counts = await panel
        .getByTestId('westtek-drift-counts')
        .textContent();
      assert.match(
        counts,
        /^(\d+) changes? since the baseline: 1 critical, 1 minor/
      );
      assert.equal(Number(counts.match(/^\d+/)[0]), names.length);
      // (and the tab list, with its count, still fits)
      assert.deepEqual(await cutOff(page), []);
      assert.equal(await page.evaluate(() => globalThis.westtekSamePage), true);
      await screenshot(page, 'live-drift');
    });
  });
});
