// Browser test of the hub admin panel's progress messages
// (westtek_hub/static/panel.js): while a long action runs the panel shows a
// spinner and what is happening, then the outcome; a launch the hub refuses
// says why and what to do about it.
//
// Runs the real demo hub (see demo-hub.mjs) and drives its panel as the hub
// admin, overseer. Each action's request is held in the browser until the busy
// message has been checked, then sent on unchanged: the outcome is the hub
// service's own. Run with `jlpm test:ui`; see helpers.mjs for $WESTTEK_PYTHON
// and $CHROMIUM.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { DEMO_PASSWORD, SERVICE, openPanel, startHub } from './demo-hub.mjs';
import { BrowserSession, screenshot } from './helpers.mjs';

const API = `${SERVICE}api/`;
// overseer's server, launched from the panel, starting on the local backend.
const SERVER_READY_TIMEOUT_MS = 180_000;

/** A JupyterHub API token of a demo user, asked for with the demo password. */
async function userToken(hub, name) {
  const response = await fetch(`${hub.url}/hub/api/users/${name}/tokens`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      auth: { username: name, password: DEMO_PASSWORD },
      note: 'West Tek UI test'
    })
  });
  const text = await response.text();
  assert.equal(response.status, 201, text);
  return JSON.parse(text).token;
}

/** Call the hub (its REST API or a service's) with a user's token. */
async function callHub(hub, token, method, path, body) {
  return fetch(`${hub.url}${path}`, {
    method,
    headers: {
      Authorization: `token ${token}`,
      'Content-Type': 'application/json'
    },
    body: body === undefined ? undefined : JSON.stringify(body)
  });
}

/**
 * Register a researcher's environment with the hub service, as her server does
 * when it reports its first snapshot.
 */
async function reportSnapshot(hub, name, snapshotId) {
  const token = await userToken(hub, name);
  const response = await callHub(hub, token, 'POST', `${API}snapshots`, {
    id: snapshotId,
    environment_id: name,
    created_by: name,
    timestamp: '2026-11-20T10:00:00+00:00',
    size_bytes: 123456,
    checksum: 'c0ffee',
    metadata: { installed_packages: [], notebook_count: 1 }
  });
  assert.equal(response.status, 201, await response.text());
}

/**
 * Hold the page's next `method` request to `pathname` in the browser until
 * `release()`, then send it on unchanged. `held` resolves to the request once
 * it is held, `response` to the hub's answer; `answered()` tells whether that
 * has arrived.
 */
async function holdNextRequest(page, method, pathname) {
  let release;
  const released = new Promise(resolve => (release = resolve));
  let onHeld;
  const held = new Promise(resolve => (onHeld = resolve));
  const matches = url => url.pathname === pathname;
  let taken = false;
  const handler = async route => {
    if (taken || route.request().method() !== method) {
      return route.fallback();
    }
    taken = true;
    onHeld(route.request());
    await released;
    await route.continue();
    await page.unroute(matches, handler);
  };
  await page.route(matches, handler);
  let answered = false;
  const response = page
    .waitForResponse(
      r =>
        r.request().method() === method &&
        new URL(r.url()).pathname === pathname
    )
    .then(r => {
      answered = true;
      return r;
    });
  return { held, release, response, answered: () => answered };
}

/**
 * Wait until the panel's message area is an alert of `kind` (info, success,
 * danger) and read it in the same step: the page reloads soon after a success.
 */
async function statusWhen(page, kind) {
  const handle = await page.waitForFunction(expected => {
    const area = globalThis.document.getElementById('westtek-status');
    if (!area || area.hidden || !area.classList.contains(`alert-${expected}`)) {
      return null;
    }
    const link = area.querySelector('a');
    return {
      text: area.textContent.trim(),
      message: [...area.childNodes]
        .filter(node => node.nodeType === globalThis.Node.TEXT_NODE)
        .map(node => node.textContent)
        .join('')
        .trim(),
      busy: area.querySelector('.spinner-border') !== null,
      visible: area.getBoundingClientRect().height > 0,
      link: link && { text: link.textContent, href: link.getAttribute('href') }
    };
  }, kind);
  return handle.jsonValue();
}

/**
 * While `hold`'s request is held, check the panel shows a spinner with
 * `message` and `control` disabled, and save a screenshot `name`; then let the
 * request through. Resolves to the hub's status code and the success message
 * that replaces the spinner.
 */
async function busyUntilAnswered(page, hold, { message, control, name }) {
  const busy = await statusWhen(page, 'info');
  assert.equal(busy.busy, true);
  assert.equal(busy.visible, true);
  assert.equal(busy.message, message);
  assert.equal(await control.isDisabled(), true);
  assert.equal(hold.answered(), false);
  await screenshot(page, name);

  hold.release();
  const status = (await hold.response).status();
  const done = await statusWhen(page, 'success');
  assert.equal(done.busy, false);
  return { status, done };
}

