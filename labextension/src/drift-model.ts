import { ServerConnection } from '@jupyterlab/services';
import { VDomModel } from '@jupyterlab/ui-components';
import { ISignal, Signal } from '@lumino/signaling';

import { errorMessage, WestTekClient } from './api-client';
import { JobsModel } from './jobs-model';
import { LoadState, reloading, valueOf } from './load-state';
import { INotice } from './snapshots-model';
import {
  DriftStatus,
  IChange,
  IDriftEvent,
  IDriftState,
  IJob,
  IRollbackPreview,
  IStaleKernel,
  IStreamMessage,
  Severity
} from './tokens';

/**
 * How the model hears about drift: over the WebSocket (`live`), by polling
 * `GET drift` while the socket is down (`polling`), or not yet/any more.
 */
export type StreamState = 'connecting' | 'live' | 'polling' | 'stopped';

/**
 * Severities from the most to the least serious.
 */
export const SEVERITIES: readonly Severity[] = ['critical', 'minor', 'info'];

/**
 * The most serious severity among changes, or null when there are none.
 */
export function worstSeverity(changes: readonly IChange[]): Severity | null {
  for (const severity of SEVERITIES) {
    if (changes.some(change => change.severity === severity)) {
      return severity;
    }
  }
  return null;
}

/**
 * How many changes matter (minor or critical; info changes such as edited
 * notebooks are not counted in badges).
 */
export function countSerious(changes: readonly IChange[]): number {
  return changes.filter(change => change.severity !== 'info').length;
}

/**
 * Identity of a change (two events speak of the same change when it matches).
 */
export function changeKey(change: IChange): string {
  return JSON.stringify([
    change.kind,
    change.name,
    change.change,
    change.before ?? null,
    change.after ?? null
  ]);
}

/**
 * The drift state after an event: its changes appear, its resolved ones go.
 *
 * @param state The state before the event
 * @param event The event
 * @returns The state after it
 */
export function applyEvent(
  state: IDriftState,
  event: IDriftEvent
): IDriftState {
  const gone = new Set(
    [...event.resolved, ...event.changes].map(change => changeKey(change))
  );
  return {
    ...state,
    status: event.status,
    baseline: event.baseline || state.baseline,
    changes: [
      ...state.changes.filter(change => !gone.has(changeKey(change))),
      ...event.changes
    ],
    checked_at: Math.max(state.checked_at, event.time)
  };
}

/**
 * The running kernel a `stale_kernel` change is about, if the state knows it.
 *
 * @param change A change of the drift
 * @param state The drift state (its `stale_kernels`)
 * @returns The stale kernel whose warning is the change's reason, or null
 */
export function staleKernelOf(
  change: IChange,
  state: IDriftState | undefined
): IStaleKernel | null {
  if (change.kind !== 'stale_kernel') {
    return null;
  }
  return (
    state?.stale_kernels?.find(kernel => kernel.message === change.reason) ??
    null
  );
}

/**
 * Identity of the thing a change is about (a package, a notebook, a kernel…):
 * every write to it, every version it went through, is the same change.
 */
export function subjectKey(change: Pick<IChange, 'kind' | 'name'>): string {
  return JSON.stringify([change.kind, change.name]);
}

/**
 * The changes in the environment, one per thing changed: of two changes to
 * the same thing the more serious one stays (the later on a tie), with the
 * notebooks of both.
 *
 * @param changes Changes, possibly several per thing
 * @returns One change per thing, in first-seen order
 */
export function dedupeChanges(changes: readonly IChange[]): IChange[] {
  const byKey = new Map<string, IChange>();
  for (const change of changes) {
    const key = subjectKey(change);
    const known = byKey.get(key);
    if (!known) {
      byKey.set(key, change);
      continue;
    }
    const kept = rank(change.severity) <= rank(known.severity) ? change : known;
    const notebooks = [
      ...new Set([...known.affected_notebooks, ...change.affected_notebooks])
    ].sort();
    byKey.set(key, { ...kept, affected_notebooks: notebooks });
  }
  return [...byKey.values()];
}

/**
 * A day of the drift timeline: how many changes of each severity it saw.
 */
