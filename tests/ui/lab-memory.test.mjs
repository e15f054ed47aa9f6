// Browser test of issue 19's promise, in the demo: knowledge outlives the
// researcher. bob writes a notebook and snapshots it from the side bar; the
// hub admin hands bob's environment to carol (another lab) in the panel;
// carol, from her own server, whose workspace has none of bob's files, asks
// the Knowledge Transfer agent which notebook makes figure 3, gets an answer
// citing bob's notebook in bob's snapshot, and opens the cited cell; then she
// takes bob's environment over from the panel and lands on its start page,
// his notebook in a folder of her workspace, set to run on his packages.
//
// The hub is `python -m tests.e2e.run_hub` (see demo-hub.mjs). Run with
// `node --test tests/ui/lab-memory.test.mjs`; only 127.0.0.1 is contacted.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { SERVICE, logIntoLab, openPanel, startHub } from './demo-hub.mjs';
import {
  launchBrowser,
  newLoopbackContext,
  notebookOf,
  openSidebar,
  screenshot,
  withLog,
  writeQuietLabSettings
} from './helpers.mjs';

const NOTEBOOK = 'beam.ipynb';
// A snapshot of bob's small home, reported to the hub and indexed by it.
const JOB_MS = 120_000;
const QUESTION = 'Which notebook makes figure 3 from the beam data?';

/** bob's home before his first login: quiet settings and his notebook. */
function seedBob(hub) {
  const home = path.join(hub.workdir, 'westtek-users', 'bob');
  mkdirSync(home, { recursive: true, mode: 0o700 });
  writeQuietLabSettings(path.join(home, '.jupyter', 'lab', 'user-settings'));
  writeFileSync(
    path.join(home, NOTEBOOK),
    JSON.stringify(
      notebookOf(
        'import json\nfrom pathlib import Path',
        "currents = json.loads(Path('data/beam_currents.json').read_text())\n" +
          '# figure 3: the fitted decay of the beam current\n' +
          "print('figure 3 from', len(currents), 'beam currents')"
      )
    )
  );
}

/** carol's home before her first login: quiet settings only. */
function seedCarol(hub) {
  const home = path.join(hub.workdir, 'westtek-users', 'carol');
  mkdirSync(home, { recursive: true, mode: 0o700 });
  writeQuietLabSettings(path.join(home, '.jupyter', 'lab', 'user-settings'));
  return home;
}

