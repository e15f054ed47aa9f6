import { Button } from '@jupyter/react-components';
import { TranslationBundle } from '@jupyterlab/translation';
import React from 'react';

import {
  DriftBadge,
  JobList,
  LoadFrame,
  NoticeBar,
  PanelError,
  Section,
  useModel
} from './components';
import {
  DriftModel,
  IDriftEntry,
  IDriftSummary,
  SEVERITIES,
  staleKernelOf,
  StreamState,
  subjectKey
} from './drift-model';
import { NotebookLink } from './environment-panel';
import {
  describeChange,
  formatTime,
  severityClass,
  severityLabel,
  severityWord,
  shortId
} from './format';
import { TimelineChart } from './timeline-chart';
import {
  IChange,
  IDriftEvent,
  IDriftState,
  IStaleKernel,
  Severity
} from './tokens';

/**
 * How many of an entry's events its history lists.
 */
const MAX_HISTORY = 20;

/**
 * The actions of the Drift panel, as the commands run them.
 */
export interface IDriftActions {
  /**
   * Take a snapshot of the live environment.
   */
  snapshotNow(): void;

  /**
   * Snapshot the live environment and make it the baseline.
   */
  acceptBaseline(): void;

  /**
   * Roll the environment back to the baseline (after confirming).
   */
  rollback(): void;

  /**
   * Ask the Drift Analyzer about one change of an event (the "why?" button).
   */
  why?(event: IDriftEvent, change: IChange): void;
}

/**
 * The Drift panel: the live grade, actions (snapshot now, accept as new
 * baseline, roll back), the changes since the baseline grouped by severity —
 * one entry per change, with the events that reported it — then the changes
 * that went away, and a 30-day timeline; all from the model's drift summary.
 */
export function DriftPanel(props: {
  model: DriftModel;
  actions: IDriftActions;
  openNotebook: (path: string) => void;
  trans: TranslationBundle;
}): JSX.Element {
  const model = useModel(props.model);
  const { trans, actions } = props;
  const state = model.state;
  const drift = state.kind === 'ready' ? state.value : null;
  const summary = model.summary;
  const current = summary.entries.filter(entry => entry.current);
  const gone = summary.entries.filter(entry => !entry.current);
  const loaded = state.kind === 'ready' && model.eventsState.kind === 'ready';
  return (
    <div className="jp-WestTek-panel" data-testid="westtek-drift">
      <LoadFrame
        state={state}
        loadingText={trans.__('Grading the environment…')}
        onRetry={() => void model.refresh()}
        trans={trans}
      >
        {graded => (
          <DriftHeader
            drift={graded}
            summary={summary}
            stream={model.stream}
            model={model}
            trans={trans}
          />
        )}
      </LoadFrame>
      <div className="jp-WestTek-actions jp-WestTek-driftActions">
        <Button
          data-testid="westtek-snapshot-now"
          title={trans.__('Take a snapshot of the environment as it is now')}
          onClick={() => actions.snapshotNow()}
        >
          {trans.__('Snapshot now')}
        </Button>
        <Button
          data-testid="westtek-accept-baseline"
          title={trans.__(
            'Snapshot the environment as it is now and measure drift against it from now on'
          )}
          onClick={() => actions.acceptBaseline()}
        >
          {trans.__('Accept as new baseline')}
        </Button>
        <Button
          appearance="error"
          data-testid="westtek-rollback"
          title={trans.__(
            'Undo the drift: put the environment back to the baseline'
          )}
          disabled={!drift || !drift.baseline || drift.changes.length === 0}
          onClick={() => actions.rollback()}
        >
          {trans.__('Roll back to baseline')}
        </Button>
      </div>
      <JobList jobs={model.jobs} trans={trans} />
      <NoticeBar
        notice={model.notice}
        onDismiss={() => model.setNotice(null)}
        trans={trans}
      />
      <Section
        title={trans.__('Changes since the baseline')}
        count={summary.changes.length}
        testId="westtek-drift-events"
      >
        {model.eventsState.kind === 'error' && (
          <PanelError
            message={model.eventsState.message}
            trans={trans}
            onRetry={() => void model.refresh()}
          />
        )}
        {current.length === 0 && loaded && (
          <p className="jp-WestTek-empty">
            {summary.status === 'NO_BASELINE'
              ? trans.__(
                  'Drift is measured against a baseline snapshot: take one to start.'
                )
              : trans.__(
                  'Nothing changed since the baseline. Changes to packages, kernels or configuration appear here as they happen.'
                )}
          </p>
        )}
        {SEVERITIES.map(severity => {
          const entries = current.filter(
            entry => entry.change.severity === severity
          );
          return entries.length ? (
            <EntryGroup
              key={severity}
              severity={severity}
              entries={entries}
              isLive={event => model.isLive(event)}
              openNotebook={props.openNotebook}
              why={actions.why}
              kernelOf={change => staleKernelOf(change, drift ?? undefined)}
              restartKernel={kernel => void model.restartKernel(kernel)}
              trans={trans}
            />
          ) : null;
        })}
      </Section>
      {gone.length > 0 && (
        <Section
          title={trans.__('Resolved')}
          count={gone.length}
          open={false}
          testId="westtek-drift-resolved"
        >
          <EntryList
            entries={gone}
            isLive={event => model.isLive(event)}
            openNotebook={props.openNotebook}
            trans={trans}
          />
        </Section>
      )}
      <Section title={trans.__('Last 30 days')} testId="westtek-drift-timeline">
        <TimelineChart days={summary.days} trans={trans} />
      </Section>
    </div>
  );
}

