import { Button, Progress } from '@jupyter/react-components';
import { TranslationBundle } from '@jupyterlab/translation';
import { closeIcon, VDomModel } from '@jupyterlab/ui-components';
import React, { useEffect, useState } from 'react';

import { formatBytes, jobStateLabel, statusClass, statusLabel } from './format';
import { isFinished, JobsModel } from './jobs-model';
import { LoadState } from './load-state';
import { INotice } from './snapshots-model';
import { DriftStatus, IJob } from './tokens';

/**
 * Re-render a function component whenever a model emits `stateChanged`.
 *
 * @param model The model to follow
 * @returns The same model, for chaining
 */
export function useModel<T extends VDomModel>(model: T): T {
  const [, setTick] = useState(0);
  useEffect(() => {
    const onChange = () => setTick(tick => tick + 1);
    model.stateChanged.connect(onChange);
    // A change between the render and this effect (an answer arriving as the side bar
    // opens) has no listener yet: render again once, or the view keeps the old state.
    onChange();
    return () => {
      model.stateChanged.disconnect(onChange);
    };
  }, [model]);
  return model;
}

/**
 * The drift grade as a coloured pill: green, amber, red, or grey.
 */
export function DriftBadge(props: {
  status: DriftStatus;
  trans: TranslationBundle;
  testId?: string;
}): JSX.Element {
  return (
    <span
      className={`jp-WestTek-badge ${statusClass(props.status)}`}
      data-testid={props.testId ?? 'westtek-drift-badge'}
      data-status={props.status}
      title={props.trans.__('Drift against the baseline snapshot')}
    >
      <span className="jp-WestTek-badgeDot" aria-hidden="true" />
      {statusLabel(props.status, props.trans)}
    </span>
  );
}

/**
 * A message about the last action, with a button to dismiss it.
 */
