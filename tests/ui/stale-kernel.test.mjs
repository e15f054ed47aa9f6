// Browser test of a stale kernel (issue 22): a notebook's kernel imported a
// package, then the package is upgraded on disk under it. The Drift panel
// says which kernel still runs which version, and its "Restart kernel" action
// restarts that kernel, which clears the warning; the cell run again imports
// the new version.
//
// The server captures one throwaway venv (see throwaway-env.mjs); the
// notebook's kernel is the test env's ipykernel with that venv's
// site-packages first on its path. Run with `jlpm test:ui`; see helpers.mjs
// for $WESTTEK_PYTHON and $CHROMIUM. Only 127.0.0.1 is contacted.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  BrowserSession,
  notebookOf,
  openSidebar,
  PYTHON,
  screenshot,
  startLab
} from './helpers.mjs';
import { PACKAGE_NAME, makeThrowawayEnv } from './throwaway-env.mjs';

const NOTEBOOK = 'analysis.ipynb';
const KERNEL = 'throwaway';

// The promise: the warning within 2 s of the install finishing.
const WARNING_SHOWN_MS = 2_000;
// The stale kernel's notification closes with its warning, well before the
// 15 s after which it would close by itself.
const TOAST_CLOSED_MS = 5_000;
// A snapshot of the tiny venv and workspace, a kernel start, a cell run.
const JOB_TIMEOUT_MS = 30_000;
// a cell run longer than this printing a version never reached the kernel
const STUCK_RUN_MS = 10_000;