/**
 * The grade, the baseline, how fresh the state is and how it arrives.
 */
function DriftHeader(props: {
  drift: IDriftState;
  summary: IDriftSummary;
  stream: StreamState;
  model: DriftModel;
  trans: TranslationBundle;
}): JSX.Element {
  const { drift, summary, stream, trans } = props;
  const counts = SEVERITIES.filter(severity => summary.counts[severity] > 0);
  let streamText: string;
  switch (stream) {
    case 'live':
      streamText = trans.__('live');
      break;
    case 'polling':
      streamText = trans.__('polling every %1 s', props.model.pollInterval);
      break;
    default:
      streamText = trans.__('connecting…');
  }
  return (
    <div className="jp-WestTek-driftHeader" data-testid="westtek-drift-state">
      <div className="jp-WestTek-summary">
        <DriftBadge
          status={summary.status ?? drift.status}
          trans={trans}
          testId="westtek-drift-status"
        />
        <span
          className={`jp-WestTek-stream jp-WestTek-mod-${stream}`}
          data-testid="westtek-stream"
          data-stream={stream}
          title={trans.__('How this panel hears about drift')}
        >
          {streamText}
        </span>
      </div>
      <div className="jp-WestTek-muted">
        {drift.baseline
          ? trans.__(
              'Baseline %1 · checked %2',
              shortId(drift.baseline),
              formatTime(drift.checked_at)
            )
          : drift.message ||
            trans.__(
              'No baseline yet: accept the current environment as the baseline to start watching drift.'
            )}
      </div>
      {counts.length > 0 && (
        <div
          className="jp-WestTek-muted"
          data-testid="westtek-drift-counts"
          data-serious={summary.serious}
        >
          {trans._n(
            '%1 change since the baseline',
            '%1 changes since the baseline',
            summary.changes.length
          )}
          {': '}
          {counts
            .map(
              severity =>
                `${summary.counts[severity]} ${severityWord(severity, trans)}`
            )
            .join(', ')}
        </div>
      )}
    </div>
  );
}

/**
 * The changes of one severity, with its heading and count.
 */
function EntryGroup(props: {
  severity: Severity;
  entries: readonly IDriftEntry[];
  isLive: (event: IDriftEvent) => boolean;
  openNotebook: (path: string) => void;
  why?: (event: IDriftEvent, change: IChange) => void;
  kernelOf?: (change: IChange) => IStaleKernel | null;
  restartKernel?: (kernel: IStaleKernel) => void;
  trans: TranslationBundle;
}): JSX.Element {
  const { severity, entries, trans } = props;
  return (
    <div
      className={`jp-WestTek-eventGroup ${severityClass(severity)}`}
      data-testid="westtek-event-group"
      data-severity={severity}
    >
      <h4 className={`jp-WestTek-groupTitle ${severityClass(severity)}`}>
        {severityLabel(severity, trans)}
        <span
          className="jp-WestTek-count"
          data-testid="westtek-event-group-count"
        >
          {entries.length}
        </span>
      </h4>
      <EntryList {...props} />
    </div>
  );
}

/**
 * Changes, one item each: what changed, when it was last reported and how
 * many events did, why it matters, the notebooks it affects, and its history.
 */
