import { VDomModel } from '@jupyterlab/ui-components';

import { errorMessage } from './api-client';
import { LoadState } from './load-state';

/**
 * A distribution recorded in a snapshot.
 */
export interface ISnapshotPackage {
  /**
   * Distribution name.
   */
  name: string;

  /**
   * Version recorded.
   */
  version: string;

  /**
   * Who installed it (`pip`, `conda`…), when known.
   */
  installer: string | null;

  /**
   * Label of the interpreter it was installed in.
   */
  interpreter: string;
}

/**
 * An interpreter recorded in a snapshot.
 */
export interface ISnapshotInterpreter {
  /**
   * Short name, e.g. `env0`.
   */
  label: string;

  /**
   * Python version, when recorded.
   */
  version: string | null;

  /**
   * Path of the interpreter's executable.
   */
  path: string;

  /**
   * `sys.prefix` of its environment, when recorded.
   */
  prefix: string | null;

  /**
   * What kind of environment it is.
   */
  kind: 'venv' | 'conda' | 'system';

  /**
   * How many distributions it held.
   */
  packages: number;
}

/**
 * What the details view shows of a snapshot, read from its manifest.
 */
export interface ISnapshotDetails {
  /**
   * Snapshot id.
   */
  id: string;

  /**
   * When it was taken (ISO 8601), if recorded.
   */
  timestamp: string | null;

  /**
   * Who took it.
   */
  createdBy: string | null;

  /**
   * Identity of the environment captured.
   */
  environmentId: string | null;

  /**
   * The researcher's note.
   */
  notes: string;

  /**
   * Free key/value labels.
   */
  labels: { [key: string]: string };

  /**
   * Bytes of everything the snapshot describes.
   */
  sizeBytes: number | null;

  /**
   * Bytes it added to the store, when recorded.
   */
  storedBytes: number | null;

  /**
   * Checksum of the manifest's content.
   */
  checksum: string | null;

  /**
   * `jupyter_core` version of the environment.
   */
  jupyterVersion: string | null;

  /**
   * The container image the server ran in, if any.
   */
  containerImage: string | null;

  /**
   * The interpreters captured.
   */
  interpreters: ISnapshotInterpreter[];

  /**
   * Every distribution of every interpreter, by name.
   */
  packages: ISnapshotPackage[];

  /**
   * The kernelspecs captured.
   */
  kernels: {
    name: string;
    displayName: string;
    interpreter: string | null;
  }[];

  /**
   * Jupyter configuration files (directory/path).
   */
  configFiles: string[];

  /**
   * Notebooks of the workspace (paths relative to its root).
   */
  notebooks: string[];

  /**
   * Files and bytes of the workspace.
   */
  workspace: { files: number; bytes: number };

  /**
   * JupyterLab extensions, with their versions when known.
   */
  labextensions: { name: string; version: string | null }[];

  /**
   * Files holding secrets, and what was done about each.
   */
  secrets: { area: string; path: string; action: string }[];

  /**
   * What could not be captured as it is, in words.
   */
  warnings: string[];

  /**
   * Files left out, and why.
   */
  skipped: { area: string; path: string; reason: string }[];
}

/**
 * Read the facts shown from a manifest (`GET snapshots/{id}`, the format of
 * `westtek_core/snapshot/create.py`); missing fields read as empty.
 *
 * @param manifest The manifest
 * @returns The details
 */