/** A kernelspec whose kernel imports from the throwaway venv first. */
function writeKernelSpec(jupyterDir, venv) {
  const lib = path.join(venv, 'lib');
  const site = path.join(lib, readdirSync(lib)[0], 'site-packages');
  const spec = path.join(jupyterDir, 'kernels', KERNEL);
  mkdirSync(spec, { recursive: true });
  writeFileSync(
    path.join(spec, 'kernel.json'),
    JSON.stringify({
      argv: [PYTHON, '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
      display_name: 'Throwaway',
      language: 'python',
      env: { PYTHONPATH: site }
    })
  );
}

describe('a kernel that still runs what an install replaced', () => {
  let session;
  let workdir;
  let env;
  let lab;
  let page;

  before(async () => {
    session = new BrowserSession('jupyter lab', 'westtek-ui-stale-');
    workdir = session.workdir;
    env = await makeThrowawayEnv(workdir, ['1.0.0', '2.0.0'], '1.0.0');
    const jupyterDir = path.join(workdir, 'jupyter');
    writeKernelSpec(jupyterDir, path.join(workdir, 'venv'));
    // The server (started below) finds the kernelspec on its JUPYTER_PATH.
    process.env.JUPYTER_PATH = [jupyterDir, process.env.JUPYTER_PATH]
      .filter(Boolean)
      .join(path.delimiter);
    const root = path.join(workdir, 'root');
    mkdirSync(root);
    const notebook = notebookOf(
      `import ${PACKAGE_NAME}\nprint(${PACKAGE_NAME}.__version__)\n`
    );
    notebook.metadata.kernelspec = {
      display_name: 'Throwaway',
      language: 'python',
      name: KERNEL
    };
    writeFileSync(path.join(root, NOTEBOOK), JSON.stringify(notebook));
    ({ server: lab, page } = await session.start(() =>
      startLab({
        root,
        args: [`--WestTekExtension.pythons=${env.python}`]
      })
    ));
    await takeBaseline(lab);
    await page.goto(`${lab.baseUrl}lab/tree/${NOTEBOOK}?token=${lab.token}`);
  });

  after(() => session?.close());

  const step = body => session.step(body);

  /**
   * Run the notebook's first cell from the toolbar (no keystroke that could
   * land before the notebook has focus) until it prints `expected`; a run
   * sent before the page's kernel connection is up is not run, so it is sent
   * again while the cell shows no sign of running; one sent while a restarted
   * kernel's connection comes back can stay "running" without ever reaching
   * the kernel, so it is sent again after STUCK_RUN_MS too.
   */
  const runCell = async expected => {
    await kernelConnected(lab);
    const notebook = page.locator('.jp-NotebookPanel').first();
    const cell = notebook.locator('.jp-Cell').first();
    const output = cell.locator('.jp-OutputArea-output');
    const prompt = cell.locator('.jp-InputPrompt');
    const deadline = Date.now() + 2 * JOB_TIMEOUT_MS;
    let text = '';
    let sent = 0;
    while (text !== expected) {
      assert.ok(
        Date.now() < deadline,
        `the cell printed ${JSON.stringify(text)}, not ${expected}`
      );
      const running = /\*/.test(await prompt.textContent());
      const waited = Date.now() - sent;
      if ((!running && waited > 5_000) || waited > STUCK_RUN_MS) {
        await prompt.click();
        await notebook
          .locator('[data-command="notebook:run-cell-and-select-next"]')
          .first()
          .click();
        sent = Date.now();
      }
      await new Promise(resolve => setTimeout(resolve, 250));
      text = (await output.allTextContents()).join('').trim();
    }
  };

  test('the Drift panel names the stale kernel, and its restart clears the warning', async () => {
    await step(async () => {
      // Given the notebook's kernel imported the package at 1.0.0
      await page.locator('.jp-NotebookPanel .jp-Cell').first().waitFor();
      await runCell('1.0.0');
      // and the Drift panel open, live
      const panel = await openSidebar(page);
      await panel.getByTestId('westtek-tab-drift').click();
      await panel
        .locator('[data-testid=westtek-drift-status][data-status=STABLE]')
        .waitFor({ timeout: JOB_TIMEOUT_MS });
      await panel
        .locator('[data-testid=westtek-stream][data-stream=live]')
        .waitFor();

      // When the package is upgraded on disk
      await env.install('2.0.0');
      const installed = Date.now();

      // Then the warning appears, naming the notebook, the package and both
      // versions, with a "Restart kernel" action
      const stale = panel.locator(
        '[data-testid=westtek-event][data-kind=stale_kernel][data-current=true]'
      );
      await stale.waitFor();
      const elapsed = Date.now() - installed;
      console.log(
        `# stale-kernel warning shown ${elapsed} ms after the install`
      );
      assert.ok(
        elapsed <= WARNING_SHOWN_MS,
        `the warning took ${elapsed} ms (> ${WARNING_SHOWN_MS})`
      );
      assert.equal(
        await stale.getByTestId('westtek-event-reason').textContent(),
        `kernel '${NOTEBOOK}' still runs ${PACKAGE_NAME} 1.0.0; 2.0.0 is installed: restart the kernel`
      );
      await page
        .locator('.Toastify__toast', { hasText: 'still runs' })
        .first()
        .waitFor();
      await screenshot(page, 'stale-kernel');

      // When the researcher restarts the kernel from the panel
      await stale.getByTestId('westtek-restart-kernel').click();

      // Then the warning goes, its notification too (its "Restart kernel"
      // would do nothing now), the panel says the kernel restarted, and the
      // cell run again imports the new version
      await stale.waitFor({ state: 'detached', timeout: JOB_TIMEOUT_MS });
      await page
        .locator('.Toastify__toast', { hasText: 'still runs' })
        .waitFor({ state: 'detached', timeout: TOAST_CLOSED_MS });
      assert.match(
        await panel.getByTestId('westtek-notice').textContent(),
        new RegExp(`^Restarted the kernel of ${NOTEBOOK}`)
      );
      // (listed under "Resolved", a section closed by default)
      await panel
        .locator(
          '[data-testid=westtek-event][data-kind=stale_kernel][data-current=false]'
        )
        .first()
        .waitFor({ state: 'attached' });
      await runCell('2.0.0');
      await screenshot(page, 'stale-kernel-restarted');
    });
  });
});

/** Snapshot the environment as the baseline through the REST API. */
async function takeBaseline(lab) {
  const headers = { Authorization: `token ${lab.token}` };
  const api = `${lab.baseUrl}westtek/api/`;
  const started = await fetch(`${api}snapshots`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ note: 'baseline', labels: {}, baseline: true })
  });
  assert.equal(started.status, 202, await started.clone().text());
  let job = await started.json();
  const deadline = Date.now() + JOB_TIMEOUT_MS;
  while (job.finished === null || job.finished === undefined) {
    assert.ok(Date.now() < deadline, 'the baseline snapshot did not finish');
    await new Promise(resolve => setTimeout(resolve, 200));
    job = await (await fetch(`${api}jobs/${job.id}`, { headers })).json();
  }
  assert.equal(job.state, 'succeeded', job.error);
}

/** Resolve once the server's one kernel is idle with a client connected. */
async function kernelConnected(lab) {
  const deadline = Date.now() + JOB_TIMEOUT_MS;
  for (;;) {
    const kernels = await (
      await fetch(`${lab.baseUrl}api/kernels`, {
        headers: { Authorization: `token ${lab.token}` }
      })
    ).json();
    if (kernels.some(k => k.connections > 0 && k.execution_state === 'idle')) {
      return;
    }
    assert.ok(Date.now() < deadline, 'no kernel became idle and connected');
    await new Promise(resolve => setTimeout(resolve, 250));
  }
}
