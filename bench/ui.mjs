#!/usr/bin/env node
// UI benchmark of the West Tek side bar in headless Chromium (issue 5's
// performance promises):
//
//   1. the Environment panel shows the environment's packages within 1 s of
//      opening the side bar, on the snapshot benchmark's scientific env
//      (bench/.cache/tree/env, ~110 distributions, 715 MB) with its workspace
//      (81 statsmodels notebooks + ~200 MB of data);
//   2. a drift event reaches the open Drift tab within 2 s of a `pip install`
//      finishing (in bench/.cache/tree/env2, the snapshot benchmark's copy of
//      the env; the tiny package installed there is uninstalled at the end).
//
// Run: node bench/ui.mjs [--trials 12] [--drift-trials 20] [--cold 10]
//      [--no-readme]   (print the table; leave README and results alone)
// See bench/README.md ("ui") for what each row measures. Only 127.0.0.1 is
// contacted: the run re-executes itself under `unshare --net` (loopback only)
// when the machine allows it, and every browser context may reach only
// 127.0.0.1. Chromium is Debian's (/usr/bin/chromium, or $CHROMIUM).
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import {
  PYTHON,
  REPO,
  SIDEBAR,
  SIDEBAR_TAB,
  launchBrowser,
  newLoopbackContext,
  startLab
} from '../tests/ui/helpers.mjs';
import { PACKAGE_NAME, makeThrowawayEnv } from '../tests/ui/throwaway-env.mjs';

const SCRIPT = fileURLToPath(import.meta.url);
const BENCH = path.join(REPO, 'bench');
const TREE = path.join(BENCH, '.cache', 'tree');
const ENV_PY = path.join(TREE, 'env', 'bin', 'python');
const ENV2_PY = path.join(TREE, 'env2', 'bin', 'python');
const WORKSPACE = path.join(TREE, 'workspace');
const RESULTS = path.join(BENCH, 'results', 'ui.json');
const README = path.join(BENCH, 'README.md');
const MARK_START = '<!-- bench:ui:start -->';
const MARK_END = '<!-- bench:ui:end -->';
const NETNS_FLAG = 'WESTTEK_BENCH_UI_NETNS';

const TARGET_ENV_MS = 1_000;
const TARGET_DRIFT_MS = 2_000;
const DEBOUNCE_MS = 300; // the server's watcher debounce (its default)
const RUN_TIMEOUT_MS = 30 * 60_000; // the whole run
const PAGE_TIMEOUT_MS = 60_000; // a page load, a panel, under load
const DRIFT_TRIAL_TIMEOUT_MS = 10_000; // pip exit → event; longer is a timeout
const PIP_TIMEOUT_MS = 120_000;
const JOB_TIMEOUT_MS = 600_000; // the baseline snapshot of the 715 MB env (+ KB ingest)
const SETTLE_MS = 1_000; // quiet time after each drift event before the next pip
const OLD = '1.0.0';
const NEW = '1.1.0';

const { values: opts } = parseArgs({
  options: {
    trials: { type: 'string', default: '12' },
    'drift-trials': { type: 'string', default: '20' },
    cold: { type: 'string', default: '10' },
    'no-readme': { type: 'boolean', default: false }
  }
});
const TRIALS = Math.max(1, Math.min(100, Number(opts.trials)));
const DRIFT_TRIALS = Math.max(1, Math.min(200, Number(opts['drift-trials'])));
const COLD_TRIALS = Math.max(0, Math.min(50, Number(opts.cold)));

const log = message =>
  process.stderr.write(
    `[${new Date().toISOString().slice(11, 19)}] ${message}\n`
  );

// ------------------------------------------------------------ loopback only

function netnsAvailable() {
  const probe = spawnSync('unshare', ['--net', '--', 'true'], {
    timeout: 10_000
  });
  return probe.status === 0;
}

if (!process.env[NETNS_FLAG] && netnsAvailable()) {
  const wrapper = 'ip link set lo up 2>/dev/null; exec "$@"';
  const run = spawnSync(
    'unshare',
    [
      '--net',
      '--',
      'sh',
      '-c',
      wrapper,
      'sh',
      process.execPath,
      SCRIPT,
      ...process.argv.slice(2)
    ],
    {
      stdio: 'inherit',
      env: { ...process.env, [NETNS_FLAG]: '1' },
      timeout: RUN_TIMEOUT_MS + 120_000
    }
  );
  process.exit(run.status ?? 124);
}
const NETNS = Boolean(process.env[NETNS_FLAG]);

// ------------------------------------------------------------------ helpers

