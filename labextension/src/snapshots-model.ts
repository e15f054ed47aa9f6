import { VDomModel } from '@jupyterlab/ui-components';

import { errorMessage, IExportedFile, WestTekClient } from './api-client';
import { JobsModel } from './jobs-model';
import { LoadState, reloading } from './load-state';
import {
  ExportFormat,
  IDriftReport,
  IJob,
  IRestoreRequest,
  ISnapshotList,
  ISnapshotSummary,
  IVerifyResult
} from './tokens';

/**
 * A message about the last action, shown above the list until dismissed.
 */
export interface INotice {
  /**
   * `error` for failures (the server's message), `success` otherwise.
   */
  kind: 'error' | 'success';

  /**
   * The sentence to show.
   */
  text: string;
}

/**
 * What verifying a snapshot found, or that it is still running.
 */
export type Verification =
  | { readonly state: 'running'; readonly job: string }
  | { readonly state: 'done'; readonly result: IVerifyResult }
  | { readonly state: 'failed'; readonly message: string };

/**
 * Parse labels typed as `key=value` pairs separated by commas or spaces.
 *
 * @param text e.g. `"project=alpha, stage=raw"`
 * @returns The labels
 * @throws {Error} naming the first pair without `=` or with an empty key
 */
export function parseLabels(text: string): { [key: string]: string } {
  const labels: { [key: string]: string } = {};
  for (const pair of text.split(/[,\s]+/).filter(Boolean)) {
    const at = pair.indexOf('=');
    if (at <= 0) {
      throw new Error(
        `Label "${pair}" is not of the form key=value (e.g. project=alpha).`
      );
    }
    labels[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return labels;
}

/**
 * Bytes deduplication and compression saved on a snapshot: what it describes
 * minus what it added to the store.
 *
 * @param snapshot A snapshot summary
 * @returns Bytes saved and the share of its size, or null when unknown
 */
export function savings(
  snapshot: Pick<ISnapshotSummary, 'size_bytes' | 'stored_bytes'>
): { bytes: number; percent: number } | null {
  const stored = snapshot.stored_bytes;
  if (stored === null || stored === undefined || snapshot.size_bytes <= 0) {
    return null;
  }
  const bytes = Math.max(0, snapshot.size_bytes - stored);
  return { bytes, percent: (100 * bytes) / snapshot.size_bytes };
}

/**
 * Holds `GET snapshots` and the actions on snapshots; long actions are
 * followed through the shared `JobsModel`.
 */
export class SnapshotsModel extends VDomModel {
  /**
   * Create a model over the API and the page's jobs.
   *
   * @param client The West Tek API of this server
   * @param jobs Where background jobs are followed
   */
  constructor(client: WestTekClient, jobs: JobsModel) {
    super();
    this._client = client;
    this.jobs = jobs;
    jobs.finished.connect(this._onJobFinished, this);
  }

  /**
   * The page's background jobs.
   */
  readonly jobs: JobsModel;

  /**
   * The snapshot list.
   */
  get state(): LoadState<ISnapshotList> {
    return this._state;
  }

  /**
   * Ids ticked for a diff, oldest tick first (at most two).
   */
  get selected(): readonly string[] {
    return this._selected;
  }

  /**
   * The message about the last action, if any.
   */
  get notice(): INotice | null {
    return this._notice;
  }

  /**
   * What verifying each snapshot found.
   */
  verification(id: string): Verification | undefined {
    return this._verifications.get(id);
  }

  /**
   * Show a message above the list (or clear it with null).
   */
  setNotice(notice: INotice | null): void {
    this._notice = notice;
    this.stateChanged.emit();
  }

  /**
   * Tick or untick a snapshot for the diff; a third tick drops the oldest.
   *
   * @param id Snapshot id
   * @param on Whether it is ticked
   */
  setSelected(id: string, on: boolean): void {
    if (on === this._selected.includes(id)) {
      return;
    }
    this._selected = on
      ? [...this._selected, id].slice(-2)
      : this._selected.filter(s => s !== id);
    this.stateChanged.emit();
  }

  /**
   * Fetch the list again; never rejects (failures end in `error`).
   */
  async refresh(): Promise<void> {
    const request = ++this._requests;
    this._setState(reloading(this._state));
    let next: LoadState<ISnapshotList>;
    try {
      const value = await this._client.snapshots();
      // Newest first, whatever order the store keeps.
      value.snapshots = [...value.snapshots].sort((a, b) =>
        (b.timestamp ?? '').localeCompare(a.timestamp ?? '')
      );
      next = { kind: 'ready', value, refreshing: false };
      const ids = new Set(value.snapshots.map(s => s.id));
      this._selected = this._selected.filter(id => ids.has(id));
    } catch (error) {
      next = { kind: 'error', message: errorMessage(error) };
    }
    if (this.isDisposed) {
      return;
    }
    if (next.kind === 'ready') {
      this._loadedAt = Date.now();
    }
    if (request === this._requests) {
      this._setState(next);
    } else if (next.kind === 'ready' && this._state.kind !== 'ready') {
      // A later refresh supersedes this answer, but it beats an empty panel.
      this._setState({ ...next, refreshing: true });
    }
  }

  /**
   * Take a snapshot in the background; the list refreshes when it is done.
   *
   * @param note The researcher's note
   * @param labels Key/value labels
   * @param baseline Make it the new baseline
   * @returns The finished job, or null if it could not be started
   */
  async create(
    note: string,
    labels: { [key: string]: string } = {},
    baseline = false
  ): Promise<IJob | null> {
    let job: IJob;
    try {
      job = await this._client.createSnapshot({ note, labels, baseline });
    } catch (error) {
      this.setNotice({ kind: 'error', text: errorMessage(error) });
      return null;
    }
    const done = await this.jobs.follow(job);
    if (done.state === 'failed') {
      this.setNotice({
        kind: 'error',
        text: done.error || 'The snapshot failed.'
      });
    } else {
      const id = String(done.result?.id ?? '').slice(0, 12);
      this.setNotice({
        kind: 'success',
        text: baseline
          ? `Snapshot ${id} taken; it is the new baseline.`
          : `Snapshot ${id} taken.`
      });
    }
    return done;
  }

  /**
   * Check a snapshot's stored data in the background.
   */
  async verify(id: string): Promise<void> {
    let job: IJob;
    try {
      job = await this._client.verify(id);
    } catch (error) {
      this._verifications.set(id, {
        state: 'failed',
        message: errorMessage(error)
      });
      this.stateChanged.emit();
      return;
    }
    this._verifications.set(id, { state: 'running', job: job.id });
    this.stateChanged.emit();
    const done = await this.jobs.follow(job);
    this._verifications.set(
      id,
      done.state === 'succeeded' && done.result
        ? { state: 'done', result: done.result as IVerifyResult }
        : { state: 'failed', message: done.error || 'Verification failed.' }
    );
    this.stateChanged.emit();
  }

  /**
   * Restore a snapshot into a new directory in the background.
   *
   * @returns The finished job, or null if it could not be started
   */
  async restore(id: string, request: IRestoreRequest): Promise<IJob | null> {
    let job: IJob;
    try {
      job = await this._client.restore(id, request);
    } catch (error) {
      this.setNotice({ kind: 'error', text: errorMessage(error) });
      return null;
    }
    const done = await this.jobs.follow(job);
    this.setNotice(
      done.state === 'succeeded'
        ? {
            kind: 'success',
            text: `Restored ${id.slice(0, 12)} into ${request.target}/.`
          }
        : { kind: 'error', text: done.error || 'The restore failed.' }
    );
    return done;
  }

  /**
   * Measure drift against this snapshot from now on.
   *
   * @returns Whether the server accepted it
   */
  async setBaseline(id: string): Promise<boolean> {
    try {
      await this._client.setBaseline(id);
    } catch (error) {
      this.setNotice({ kind: 'error', text: errorMessage(error) });
      return false;
    }
    this.setNotice({
      kind: 'success',
      text: `Snapshot ${id.slice(0, 12)} is now the baseline.`
    });
    await this.refresh();
    return true;
  }

  /**
   * Fetch a snapshot's exported lockfile.
   *
   * @returns The file, or null after showing why it failed
   */
  async exportLock(
    id: string,
    format: ExportFormat
  ): Promise<IExportedFile | null> {
    try {
      return await this._client.exportLock(id, format);
    } catch (error) {
      this.setNotice({ kind: 'error', text: errorMessage(error) });
      return null;
    }
  }

  /**
   * A snapshot's whole manifest, for its details view.
   *
   * @throws {ServerConnection.ResponseError} with the server's message
   */
  manifest(id: string): Promise<{ [key: string]: any }> {
    return this._client.snapshot(id);
  }

  /**
   * What changed from snapshot `a` to snapshot `b`.
   *
   * @throws {ServerConnection.ResponseError} with the server's message
   */
  diff(a: string, b: string): Promise<IDriftReport> {
    return this._client.diff(a, b);
  }

  /**
   * Stop listening to jobs.
   */
  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.jobs.finished.disconnect(this._onJobFinished, this);
    super.dispose();
  }

  private _onJobFinished(_: JobsModel, job: IJob): void {
    if (job.kind === 'snapshot' || job.kind === 'rollback') {
      void this.refresh();
    }
  }

  /**
   * When the last answer arrived (epoch ms), 0 before the first.
   */
  get loadedAt(): number {
    return this._loadedAt;
  }

  private _setState(state: LoadState<ISnapshotList>): void {
    this._state = state;
    this.stateChanged.emit();
  }

  private _client: WestTekClient;
  private _loadedAt = 0;
  private _notice: INotice | null = null;
  private _requests = 0;
  private _selected: string[] = [];
  private _state: LoadState<ISnapshotList> = { kind: 'idle' };
  private _verifications = new Map<string, Verification>();
}
