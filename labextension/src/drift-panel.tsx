import { Button } from '@jupyter/react-components';
import { TranslationBundle } from '@jupyterlab/translation';
import React, { useMemo } from 'react';

import {
  DriftBadge,
  JobList,
  Loading,
  NoticeBar,
  PanelError,
  Section,
  useModel
} from './components';
import { DriftModel, SEVERITIES, StreamState, timeline } from './drift-model';
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
import { IChange, IDriftEvent, IDriftState, Severity } from './tokens';

/**
 * How many of the latest events the grouped list shows.
 */
const MAX_EVENTS = 100;

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
 * A change as the Drift panel lists it: with its event, and whether it
 * appeared or went away.
 */
export interface IEventEntry {
  /**
   * The event that reported it.
   */
  event: IDriftEvent;

  /**
   * The change.
   */
  change: IChange;

  /**
   * True when the event reports the change as gone.
   */
  resolved: boolean;
}

/**
 * The changes of the latest events (newest first) grouped by severity.
 *
 * @param events Drift events, oldest first
 * @param max How many of the latest events to take
 * @returns One list per severity
 */
export function groupEvents(
  events: readonly IDriftEvent[],
  max = MAX_EVENTS
): { [S in Severity]: IEventEntry[] } {
  const groups: { [S in Severity]: IEventEntry[] } = {
    critical: [],
    minor: [],
    info: []
  };
  for (const event of events.slice(-max).reverse()) {
    for (const change of event.changes) {
      groups[change.severity].push({ event, change, resolved: false });
    }
    for (const change of event.resolved) {
      groups[change.severity].push({ event, change, resolved: true });
    }
  }
  return groups;
}

/**
 * The Drift panel: the live grade, actions (snapshot now, accept as new
 * baseline, roll back), the events grouped by severity with their notebooks
 * and reasons, and a 30-day timeline.
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
  const events = model.events;
  const groups = useMemo(() => groupEvents(events), [events]);
  const days = useMemo(() => timeline(events, 30), [events]);
  return (
    <div className="jp-WestTek-panel" data-testid="westtek-drift">
      {state.kind === 'error' && (
        <PanelError
          message={state.message}
          trans={trans}
          onRetry={() => void model.refresh()}
        />
      )}
      {(state.kind === 'idle' || state.kind === 'loading') && (
        <Loading text={trans.__('Grading the environment…')} />
      )}
      {drift && (
        <DriftHeader
          drift={drift}
          stream={model.stream}
          model={model}
          trans={trans}
        />
      )}
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
        title={trans.__('Drift events')}
        count={events.length}
        testId="westtek-drift-events"
      >
        {model.eventsState.kind === 'error' && (
          <PanelError
            message={model.eventsState.message}
            trans={trans}
            onRetry={() => void model.refresh()}
          />
        )}
        {events.length === 0 && model.eventsState.kind === 'ready' && (
          <p className="jp-WestTek-empty">
            {trans.__(
              'No drift in the last 30 days. Changes to packages, kernels or configuration appear here as they happen.'
            )}
          </p>
        )}
        {SEVERITIES.map(severity =>
          groups[severity].length ? (
            <EventGroup
              key={severity}
              severity={severity}
              entries={groups[severity]}
              isLive={event => model.isLive(event)}
              openNotebook={props.openNotebook}
              why={actions.why}
              trans={trans}
            />
          ) : null
        )}
      </Section>
      <Section title={trans.__('Last 30 days')} testId="westtek-drift-timeline">
        <TimelineChart days={days} trans={trans} />
      </Section>
    </div>
  );
}

/**
 * The grade, the baseline, how fresh the state is and how it arrives.
 */
function DriftHeader(props: {
  drift: IDriftState;
  stream: StreamState;
  model: DriftModel;
  trans: TranslationBundle;
}): JSX.Element {
  const { drift, stream, trans } = props;
  const counts = SEVERITIES.map(
    severity =>
      [
        severity,
        drift.changes.filter(c => c.severity === severity).length
      ] as const
  ).filter(([, n]) => n > 0);
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
          status={drift.status}
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
        <div className="jp-WestTek-muted" data-testid="westtek-drift-counts">
          {trans._n(
            '%1 change since the baseline',
            '%1 changes since the baseline',
            drift.changes.length
          )}
          {': '}
          {counts
            .map(([severity, n]) => `${n} ${severityWord(severity, trans)}`)
            .join(', ')}
        </div>
      )}
    </div>
  );
}

/**
 * The entries of one severity.
 */
function EventGroup(props: {
  severity: Severity;
  entries: IEventEntry[];
  isLive: (event: IDriftEvent) => boolean;
  openNotebook: (path: string) => void;
  why?: (event: IDriftEvent, change: IChange) => void;
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
        <span className="jp-WestTek-count">{entries.length}</span>
      </h4>
      <ul className="jp-WestTek-events">
        {entries.map(({ event, change, resolved }, index) => (
          <li
            key={`${event.id}-${resolved ? 'r' : 'c'}-${index}`}
            className={`jp-WestTek-event ${severityClass(change.severity)}${resolved ? ' jp-mod-resolved' : ''}`}
            data-testid="westtek-event"
            data-event-id={event.id}
            data-name={change.name}
          >
            <div className="jp-WestTek-eventHead">
              <span className="jp-WestTek-eventWhat">
                {describeChange(change)}
              </span>
              {props.isLive(event) && (
                <span className="jp-WestTek-tag jp-WestTek-mod-live">
                  {trans.__('new')}
                </span>
              )}
              {resolved && (
                <span className="jp-WestTek-tag">{trans.__('resolved')}</span>
              )}
              {event.assessment && !resolved && (
                <span
                  className={`jp-WestTek-tag jp-WestTek-mod-risk-${event.assessment.risk.toLowerCase()}`}
                  data-testid="westtek-event-risk"
                  title={event.assessment.answer}
                >
                  {trans.__('risk %1', event.assessment.risk)}
                </span>
              )}
              {props.why && !resolved && (
                <button
                  className="jp-WestTek-link jp-WestTek-why"
                  data-testid="westtek-event-why"
                  title={trans.__('Ask the Drift Analyzer about this change')}
                  onClick={() => props.why?.(event, change)}
                >
                  {trans.__('why?')}
                </button>
              )}
            </div>
            <div className="jp-WestTek-muted">{formatTime(event.time)}</div>
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
          </li>
        ))}
      </ul>
    </div>
  );
}