/** Median, p95 (nearest rank), min, max; a timeout counts as +Infinity. */
function summary(values) {
  const ordered = [...values].sort((a, b) => a - b);
  const n = ordered.length;
  if (!n) {
    return null;
  }
  const at = q => ordered[Math.max(0, Math.ceil((q * n) / 100) - 1)];
  const median =
    n % 2 ? ordered[(n - 1) / 2] : (ordered[n / 2 - 1] + ordered[n / 2]) / 2;
  return { median, p95: at(95), min: ordered[0], max: ordered[n - 1], n };
}

const fmt = v =>
  v === null || v === undefined
    ? '—'
    : Number.isFinite(v)
      ? `${Math.round(v)}`
      : 'timeout';

function loadavg() {
  return os.loadavg().map(v => Math.round(v * 100) / 100);
}

function uptime() {
  const r = spawnSync('uptime', [], { encoding: 'utf8', timeout: 5_000 });
  return (r.stdout || '').trim();
}

/** Run a command (argv), resolve {code, ms, exitAt, stderr}; `exitAt` is Date.now() at exit. */
function runCommand(argv, timeoutMs) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(argv[0], argv.slice(1), {
      stdio: ['ignore', 'ignore', 'pipe']
    });
    let stderr = '';
    child.stderr.on('data', chunk => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', error => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('exit', (code, signal) => {
      const exitAt = Date.now();
      clearTimeout(timer);
      resolve({ code, signal, exitAt, ms: exitAt - started, stderr });
    });
  });
}

const PIP = ['-m', 'pip', '--disable-pip-version-check', '--no-input'];

/** The distributions of an interpreter's environment, as sorted "name==version" lines. */
function distributions(python) {
  const code =
    'import importlib.metadata as m\n' +
    'print("\\n".join(sorted(f"{d.metadata[\'Name\']}=={d.version}" for d in m.distributions())))';
  const r = spawnSync(python, ['-c', code], {
    encoding: 'utf8',
    timeout: 60_000
  });
  if (r.status !== 0) {
    throw new Error(`${python}: could not list distributions: ${r.stderr}`);
  }
  return r.stdout.trim().split('\n');
}

/** Names, sizes and mtimes of the workspace's files: to check nothing wrote there. */
function treeStamp(root) {
  const out = [];
  const walk = dir => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        walk(full);
      } else {
        const st = statSync(full);
        out.push(`${path.relative(root, full)}\t${st.size}\t${st.mtimeMs}`);
      }
    }
  };
  walk(root);
  return out.sort().join('\n');
}

async function api(lab, method, route, body) {
  const response = await fetch(`${lab.baseUrl}${route}`, {
    method,
    headers: {
      Authorization: `token ${lab.token}`,
      'Content-Type': 'application/json'
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(PAGE_TIMEOUT_MS)
  });
  const text = await response.text();
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    value = text;
  }
  if (!response.ok) {
    throw new Error(
      `${method} ${route}: ${response.status} ${text.slice(0, 500)}`
    );
  }
  return value;
}

