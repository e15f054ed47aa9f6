import { URLExt } from '@jupyterlab/coreutils';
import { KernelAPI, ServerConnection } from '@jupyterlab/services';

import { API_NAMESPACE, fetchAPI, requestAPI } from './request';
import {
  ExportFormat,
  IDriftReport,
  IDriftState,
  IEnvironmentView,
  IEventList,
  IJob,
  IJobList,
  IPreservedCell,
  IRestoreRequest,
  IRollbackPreview,
  IRollbackRequest,
  ISnapshotCreate,
  ISnapshotList,
  IStatusReport
} from './tokens';

/**
 * A lockfile fetched from `GET snapshots/{id}/export`.
 */
export interface IExportedFile {
  /**
   * File name the server suggests (Content-Disposition), or a sensible one.
   */
  filename: string;

  /**
   * The file's content.
   */
  blob: Blob;
}

/**
 * Which drift events `GET drift/events` answers.
 */
export interface IEventQuery {
  /**
   * Only events with a larger id.
   */
  since?: number;

  /**
   * At most this many.
   */
  limit?: number;

  /**
   * Only events of the last so many days.
   */
  days?: number;
}

/**
 * Turn whatever a request threw into a message for the researcher: the
 * server's `message` for error answers, else what went wrong.
 *
 * @param error What a `WestTekClient` method threw
 * @returns A sentence to show, never a stack trace
 */
export function errorMessage(error: unknown): string {
  if (error instanceof ServerConnection.ResponseError) {
    const message = error.message?.trim();
    if (message && !message.startsWith('<')) {
      return message;
    }
    return `${error.response.status} ${error.response.statusText}`.trim();
  }
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}

/**
 * Typed calls of the West Tek REST API of one Jupyter server; every method
 * throws `ServerConnection.ResponseError` with the server's message on 4xx/5xx.
 */
export class WestTekClient {
  /**
   * Create a client of the given server, or of the page's own server.
   *
   * @param serverSettings Settings of the Jupyter server to call
   */
  constructor(serverSettings?: ServerConnection.ISettings) {
    this.serverSettings = serverSettings ?? ServerConnection.makeSettings();
  }

  /**
   * The settings of the server this client calls.
   */
  readonly serverSettings: ServerConnection.ISettings;

  /**
   * `GET status`.
   */
  status(): Promise<IStatusReport> {
    return this._get('status');
  }

  /**
   * `GET environment`.
   */
  environment(): Promise<IEnvironmentView> {
    return this._get('environment');
  }

  /**
   * `GET snapshots`.
   */
  snapshots(): Promise<ISnapshotList> {
    return this._get('snapshots');
  }

  /**
   * `GET snapshots/{id}`: the whole manifest.
   */
  snapshot(id: string): Promise<{ [key: string]: any }> {
    return this._get(`snapshots/${encodeURIComponent(id)}`);
  }

  /**
   * `GET kb/cell`: a cell the lab's memory cited, read by the hub service from
   * the snapshot that holds it.
   */
  preservedCell(
    environmentId: string,
    snapshotId: string,
    path: string,
    cell: number
  ): Promise<IPreservedCell> {
    const query = new URLSearchParams({
      environment_id: environmentId,
      snapshot_id: snapshotId,
      path,
      cell: String(cell)
    });
    return this._get(`kb/cell?${query.toString()}`);
  }

  /**
   * `POST snapshots`: start taking a snapshot.
   */
  createSnapshot(body: ISnapshotCreate): Promise<IJob> {
    return this._send('snapshots', 'POST', body);
  }

  /**
   * `GET snapshots/{a}/diff/{b}`: what changed from `a` to `b`.
   */
  diff(a: string, b: string): Promise<IDriftReport> {
    return this._get(
      `snapshots/${encodeURIComponent(a)}/diff/${encodeURIComponent(b)}`
    );
  }

