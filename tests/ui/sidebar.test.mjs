// Browser tests of the West Tek side panel against a real `jupyter lab`.
//
// Run with `jlpm test:ui` (`node --test tests/ui/`). Needs the westtek package
// installed (with its built lab extension) in the Python env $WESTTEK_PYTHON
// (default: <repo>/.venv/bin/python) and Chromium at $CHROMIUM
// (default: /usr/bin/chromium). Only 127.0.0.1 is contacted.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  PACKAGE,
  SIDEBAR_TAB,
  launchBrowser,
  openLab,
  openSidebar,
  screenshot,
  startLab,
  withLog as withServerLog
} from './helpers.mjs';

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

        await screenshot(page, 'sidebar-status');

        // And Refresh asks the server again (once enabled: it waits while a
        // status request is in flight, which a loaded machine makes slow)
        const refresh = panel.getByRole('button', { name: /Refresh/ });
        await refresh.click({ trial: true });
        const request = page.waitForRequest(
          r => new URL(r.url()).pathname === '/westtek/api/status'
        );
        await refresh.click();
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

        await screenshot(page, 'sidebar-no-server-extension');
      } finally {
        await context.close();
      }
    });
  });
});