async function waitFor(predicate, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await predicate();
    if (value) {
      return value;
    }
    await new Promise(resolve => setTimeout(resolve, 200));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Take a snapshot through the API, as the baseline; resolve the finished job. */
async function takeBaseline(lab) {
  const started = Date.now();
  let job = await api(lab, 'POST', 'westtek/api/snapshots', {
    note: 'bench ui baseline',
    baseline: true
  });
  job = await waitFor(
    async () => {
      const j = await api(lab, 'GET', `westtek/api/jobs/${job.id}`);
      return j.state === 'succeeded' || j.state === 'failed' ? j : null;
    },
    JOB_TIMEOUT_MS,
    'the baseline snapshot job'
  );
  if (job.state !== 'succeeded') {
    throw new Error(`baseline snapshot failed: ${job.error}`);
  }
  const snapshotMs = Date.now() - started;
  await waitFor(
    async () => {
      const drift = await api(lab, 'GET', 'westtek/api/drift');
      return drift.watching && drift.status === 'STABLE';
    },
    120_000,
    'the watcher (watching, STABLE)'
  );
  return {
    snapshot_ms: snapshotMs,
    watching_ms: Date.now() - started,
    id: job.result?.id
  };
}

const ENV_PATH = '/westtek/api/environment';

/** Package count of the environment view, from the API. */
async function packageCount(lab) {
  const started = Date.now();
  const view = await api(lab, 'GET', 'westtek/api/environment');
  const count = view.interpreters.reduce((n, i) => n + i.packages.length, 0);
  return { count, ms: Date.now() - started };
}

// --------------------------------------------------------- the measurements

const TABLE_ROWS = `${SIDEBAR} [data-testid=westtek-package-table] tbody tr`;

/**
 * One Environment-panel trial: a fresh context (no HTTP cache) loads JupyterLab
 * in a new named workspace (default layout: side bar closed), then clicks the
 * West Tek tab either as soon as it shows (`eager`) or once the extension's
 * prefetch of the environment has answered (`settled`). In the page: the
 * pointerdown's timestamp → all `expect` rows in the table's DOM (`dom`) →
 * the next animation frame (`shown`, the number reported).
 */
async function environmentTrial(
  browser,
  lab,
  { policy, expect, name, exact = true }
) {
  const context = await newLoopbackContext(browser);
  context.setDefaultTimeout(PAGE_TIMEOUT_MS);
  try {
    const page = await context.newPage();
    const requests = [];
    page.on('requestfinished', request => {
      if (new URL(request.url()).pathname === ENV_PATH) {
        const t = request.timing();
        requests.push({
          started: Math.round(t.startTime),
          server_ms: Math.round(t.responseStart - t.requestStart),
          total_ms: Math.round(t.responseEnd)
        });
      }
    });
    const prefetched = page.waitForResponse(
      r => new URL(r.url()).pathname === ENV_PATH,
      {
        timeout: PAGE_TIMEOUT_MS
      }
    );
    prefetched.catch(() => {});
    const loadStarted = Date.now();
    await page.goto(`${lab.baseUrl}lab/workspaces/${name}?token=${lab.token}`);
    const tab = page.locator(SIDEBAR_TAB);
    await tab.waitFor({ state: 'visible' });
    const tabVisibleMs = Date.now() - loadStarted;
    if (await page.locator(SIDEBAR).isVisible()) {
      throw new Error(
        'the side bar is open before the click (restored layout?)'
      );
    }
    let prefetchDone = false;
    if (policy === 'settled') {
      await (await prefetched).finished();
      await page.waitForTimeout(250); // the model's update after the answer
      prefetchDone = true;
    } else {
      prefetchDone = requests.length > 0;
    }
    await page.evaluate(
      ({ tabSelector, rowSelector, expect: wanted }) => {
        const probe = { down: null, dom: null, frame: null, rows: 0 };
        globalThis.westtekProbe = probe;
        const tabNode = document.querySelector(tabSelector);
        const check = () => {
          if (probe.down === null || probe.dom !== null) {
            return;
          }
          const rows = document.querySelectorAll(rowSelector).length;
          if (rows >= wanted) {
            probe.dom = performance.now();
            probe.rows = rows;
            observer.disconnect();
            requestAnimationFrame(() => {
              probe.frame = performance.now();
            });
          }
        };
        const observer = new MutationObserver(check);
        observer.observe(document.body, { childList: true, subtree: true });
        document.addEventListener(
          'pointerdown',
          event => {
            if (probe.down === null && tabNode.contains(event.target)) {
              probe.down = event.timeStamp;
              check();
            }
          },
          true
        );
      },
      { tabSelector: SIDEBAR_TAB, rowSelector: TABLE_ROWS, expect }
    );
    const clickAt = Date.now();
    await tab.click();
    await page.waitForFunction(
      () => globalThis.westtekProbe.frame !== null,
      null,
      {
        timeout: PAGE_TIMEOUT_MS,
        polling: 'raf'
      }
    );
    const outerMs = Date.now() - clickAt;
    const probe = await page.evaluate(() => ({ ...globalThis.westtekProbe }));
    const rows = await page.locator(TABLE_ROWS).count();
    if (exact && rows !== expect) {
      throw new Error(`the table shows ${rows} packages, the API ${expect}`);
    }
    return {
      policy,
      shown_ms: probe.frame - probe.down,
      dom_ms: probe.dom - probe.down,
      outer_ms: outerMs,
      rows,
      tab_visible_ms: tabVisibleMs,
      prefetch_answered_before_click: prefetchDone,
      environment_requests: requests
    };
  } finally {
    await context.close();
  }
}

async function environmentPhase(
  browser,
  lab,
  { policies, trials, expect, tag }
) {
  const out = Object.fromEntries(policies.map(p => [p, []]));
  for (let i = 0; i < trials; i++) {
    for (const policy of i % 2 ? [...policies].reverse() : policies) {
      const trial = await environmentTrial(browser, lab, {
        policy,
        expect,
        name: `bench-${tag}-${policy}-${i}`
      });
      out[policy].push(trial);
      log(
        `  ${tag} ${policy} #${i + 1}: shown ${trial.shown_ms.toFixed(0)} ms (page → tab ${trial.tab_visible_ms} ms)`
      );
    }
  }
  return out;
}

/**
 * Drift trials: the Drift tab open on one page; per trial an in-page probe
 * waits for a new `westtek-event` of the package (event id above any shown,
 * not a resolved entry, naming the version pip installs), then pip installs
 * the other version into env2; latency = the probe's Date.now() at the next
 * animation frame − Date.now() at pip's exit (same clock, one machine).
 * WebSocket frames are stamped as Playwright sees them, for the breakdown.
 */
async function driftPhase(browser, lab, wheels, trials) {
  const context = await newLoopbackContext(browser);
  context.setDefaultTimeout(PAGE_TIMEOUT_MS);
  const frames = [];
  try {
    const page = await context.newPage();
    page.on('websocket', ws => {
      if (ws.url().includes('westtek/api/drift/stream')) {
        ws.on('framereceived', ({ payload }) =>
          frames.push({ at: Date.now(), payload: String(payload) })
        );
      }
    });
    await page.goto(
      `${lab.baseUrl}lab/workspaces/bench-drift?token=${lab.token}`
    );
    const tab = page.locator(SIDEBAR_TAB);
    await tab.waitFor({ state: 'visible' });
    await tab.click();
    const panel = page.locator(SIDEBAR);
    await panel.waitFor({ state: 'visible' });
    await panel.getByTestId('westtek-tab-drift').click();
    await panel.getByTestId('westtek-drift').waitFor();
    await panel
      .locator('[data-testid=westtek-drift-status][data-status=STABLE]')
      .waitFor();
    await panel
      .locator('[data-testid=westtek-stream][data-stream=live]')
      .waitFor();
    await page.evaluate(() => {
      globalThis.westtekSamePage = true;
    });

    const results = [];
    for (let i = 0; i < trials; i++) {
      const version = i % 2 ? NEW : OLD;
      await page.evaluate(
        ({ name, version: wanted }) => {
          const selector = `#westtek-sidebar [data-testid=westtek-event][data-name="${name}"]`;
          const ids = [...document.querySelectorAll(selector)].map(
            e => Number(e.dataset.eventId) || 0
          );
          const probe = {
            before: Math.max(0, ...ids),
            dom: null,
            frame: null,
            id: null
          };
          globalThis.westtekDriftProbe = probe;
          const check = () => {
            if (probe.dom !== null) {
              return;
            }
            for (const node of document.querySelectorAll(selector)) {
              const id = Number(node.dataset.eventId) || 0;
              if (
                id > probe.before &&
                !node.classList.contains('jp-mod-resolved') &&
                (node.textContent || '').includes(wanted)
              ) {
                probe.dom = Date.now();
                probe.id = id;
                observer.disconnect();
                requestAnimationFrame(() => {
                  probe.frame = Date.now();
                });
                return;
              }
            }
          };
          const observer = new MutationObserver(check);
          observer.observe(document.body, {
            childList: true,
            subtree: true,
            attributes: true
          });
          check();
        },
        { name: PACKAGE_NAME, version }
      );
      const framesBefore = frames.length;
      const pip = await runCommand(
        [
          ENV2_PY,
          ...PIP,
          'install',
          '--quiet',
          '--no-index',
          '--no-deps',
          '--no-cache-dir',
          path.join(wheels, `${PACKAGE_NAME}-${version}-py3-none-any.whl`)
        ],
        PIP_TIMEOUT_MS
      );
      if (pip.code !== 0) {
        throw new Error(
          `pip install ${PACKAGE_NAME}==${version} failed: ${pip.stderr}`
        );
      }
      let timedOut = false;
      try {
        await page.waitForFunction(
          () => globalThis.westtekDriftProbe.frame !== null,
          null,
          {
            timeout: Math.max(
              1,
              pip.exitAt + DRIFT_TRIAL_TIMEOUT_MS - Date.now()
            ),
            polling: 'raf'
          }
        );
      } catch {
        timedOut = true;
      }
      const probe = await page.evaluate(() => ({
        ...globalThis.westtekDriftProbe
      }));
      // The first event message on the socket since pip started naming this version.
      let wsAt = null;
      let eventTime = null;
      let eventId = null;
      for (const f of frames.slice(framesBefore)) {
        let message;
        try {
          message = JSON.parse(f.payload);
        } catch {
          continue;
        }
        if (
          message.type === 'event' &&
          (message.event?.changes || []).some(
            c => c.name === PACKAGE_NAME && c.after === version
          )
        ) {
          wsAt = f.at;
          eventTime = message.event.time * 1000;
          eventId = message.event.id;
          break;
        }
      }
      const trial = {
        version,
        pip_ms: pip.ms,
        latency_ms: timedOut ? null : probe.frame - pip.exitAt,
        dom_ms: probe.dom === null ? null : probe.dom - pip.exitAt,
        event_logged_ms: eventTime === null ? null : eventTime - pip.exitAt,
        ws_frame_ms: wsAt === null ? null : wsAt - pip.exitAt,
        event_id: eventId,
        dom_event_id: probe.id,
        timed_out: timedOut
      };
      results.push(trial);
      log(
        `  drift #${i + 1} (${version}): ${timedOut ? 'TIMEOUT' : `${trial.latency_ms} ms`} ` +
          `(event logged ${fmt(trial.event_logged_ms)} ms, on the socket ${fmt(trial.ws_frame_ms)} ms; pip ${pip.ms} ms)`
      );
      await page.waitForTimeout(SETTLE_MS);
    }
    const samePage = await page.evaluate(
      () => globalThis.westtekSamePage === true
    );
    return { trials: results, same_page: samePage };
  } finally {
    await context.close();
  }
}

// ----------------------------------------------------------------- the run

function gitFacts() {
  const git = (...a) =>
    spawnSync('git', ['-C', REPO, ...a], { encoding: 'utf8' }).stdout.trim();
  return {
    commit: git('rev-parse', '--short', 'HEAD'),
    dirty_files: git('status', '--porcelain').split('\n').filter(Boolean).length
  };
}

function labextensionBuilt() {
  const dir = path.join(REPO, 'westtek_server_ext', 'labextension', 'static');
  try {
    const mtimes = readdirSync(dir).map(
      f => statSync(path.join(dir, f)).mtimeMs
    );
    return new Date(Math.max(...mtimes)).toISOString();
  } catch {
    return null;
  }
}

function chromiumVersion(browser) {
  try {
    return browser.version();
  } catch {
    return null;
  }
}

const labArgs = (python, store, id) => [
  `--WestTekExtension.pythons=${python}`,
  `--WestTekExtension.workspace=${WORKSPACE}`,
  `--WestTekExtension.store=${store}`,
  `--WestTekExtension.environment_id=${id}`,
  `--WestTekExtension.debounce_ms=${DEBOUNCE_MS}`
];

function pipInstalled(python) {
  const r = spawnSync(python, [...PIP, 'show', '--quiet', PACKAGE_NAME], {
    timeout: 60_000
  });
  return r.status === 0;
}

function pipUninstall(python) {
  const r = spawnSync(
    python,
    [...PIP, 'uninstall', '--yes', '--quiet', PACKAGE_NAME],
    {
      encoding: 'utf8',
      timeout: PIP_TIMEOUT_MS
    }
  );
  if (r.status !== 0) {
    throw new Error(
      `pip uninstall ${PACKAGE_NAME} from env2 failed: ${r.stderr}`
    );
  }
}

async function main() {
  for (const [what, file] of [
    ['the env', ENV_PY],
    ['env2', ENV2_PY],
    ['the workspace', WORKSPACE]
  ]) {
    if (!existsSync(file)) {
      throw new Error(
        `${what} of the snapshot benchmark is missing (${file}): build it with ` +
          '`.venv/bin/python bench/snapshot_vs_restic.py --build-only` (needs PyPI)'
      );
    }
  }
  const started = new Date();
  const t0 = Date.now();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'westtek-bench-ui-'));
  // The servers' caches (stat cache) stay in the run's temp directory too.
  process.env.XDG_CACHE_HOME = path.join(tmp, 'cache');
  const labs = new Set();
  let browser;
  let env2Touched = false;
  const cleanup = async () => {
    for (const lab of labs) {
      await lab.stop().catch(() => {});
    }
    labs.clear();
    await browser?.close().catch(() => {});
    browser = undefined;
    if (env2Touched && pipInstalled(ENV2_PY)) {
      pipUninstall(ENV2_PY);
    }
    rmSync(tmp, { recursive: true, force: true });
  };
  const watchdog = setTimeout(async () => {
    log(`the run went over ${RUN_TIMEOUT_MS / 60_000} min: stopping`);
    await cleanup().catch(() => {});
    process.exit(124);
  }, RUN_TIMEOUT_MS);
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, async () => {
      log(`${sig}: cleaning up`);
      await cleanup().catch(() => {});
      process.exit(130);
    });
  }

  const start = async (python, id) => {
    const lab = await startLab({
      root: WORKSPACE,
      args: labArgs(python, path.join(tmp, `store-${id}`), id)
    });
    labs.add(lab);
    return lab;
  };
  const stop = async lab => {
    labs.delete(lab);
    await lab.stop();
  };

  const load = { start: loadavg(), uptime_start: uptime() };
  const workspaceBefore = treeStamp(WORKSPACE);
  if (pipInstalled(ENV2_PY)) {
    log(
      `${PACKAGE_NAME} is in env2 (an interrupted run?): uninstalling it first`
    );
    pipUninstall(ENV2_PY);
  }
  const env2Before = distributions(ENV2_PY);
  const result = {
    started: started.toISOString(),
    targets_ms: {
      environment_panel: TARGET_ENV_MS,
      drift_event: TARGET_DRIFT_MS
    },
    trials: { environment: TRIALS, drift: DRIFT_TRIALS, cold: COLD_TRIALS },
    phases: {}
  };
  try {
    browser = await launchBrowser();
    const wheelsDir = path.join(tmp, 'wtdemo');
    await makeThrowawayEnv(wheelsDir, [OLD, NEW], OLD);
    const wheels = path.join(wheelsDir, 'wheels');

    // -- 1. Environment panel on the env: no baseline, then with one.
    log(`env server (pythons=${ENV_PY})`);
    let t = Date.now();
    const labA = await start(ENV_PY, 'bench-ui-env');
    const serverStartMs = Date.now() - t;
    // A discarded warm-up page (browser caches, server's first capture), then the count.
    await environmentTrial(browser, labA, {
      policy: 'settled',
      expect: 1,
      name: 'bench-warmup',
      exact: false
    });
    const counted = await packageCount(labA);
    const expect = counted.count;
    log(`env: ${expect} packages (GET environment ${counted.ms} ms)`);
    const loadA = loadavg();
    const noBaseline = await environmentPhase(browser, labA, {
      policies: ['eager', 'settled'],
      trials: TRIALS,
      expect,
      tag: 'env'
    });
    log('baseline snapshot of the env through the API');
    const baselineA = await takeBaseline(labA);
    log(
      `baseline ${baselineA.snapshot_ms} ms, watching after ${baselineA.watching_ms} ms`
    );
    const watched = await environmentPhase(browser, labA, {
      policies: ['eager'],
      trials: TRIALS,
      expect,
      tag: 'env-watched'
    });
    result.phases.environment = {
      python: ENV_PY,
      packages: expect,
      server_start_ms: serverStartMs,
      api_environment_ms: counted.ms,
      baseline: baselineA,
      load_before: loadA,
      load_after: loadavg(),
      eager: noBaseline.eager,
      settled: noBaseline.settled,
      watched_eager: watched.eager
    };
    await stop(labA);

    // -- 2. Drift events on env2.
    log(`drift server (pythons=${ENV2_PY})`);
    const labB = await start(ENV2_PY, 'bench-ui-env2');
    const baselineB = await takeBaseline(labB);
    log(
      `baseline ${baselineB.snapshot_ms} ms, watching after ${baselineB.watching_ms} ms`
    );
    const loadB = loadavg();
    env2Touched = true;
    const drift = await driftPhase(browser, labB, wheels, DRIFT_TRIALS);
    result.phases.drift = {
      python: ENV2_PY,
      baseline: baselineB,
      load_before: loadB,
      load_after: loadavg(),
      ...drift
    };
    await stop(labB);
    if (pipInstalled(ENV2_PY)) {
      pipUninstall(ENV2_PY);
    }

    // -- 3. Cold: a fresh server (fresh data dir: no cached notebook analyses)
    //    and the first page after it answers, clicked as soon as the tab shows.
    const cold = [];
    const loadC = loadavg();
    for (let i = 0; i < COLD_TRIALS; i++) {
      t = Date.now();
      const lab = await start(ENV_PY, 'bench-ui-cold');
      const startMs = Date.now() - t;
      try {
        const trial = await environmentTrial(browser, lab, {
          policy: 'eager',
          expect,
          name: `bench-cold-${i}`
        });
        cold.push({ ...trial, server_start_ms: startMs });
        log(
          `  cold #${i + 1}: shown ${trial.shown_ms.toFixed(0)} ms (server ${startMs} ms, page → tab ${trial.tab_visible_ms} ms)`
        );
      } finally {
        await stop(lab);
      }
    }
    result.phases.cold = {
      load_before: loadC,
      load_after: loadavg(),
      trials: cold
    };
    result.browser = chromiumVersion(browser);
  } finally {
    clearTimeout(watchdog);
    await cleanup();
  }
  const env2After = distributions(ENV2_PY);
  const workspaceAfter = treeStamp(WORKSPACE);
  result.left_as_found = {
    env2: env2After.join('\n') === env2Before.join('\n'),
    workspace: workspaceAfter === workspaceBefore
  };
  if (!result.left_as_found.env2 || !result.left_as_found.workspace) {
    log(`WARNING: not left as found: ${JSON.stringify(result.left_as_found)}`);
  }
  load.end = loadavg();
  load.uptime_end = uptime();
  result.load = load;
  result.seconds = Math.round((Date.now() - t0) / 1000);
  result.machine = {
    cores: os.cpus().length,
    model: os.cpus()[0]?.model,
    mem_gib: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: os.release(),
    node: process.version,
    python: PYTHON,
    network: NETNS
      ? 'none (unshare --net, loopback only)'
      : 'not isolated (browser contexts limited to 127.0.0.1)'
  };
  result.git = gitFacts();
  result.labextension_built = labextensionBuilt();
  result.summary = summarise(result);
  return result;
}