describe('knowledge outlives the researcher: a successor asks about bob’s work', () => {
  let hub;
  let browser;
  let bob; // bob's page in JupyterLab
  let carol; // carol's page in JupyterLab
  let carolHome;
  const contexts = [];

  /** A fresh browser context (its own cookies: one person) and its page. */
  const person = async () => {
    const context = await newLoopbackContext(browser);
    contexts.push(context);
    return context.newPage();
  };

  before(async () => {
    hub = await startHub();
    seedBob(hub);
    browser = await launchBrowser();
  });

  after(async () => {
    for (const context of contexts) {
      await context.close();
    }
    await browser?.close();
    await hub?.stop();
  });

  const step = body => withLog('hub', () => hub.log(), body);

  test('bob snapshots his notebook from the side bar', () =>
    step(async () => {
      const page = await person();
      bob = page;
      await logIntoLab(page, hub, 'bob');
      const panel = await openSidebar(page);
      await panel.getByTestId('westtek-tab-snapshots').click();
      await panel
        .getByTestId('westtek-snapshot-note')
        .locator('input')
        .fill('figure 3, before I leave');
      await panel.getByTestId('westtek-snapshot-create').click();
      const card = panel
        .getByTestId('westtek-snapshot')
        .filter({ hasText: 'figure 3, before I leave' });
      await card.waitFor({ timeout: JOB_MS });
      // (a lab's store is shared: each card says whose it is)
      assert.match(
        await card.getByTestId('westtek-snapshot-owner').innerText(),
        /^bob/
      );
    }));

  test('the hub admin hands bob’s environment to carol in the panel', () =>
    step(async () => {
      const page = await person();
      await openPanel(page, hub, 'overseer');
      // bob's server reports the snapshot to the hub service (its outbox)
      const deadline = Date.now() + JOB_MS;
      for (;;) {
        await page.goto(`${hub.url}${SERVICE}succession?environment_id=bob`);
        if (await page.locator('#westtek-reassign').count()) {
          break;
        }
        assert.ok(
          Date.now() < deadline,
          'bob’s environment never reached the hub'
        );
        await page.waitForTimeout(1000);
      }
      const form = page.locator('#westtek-reassign');
      await form.locator('#westtek-successor').fill('carol');
      page.once('dialog', dialog => void dialog.accept());
      await form.getByRole('button', { name: 'Reassign' }).click();
      await page
        .locator('#westtek-transfers')
        .getByText('bob (vault-13) → carol (vault-101) by overseer')
        .waitFor({ timeout: JOB_MS });
    }));

  test('bob’s side bar no longer lists the environment he handed over', () =>
    step(async () => {
      await bob.reload();
      const panel = await openSidebar(bob);
      await panel.getByTestId('westtek-tab-snapshots').click();
      await panel
        .getByTestId('westtek-store-totals')
        .waitFor({ timeout: JOB_MS });
      const card = panel
        .getByTestId('westtek-snapshot')
        .filter({ hasText: 'figure 3, before I leave' });
      assert.equal(await card.count(), 0);
    }));

  test('carol asks the Knowledge Transfer agent and opens the cited cell', () =>
    step(async () => {
      const home = seedCarol(hub);
      const page = await person();
      [carol, carolHome] = [page, home];
      await logIntoLab(page, hub, 'carol');
      assert.equal(existsSync(path.join(home, NOTEBOOK)), false);
      const panel = await openSidebar(page);
      await panel.getByTestId('westtek-tab-chat').click();
      const chat = panel.getByTestId('westtek-chat');
      await chat.getByTestId('westtek-chat-agent').selectOption('transfer');

      // the hub service indexes the copy in carol's lab in the background:
      // ask again until the answer cites bob's notebook (bounded)
      const cited = chat.locator(
        `[data-testid="westtek-citation"][data-source="bob/${NOTEBOOK}"]`
      );
      const deadline = Date.now() + JOB_MS;
      while (!(await cited.count())) {
        assert.ok(Date.now() < deadline, 'no answer cited bob’s notebook');
        await chat.getByTestId('westtek-chat-question').fill(QUESTION);
        await chat.getByTestId('westtek-chat-send').click();
        await chat
          .locator(
            '[data-testid="westtek-chat-message"][data-role="assistant"][data-pending="false"]'
          )
          .last()
          .waitFor({ timeout: JOB_MS });
        if (!(await cited.count())) {
          await page.waitForTimeout(2000);
        }
      }
      const answer = chat
        .locator('[data-testid="westtek-chat-message"][data-role="assistant"]')
        .last();
      assert.match(await answer.innerText(), /figure 3/);
      await screenshot(page, 'lab-memory-answer');

      // the cited cell opens from bob's snapshot, though carol's workspace lacks
      // it; the passage spans both cells: the next one holds figure 3
      await cited.first().click();
      const cell = page.getByTestId('westtek-preserved-cell');
      await cell.waitFor({ timeout: JOB_MS });
      assert.match(await cell.innerText(), /environment bob/);
      const source = cell.getByTestId('westtek-preserved-source');
      if (!/figure 3/.test(await source.innerText())) {
        const first = await cell.getAttribute('data-cell');
        await cell.getByTestId('westtek-preserved-next').click();
        await page
          .locator(
            `[data-testid="westtek-preserved-cell"]:not([data-cell="${first}"])`
          )
          .waitFor();
      }
      assert.match(await source.innerText(), /figure 3: the fitted decay/);
      await screenshot(page, 'lab-memory-cited-cell');
    }));

  test('carol takes bob’s environment over and lands on its start page', () =>
    step(async () => {
      // bob's snapshot in her side bar links its transfer package in the panel
      const dialog = carol.locator('.jp-Dialog'); // the cited cell's
      await dialog.getByRole('button', { name: 'Close' }).click();
      await dialog.waitFor({ state: 'detached' });
      const panel = await openSidebar(carol);
      await panel.getByTestId('westtek-tab-snapshots').click();
      const card = panel
        .getByTestId('westtek-snapshot')
        .filter({ hasText: 'figure 3, before I leave' });
      await card.waitFor({ timeout: JOB_MS });
      // (a card says whose the environment is now)
      assert.equal(
        await card.getByTestId('westtek-snapshot-owner').innerText(),
        "bob, now carol's"
      );
      const [page] = await Promise.all([
        carol.context().waitForEvent('page'),
        card.getByTestId('westtek-transfer-package').click()
      ]);
      // her browser is logged in to the hub: the panel needs only her consent
      const succession = `${SERVICE}succession`;
      await page.waitForURL(url =>
        [succession, '/hub/api/oauth2/authorize'].includes(url.pathname)
      );
      if (new URL(page.url()).pathname !== succession) {
        await page
          .getByRole('button', { name: 'Authorize', exact: true })
          .click();
        await page.waitForURL(url => url.pathname === succession);
      }
      const offer = page.locator('#westtek-take-over');
      assert.match(await offer.innerText(), /bob handed bob to you/);
      await offer.getByRole('button', { name: 'Take over' }).click();
      // her server is running: it takes over as a job, and its start page
      // opens once the job is done
      const status = page.locator(
        '#westtek-status.alert-success, #westtek-status.alert-danger'
      );
      await status.waitFor({ timeout: JOB_MS });
      assert.match(await status.innerText(), /bringing bob's work into/);
      await page.getByRole('link', { name: 'Open its start page' }).click();
      await page.waitForURL(
        url =>
          url.searchParams.get('westtek-start-page') ===
          'from-bob/START_HERE.md',
        { timeout: JOB_MS }
      );
      const folder = path.join(carolHome, 'from-bob');
      const notebook = JSON.parse(
        readFileSync(path.join(folder, NOTEBOOK), 'utf8')
      );
      assert.match(notebook.metadata.kernelspec.display_name, /^bob's /);
      const start = readFileSync(path.join(folder, 'START_HERE.md'), 'utf8');
      assert.match(start, /^# Start here: bob's work/);
      assert.match(start, new RegExp(`\\[${NOTEBOOK}\\]`));
      // JupyterLab opens it rendered
      await page
        .locator('.jp-RenderedMarkdown h1', {
          hasText: "Start here: bob's work"
        })
        .waitFor({ timeout: JOB_MS });
      await screenshot(page, 'take-over-start-here');
    }));
});
