// Browser test of the Chat panel: a successor asks the Knowledge Transfer agent
// which notebook produces a figure, watches the answer arrive with its
// citations, opens the cited notebook at the cited cell, and finds the
// conversation in the history. The lab's knowledge base is ingested with
// `westtek kb ingest` before the server starts. Only 127.0.0.1 is contacted.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  BrowserSession,
  openSidebar,
  PYTHON,
  screenshot,
  startLab
} from './helpers.mjs';

const NOTEBOOK = 'figures.ipynb';
const FIGURE_CELL = 3;

/** An nbformat-4 notebook of [cell_type, source] pairs. */
function notebookJSON(cells) {
  return JSON.stringify({
    cells: cells.map(([kind, source]) => ({
      cell_type: kind,
      metadata: {},
      source,
      ...(kind === 'code' ? { outputs: [], execution_count: null } : {})
    })),
    metadata: {
      kernelspec: { name: 'python3', display_name: 'Python 3' }
    },
    nbformat: 4,
    nbformat_minor: 5
  });
}

describe('the Chat panel', () => {
  let session;
  let workdir;
  let lab;
  let page;
  let panel;

  before(async () => {
    session = new BrowserSession('jupyter lab', 'westtek-ui-chat-');
    workdir = session.workdir;
    const root = path.join(workdir, 'root');
    mkdirSync(path.join(root, 'experiments'), { recursive: true });
    writeFileSync(
      path.join(root, NOTEBOOK),
      notebookJSON([
        ['markdown', '# Figures for the paper\nFigure 3 shows the decay fit.'],
        ['code', "import json\nrows = open('data/decay.csv').read()"],
        ['code', 'fit = sorted(rows)'],
        ['code', "import matplotlib\nplt.savefig('figures/figure3.png')"]
      ])
    );
    writeFileSync(
      path.join(root, 'experiments', 'run-42.md'),
      '# Run 42\n\nThe decay fit for figure 3 reads data/decay.csv.\n'
    );
    const index = path.join(workdir, 'kb.sqlite');
    const ingest = spawnSync(
      PYTHON,
      ['-m', 'westtek_core', 'kb', 'ingest', root, '--index', index, '--json'],
      {
        env: { ...process.env, XDG_DATA_HOME: path.join(workdir, 'data') },
        encoding: 'utf8'
      }
    );
    assert.equal(ingest.status, 0, ingest.stderr);
    ({ server: lab, page } = await session.start(() =>
      startLab({
        root,
        args: [`--WestTekExtension.kb_index=${index}`]
      })
    ));
    await page.goto(`${lab.baseUrl}lab?token=${lab.token}`);
  });

  after(() => session?.close());

  const step = body => session.step(body);

  test('an answer streams in with citations that open the notebook at the cell', () =>
    step(async () => {
      panel = await openSidebar(page);
      await panel.getByTestId('westtek-tab-chat').click();
      const chat = panel.getByTestId('westtek-chat');
      await chat.waitFor();
      await chat.getByTestId('westtek-chat-agent').selectOption('transfer');
      await chat
        .getByTestId('westtek-chat-question')
        .fill('Which notebook produces figure 3, and what data does it read?');
      await chat.getByTestId('westtek-chat-send').click();

      const answer = chat.locator(
        '[data-testid="westtek-chat-message"][data-role="assistant"][data-pending="false"]'
      );
      await answer.waitFor();
      const text = await answer.locator('.jp-WestTek-chatText').innerText();
      assert.match(text, /figures\.ipynb writes figures\/figure3\.png/);
      assert.match(text, /data\/decay\.csv/);
      const cited = answer.locator(
        `[data-testid="westtek-citation"][data-source="${NOTEBOOK}"][data-locator="cell ${FIGURE_CELL}"]`
      );
      await cited.waitFor();
      await screenshot(page, 'chat-answer');

      await cited.click();
      const tab = page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab', {
        hasText: NOTEBOOK
      });
      await tab.waitFor();
      // the cited cell becomes the active one
      await page
        .locator('.jp-NotebookPanel .jp-Cell.jp-mod-active', {
          hasText: 'savefig'
        })
        .waitFor();
      await screenshot(page, 'chat-citation-opened');
    }));

  test('the conversation is in the history and can be reopened', () =>
    step(async () => {
      const chat = panel.getByTestId('westtek-chat');
      const history = chat.getByTestId('westtek-chat-history');
      await history
        .locator('option', { hasText: 'Which notebook produces figure 3' })
        .waitFor({ state: 'attached' });
      await history.selectOption({ index: 0 }); // a new conversation
      await chat.getByText('Ask about this environment').waitFor();
      await history.selectOption({ index: 1 });
      await chat
        .locator('[data-testid="westtek-chat-message"][data-role="user"]')
        .first()
        .waitFor();
      assert.equal(
        await chat.locator('[data-testid="westtek-chat-message"]').count(),
        2
      );
    }));
});