export function snapshotDetails(manifest: {
  [key: string]: any;
}): ISnapshotDetails {
  const list = (value: unknown): any[] => (Array.isArray(value) ? value : []);
  const text = (value: unknown): string | null =>
    value === null || value === undefined || value === ''
      ? null
      : String(value);
  const number = (value: unknown): number | null =>
    typeof value === 'number' && Number.isFinite(value) ? value : null;
  const metadata = manifest.metadata ?? {};

  const interpreters: ISnapshotInterpreter[] = [];
  const packages: ISnapshotPackage[] = [];
  for (const interpreter of list(manifest.interpreters)) {
    const label = String(interpreter.label ?? '');
    const dists = list(interpreter.packages);
    interpreters.push({
      label,
      version: text(interpreter.version),
      path: String(interpreter.path ?? ''),
      prefix: text(interpreter.prefix),
      kind: interpreter.is_conda
        ? 'conda'
        : interpreter.is_venv
          ? 'venv'
          : 'system',
      packages: dists.length
    });
    for (const dist of dists) {
      packages.push({
        name: String(dist.name ?? ''),
        version: String(dist.version ?? ''),
        installer: text(dist.installer),
        interpreter: label
      });
    }
  }
  packages.sort(
    (a, b) =>
      a.name.toLowerCase().localeCompare(b.name.toLowerCase()) ||
      a.interpreter.localeCompare(b.interpreter)
  );

  const files = list(manifest.workspace?.files).filter(
    entry => entry.kind === undefined || entry.kind === 'file'
  );
  return {
    id: String(manifest.id ?? ''),
    timestamp: text(manifest.timestamp),
    createdBy: text(manifest.created_by),
    environmentId: text(manifest.environment_id),
    notes: String(manifest.notes ?? metadata.notes ?? ''),
    labels: { ...(manifest.labels ?? {}) },
    sizeBytes: number(manifest.size_bytes),
    storedBytes: number(metadata.stored_bytes),
    checksum: text(manifest.checksum),
    jupyterVersion: text(metadata.jupyter_version),
    containerImage: text(manifest.container_image),
    interpreters,
    packages,
    kernels: list(manifest.kernels).map(kernel => ({
      name: String(kernel.name ?? ''),
      displayName: String(kernel.spec?.display_name ?? kernel.name ?? ''),
      interpreter: text(kernel.interpreter)
    })),
    configFiles: list(metadata.configuration_files).map(String),
    notebooks: files
      .map(entry => String(entry.path ?? ''))
      .filter(path => path.endsWith('.ipynb'))
      .sort(),
    workspace: {
      files: files.length,
      bytes: files.reduce((sum, entry) => sum + (Number(entry.size) || 0), 0)
    },
    labextensions: list(manifest.labextensions).map(extension => ({
      name: String(extension.name ?? extension.id ?? ''),
      version: text(extension.version)
    })),
    secrets: list(manifest.secrets).map(secret => ({
      area: String(secret.area ?? ''),
      path: String(secret.path ?? ''),
      action: String(secret.action ?? '')
    })),
    warnings: list(manifest.warnings).map(String),
    skipped: list(manifest.skipped).map(skip => ({
      area: String(skip.area ?? ''),
      path: String(skip.path ?? ''),
      reason: String(skip.reason ?? skip.detail ?? '')
    }))
  };
}

/**
 * Holds one snapshot's details for the details view, and the package filter.
 */
export class SnapshotDetailsModel extends VDomModel {
  /**
   * Create the model of one snapshot's details.
   *
   * @param id The snapshot's id
   * @param fetch How to get its manifest (`SnapshotsModel.manifest`)
   */
  constructor(
    readonly id: string,
    fetch: (id: string) => Promise<{ [key: string]: any }>
  ) {
    super();
    this._fetch = fetch;
  }

  /**
   * The details.
   */
  get state(): LoadState<ISnapshotDetails> {
    return this._state;
  }

  /**
   * Words the package list is narrowed to.
   */
  get filter(): string {
    return this._filter;
  }
  set filter(value: string) {
    if (value !== this._filter) {
      this._filter = value;
      this.stateChanged.emit();
    }
  }

  /**
   * The packages matching the filter (name, version, installer or
   * interpreter; every word must occur).
   */
  get packages(): ISnapshotPackage[] {
    const state = this._state;
    if (state.kind !== 'ready') {
      return [];
    }
    const words = this._filter.toLowerCase().split(/\s+/).filter(Boolean);
    return state.value.packages.filter(pkg => {
      const haystack = [pkg.name, pkg.version, pkg.installer, pkg.interpreter]
        .join(' ')
        .toLowerCase();
      return words.every(word => haystack.includes(word));
    });
  }

  /**
   * Fetch the manifest; never rejects (failures end in `error`).
   */
  async load(): Promise<void> {
    this._state = { kind: 'loading' };
    this.stateChanged.emit();
    let next: LoadState<ISnapshotDetails>;
    try {
      const manifest = await this._fetch(this.id);
      next = {
        kind: 'ready',
        value: snapshotDetails({ id: this.id, ...manifest }),
        refreshing: false
      };
    } catch (error) {
      next = { kind: 'error', message: errorMessage(error) };
    }
    if (!this.isDisposed) {
      this._state = next;
      this.stateChanged.emit();
    }
  }

  private _fetch: (id: string) => Promise<{ [key: string]: any }>;
  private _filter = '';
  private _state: LoadState<ISnapshotDetails> = { kind: 'idle' };
}