export interface ITimelineDay {
  /**
   * Local midnight starting the day (epoch milliseconds).
   */
  start: number;

  /**
   * Changes reported that day per severity, each thing changed counted once
   * however many events reported it (at its worst severity of the day).
   */
  counts: { [S in Severity]: number };
}

/**
 * Bucket the changes reported per local day over the last `days` days,
 * oldest day first; an event that only resolved changes adds nothing.
 *
 * @param events Drift events (any order)
 * @param days How many days, today included
 * @param now The current time (epoch milliseconds)
 * @returns One entry per day
 */
export function timeline(
  events: readonly IDriftEvent[],
  days = 30,
  now = Date.now()
): ITimelineDay[] {
  const today = new Date(now);
  today.setHours(0, 0, 0, 0);
  const starts: number[] = [];
  for (let i = days - 1; i >= 0; i--) {
    const start = new Date(today);
    start.setDate(today.getDate() - i);
    starts.push(start.getTime());
  }
  // Per day, the worst severity each thing changed reached.
  const seen = starts.map(() => new Map<string, Severity>());
  for (const event of events) {
    const time = event.time * 1000;
    if (time < starts[0] || time > now + 60_000) {
      continue;
    }
    let index = starts.length - 1;
    while (index > 0 && starts[index] > time) {
      index--;
    }
    for (const change of event.changes) {
      const key = subjectKey(change);
      const known = seen[index].get(key);
      if (!known || rank(change.severity) < rank(known)) {
        seen[index].set(key, change.severity);
      }
    }
  }
  return starts.map((start, index) => {
    const counts = { critical: 0, minor: 0, info: 0 };
    for (const severity of seen[index].values()) {
      counts[severity]++;
    }
    return { start, counts };
  });
}

/**
 * One thing that changed since the baseline, with every event that reported
 * it: one entry per change, however many file writes or events it took.
 */
export interface IDriftEntry {
  /**
   * Identity of the thing changed (see `subjectKey`).
   */
  key: string;

  /**
   * The change as it stands now, or as last reported if it went away.
   */
  change: IChange;

  /**
   * Whether the change is part of the drift now (false: it went away).
   */
  current: boolean;

  /**
   * The events that reported or resolved it, newest first.
   */
  events: readonly IDriftEvent[];

  /**
   * The newest event that reported it (its risk assessment, "why?"), if any.
   */
  event: IDriftEvent | null;
}

/**
 * The drift as every view shows it (header badge, status bar, Drift tab,
 * chart): derived from the drift state and the event history in one place,
 * so that no two views can disagree.
 */
export interface IDriftSummary {
  /**
   * The grade, from the changes below; null until the state is known.
   */
  status: DriftStatus | null;

  /**
   * Id of the baseline snapshot, if there is one.
   */
  baseline: string | null;

  /**
   * The changes since the baseline, one per thing changed, most serious first.
   */
  changes: readonly IChange[];

  /**
   * How many of `changes` have each severity.
   */
  counts: { readonly [S in Severity]: number };

  /**
   * How many of `changes` are minor or critical (the badges' number).
   */
  serious: number;

  /**
   * The most serious severity of `changes`, or null when there are none.
   */
  worst: Severity | null;

  /**
   * The Drift tab's list: first one entry per change in `changes` (same
   * order), then the changes that went away since, newest first.
   */
  entries: readonly IDriftEntry[];

  /**
   * The changes reported per day over the last 30 days, for the chart.
   */
  days: readonly ITimelineDay[];
}

/**
 * Derive what every view shows of the drift.
 *
 * @param state The live drift state, or undefined while it is not known
 * @param events The drift events known, oldest first
 * @param now The current time (epoch milliseconds), for the chart's days
 * @returns The summary
 */