describe('the hub admin panel: long actions say what is happening', () => {
  let session;
  let hub;
  let page;
  let overseerToken;

  before(async () => {
    session = new BrowserSession('hub');
    ({ server: hub, page } = await session.start(startHub));
    await session.step(async () => {
      // Given alice's and bob's environments, as their servers register them,
      await reportSnapshot(hub, 'alice', 'a0'.repeat(32));
      await reportSnapshot(hub, 'bob', 'b0'.repeat(32));
      overseerToken = await userToken(hub, 'overseer');
      // and the hub admin signed in to the panel (through the hub's OAuth).
      await openPanel(page, hub, 'overseer');
    });
  });

  after(() => session?.close());

  test('a reassignment shows a spinner while it runs, then the new owner', async () => {
    await session.step(async () => {
      await page.goto(`${hub.url}${SERVICE}succession?environment_id=bob`);
      const form = page.locator('#westtek-reassign');
      await form.locator('#westtek-successor').fill('carol');
      const submit = form.getByRole('button', { name: 'Reassign' });

      // When overseer reassigns bob's environment to carol and confirms,
      const transfer = await holdNextRequest(
        page,
        'POST',
        `${API}knowledge/transfer`
      );
      page.once('dialog', dialog => void dialog.accept());
      await submit.click();
      const request = await transfer.held;
      assert.deepEqual(request.postDataJSON(), {
        environment_id: 'bob',
        to_researcher: 'carol'
      });

      // Then while the request runs, a spinner says what is happening,
      // and once the service answered, the outcome replaces it
      const { status, done } = await busyUntilAnswered(page, transfer, {
        message:
          "Handing the environment to carol: copying its snapshots into their lab's " +
          'store where needed…',
        control: submit,
        name: 'hub-panel-reassign-busy'
      });
      assert.equal(status, 200);
      assert.equal(done.text, 'bob now belongs to carol (lab vault-101).');

      // and the page, reloaded, lists the transfer.
      await page
        .locator('#westtek-transfers')
        .getByText('bob (vault-13) → carol (vault-101) by overseer')
        .waitFor();
    });
  });

  test('a launch shows a spinner while it runs, then links to its start', async () => {
    await session.step(async () => {
      await page.goto(`${hub.url}${SERVICE}`);
      const launch = page
        .locator('tr[data-environment="alice"]')
        .getByRole('button', { name: 'Launch', exact: true });

      // When overseer launches a server for alice's environment,
      const start = await holdNextRequest(
        page,
        'POST',
        `${API}environments/jupyter`
      );
      await launch.click();
      assert.deepEqual((await start.held).postDataJSON(), {
        environment_id: 'alice'
      });

      // Then while the request runs, a spinner says what is happening,
      // and once the hub took it, the outcome links to the start's progress.
      const { status, done } = await busyUntilAnswered(page, start, {
        message: 'Asking the hub to start the server…',
        control: launch,
        name: 'hub-panel-launch-busy'
      });
      assert.equal(status, 202);
      assert.equal(done.message, "The hub is starting overseer's server.");
      assert.deepEqual(done.link, {
        text: 'Follow its start',
        href: '/hub/spawn-pending/overseer'
      });
      await screenshot(page, 'hub-panel-launch-started');
    });
  });

  test('a launch the hub refuses says why and what to do', async () => {
    await session.step(async () => {
      // Given overseer's server runs (launched by the test before, or here),
      let model = await serverModel();
      if (!model.servers['']) {
        const started = await callHub(
          hub,
          overseerToken,
          'POST',
          '/hub/api/users/overseer/server'
        );
        assert.ok([201, 202].includes(started.status), await started.text());
      }
      const deadline = Date.now() + SERVER_READY_TIMEOUT_MS;
      while (!model.servers['']?.ready) {
        assert.ok(
          model.servers[''] || model.pending,
          "overseer's server failed to start"
        );
        assert.ok(Date.now() < deadline, "overseer's server is not ready");
        await new Promise(resolve => setTimeout(resolve, 500));
        model = await serverModel();
      }
      await page.goto(`${hub.url}${SERVICE}`);
      const launch = page
        .locator('tr[data-environment="alice"]')
        .getByRole('button', { name: 'Launch', exact: true });

      // When overseer launches another,
      const answered = page.waitForResponse(
        r => new URL(r.url()).pathname === `${API}environments/jupyter`
      );
      await launch.click();

      // Then the service refuses it and the panel says why and what fixes it,
      assert.equal((await answered).status(), 409);
      const refused = await statusWhen(page, 'danger');
      assert.equal(refused.busy, false);
      assert.equal(refused.visible, true);
      assert.equal(
        refused.text,
        "overseer's server is already running: open it from the hub's home page, " +
          'or stop it first to launch another'
      );
      // and the button may be pressed again.
      assert.equal(await launch.isEnabled(), true);
      await screenshot(page, 'hub-panel-launch-refused');
    });

    async function serverModel() {
      const response = await callHub(
        hub,
        overseerToken,
        'GET',
        '/hub/api/users/overseer'
      );
      const text = await response.text();
      assert.equal(response.status, 200, text);
      return JSON.parse(text);
    }
  });
});