function summarise(result) {
  const pick = (trials, key) => trials.map(t => t[key]);
  const env = result.phases.environment;
  const drift = result.phases.drift;
  const s = {
    cold: summary(pick(result.phases.cold.trials, 'shown_ms')),
    eager: summary(pick(env.eager, 'shown_ms')),
    settled: summary(pick(env.settled, 'shown_ms')),
    watched_eager: summary(pick(env.watched_eager, 'shown_ms')),
    drift: summary(
      drift.trials.map(t => (t.timed_out ? Infinity : t.latency_ms))
    ),
    drift_timeouts: drift.trials.filter(t => t.timed_out).length,
    detail: {
      outer_ms: {
        eager: summary(pick(env.eager, 'outer_ms')),
        settled: summary(pick(env.settled, 'outer_ms')),
        watched_eager: summary(pick(env.watched_eager, 'outer_ms')),
        cold: summary(pick(result.phases.cold.trials, 'outer_ms'))
      },
      tab_visible_ms: summary(
        [...env.eager, ...env.settled, ...env.watched_eager].map(
          t => t.tab_visible_ms
        )
      ),
      cold_tab_visible_ms: summary(
        pick(result.phases.cold.trials, 'tab_visible_ms')
      ),
      cold_server_start_ms: summary(
        pick(result.phases.cold.trials, 'server_start_ms')
      ),
      environment_server_ms: {
        no_baseline: summary(
          [...env.eager, ...env.settled].flatMap(t =>
            t.environment_requests.map(r => r.server_ms)
          )
        ),
        watched: summary(
          env.watched_eager.flatMap(t =>
            t.environment_requests.map(r => r.server_ms)
          )
        ),
        cold_first: summary(
          result.phases.cold.trials
            .filter(t => t.environment_requests.length)
            .map(t => t.environment_requests[0].server_ms)
        )
      },
      eager_prefetch_answered_before_click: env.eager.filter(
        t => t.prefetch_answered_before_click
      ).length,
      drift_event_logged_ms: summary(
        drift.trials
          .filter(t => t.event_logged_ms !== null)
          .map(t => t.event_logged_ms)
      ),
      drift_ws_frame_ms: summary(
        drift.trials.filter(t => t.ws_frame_ms !== null).map(t => t.ws_frame_ms)
      ),
      drift_dom_after_ws_ms: summary(
        drift.trials
          .filter(t => t.ws_frame_ms !== null && !t.timed_out)
          .map(t => t.latency_ms - t.ws_frame_ms)
      ),
      pip_ms: summary(pick(drift.trials, 'pip_ms'))
    }
  };
  return s;
}