export function summarize(
  state: IDriftState | undefined,
  events: readonly IDriftEvent[],
  now = Date.now()
): IDriftSummary {
  // Only the events measured against the current baseline tell its changes.
  const since = state?.baseline
    ? events.filter(event => event.baseline === state.baseline)
    : events;
  // Per thing changed: its events (newest first), the newest report of it,
  // and the newest resolution of it.
  const history = new Map<string, IDriftEvent[]>();
  const reported = new Map<string, { event: IDriftEvent; change: IChange }>();
  const resolved = new Map<string, IChange>();
  for (let i = since.length - 1; i >= 0; i--) {
    const event = since[i];
    const keys = new Set<string>();
    for (const change of event.resolved) {
      const key = subjectKey(change);
      keys.add(key);
      if (!resolved.has(key)) {
        resolved.set(key, change);
      }
    }
    for (const change of event.changes) {
      const key = subjectKey(change);
      keys.add(key);
      if (!reported.has(key)) {
        reported.set(key, { event, change });
      }
    }
    for (const key of keys) {
      const list = history.get(key) ?? [];
      list.push(event);
      history.set(key, list);
    }
  }

  let changes: IChange[];
  if (state) {
    changes = dedupeChanges(state.changes);
  } else {
    // Not graded yet: what the events left standing, i.e. each thing whose
    // latest event reported it rather than only resolved it.
    changes = [...reported]
      .filter(([key, { event }]) => history.get(key)?.[0] === event)
      .map(([, { change }]) => change);
  }
  const newest = (key: string) => history.get(key)?.[0]?.id ?? -1;
  changes.sort(
    (a, b) =>
      rank(a.severity) - rank(b.severity) ||
      newest(subjectKey(b)) - newest(subjectKey(a)) ||
      a.name.localeCompare(b.name)
  );

  const counts = { critical: 0, minor: 0, info: 0 };
  for (const change of changes) {
    counts[change.severity]++;
  }
  const worst = worstSeverity(changes);
  let status: DriftStatus | null = null;
  if (state) {
    status =
      state.status === 'NO_BASELINE'
        ? 'NO_BASELINE'
        : worst === 'critical'
          ? 'CRITICAL_DRIFT'
          : worst === 'minor'
            ? 'MINOR_DRIFT'
            : 'STABLE';
  }

  const currentKeys = new Set(changes.map(change => subjectKey(change)));
  const entries: IDriftEntry[] = changes.map(change => {
    const key = subjectKey(change);
    return {
      key,
      change,
      current: true,
      events: history.get(key) ?? [],
      event: reported.get(key)?.event ?? null
    };
  });
  const gone = [...history.keys()]
    .filter(key => !currentKeys.has(key))
    .sort((a, b) => newest(b) - newest(a));
  for (const key of gone) {
    const change = reported.get(key)?.change ?? resolved.get(key);
    if (change) {
      entries.push({
        key,
        change,
        current: false,
        events: history.get(key) ?? [],
        event: reported.get(key)?.event ?? null
      });
    }
  }

  return {
    status,
    baseline: state?.baseline ?? null,
    changes,
    counts,
    serious: countSerious(changes),
    worst,
    entries,
    days: timeline(events, 30, now)
  };
}

/**
 * Order of a severity, the most serious first.
 */
function rank(severity: Severity): number {
  return SEVERITIES.indexOf(severity);
}

/**
 * Holds the live drift state and the drift events of the last 30 days.
 *
 * Listens to `WS drift/stream`; when the socket drops it reconnects with
 * exponential backoff and polls `GET drift` every `pollInterval` seconds in
 * the meantime. Emits `stateChanged` on any change, `eventReceived` for each
 * event that arrives live and `statusChanged` when the grade changes.
 */
export class DriftModel extends VDomModel {
  /**
   * Create a model over the API; call `start()` to connect.
   *
   * @param options The API, the page's jobs and the poll interval
   */
  constructor(options: DriftModel.IOptions) {
    super();
    this._client = options.client;
    this.jobs = options.jobs;
    this._pollInterval = options.pollInterval ?? 30;
    this._webSocket = options.webSocket ?? WebSocket;
  }

  /**
   * The page's background jobs.
   */
  readonly jobs: JobsModel;

  /**
   * The live drift state.
   */
  get state(): LoadState<IDriftState> {
    return this._state;
  }

  /**
   * Drift events of the last 30 days plus those received since, oldest first.
   */
  get events(): readonly IDriftEvent[] {
    return this._events;
  }

