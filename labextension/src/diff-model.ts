import { VDomModel } from '@jupyterlab/ui-components';

import { errorMessage } from './api-client';
import { SEVERITIES } from './drift-model';
import { LoadState } from './load-state';
import { IChange, IDriftReport, Severity } from './tokens';

/**
 * Changes ordered for reading: most severe first, then by kind and name.
 */
export function sortChanges(changes: readonly IChange[]): IChange[] {
  const rank = (s: Severity) => SEVERITIES.indexOf(s);
  return [...changes].sort(
    (x, y) =>
      rank(x.severity) - rank(y.severity) ||
      x.kind.localeCompare(y.kind) ||
      x.name.localeCompare(y.name)
  );
}

/**
 * Holds the diff of two snapshots and which severities are shown.
 */
export class DiffModel extends VDomModel {
  /**
   * Create the model of the diff from `a` to `b`.
   *
   * @param a The older snapshot's id
   * @param b The newer snapshot's id
   * @param fetch How to get the diff (`SnapshotsModel.diff`)
   */
  constructor(
    readonly a: string,
    readonly b: string,
    fetch: (a: string, b: string) => Promise<IDriftReport>
  ) {
    super();
    this._fetch = fetch;
  }

  /**
   * The diff.
   */
  get state(): LoadState<IDriftReport> {
    return this._state;
  }

  /**
   * Whether changes of a severity are shown.
   */
  isShown(severity: Severity): boolean {
    return !this._hidden.has(severity);
  }

  /**
   * Show or hide the changes of a severity.
   */
  toggle(severity: Severity): void {
    if (this._hidden.has(severity)) {
      this._hidden.delete(severity);
    } else {
      this._hidden.add(severity);
    }
    this.stateChanged.emit();
  }

  /**
   * Fetch the diff; never rejects (failures end in `error`).
   */
  async load(): Promise<void> {
    this._state = { kind: 'loading' };
    this.stateChanged.emit();
    try {
      const value = await this._fetch(this.a, this.b);
      this._state = { kind: 'ready', value, refreshing: false };
    } catch (error) {
      this._state = { kind: 'error', message: errorMessage(error) };
    }
    if (!this.isDisposed) {
      this.stateChanged.emit();
    }
  }

  private _fetch: (a: string, b: string) => Promise<IDriftReport>;
  private _hidden = new Set<Severity>();
  private _state: LoadState<IDriftReport> = { kind: 'idle' };
}