function verdict(stat, target) {
  if (!stat) {
    return '—';
  }
  if (stat.p95 <= target) {
    return `met (p95 ≤ ${target / 1000} s)`;
  }
  const over = Number.isFinite(stat.p95)
    ? `by ${Math.round(stat.p95 - target)} ms`
    : '(timeouts)';
  return `**missed** ${over} (p95 ≤ ${target / 1000} s wanted)`;
}

function table(result) {
  const s = result.summary;
  const env = result.phases.environment;
  const d = s.detail;
  const row = (label, stat, target) =>
    `| ${label} | ${stat ? stat.n : 0} | ${fmt(stat?.median)} | ${fmt(stat?.p95)} | ${fmt(stat?.max)} | ${verdict(stat, target)} |`;
  const ms = st => (st ? `${fmt(st.median)} ms (max ${fmt(st.max)})` : '—');
  const load = (a, b) => `${a[0]}→${b[0]}`;
  const lines = [
    `Latest run: ${result.started.replace(/\.\d+Z$/, '+00:00')}, ${result.seconds} s in all. ` +
      `Times in ms: median, p95 (nearest rank), max over n trials.`,
    '',
    '| measured | n | median | p95 | max | verdict |',
    '|---|---|---|---|---|---|',
    row(
      `1a. Environment panel, **cold**: first page after a fresh server start, click → ${env.packages} packages shown`,
      s.cold,
      TARGET_ENV_MS
    ),
    row(
      '1b. Environment panel, fresh page, click as soon as the tab shows',
      s.eager,
      TARGET_ENV_MS
    ),
    row(
      '1c. Environment panel, fresh page, click after the prefetch answered',
      s.settled,
      TARGET_ENV_MS
    ),
    row(
      '1d. as 1b, with a baseline and the drift watcher running',
      s.watched_eager,
      TARGET_ENV_MS
    ),
    row(
      `2. drift event in the open Drift tab, pip exit → shown (${s.drift_timeouts} timeouts over ${DRIFT_TRIAL_TIMEOUT_MS / 1000} s)`,
      s.drift,
      TARGET_DRIFT_MS
    ),
    '',
    `Rows 1: pointerdown on the West Tek tab → the next animation frame after all ${env.packages} package rows are in the DOM ` +
      `(env: \`bench/.cache/tree/env\`, 715 MB). As Playwright sees it (click() → waitForFunction), medians: ` +
      `cold ${fmt(d.outer_ms.cold?.median)}, 1b ${fmt(d.outer_ms.eager?.median)}, 1c ${fmt(d.outer_ms.settled?.median)}, 1d ${fmt(d.outer_ms.watched_eager?.median)} ms. ` +
      `Page load → tab visible: ${ms(d.tab_visible_ms)} (cold: ${ms(d.cold_tab_visible_ms)}); a cold server answered \`/api/status\` after ${ms(d.cold_server_start_ms)}. ` +
      `\`GET environment\` in the server (request → first byte): no baseline ${ms(d.environment_server_ms.no_baseline)}, ` +
      `watcher running ${ms(d.environment_server_ms.watched)}, cold first ${ms(d.environment_server_ms.cold_first)}. ` +
      `In 1b the prefetch had answered before the click in ${d.eager_prefetch_answered_before_click} of ${s.eager?.n} trials.`,
    '',
    `Row 2: \`pip install --no-index\` of a tiny wheel (\`${PACKAGE_NAME}\` ${OLD}/${NEW} alternately) into \`bench/.cache/tree/env2\` ` +
      `(the snapshot benchmark's copy of the env; uninstalled at the end — env2 left as found: ${result.left_as_found.env2 ? 'yes' : '**no**'}), ` +
      `server debounce ${DEBOUNCE_MS} ms, baseline taken through the API (${(result.phases.drift.baseline.snapshot_ms / 1000).toFixed(1)} s). ` +
      `From pip's exit, medians: event logged by the server ${ms(d.drift_event_logged_ms)}, frame on the page's WebSocket ${ms(d.drift_ws_frame_ms)}; ` +
      `socket → shown ${ms(d.drift_dom_after_ws_ms)}; pip itself ${ms(d.pip_ms)}. Same page throughout (no reload): ${result.phases.drift.same_page ? 'yes' : '**no**'}.`,
    '',
    `Load average (1 min) during the phases: environment ${load(env.load_before, env.load_after)}, ` +
      `drift ${load(result.phases.drift.load_before, result.phases.drift.load_after)}, cold ${load(result.phases.cold.load_before, result.phases.cold.load_after)} ` +
      `(this run's own server and Chromium included); \`uptime\` at the start: \`${result.load.uptime_start}\`.`,
    '',
    `Machine: ${result.machine.cores} cores (${result.machine.model}), ${result.machine.mem_gib} GiB, kernel ${result.machine.kernel}; ` +
      `Chromium ${result.browser} (headless, Debian's), Node ${result.machine.node}; westtek git ${result.git.commit}` +
      `${result.git.dirty_files ? ` (+${result.git.dirty_files} uncommitted files in the tree)` : ''}, labextension built ${result.labextension_built}. ` +
      `Network: ${result.machine.network}. Workspace left as found: ${result.left_as_found.workspace ? 'yes' : '**no**'}.`
  ];
  return lines.join('\n');
}

function writeReadme(block) {
  const text = readFileSync(README, 'utf8');
  const start = text.indexOf(MARK_START);
  const end = text.indexOf(MARK_END);
  const body = `${MARK_START}\n${block}\n${MARK_END}`;
  const next =
    start >= 0 && end > start
      ? text.slice(0, start) + body + text.slice(end + MARK_END.length)
      : `${text.trimEnd()}\n\n## ui\n\n${body}\n`;
  writeFileSync(README, next);
}

try {
  const result = await main();
  const block = table(result);
  process.stdout.write(`${block}\n`);
  if (!opts['no-readme']) {
    writeFileSync(RESULTS, `${JSON.stringify(result, null, 1)}\n`);
    writeReadme(block);
    log(
      `wrote ${path.relative(REPO, RESULTS)} and the ui table in ${path.relative(REPO, README)}`
    );
  }
  process.exit(0);
} catch (error) {
  log(`failed: ${error.stack || error}`);
  process.exit(1);
}
