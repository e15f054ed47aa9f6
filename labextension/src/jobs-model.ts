import { ISignal, Signal } from '@lumino/signaling';
import { VDomModel } from '@jupyterlab/ui-components';

import { errorMessage, WestTekClient } from './api-client';
import { IJob } from './tokens';

/**
 * Whether a job is done, for better or worse.
 */
export function isFinished(job: IJob): boolean {
  return job.state === 'succeeded' || job.state === 'failed';
}

/**
 * Follows the background jobs this page started (snapshot, verify, restore,
 * rollback) by polling `GET jobs/{id}`; emits `stateChanged` on each progress
 * step and `finished` once per job that ends.
 */
export class JobsModel extends VDomModel {
  /**
   * Create a model polling through the given client.
   *
   * @param client The West Tek API of this server
   * @param pollMs Milliseconds between two polls of a running job
   * @param keepMs Milliseconds a succeeded job stays listed
   */
  constructor(client: WestTekClient, pollMs = 500, keepMs = 8000) {
    super();
    this._client = client;
    this._pollMs = pollMs;
    this._keepMs = keepMs;
  }

  /**
   * Jobs followed, newest first: the running ones and those that finished
   * since they were last dismissed.
   */
  get jobs(): readonly IJob[] {
    return [...this._jobs.values()].sort((a, b) => b.created - a.created);
  }

  /**
   * Emitted once when a followed job succeeds or fails.
   */
  get finished(): ISignal<this, IJob> {
    return this._finished;
  }

  /**
   * Follow a job just started; resolves with the job once it has finished.
   *
   * @param job The `202` answer of the request that started it
   * @returns The finished job (`succeeded` or `failed`)
   */
  follow(job: IJob): Promise<IJob> {
    const known = this._waiters.get(job.id);
    if (known) {
      return known;
    }
    this._update(job);
    const done = this._poll(job);
    this._waiters.set(job.id, done);
    return done;
  }

  /**
   * Follow the jobs the server is still running (started before this page
   * loaded, or in another tab).
   */
  async resume(): Promise<void> {
    try {
      const { jobs } = await this._client.jobs();
      for (const job of jobs) {
        if (!isFinished(job)) {
          void this.follow(job);
        }
      }
    } catch {
      // An older server without jobs: nothing to resume.
    }
  }

  /**
   * Stop showing a finished job.
   */
  dismiss(id: string): void {
    const job = this._jobs.get(id);
    if (job && isFinished(job)) {
      this._jobs.delete(id);
      this.stateChanged.emit();
    }
  }

  /**
   * Stop polling.
   */
  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    Signal.clearData(this);
    super.dispose();
  }

  private async _poll(job: IJob): Promise<IJob> {
    let current = job;
    let failures = 0;
    while (!isFinished(current) && !this.isDisposed) {
      await new Promise(resolve => setTimeout(resolve, this._pollMs));
      try {
        current = await this._client.job(current.id);
        failures = 0;
      } catch (error) {
        // A few lost polls are a blip; many mean the job is gone.
        if (++failures >= 10) {
          current = {
            ...current,
            state: 'failed',
            error: errorMessage(error),
            finished: Date.now() / 1000
          };
        }
      }
      this._update(current);
    }
    this._waiters.delete(current.id);
    if (!this.isDisposed) {
      this._finished.emit(current);
      if (current.state === 'succeeded') {
        // Success is also told by the panel's notice; failures stay listed.
        const id = current.id;
        setTimeout(() => this.dismiss(id), this._keepMs);
      }
    }
    return current;
  }

  private _update(job: IJob): void {
    if (this.isDisposed) {
      return;
    }
    this._jobs.set(job.id, job);
    this.stateChanged.emit();
  }

  private _client: WestTekClient;
  private _finished = new Signal<this, IJob>(this);
  private _jobs = new Map<string, IJob>();
  private _keepMs: number;
  private _pollMs: number;
  private _waiters = new Map<string, Promise<IJob>>();
}
