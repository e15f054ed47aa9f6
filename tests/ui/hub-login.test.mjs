// Browser test of the demo's promise: alice logs in through JupyterHub and her
// JupyterLab shows the West Tek side panel.
//
// Runs the real demo hub (hub_config/jupyterhub_config.py, with
// configurable-http-proxy and the westtek spawner's local backend) through
// `python -m tests.e2e.run_hub`, on loopback ports, in a fresh temp directory.
// Run with `jlpm test:ui`; see helpers.mjs for $WESTTEK_PYTHON and $CHROMIUM.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  DEMO_PASSWORD,
  SPAWN_AND_LOAD_TIMEOUT_MS,
  startHub,
  submitLogin
} from './demo-hub.mjs';
import {
  PACKAGE,
  SIDEBAR_TAB,
  launchBrowser,
  newLoopbackContext,
  openSidebar,
  screenshot,
  withLog
} from './helpers.mjs';

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
        // (West Tek asks for its status as soon as it shows, which it does
        // by itself on a first visit: listen from the start.)
        const status = page.waitForResponse(
          r => new URL(r.url()).pathname === '/user/alice/westtek/api/status',
          { timeout: SPAWN_AND_LOAD_TIMEOUT_MS + 30_000 }
        );
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