  /**
   * Whether the event history is loading, loaded, or failed (with why).
   */
  get eventsState(): LoadState<number> {
    return this._eventsState;
  }

  /**
   * The drift as every view shows it (grade, counts, the deduplicated
   * changes, the chart's days), derived from the state and the events; it is
   * computed again only when either of them changed.
   */
  get summary(): IDriftSummary {
    const state = valueOf(this._state);
    const day = new Date().setHours(0, 0, 0, 0);
    let cached = this._summary;
    if (
      !cached ||
      cached.state !== state ||
      cached.events !== this._events ||
      cached.day !== day
    ) {
      cached = {
        state,
        events: this._events,
        day,
        value: summarize(state, this._events)
      };
      this._summary = cached;
    }
    return cached.value;
  }

  /**
   * Whether an event arrived over the stream while this page was open.
   */
  isLive(event: IDriftEvent): boolean {
    return this._liveIds.has(event.id);
  }

  /**
   * How the model hears about drift right now.
   */
  get stream(): StreamState {
    return this._stream;
  }

  /**
   * The message about the last action, if any.
   */
  get notice(): INotice | null {
    return this._notice;
  }

  /**
   * Seconds between `GET drift` polls while the WebSocket is down.
   */
  get pollInterval(): number {
    return this._pollInterval;
  }
  set pollInterval(seconds: number) {
    const value = Math.max(1, Number(seconds) || 30);
    if (value !== this._pollInterval) {
      this._pollInterval = value;
      if (this._stream === 'polling') {
        this._schedulePoll();
      }
    }
  }

  /**
   * Emitted for each drift event received live, after the state is updated.
   */
  get eventReceived(): ISignal<this, IDriftEvent> {
    return this._eventReceived;
  }

  /**
   * Emitted when the drift state is first known and whenever it changes
   * grade or baseline.
   */
  get statusChanged(): ISignal<this, IDriftState> {
    return this._statusChanged;
  }

  /**
   * Emitted with the id of each snapshot taken while the stream is open,
   * whoever took it (this page, another tab, the hub).
   */
  get snapshotTaken(): ISignal<this, string> {
    return this._snapshotTaken;
  }

  /**
   * Load the state and the history, and open the stream (once).
   */
  start(): void {
    if (this._started || this.isDisposed) {
      return;
    }
    this._started = true;
    void this.refresh();
    this._connect();
  }

  /**
   * Fetch the state and the event history again; never rejects.
   */
  async refresh(): Promise<void> {
    await Promise.all([this._fetchState(), this._fetchEvents()]);
  }

  /**
   * Show a message about an action (or clear it with null).
   */
  setNotice(notice: INotice | null): void {
    this._notice = notice;
    this.stateChanged.emit();
  }

  /**
   * Take a snapshot of the live environment and make it the baseline.
   *
   * @returns The finished job, or null if it could not be started
   */
  async acceptBaseline(): Promise<IJob | null> {
    let job: IJob;
    try {
      job = await this._client.createSnapshot({
        note: 'Accepted as the new baseline from the drift panel',
        labels: {},
        baseline: true
      });
    } catch (error) {
      this.setNotice({ kind: 'error', text: errorMessage(error) });
      return null;
    }
    const done = await this.jobs.follow(job);
    this.setNotice(
      done.state === 'succeeded'
        ? {
            kind: 'success',
            text: `Snapshot ${String(done.result?.id ?? '').slice(0, 12)} is the new baseline.`
          }
        : { kind: 'error', text: done.error || 'The snapshot failed.' }
    );
    await this._fetchState();
    return done;
  }

  /**
   * Every step a rollback to the baseline would take now.
   *
   * @returns The preview, or null (with an error notice) if it failed
   */
  async previewRollback(): Promise<IRollbackPreview | null> {
    try {
      return await this._client.rollbackPreview();
    } catch (error) {
      this.setNotice({ kind: 'error', text: errorMessage(error) });
      return null;
    }
  }