  /**
   * `POST snapshots/{id}/verify`: start checking a snapshot's stored data.
   */
  verify(id: string): Promise<IJob> {
    return this._send(`snapshots/${encodeURIComponent(id)}/verify`, 'POST', {});
  }

  /**
   * `POST snapshots/{id}/restore`: start restoring into a new directory.
   */
  restore(id: string, body: IRestoreRequest): Promise<IJob> {
    return this._send(
      `snapshots/${encodeURIComponent(id)}/restore`,
      'POST',
      body
    );
  }

  /**
   * `GET snapshots/{id}/export?format=`: a lockfile to download.
   */
  async exportLock(id: string, format: ExportFormat): Promise<IExportedFile> {
    const response = await fetchAPI(
      `snapshots/${encodeURIComponent(id)}/export` +
        URLExt.objectToQueryString({ format }),
      {},
      this.serverSettings
    );
    const disposition = response.headers.get('Content-Disposition') ?? '';
    const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition);
    const filename = match
      ? decodeURIComponent(match[1])
      : defaultExportName(id, format);
    return { filename, blob: await response.blob() };
  }

  /**
   * `GET drift`.
   */
  drift(): Promise<IDriftState> {
    return this._get('drift');
  }

  /**
   * `PUT baseline`: measure drift against this snapshot from now on.
   */
  setBaseline(id: string): Promise<IDriftState> {
    return this._send('baseline', 'PUT', { id });
  }

  /**
   * `POST rollback`: start putting the live environment back.
   */
  rollback(body: IRollbackRequest = {}): Promise<IJob> {
    return this._send('rollback', 'POST', body);
  }

  /**
   * `GET rollback/preview`: every step a rollback to the baseline would take.
   */
  rollbackPreview(): Promise<IRollbackPreview> {
    return this._get('rollback/preview');
  }

  /**
   * Jupyter's `POST api/kernels/{id}/restart`: restart a running kernel.
   */
  restartKernel(id: string): Promise<void> {
    return KernelAPI.restartKernel(id, this.serverSettings);
  }

  /**
   * `GET jobs`.
   */
  jobs(): Promise<IJobList> {
    return this._get('jobs');
  }

  /**
   * `GET jobs/{id}`.
   */
  job(id: string): Promise<IJob> {
    return this._get(`jobs/${encodeURIComponent(id)}`);
  }

  /**
   * `GET drift/events`, oldest first.
   */
  driftEvents(query: IEventQuery = {}): Promise<IEventList> {
    const params: { [key: string]: number } = {};
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined) {
        params[key] = value;
      }
    }
    const search = Object.keys(params).length
      ? URLExt.objectToQueryString(params)
      : '';
    return this._get(`drift/events${search}`);
  }

  /**
   * URL of `WS drift/stream`, with the token when the server wants it there.
   */
  driftStreamUrl(): string {
    const settings = this.serverSettings;
    let url = URLExt.join(settings.wsUrl, API_NAMESPACE, 'drift/stream');
    if (settings.appendToken && settings.token) {
      url += `?token=${encodeURIComponent(settings.token)}`;
    }
    return url;
  }

  private _get<T>(endPoint: string): Promise<T> {
    return requestAPI<T>(endPoint, {}, this.serverSettings);
  }

  private _send<T>(
    endPoint: string,
    method: string,
    body: unknown
  ): Promise<T> {
    return requestAPI<T>(
      endPoint,
      { method, body: JSON.stringify(body) },
      this.serverSettings
    );
  }
}

/**
 * The file name of an exported lockfile when the server suggests none.
 *
 * @param id Snapshot id
 * @param format Export format
 * @returns e.g. `requirements-1a2b3c4d.txt`
 */
export function defaultExportName(id: string, format: ExportFormat): string {
  const short = id.slice(0, 12);
  switch (format) {
    case 'requirements':
      return `requirements-${short}.txt`;
    case 'pylock':
      return `pylock.${short}.toml`;
    case 'conda':
      return `environment-${short}.yml`;
  }
}
