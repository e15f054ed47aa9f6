// Browser tests of the West Tek side bar as a researcher uses it: read the
// environment, take a snapshot, watch a `pip install` arrive as drift without
// reloading, compare two snapshots, and roll back.
//
// The server captures one throwaway venv (see throwaway-env.mjs) and a
// workspace with one notebook importing its package. The tests run in order
// on one page, as one researcher's session. Run with `jlpm test:ui`; see
// helpers.mjs for $WESTTEK_PYTHON and $CHROMIUM. Only 127.0.0.1 is contacted.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  BrowserSession,
  newLoopbackContext,
  openSidebar,
  screenshot,
  searchPalette,
  startLab
} from './helpers.mjs';
import {
  PACKAGE_NAME,
  installedVersion,
  makeThrowawayEnv,
  writeNotebook
} from './throwaway-env.mjs';

const NOTEBOOK = 'analysis.ipynb';

// The promises: the Environment panel within 1 s of opening, a drift
// event in the open side bar within 2 s of the install finishing.
const ENVIRONMENT_SHOWN_MS = 1_000;
const DRIFT_EVENT_MS = 2_000;

// A snapshot of the tiny venv and workspace takes well under a second.
const JOB_TIMEOUT_MS = 30_000;

describe('a researcher in the West Tek side bar', () => {
  let session;
  let workdir;
  let env;
  let lab;
  let browser;
  let page;
  let panel;
  let prefetched;

  before(async () => {
    session = new BrowserSession('jupyter lab', 'westtek-ui-env-');
    workdir = session.workdir;
    env = await makeThrowawayEnv(workdir, ['1.0.0', '2.0.0'], '1.0.0');
    const root = path.join(workdir, 'root');
    mkdirSync(root);
    writeNotebook(
      path.join(root, NOTEBOOK),
      `import ${PACKAGE_NAME}\nprint(${PACKAGE_NAME}.__version__)\n`
    );
    ({
      server: lab,
      browser,
      page
    } = await session.start(() =>
      startLab({
        root,
        // Polled every 2 s while the WebSocket is down (the last test).
        settings: {
          'westtek-labextension/plugin.jupyterlab-settings': { pollInterval: 2 }
        },
        // One value per flag: ServerApp does not parse a JSON list for an
        // extension's List trait.
        args: [`--WestTekExtension.pythons=${env.python}`]
      })
    ));
    // The extension fetches the environment once JupyterLab has started.
    prefetched = page.waitForResponse(
      r => new URL(r.url()).pathname === '/westtek/api/environment'
    );
    await page.goto(`${lab.baseUrl}lab?token=${lab.token}`);
  });

  after(() => session?.close());

  const step = body => session.step(body);

  /** Open one of the three tabs of the side bar. */
  const openTab = async name => {
    await panel.getByTestId(`westtek-tab-${name}`).click();
    await panel.getByTestId(`westtek-${name}`).waitFor();
  };

  test('the Environment panel shows the interpreter, kernels and a searchable package table', async () => {
    await step(async () => {
      // Given JupyterLab started (and the extension fetched the environment)
      assert.equal((await prefetched).status(), 200);

      // When the researcher opens the West Tek side bar
      const opened = Date.now();
      panel = await openSidebar(page);

      // Then the Environment panel lists the package with its importer
      const table = panel.getByTestId('westtek-package-table');
      await table.waitFor();
      const elapsed = Date.now() - opened;
      console.log(`# Environment panel shown ${elapsed} ms after opening`);
      assert.ok(
        elapsed <= ENVIRONMENT_SHOWN_MS,
        `the Environment panel took ${elapsed} ms (> ${ENVIRONMENT_SHOWN_MS})`
      );
      const row = table.locator('tbody tr', { hasText: PACKAGE_NAME });
      await row.waitFor();
      const cells = await row.locator('td').allTextContents();
      assert.deepEqual(cells, [PACKAGE_NAME, '1.0.0', NOTEBOOK]);
      assert.equal(
        await row.locator('td code').getAttribute('title'),
        'Installed by pip'
      );
      assert.match(
        await panel.getByTestId('westtek-interpreters').textContent(),
        new RegExp(env.python.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      );
      assert.match(
        await panel.getByTestId('westtek-kernels').textContent(),
        /python3/
      );
      assert.equal(
        await panel
          .getByTestId('westtek-drift-badge')
          .getAttribute('data-status'),
        'NO_BASELINE'
      );

      // And the search narrows the table, over notebooks too
      const search = panel
        .getByTestId('westtek-package-search')
        .locator('input');
      await search.fill('no-such-package');
      await panel.getByText('No package matches.').waitFor();
      await search.fill('analysis');
      await row.waitFor();
      await search.fill('');

      await screenshot(page, 'environment-panel');
    });
  });

  test('the command palette offers the West Tek commands', async () => {
    await step(async () => {
      // When the researcher searches the palette for West Tek
      await searchPalette(page, 'West Tek', [
        'Open West Tek',
        'Show Environment Drift',
        'Take a Snapshot Now',
        'Accept Current Environment as Baseline',
        'Roll Back Environment to Baseline…'
      ]);
      await screenshot(page, 'command-palette');

      // Then "Show Environment Drift" opens the Drift panel (Enter once it is
      // the active item: pressed before the palette filters, Enter runs
      // whichever item was first)
      await searchPalette(page, 'Show Environment Drift');
      await page
        .locator('.lm-CommandPalette-item.lm-mod-active', {
          hasText: 'Show Environment Drift'
        })
        .waitFor();
      await page.keyboard.press('Enter');
      await panel.getByTestId('westtek-drift').waitFor();
      await panel
        .locator('[data-testid=westtek-drift-status][data-status=NO_BASELINE]')
        .waitFor();
    });
  });

  test('takes a snapshot with a note and labels, shows its progress and lists it', async () => {
    await step(async () => {
      await openTab('snapshots');
      await panel.getByText('No snapshots yet.', { exact: false }).waitFor();

      // When the researcher takes a snapshot with a note and a label
      await panel
        .getByTestId('westtek-snapshot-note')
        .locator('input')
        .fill('before the upgrade');
      await panel
        .getByTestId('westtek-snapshot-labels')
        .locator('input')
        .fill('project=demo');
      await panel.getByTestId('westtek-snapshot-create').click();

      // Then its job shows, and the snapshot is listed with its note, label
      // and sizes; the first snapshot is the baseline
      await panel.getByTestId('westtek-job').first().waitFor();
      const card = panel
        .getByTestId('westtek-snapshot')
        .filter({ hasText: 'before the upgrade' });
      await card.waitFor({ timeout: JOB_TIMEOUT_MS });
      assert.match(await card.textContent(), /project=demo/);
      await card.getByTestId('westtek-baseline-tag').waitFor();
      assert.match(
        await card.getByTestId('westtek-snapshot-size').textContent(),
        /\d+(\.\d)? (B|KiB|MiB)/
      );
      assert.match(
        await card.getByTestId('westtek-snapshot-new-bytes').textContent(),
        /\d+(\.\d)? (B|KiB|MiB)/
      );
      assert.match(
        await panel.getByTestId('westtek-notice').textContent(),
        /^Snapshot [0-9a-f]{12} taken\./
      );
      await screenshot(page, 'snapshot-listed');
    });
  });

  test('a pip install in the kernel environment arrives as a drift event without reloading', async () => {
    await step(async () => {
      await openTab('drift');
      await panel
        .locator('[data-testid=westtek-drift-status][data-status=STABLE]')
        .waitFor();
      await panel
        .locator('[data-testid=westtek-stream][data-stream=live]')
        .waitFor();
      await page.evaluate(() => {
        globalThis.westtekSamePage = true;
      });

      // When the package is upgraded across a major version
      await env.install('2.0.0');
      const installed = Date.now();

      // Then the event appears in the open panel, as critical, with its
      // reason and the notebook that imports the package
      const event = panel
        .locator('[data-testid=westtek-event-group][data-severity=critical]')
        .locator(`[data-testid=westtek-event][data-name=${PACKAGE_NAME}]`);
      await event.waitFor();
      const elapsed = Date.now() - installed;
      console.log(`# drift event shown ${elapsed} ms after the install`);
      assert.ok(
        elapsed <= DRIFT_EVENT_MS,
        `the drift event took ${elapsed} ms (> ${DRIFT_EVENT_MS})`
      );
      assert.equal(await page.evaluate(() => globalThis.westtekSamePage), true);
      assert.match(await event.textContent(), /1\.0\.0 → 2\.0\.0/);
      assert.match(
        await event.getByTestId('westtek-event-reason').textContent(),
        /breaking/
      );
      await panel
        .locator(
          '[data-testid=westtek-drift-status][data-status=CRITICAL_DRIFT]'
        )
        .waitFor();

      // And the status bar and a notification say so
      await page
        .locator('[data-testid=westtek-statusbar][data-status=CRITICAL_DRIFT]')
        .waitFor();
      await page
        .locator('.Toastify__toast', { hasText: 'Critical drift' })
        .first()
        .waitFor();
      await page.waitForTimeout(500); // the toast's slide-in, for the screenshot
      await screenshot(page, 'drift-event');

      // And clicking the affected notebook opens it
      await event.getByTitle(`Open ${NOTEBOOK}`, { exact: true }).click();
      await page.locator('.jp-MainAreaWidget .jp-Notebook').first().waitFor();
      await page
        .locator('.lm-DockPanel-tabBar .lm-TabBar-tab', { hasText: NOTEBOOK })
        .waitFor();
    });
  });

  test('compares two snapshots side by side, coloured by severity', async () => {
    await step(async () => {
      // Given a second snapshot taken from the Drift panel
      await panel.getByTestId('westtek-snapshot-now').click();
      await openTab('snapshots');
      const cards = panel.getByTestId('westtek-snapshot');
      await cards.nth(1).waitFor({ timeout: JOB_TIMEOUT_MS });

      // When the researcher ticks both and compares them
      await cards.nth(0).getByTestId('westtek-snapshot-select').click();
      await cards.nth(1).getByTestId('westtek-snapshot-select').click();
      await panel.getByTestId('westtek-diff').click();

      // Then the diff opens in the main area, the upgrade in a critical row
      const view = page.getByTestId('westtek-diff-view');
      const row = view.locator(
        `[data-testid=westtek-diff-row][data-name=${PACKAGE_NAME}]`
      );
      await row.waitFor();
      assert.equal(await row.getAttribute('data-severity'), 'critical');
      const cells = await row.locator('td').allTextContents();
      assert.equal(cells[1], '1.0.0');
      assert.equal(cells[2], '2.0.0');
      assert.equal(
        await view
          .getByTestId('westtek-diff-status')
          .getAttribute('data-status'),
        'CRITICAL_DRIFT'
      );
      await screenshot(page, 'snapshot-diff');
    });
  });

  test('rolls back to the baseline after a confirmation that lists the changes', async () => {
    await step(async () => {
      await openTab('drift');

      // When the researcher asks to roll back
      await panel.getByTestId('westtek-rollback').click();

      // Then a dialog says what will change before anything does
      const summary = page.getByTestId('westtek-rollback-summary');
      await summary.waitFor();
      assert.match(
        await summary.textContent(),
        new RegExp(`${PACKAGE_NAME}: 2\\.0\\.0 back to 1\\.0\\.0`)
      );
      assert.equal(await installedVersion(env.python), '2.0.0');
      await screenshot(page, 'rollback-confirmation');

      // And once confirmed the environment is back and the drift is gone
      await page.locator('.jp-Dialog-button.jp-mod-accept').click();
      await panel
        .locator('[data-testid=westtek-drift-status][data-status=STABLE]')
        .waitFor({ timeout: JOB_TIMEOUT_MS });
      assert.equal(await installedVersion(env.python), '1.0.0');
      await page
        .locator('[data-testid=westtek-statusbar][data-status=STABLE]')
        .waitFor();
      // And the critical-drift notification went with the drift
      await page
        .locator('.Toastify__toast', { hasText: 'Critical drift' })
        .waitFor({ state: 'detached' });
      await screenshot(page, 'rolled-back');
    });
  });
  test('verifies the snapshot, downloads its lockfile and restores it into a new directory', async () => {
    await step(async () => {
      await openTab('snapshots');
      const card = panel
        .getByTestId('westtek-snapshot')
        .filter({ hasText: 'before the upgrade' });

      // Verify
      await card.getByTestId('westtek-verify').click();
      const verification = card.getByTestId('westtek-verification');
      await verification
        .filter({ hasText: 'Verified' })
        .waitFor({ timeout: JOB_TIMEOUT_MS });

      // Download the requirements lockfile
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        card.getByTestId('westtek-export').click()
      ]);
      assert.match(download.suggestedFilename(), /requirements/);
      const lockfile = readFileSync(await download.path(), 'utf8');
      assert.match(lockfile, new RegExp(`${PACKAGE_NAME}.*1\\.0\\.0`));

      // A target outside the workspace is refused with the server's reason
      await card.getByTestId('westtek-restore').click();
      await page.getByTestId('westtek-restore-target').fill('../outside');
      await page.locator('.jp-Dialog-button.jp-mod-accept').click();
      await panel
        .getByTestId('westtek-notice')
        .filter({ hasText: 'outside the workspace' })
        .waitFor();

      // Restore into a new directory, named in a dialog
      await card.getByTestId('westtek-restore').click();
      const target = page.getByTestId('westtek-restore-target');
      await target.fill('restored-demo');
      await page.locator('.jp-Dialog-button.jp-mod-accept').click();
      await panel
        .getByTestId('westtek-notice')
        .filter({ hasText: 'Restored' })
        .waitFor({ timeout: JOB_TIMEOUT_MS });
      assert.ok(
        existsSync(path.join(lab.root, 'restored-demo', 'RESTORE.json')),
        'the restore lays out RESTORE.json in the new directory'
      );
      await screenshot(page, 'snapshot-verified-restored');
    });
  });

  test('polls the drift state when the WebSocket is down', async () => {
    await step(async () => {
      // Given a page whose drift stream is cut each time it connects
      const cut = await newLoopbackContext(browser);
      try {
        await cut.routeWebSocket(/westtek\/api\/drift\/stream/, ws =>
          ws.close()
        );
        const other = await cut.newPage();
        // A workspace of its own: the default layout (West Tek opens itself).
        await other.goto(
          `${lab.baseUrl}lab/workspaces/polling?token=${lab.token}`
        );
        const sidebar = await openSidebar(other);
        await sidebar.getByTestId('westtek-tab-drift').click();
        const stream = sidebar.locator(
          '[data-testid=westtek-stream][data-stream=polling]'
        );
        await stream.waitFor();
        assert.match(await stream.textContent(), /polling every 2 s/);
        // The rolled-back upgrade is listed as resolved, not as drift.
        const current = sidebar.locator(
          `[data-testid=westtek-event][data-name=${PACKAGE_NAME}][data-current=true]`
        );
        await sidebar
          .locator(
            `[data-testid=westtek-event][data-name=${PACKAGE_NAME}][data-current=false]`
          )
          .waitFor({ state: 'attached' });
        assert.equal(await current.count(), 0);

        // When the package is upgraded again
        await env.install('2.0.0');

        // Then the next poll brings the change back, and the critical state
        await current.waitFor({ timeout: 15_000 });
        // (listed once, with its three events: the first upgrade, the rollback
        // that resolved it, and this one)
        assert.equal(
          await sidebar
            .locator(`[data-testid=westtek-event][data-name=${PACKAGE_NAME}]`)
            .count(),
          1
        );
        const reported = await current.getAttribute('data-events');
        assert.equal(Number(reported), 3, `${reported} events`);
        await sidebar
          .locator(
            '[data-testid=westtek-drift-status][data-status=CRITICAL_DRIFT]'
          )
          .waitFor({ timeout: 15_000 });
        await screenshot(other, 'drift-polling');
      } finally {
        await cut.close();
      }
    });
  });
});
