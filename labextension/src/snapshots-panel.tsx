import { Button, Checkbox, TextField } from '@jupyter/react-components';
import { PageConfig } from '@jupyterlab/coreutils';
import { TranslationBundle } from '@jupyterlab/translation';
import { HTMLSelect } from '@jupyterlab/ui-components';
import React, { useRef, useState } from 'react';

import { IExportedFile } from './api-client';
import { JobList, LoadFrame, NoticeBar, Section, useModel } from './components';
import { askRestore } from './dialogs';
import { formatBytes, formatTime, shortId } from './format';
import { parseLabels, savings, SnapshotsModel } from './snapshots-model';
import { ExportFormat, ISnapshotList, ISnapshotSummary } from './tokens';

/**
 * Formats offered for download, with their names.
 */
const EXPORT_FORMATS: readonly [ExportFormat, string][] = [
  ['requirements', 'requirements.txt'],
  ['pylock', 'pylock.toml'],
  ['conda', 'conda environment.yml']
];

/**
 * Save a fetched file through the browser's download.
 */
export function saveFile(file: IExportedFile): void {
  const url = URL.createObjectURL(file.blob);
  const anchor = document.createElement('a');
  anchor.href = url;
  anchor.download = file.filename;
  anchor.style.display = 'none';
  document.body.appendChild(anchor);
  anchor.click();
  anchor.remove();
  // Give the browser time to start the download before freeing the blob.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * The Snapshots panel: take a snapshot (note, labels) with live progress, the
 * list with sizes and deduplication savings, and per snapshot its details,
 * verify, restore, make baseline and export; tick two to compare them.
 */
export function SnapshotsPanel(props: {
  model: SnapshotsModel;
  openDiff: (a: string, b: string) => void;
  openSnapshot: (id: string) => void;
  trans: TranslationBundle;
}): JSX.Element {
  const model = useModel(props.model);
  const { trans } = props;
  return (
    <div className="jp-WestTek-panel" data-testid="westtek-snapshots">
      <CreateForm model={model} trans={trans} />
      <JobList jobs={model.jobs} trans={trans} />
      <NoticeBar
        notice={model.notice}
        onDismiss={() => model.setNotice(null)}
        trans={trans}
      />
      <LoadFrame
        state={model.state}
        loadingText={trans.__('Loading snapshots…')}
        onRetry={() => void model.refresh()}
        trans={trans}
      >
        {list => (
          <SnapshotList
            list={list}
            model={model}
            openDiff={props.openDiff}
            openSnapshot={props.openSnapshot}
            trans={trans}
          />
        )}
      </LoadFrame>
    </div>
  );
}

/**
 * Note and labels of a new snapshot, and the button taking it.
 */
function CreateForm(props: {
  model: SnapshotsModel;
  trans: TranslationBundle;
}): JSX.Element {
  const { model, trans } = props;
  const note = useRef<HTMLInputElement>(null);
  const labels = useRef<HTMLInputElement>(null);
  const [labelError, setLabelError] = useState<string | null>(null);
  const create = () => {
    let parsed: { [key: string]: string };
    try {
      parsed = parseLabels(labels.current?.value ?? '');
    } catch (error) {
      setLabelError((error as Error).message);
      return;
    }
    setLabelError(null);
    const text = (note.current?.value ?? '').trim();
    if (note.current) {
      note.current.value = '';
    }
    if (labels.current) {
      labels.current.value = '';
    }
    void model.create(text, parsed);
  };
  return (
    <Section title={trans.__('Take a snapshot')} testId="westtek-create">
      <form
        className="jp-WestTek-form"
        onSubmit={event => {
          event.preventDefault();
          create();
        }}
      >
        <TextField
          ref={note as any}
          className="jp-WestTek-field"
          data-testid="westtek-snapshot-note"
          placeholder={trans.__('Note: what is this state for?')}
          aria-label={trans.__('Snapshot note')}
        >
          {trans.__('Note')}
        </TextField>
        <TextField
          ref={labels as any}
          className="jp-WestTek-field"
          data-testid="westtek-snapshot-labels"
          placeholder={trans.__('project=alpha, stage=raw')}
          aria-label={trans.__('Snapshot labels')}
        >
          {trans.__('Labels')}
        </TextField>
        {labelError && (
          <div className="jp-WestTek-fieldError" role="alert">
            {labelError}
          </div>
        )}
        <Button
          appearance="accent"
          data-testid="westtek-snapshot-create"
          title={trans.__(
            'Capture packages, kernels, configuration, notebooks and data'
          )}
          onClick={create}
        >
          {trans.__('Take snapshot')}
        </Button>
      </form>
    </Section>
  );
}

/**
 * The store's totals, the diff bar and one card per snapshot.
 */
function SnapshotList(props: {
  list: ISnapshotList;
  model: SnapshotsModel;
  openDiff: (a: string, b: string) => void;
  openSnapshot: (id: string) => void;
  trans: TranslationBundle;
}): JSX.Element {
  const { list, model, trans } = props;
  const described = list.snapshots.reduce((sum, s) => sum + s.size_bytes, 0);
  const stored = list.store_bytes;
  const selected = model.selected;
  const compare = () => {
    // Older first, so the diff reads "from → to".
    const order = new Map(list.snapshots.map((s, i) => [s.id, i]));
    const [a, b] = [...selected].sort(
      (x, y) => (order.get(y) ?? 0) - (order.get(x) ?? 0)
    );
    props.openDiff(a, b);
  };
  return (
    <Section
      title={trans.__('Snapshots')}
      count={list.snapshots.length}
      testId="westtek-snapshot-section"
    >
      <div className="jp-WestTek-muted" data-testid="westtek-store-totals">
        {stored !== null && stored !== undefined
          ? trans.__(
              '%1 of snapshots stored in %2 (%3 saved by deduplication and compression)',
              formatBytes(described),
              formatBytes(stored),
              described > 0
                ? `${Math.max(0, (100 * (described - stored)) / described).toFixed(0)}%`
                : '0%'
            )
          : trans.__('%1 of snapshots', formatBytes(described))}
      </div>
      <div className="jp-WestTek-diffBar">
        <span className="jp-WestTek-muted">
          {selected.length === 2
            ? trans.__(
                'Compare %1 and %2',
                shortId(selected[0]),
                shortId(selected[1])
              )
            : trans.__('Tick two snapshots to compare them.')}
        </span>
        <Button
          data-testid="westtek-diff"
          disabled={selected.length !== 2}
          onClick={compare}
        >
          {trans.__('Compare')}
        </Button>
      </div>
      {list.snapshots.length ? (
        <ul className="jp-WestTek-cards" data-testid="westtek-snapshot-list">
          {list.snapshots.map(snapshot => (
            <SnapshotCard
              key={snapshot.id}
              snapshot={snapshot}
              model={model}
              openSnapshot={props.openSnapshot}
              trans={trans}
            />
          ))}
        </ul>
      ) : (
        <p className="jp-WestTek-empty">
          {trans.__(
            'No snapshots yet. Take one to be able to restore this environment later.'
          )}
        </p>
      )}
    </Section>
  );
}

/**
 * One snapshot: what it is, what it cost, and what can be done with it.
 */
function SnapshotCard(props: {
  snapshot: ISnapshotSummary;
  model: SnapshotsModel;
  openSnapshot: (id: string) => void;
  trans: TranslationBundle;
}): JSX.Element {
  const { snapshot, model, trans } = props;
  const [format, setFormat] = useState<ExportFormat>('requirements');
  const [busy, setBusy] = useState(false);
  const saved = savings(snapshot);
  const selected = model.selected.includes(snapshot.id);
  const verification = model.verification(snapshot.id);
  const labels = Object.entries(snapshot.labels ?? {});

  const download = async () => {
    setBusy(true);
    const file = await model.exportLock(snapshot.id, format);
    setBusy(false);
    if (file) {
      saveFile(file);
    }
  };
  const restore = async () => {
    const request = await askRestore(snapshot.id, trans);
    if (request) {
      await model.restore(snapshot.id, request);
    }
  };

  return (
    <li
      className={`jp-WestTek-card${selected ? ' jp-mod-selected' : ''}`}
      data-testid="westtek-snapshot"
      data-id={snapshot.id}
    >
      <div className="jp-WestTek-cardHead">
        <Checkbox
          checked={selected}
          data-testid="westtek-snapshot-select"
          aria-label={trans.__('Select %1 to compare', shortId(snapshot.id))}
          onChange={(event: any) => {
            // Also fired when `checked` is set from the model: idempotent.
            model.setSelected(snapshot.id, Boolean(event.target?.checked));
          }}
        />
        <code className="jp-WestTek-id" title={snapshot.id}>
          {shortId(snapshot.id)}
        </code>
        {snapshot.baseline && (
          <span
            className="jp-WestTek-tag jp-WestTek-mod-baseline"
            data-testid="westtek-baseline-tag"
          >
            {trans.__('baseline')}
          </span>
        )}
        <span className="jp-WestTek-muted jp-WestTek-cardTime">
          {formatTime(snapshot.timestamp)}
        </span>
      </div>
      {snapshot.notes && (
        <div className="jp-WestTek-note" data-testid="westtek-snapshot-notes">
          {snapshot.notes}
        </div>
      )}
      {labels.length > 0 && (
        <div className="jp-WestTek-labels">
          {labels.map(([key, value]) => (
            <span key={key} className="jp-WestTek-tag">
              {key}={value}
            </span>
          ))}
        </div>
      )}
      <dl className="jp-WestTek-cardFacts">
        <dt>{trans.__('By')}</dt>
        <dd data-testid="westtek-snapshot-owner">
          {snapshotOwner(snapshot) ?? '—'}
        </dd>
        <dt>{trans.__('Size')}</dt>
        <dd data-testid="westtek-snapshot-size">
          {formatBytes(snapshot.size_bytes)}
        </dd>
        <dt>{trans.__('New bytes')}</dt>
        <dd data-testid="westtek-snapshot-new-bytes">
          {formatBytes(snapshot.stored_bytes)}
        </dd>
        <dt>{trans.__('Saved')}</dt>
        <dd data-testid="westtek-snapshot-savings">
          {saved
            ? `${formatBytes(saved.bytes)} (${saved.percent.toFixed(0)}%)`
            : '—'}
        </dd>
        <dt>{trans.__('Contents')}</dt>
        <dd>
          {trans._n('%1 package', '%1 packages', snapshot.packages)}
          {' · '}
          {trans._n('%1 notebook', '%1 notebooks', snapshot.notebook_count)}
        </dd>
      </dl>
      <div className="jp-WestTek-actions">
        <Button
          minimal
          data-testid="westtek-snapshot-details"
          title={trans.__(
            'Everything this snapshot holds: packages, kernels, notebooks, configuration'
          )}
          onClick={() => props.openSnapshot(snapshot.id)}
        >
          {trans.__('Details')}
        </Button>
        <Button
          minimal
          data-testid="westtek-verify"
          title={trans.__('Check every stored byte of this snapshot')}
          disabled={verification?.state === 'running'}
          onClick={() => void model.verify(snapshot.id)}
        >
          {trans.__('Verify')}
        </Button>
        <Button
          minimal
          data-testid="westtek-restore"
          title={trans.__('Restore into a new directory')}
          onClick={() => void restore()}
        >
          {trans.__('Restore…')}
        </Button>
        {!snapshot.baseline && (
          <Button
            minimal
            data-testid="westtek-make-baseline"
            title={trans.__('Measure drift against this snapshot')}
            onClick={() => void model.setBaseline(snapshot.id)}
          >
            {trans.__('Make baseline')}
          </Button>
        )}
        {transferPackageUrl(snapshot.environment_id) && (
          <a
            className="jp-WestTek-link"
            data-testid="westtek-transfer-package"
            href={transferPackageUrl(snapshot.environment_id) ?? undefined}
            target="_blank"
            rel="noopener noreferrer"
            title={trans.__(
              'The hub panel’s transfer package of environment %1: its history, notebooks, checklist, and Take over once it is handed to you',
              snapshot.environment_id ?? ''
            )}
          >
            {trans.__('Transfer package')}
          </a>
        )}
      </div>
      <div className="jp-WestTek-export">
        <HTMLSelect
          className="jp-WestTek-exportFormat"
          data-testid="westtek-export-format"
          aria-label={trans.__('Lockfile format')}
          value={format}
          options={EXPORT_FORMATS.map(([value, label]) => ({ value, label }))}
          onChange={event => {
            const value = event.target.value;
            if (EXPORT_FORMATS.some(([f]) => f === value)) {
              setFormat(value as ExportFormat);
            }
          }}
        />
        <Button
          minimal
          data-testid="westtek-export"
          disabled={busy}
          title={trans.__('Download the lockfile')}
          onClick={() => void download()}
        >
          {trans.__('Download')}
        </Button>
      </div>
      {verification && (
        <VerificationLine verification={verification} trans={trans} />
      )}
    </li>
  );
}

/**
 * What verifying found, in a line (and the damaged files, if any).
 */
function VerificationLine(props: {
  verification: NonNullable<ReturnType<SnapshotsModel['verification']>>;
  trans: TranslationBundle;
}): JSX.Element {
  const { verification, trans } = props;
  switch (verification.state) {
    case 'running':
      return (
        <div className="jp-WestTek-muted" data-testid="westtek-verification">
          {trans.__('Verifying…')}
        </div>
      );
    case 'failed':
      return (
        <div
          className="jp-WestTek-verification jp-WestTek-mod-error"
          role="alert"
          data-testid="westtek-verification"
        >
          {verification.message}
        </div>
      );
    case 'done': {
      const { result } = verification;
      if (result.ok) {
        return (
          <div
            className="jp-WestTek-verification jp-WestTek-mod-success"
            data-testid="westtek-verification"
          >
            {trans.__('Verified: every stored byte is intact.')}
          </div>
        );
      }
      return (
        <div
          className="jp-WestTek-verification jp-WestTek-mod-error"
          role="alert"
          data-testid="westtek-verification"
        >
          {trans.__('Damaged:')}
          <ul>
            {result.problems.map((problem, i) => (
              <li key={`p${i}`}>{problem}</li>
            ))}
            {result.damaged.map((d, i) => (
              <li key={`d${i}`}>
                <code>{d.file}</code>
              </li>
            ))}
          </ul>
        </div>
      );
    }
  }
}

/**
 * Whose a snapshot is, for a lab's shared store: who took it, the environment
 * when that is not theirs by name (`<user>[:<server>]`), and who holds it now
 * when it was handed over.
 *
 * @param snapshot A row of `GET snapshots`
 * @returns e.g. `bob`, `carol (environment bob)`, `bob, now alice's`, or null
 */
export function snapshotOwner(snapshot: {
  created_by?: string | null;
  environment_id?: string | null;
  holder?: string | null;
}): string | null {
  const who = snapshot.created_by || null;
  const environment = snapshot.environment_id || null;
  const holder = snapshot.holder || null;
  if (!who) {
    return environment;
  }
  const own =
    !environment ||
    environment === who ||
    environment.startsWith(`${who}:`) ||
    environment.startsWith(`${who}@`);
  const taker = own ? who : `${who} (environment ${environment})`;
  return holder && holder !== who ? `${taker}, now ${holder}'s` : taker;
}

/**
 * The hub panel's transfer package of an environment, when this server runs under
 * JupyterHub (whose page config names the hub's prefix), else null.
 *
 * @param environment A snapshot's environment id
 * @returns e.g. `/services/westtek/succession?environment_id=bob`
 */
export function transferPackageUrl(
  environment: string | null | undefined
): string | null {
  const hubPrefix = PageConfig.getOption('hubPrefix');
  if (!hubPrefix || !environment) {
    return null;
  }
  const services = hubPrefix.replace(/hub\/?$/, 'services/westtek/');
  const query = `environment_id=${encodeURIComponent(environment)}`;
  return `${PageConfig.getOption('hubHost')}${services}succession?${query}`;
}