  /**
   * Put the live environment back to the baseline, exactly as previewed.
   *
   * @param plan The confirmed preview's fingerprint: the rollback changes
   *   nothing if it would now do anything else
   * @returns The finished job, or null if it could not be started
   */
  async rollback(plan?: string): Promise<IJob | null> {
    let job: IJob;
    try {
      job = await this._client.rollback(plan ? { plan } : {});
    } catch (error) {
      this.setNotice({ kind: 'error', text: errorMessage(error) });
      return null;
    }
    const done = await this.jobs.follow(job);
    this.setNotice(
      done.state === 'succeeded'
        ? { kind: 'success', text: 'The environment is back to the baseline.' }
        : { kind: 'error', text: done.error || 'The rollback failed.' }
    );
    await this._fetchState();
    return done;
  }

  /**
   * Restart a kernel that runs a version no longer installed; the server then
   * resolves its warning.
   *
   * @param kernel The stale kernel
   * @returns Whether the kernel restarted
   */
  async restartKernel(kernel: IStaleKernel): Promise<boolean> {
    const label = kernel.notebook || kernel.kernel_id;
    try {
      await this._client.restartKernel(kernel.kernel_id);
    } catch (error) {
      this.setNotice({ kind: 'error', text: errorMessage(error) });
      return false;
    }
    this.setNotice({
      kind: 'success',
      text: `Restarted the kernel of ${label}: it imports what is installed now.`
    });
    await this._fetchState();
    return true;
  }