function EntryList(props: {
  entries: readonly IDriftEntry[];
  isLive: (event: IDriftEvent) => boolean;
  openNotebook: (path: string) => void;
  why?: (event: IDriftEvent, change: IChange) => void;
  kernelOf?: (change: IChange) => IStaleKernel | null;
  restartKernel?: (kernel: IStaleKernel) => void;
  trans: TranslationBundle;
}): JSX.Element {
  const { trans } = props;
  return (
    <ul className="jp-WestTek-events">
      {props.entries.map(({ key, change, current, events, event }) => {
        const latest = events[0];
        const kernel = current ? (props.kernelOf?.(change) ?? null) : null;
        return (
          <li
            key={key}
            className={`jp-WestTek-event ${severityClass(change.severity)}${current ? '' : ' jp-mod-resolved'}`}
            data-testid="westtek-event"
            data-name={change.name}
            data-kind={change.kind}
            data-severity={change.severity}
            data-current={current}
            data-events={events.length}
            data-event-id={latest?.id}
          >
            <div className="jp-WestTek-eventHead">
              <span className="jp-WestTek-eventWhat">
                {describeChange(change)}
              </span>
              {events.some(e => props.isLive(e)) && (
                <span className="jp-WestTek-tag jp-WestTek-mod-live">
                  {trans.__('new')}
                </span>
              )}
              {!current && (
                <span className="jp-WestTek-tag">{trans.__('resolved')}</span>
              )}
              {event?.assessment && current && (
                <span
                  className={`jp-WestTek-tag jp-WestTek-mod-risk-${event.assessment.risk.toLowerCase()}`}
                  data-testid="westtek-event-risk"
                  title={event.assessment.answer}
                >
                  {trans.__('risk %1', event.assessment.risk)}
                </span>
              )}
              {props.why && event && current && (
                <button
                  className="jp-WestTek-link jp-WestTek-why"
                  data-testid="westtek-event-why"
                  title={trans.__('Ask the Drift Analyzer about this change')}
                  onClick={() => props.why?.(event, change)}
                >
                  {trans.__('why?')}
                </button>
              )}
              {kernel && props.restartKernel && (
                <button
                  className="jp-WestTek-link jp-WestTek-restartKernel"
                  data-testid="westtek-restart-kernel"
                  data-kernel-id={kernel.kernel_id}
                  title={trans.__(
                    'Restart the kernel: it then imports what is installed now (its variables are lost)'
                  )}
                  onClick={() => props.restartKernel?.(kernel)}
                >
                  {trans.__('Restart kernel')}
                </button>
              )}
            </div>
            {latest && (
              <div className="jp-WestTek-muted">
                {events.length > 1
                  ? trans.__(
                      '%1 · %2 events',
                      formatTime(latest.time),
                      events.length
                    )
                  : formatTime(latest.time)}
              </div>
            )}
            {change.reason && (
              <div
                className="jp-WestTek-reason"
                data-testid="westtek-event-reason"
              >
                {change.reason}
              </div>
            )}
            {change.affected_notebooks.length > 0 && (
              <div className="jp-WestTek-notebooks">
                <span className="jp-WestTek-muted">{trans.__('Affects:')}</span>
                {change.affected_notebooks.map(path => (
                  <NotebookLink
                    key={path}
                    path={path}
                    open={props.openNotebook}
                    trans={trans}
                  />
                ))}
              </div>
            )}
            {events.length > 1 && (
              <EntryHistory entryKey={key} events={events} trans={trans} />
            )}
          </li>
        );
      })}
    </ul>
  );
}

/**
 * The events of one change, newest first: when, and what each reported.
 */
function EntryHistory(props: {
  entryKey: string;
  events: readonly IDriftEvent[];
  trans: TranslationBundle;
}): JSX.Element {
  const { entryKey, events, trans } = props;
  return (
    <details className="jp-WestTek-history" data-testid="westtek-event-history">
      <summary className="jp-WestTek-muted">
        {trans.__('History (%1 events)', events.length)}
      </summary>
      <ol className="jp-WestTek-historyList">
        {events.slice(0, MAX_HISTORY).map(event => {
          const reported = event.changes.find(c => subjectKey(c) === entryKey);
          return (
            <li key={event.id} data-event-id={event.id}>
              <span className="jp-WestTek-muted">{formatTime(event.time)}</span>{' '}
              {reported ? describeChange(reported) : trans.__('went away')}
            </li>
          );
        })}
      </ol>
    </details>
  );
}
