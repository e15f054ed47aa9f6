import { VDomModel } from '@jupyterlab/ui-components';

import { errorMessage, WestTekClient } from './api-client';
import { LoadState, reloading } from './load-state';
import { IEnvironmentView, IPackage } from './tokens';

/**
 * A package row of the Environment panel: a package and its interpreter.
 */
export interface IPackageRow extends IPackage {
  /**
   * Label of the interpreter it is installed in.
   */
  interpreter: string;
}

/**
 * The packages of every interpreter, one row each, matching a filter on name,
 * version, installer, interpreter or importing notebook (case-insensitive).
 *
 * @param view The environment
 * @param filter Words that must all occur in a row; empty keeps every row
 * @returns The matching rows, in the environment's order
 */
export function packageRows(
  view: IEnvironmentView,
  filter = ''
): IPackageRow[] {
  const words = filter.toLowerCase().split(/\s+/).filter(Boolean);
  const rows: IPackageRow[] = [];
  for (const interpreter of view.interpreters) {
    for (const pkg of interpreter.packages) {
      const row = { ...pkg, interpreter: interpreter.label };
      if (words.length) {
        const haystack = [
          pkg.name,
          pkg.version,
          pkg.installer ?? '',
          interpreter.label,
          ...pkg.imported_by
        ]
          .join(' ')
          .toLowerCase();
        if (!words.every(word => haystack.includes(word))) {
          continue;
        }
      }
      rows.push(row);
    }
  }
  return rows;
}

/**
 * Holds `GET environment`; emits `stateChanged` as it loads.
 */
export class EnvironmentModel extends VDomModel {
  /**
   * Create a model fetching through the given client.
   *
   * @param client The West Tek API of this server
   */
  constructor(client: WestTekClient) {
    super();
    this._client = client;
  }

  /**
   * The current state of the environment view.
   */
  get state(): LoadState<IEnvironmentView> {
    return this._state;
  }

  /**
   * Fetch the environment again; never rejects (failures end in `error`).
   */
  async refresh(): Promise<void> {
    const request = ++this._requests;
    this._set(reloading(this._state));
    let next: LoadState<IEnvironmentView>;
    try {
      const value = await this._client.environment();
      next = { kind: 'ready', value, refreshing: false };
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
      this._set(next);
    } else if (next.kind === 'ready' && this._state.kind !== 'ready') {
      // A later refresh supersedes this answer, but it beats an empty panel.
      this._set({ ...next, refreshing: true });
    }
  }

  /**
   * When the last answer arrived (epoch ms), 0 before the first.
   */
  get loadedAt(): number {
    return this._loadedAt;
  }

  private _set(state: LoadState<IEnvironmentView>): void {
    this._state = state;
    this.stateChanged.emit();
  }

  private _client: WestTekClient;
  private _loadedAt = 0;
  private _requests = 0;
  private _state: LoadState<IEnvironmentView> = { kind: 'idle' };
}