export function NoticeBar(props: {
  notice: INotice | null;
  onDismiss: () => void;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { notice, trans } = props;
  if (!notice) {
    return null;
  }
  return (
    <div
      className={`jp-WestTek-notice jp-WestTek-mod-${notice.kind}`}
      role={notice.kind === 'error' ? 'alert' : 'status'}
      data-testid="westtek-notice"
    >
      <span className="jp-WestTek-noticeText">{notice.text}</span>
      <button
        className="jp-WestTek-iconButton"
        title={trans.__('Dismiss')}
        aria-label={trans.__('Dismiss')}
        onClick={props.onDismiss}
      >
        <closeIcon.react tag="span" />
      </button>
    </div>
  );
}

/**
 * A request that failed, in the researcher's words (the server's message).
 */
export function PanelError(props: {
  message: string;
  onRetry?: () => void;
  trans: TranslationBundle;
}): JSX.Element {
  return (
    <div className="jp-WestTek-error" role="alert">
      <span data-testid="westtek-panel-error">{props.message}</span>
      {props.onRetry && (
        <Button minimal onClick={props.onRetry}>
          {props.trans.__('Try again')}
        </Button>
      )}
    </div>
  );
}

/**
 * The placeholder of a panel whose first load is in flight.
 */
export function Loading(props: { text: string }): JSX.Element {
  return (
    <p className="jp-WestTek-loading" data-testid="westtek-panel-loading">
      {props.text}
    </p>
  );
}

/**
 * A fetched resource as a panel shows it: the loading placeholder until the
 * first answer, the error with a retry if the request failed, and what
 * `children` makes of the value once it is here.
 */
export function LoadFrame<T>(props: {
  state: LoadState<T>;
  loadingText: string;
  onRetry: () => void;
  trans: TranslationBundle;
  children: (value: T) => React.ReactNode;
}): JSX.Element {
  const { state } = props;
  switch (state.kind) {
    case 'idle':
    case 'loading':
      return <Loading text={props.loadingText} />;
    case 'error':
      return (
        <PanelError
          message={state.message}
          trans={props.trans}
          onRetry={props.onRetry}
        />
      );
    case 'ready':
      return <>{props.children(state.value)}</>;
  }
}

/**
 * An interpreter as an interpreter list shows it, whether recorded in a
 * snapshot or found in the running environment.
 */
export interface IInterpreterSummary {
  /**
   * Short name, e.g. `env0`.
   */
  label: string;

  /**
   * Path of the interpreter's executable.
   */
  path: string;

  /**
   * Python version, when known.
   */
  version?: string | null;

  /**
   * What kind of environment it is (venv, conda, system), when known.
   */
  kind?: string;

  /**
   * How many distributions it holds.
   */
  packages: number;
}

/**
 * Interpreters, one an item: label, Python version, kind, package count and
 * the executable's path.
 */
export function InterpreterList(props: {
  interpreters: readonly IInterpreterSummary[];
  trans: TranslationBundle;
}): JSX.Element {
  const { trans } = props;
  return (
    <ul className="jp-WestTek-list">
      {props.interpreters.map(interpreter => (
        <li key={`${interpreter.label}:${interpreter.path}`}>
          <div className="jp-WestTek-itemTitle">
            {interpreter.label}
            {interpreter.version && (
              <span className="jp-WestTek-tag" title={interpreter.version}>
                {trans.__('Python %1', interpreter.version.split(' ')[0])}
              </span>
            )}
            {interpreter.kind && (
              <span className="jp-WestTek-tag">{interpreter.kind}</span>
            )}
            <span className="jp-WestTek-muted">
              {trans._n('%1 package', '%1 packages', interpreter.packages)}
            </span>
          </div>
          <code className="jp-WestTek-path">{interpreter.path}</code>
        </li>
      ))}
    </ul>
  );
}

/**
 * One background job: what it does, a progress bar, files and bytes done,
 * what it is waiting for (its progress message), and the error if it failed.
 */
export function JobRow(props: {
  job: IJob;
  onDismiss?: () => void;
  trans: TranslationBundle;
}): JSX.Element {
  const { job, trans } = props;
  const { progress } = job;
  const done = isFinished(job);
  const percent = Math.max(0, Math.min(100, progress.percent || 0));
  const counts: string[] = [];
  if (progress.files_total > 0) {
    counts.push(
      trans.__('%1 / %2 files', progress.files_done, progress.files_total)
    );
  }
  if (progress.bytes_total > 0) {
    counts.push(
      `${formatBytes(progress.bytes_done)} / ${formatBytes(progress.bytes_total)}`
    );
  }
  return (
    <li
      className={`jp-WestTek-job jp-WestTek-mod-${job.state}`}
      data-testid="westtek-job"
      data-kind={job.kind}
      data-state={job.state}
    >
      <div className="jp-WestTek-jobHead">
        <span className="jp-WestTek-jobTitle">{job.description}</span>
        <span className="jp-WestTek-jobState">
          {job.state === 'running'
            ? `${percent.toFixed(0)}%`
            : jobStateLabel(job.state, trans)}
        </span>
        {done && props.onDismiss && (
          <button
            className="jp-WestTek-iconButton"
            title={trans.__('Dismiss')}
            aria-label={trans.__('Dismiss')}
            onClick={props.onDismiss}
          >
            <closeIcon.react tag="span" />
          </button>
        )}
      </div>
      {!done && (
        <Progress
          className="jp-WestTek-progress"
          min={0}
          max={100}
          value={job.state === 'queued' ? undefined : percent}
          aria-label={job.description}
        />
      )}
      {counts.length > 0 && !done && (
        <div className="jp-WestTek-jobCounts">{counts.join(' · ')}</div>
      )}
      {progress.message && !done && (
        <div className="jp-WestTek-jobMessage" role="status">
          {progress.message}
        </div>
      )}
      {job.state === 'failed' && job.error && (
        <div className="jp-WestTek-jobError" role="alert">
          {job.error}
        </div>
      )}
    </li>
  );
}

/**
 * The page's background jobs of some kinds, newest first.
 */
export function JobList(props: {
  jobs: JobsModel;
  kinds?: readonly IJob['kind'][];
  trans: TranslationBundle;
}): JSX.Element | null {
  const jobs = useModel(props.jobs);
  const shown = jobs.jobs.filter(
    job => !props.kinds || props.kinds.includes(job.kind)
  );
  if (!shown.length) {
    return null;
  }
  return (
    <ul className="jp-WestTek-jobs" aria-label={props.trans.__('Jobs')}>
      {shown.map(job => (
        <JobRow
          key={job.id}
          job={job}
          trans={props.trans}
          onDismiss={() => jobs.dismiss(job.id)}
        />
      ))}
    </ul>
  );
}

/**
 * A collapsible section of a panel with a count in its title.
 */
export function Section(props: {
  title: string;
  count?: number;
  open?: boolean;
  testId?: string;
  children?: React.ReactNode;
}): JSX.Element {
  return (
    <details
      className="jp-WestTek-section"
      open={props.open ?? true}
      data-testid={props.testId}
    >
      <summary className="jp-WestTek-sectionTitle">
        {props.title}
        {props.count !== undefined && (
          <span className="jp-WestTek-count">{props.count}</span>
        )}
      </summary>
      <div className="jp-WestTek-sectionBody">{props.children}</div>
    </details>
  );
}
