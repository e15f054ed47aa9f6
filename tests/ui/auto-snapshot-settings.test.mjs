// Browser test of the hub panel's automatic-snapshot settings
// (westtek_hub/templates/westtek/auto-snapshots.html, westtek_hub/static/panel.js):
// the hub admin sets a lab's settings in its form, a bad value is refused in one
// line with nothing saved, and the lab's next server runs the saved settings.
//
// Runs the real demo hub (see demo-hub.mjs). Run with `jlpm test:ui`; see
// helpers.mjs for $WESTTEK_PYTHON and $CHROMIUM.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { SERVICE, logIntoLab, openPanel, startHub } from './demo-hub.mjs';
import { BrowserSession, newLoopbackContext, screenshot } from './helpers.mjs';

const PAGE = `${SERVICE}auto-snapshots`;
const SERVER_LOG_TIMEOUT_MS = 30_000;

/** Wait until the panel's message area is an alert of `kind`; its text. */
async function statusWhen(page, kind) {
  const handle = await page.waitForFunction(expected => {
    const area = globalThis.document.getElementById('westtek-status');
    if (!area || area.hidden || !area.classList.contains(`alert-${expected}`)) {
      return null;
    }
    return area.textContent.trim();
  }, kind);
  return handle.jsonValue();
}

/** The values of a lab's form fields, by name. */
async function formValues(page, lab) {
  const form = page.locator(`section[data-lab="${lab}"] form`);
  return form.evaluate(element =>
    Object.fromEntries(new globalThis.FormData(element).entries())
  );
}

describe('the hub panel: automatic snapshots are set per lab in its form', () => {
  let session;
  let browser;
  let hub;
  let page;

  before(async () => {
    session = new BrowserSession('hub');
    ({ server: hub, browser, page } = await session.start(startHub));
    await session.step(async () => {
      // Given the hub admin signed in to the panel (through the hub's OAuth),
      await openPanel(page, hub, 'overseer');
    });
  });

  after(() => session?.close());

  test('the settings saved in the form are what the next server runs', async () => {
    await session.step(async () => {
      // When overseer opens the Automatic snapshots tab, every lab has a form
      // (on the defaults) that says when a change takes effect,
      await page.getByRole('link', { name: 'Automatic snapshots' }).click();
      await page.waitForURL(url => url.pathname === PAGE);
      const labs = await page
        .locator('section.westtek-auto-lab')
        .evaluateAll(sections => sections.map(s => s.dataset.lab));
      assert.deepEqual(labs, ['vault-101', 'vault-13']);
      await page
        .getByText("Changes take effect from each server's next start")
        .waitFor();
      const lab = page.locator('section[data-lab="vault-13"]');
      const settle = lab.locator('[name=settle_seconds]');
      assert.equal(await settle.getAttribute('placeholder'), 'default: 60');
      // (number fields, bounded as the service checks them)
      assert.deepEqual(
        await settle.evaluate(input => [input.type, input.min, input.max]),
        ['number', '0', '604800']
      );

      // and they set vault-13's: every 2 hours, keeping the last 3,
      await lab.locator('[name=interval_hours]').fill('2');
      await lab.locator('[name=keep_last]').fill('3');
      await lab.getByRole('button', { name: 'Save' }).click();

      // Then the panel says so, and when,
      assert.equal(
        await statusWhen(page, 'success'),
        "Lab vault-13's automatic-snapshot settings are saved: each of its " +
          'servers uses them from its next start.'
      );
      // and the page, reloaded, shows what vault-13 set (a retention count
      // left blank keeps none by it) and who set it.
      await lab.getByText('changed by overseer').waitFor();
      assert.deepEqual(await formValues(page, 'vault-13'), {
        lab: 'vault-13',
        enabled: '',
        settle_seconds: '',
        interval_hours: '2',
        keep_last: '3',
        keep_daily: '0',
        keep_weekly: '0',
        keep_monthly: '0'
      });
      await screenshot(page, 'hub-panel-auto-snapshots-saved');

      // Text that is no number is refused in one line, not saved as the default,
      await lab.locator('[name=settle_seconds]').pressSequentially('1e');
      await lab.getByRole('button', { name: 'Save' }).click();
      assert.equal(
        await statusWhen(page, 'danger'),
        'Settle time after a change (seconds): not a number'
      );
      // and a negative settle time is marked as typed, refused in one line, and
      // nothing is saved.
      await lab.locator('[name=settle_seconds]').fill('-5');
      assert.equal(
        await lab
          .locator('[name=settle_seconds]')
          .evaluate(input => input.classList.contains('is-invalid')),
        true
      );
      await lab.getByRole('button', { name: 'Save' }).click();
      assert.equal(
        await statusWhen(page, 'danger'),
        'settle_seconds (the settle time after a change) must be a number of seconds from 0 to 604800 (7 days)'
      );
      await screenshot(page, 'hub-panel-auto-snapshots-refused');
      await page.reload();
      assert.equal((await formValues(page, 'vault-13')).settle_seconds, '');

      // When alice (vault-13) logs in, her new server runs vault-13's settings.
      const alice = await newLoopbackContext(browser);
      try {
        await logIntoLab(await alice.newPage(), hub, 'alice');
      } finally {
        await alice.close();
      }
      const serverLog = path.join(
        hub.workdir,
        'westtek-state',
        'alice',
        'singleuser.log'
      );
      const expected =
        'West Tek: automatic snapshots on (settle 60 s, every 2 h, keep ' +
        '{"keep_daily": 0, "keep_last": 3, "keep_monthly": 0, "keep_weekly": 0})';
      const deadline = Date.now() + SERVER_LOG_TIMEOUT_MS;
      while (!(
        existsSync(serverLog) &&
        readFileSync(serverLog, 'utf8').includes(expected)
      )) {
        assert.ok(
          Date.now() < deadline,
          `alice's server never logged: ${expected}`
        );
        await new Promise(resolve => setTimeout(resolve, 250));
      }
    });
  });
});