  /**
   * Close the stream and stop polling.
   */
  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._stop();
    Signal.clearData(this);
    super.dispose();
  }

  private _stop(): void {
    this._stopped = true;
    this._stream = 'stopped';
    this._clearTimers();
    if (this._socket) {
      this._socket.onclose = null;
      this._socket.close();
      this._socket = null;
    }
  }

  private async _fetchState(): Promise<void> {
    const request = ++this._stateRequests;
    this._state = reloading(this._state);
    this.stateChanged.emit();
    let next: LoadState<IDriftState>;
    try {
      const value = await this._client.drift();
      next = { kind: 'ready', value, refreshing: false };
    } catch (error) {
      if (
        error instanceof ServerConnection.ResponseError &&
        error.response.status === 404 &&
        !valueOf(this._state)
      ) {
        // No West Tek server extension here: nothing to listen to.
        this._stop();
      }
      // Keep showing the last known state when a poll fails.
      const known = valueOf(this._state);
      next = known
        ? { kind: 'ready', value: known, refreshing: false }
        : { kind: 'error', message: errorMessage(error) };
    }
    if (request === this._stateRequests && !this.isDisposed) {
      this._setState(next);
    }
  }

  private async _fetchEvents(since?: number): Promise<void> {
    if (since === undefined) {
      this._eventsState = reloading(this._eventsState);
      this.stateChanged.emit();
    }
    try {
      const { events } = await this._client.driftEvents(
        since === undefined ? { days: 30, limit: 1000 } : { since, limit: 1000 }
      );
      if (this.isDisposed) {
        return;
      }
      this._mergeEvents(events);
      this._eventsState = {
        kind: 'ready',
        value: this._events.length,
        refreshing: false
      };
    } catch (error) {
      if (since === undefined) {
        this._eventsState = { kind: 'error', message: errorMessage(error) };
      }
    }
    if (!this.isDisposed) {
      this.stateChanged.emit();
    }
  }

  private _mergeEvents(events: readonly IDriftEvent[]): void {
    const byId = new Map(this._events.map(event => [event.id, event]));
    for (const event of events) {
      byId.set(event.id, event);
    }
    this._events = [...byId.values()].sort((a, b) => a.id - b.id);
  }

  private _setState(next: LoadState<IDriftState>): void {
    const before = valueOf(this._state);
    this._state = next;
    const after = valueOf(next);
    this.stateChanged.emit();
    if (
      after &&
      (!before ||
        before.status !== after.status ||
        before.baseline !== after.baseline)
    ) {
      this._statusChanged.emit(after);
    }
  }

  private _connect(): void {
    if (this._stopped) {
      return;
    }
    this._stream = this._stream === 'polling' ? 'polling' : 'connecting';
    this.stateChanged.emit();
    let socket: WebSocket;
    try {
      socket = new this._webSocket(this._client.driftStreamUrl());
    } catch {
      this._onSocketClosed();
      return;
    }
    this._socket = socket;
    socket.onopen = () => {
      this._backoff = 0;
      this._stream = 'live';
      this._clearTimers();
      this.stateChanged.emit();
      // Events missed while the socket was down.
      const last = this._events[this._events.length - 1];
      if (last) {
        void this._fetchEvents(last.id);
      }
    };
    socket.onmessage = message => this._onMessage(message.data);
    socket.onclose = () => this._onSocketClosed();
  }

  private _onMessage(data: unknown): void {
    let message: IStreamMessage;
    try {
      message = JSON.parse(String(data));
    } catch {
      return;
    }
    if (message.type === 'state' && message.drift) {
      this._setState({
        kind: 'ready',
        value: message.drift,
        refreshing: false
      });
    } else if (message.type === 'snapshot' && message.snapshot_id) {
      this._snapshotTaken.emit(message.snapshot_id);
    } else if (message.type === 'event' && message.event) {
      const event = message.event;
      if (this._events.some(known => known.id === event.id)) {
        return;
      }
      this._liveIds.add(event.id);
      this._mergeEvents([event]);
      const current = valueOf(this._state);
      if (current) {
        this._setState({
          kind: 'ready',
          value: applyEvent(current, event),
          refreshing: false
        });
      } else {
        this.stateChanged.emit();
        void this._fetchState();
      }
      this._eventReceived.emit(event);
    }
  }

  private _onSocketClosed(): void {
    this._socket = null;
    if (this._stopped) {
      return;
    }
    if (this._stream !== 'polling') {
      this._stream = 'polling';
      this.stateChanged.emit();
      this._schedulePoll();
    }
    // 1, 2, 4 … 30 s between attempts.
    const delay = Math.min(30_000, 1000 * 2 ** this._backoff);
    this._backoff = Math.min(this._backoff + 1, 5);
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = setTimeout(() => this._connect(), delay);
  }

  private _schedulePoll(): void {
    clearTimeout(this._pollTimer);
    this._pollTimer = setTimeout(async () => {
      if (this._stream !== 'polling' || this._stopped) {
        return;
      }
      const last = this._events[this._events.length - 1];
      await Promise.all([
        this._fetchState(),
        last ? this._fetchEvents(last.id) : this._fetchEvents()
      ]);
      if (this._stream === 'polling' && !this._stopped) {
        this._schedulePoll();
      }
    }, this._pollInterval * 1000);
  }

  private _clearTimers(): void {
    clearTimeout(this._pollTimer);
    clearTimeout(this._reconnectTimer);
  }

  private _backoff = 0;
  private _client: WestTekClient;
  private _eventReceived = new Signal<this, IDriftEvent>(this);
  private _snapshotTaken = new Signal<this, string>(this);
  private _events: IDriftEvent[] = [];
  private _eventsState: LoadState<number> = { kind: 'idle' };
  private _liveIds = new Set<number>();
  private _notice: INotice | null = null;
  private _pollInterval: number;
  private _pollTimer: ReturnType<typeof setTimeout> | undefined;
  private _reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private _socket: WebSocket | null = null;
  private _started = false;
  private _state: LoadState<IDriftState> = { kind: 'idle' };
  private _stateRequests = 0;
  private _statusChanged = new Signal<this, IDriftState>(this);
  private _summary: {
    state: IDriftState | undefined;
    events: readonly IDriftEvent[];
    day: number;
    value: IDriftSummary;
  } | null = null;
  private _stopped = false;
  private _stream: StreamState = 'stopped';
  private _webSocket: typeof WebSocket;
}

/**
 * The namespace for `DriftModel` statics.
 */
export namespace DriftModel {
  /**
   * How to build a `DriftModel`.
   */
  export interface IOptions {
    /**
     * The West Tek API of this server.
     */
    client: WestTekClient;

    /**
     * Where background jobs (rollback, baseline snapshot) are followed.
     */
    jobs: JobsModel;

    /**
     * Seconds between polls while the WebSocket is down (default 30).
     */
    pollInterval?: number;

    /**
     * The WebSocket constructor (the server settings' one by default).
     */
    webSocket?: typeof WebSocket;
  }
}
