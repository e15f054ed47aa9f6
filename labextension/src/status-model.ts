import { ServerConnection } from '@jupyterlab/services';
import { nullTranslator, TranslationBundle } from '@jupyterlab/translation';
import { VDomModel } from '@jupyterlab/ui-components';

import { requestAPI } from './request';
import { IStatusReport } from './tokens';

/**
 * Where the status report stands: not asked yet, in flight, received, or
 * failed with a message meant for the researcher.
 */
export type StatusState =
  | { readonly kind: 'idle' }
  | { readonly kind: 'loading' }
  | { readonly kind: 'ready'; readonly report: IStatusReport }
  | { readonly kind: 'error'; readonly message: string };

/**
 * Turn a failed status request into a message for the researcher: a 404 means
 * the Jupyter server runs without the `westtek_server_ext` extension.
 *
 * @param error What `requestAPI` threw
 * @param trans Where the message is translated
 * @returns How to enable the extension for a 404, else the error's message
 */
export function describeStatusError(
  error: unknown,
  trans: TranslationBundle = nullTranslator.load('westtek')
): string {
  if (
    error instanceof ServerConnection.ResponseError &&
    error.response.status === 404
  ) {
    return trans.__(
      "The West Tek server extension is not enabled on this Jupyter server. Install the westtek package in the server's environment and run `jupyter server extension enable westtek_server_ext`, then restart the server."
    );
  }
  const reason = error instanceof Error ? error.message : String(error);
  return trans.__('Could not reach the West Tek API: %1', reason);
}

/**
 * Holds the server's status report and emits `stateChanged` as it loads.
 */
export class StatusModel extends VDomModel {
  /**
   * Create a model that asks the given server, or the page's own server.
   *
   * @param options Server to ask and translation of the error messages
   */
  constructor(options: StatusModel.IOptions = {}) {
    super();
    this._serverSettings = options.serverSettings;
    this._trans = options.trans ?? nullTranslator.load('westtek');
  }

  /**
   * The current state of the status report.
   */
  get state(): StatusState {
    return this._state;
  }

  /**
   * Fetch the status report again; failures end in the `error` state, so the
   * returned promise never rejects.
   */
  async refresh(): Promise<void> {
    const request = ++this._requests;
    this._setState({ kind: 'loading' });
    let next: StatusState;
    try {
      const report = await requestAPI<IStatusReport>(
        'status',
        {},
        this._serverSettings
      );
      next = { kind: 'ready', report };
    } catch (error) {
      next = {
        kind: 'error',
        message: describeStatusError(error, this._trans)
      };
    }
    // A later refresh supersedes this one; only the latest answer is shown.
    if (request === this._requests && !this.isDisposed) {
      this._setState(next);
    }
  }

  private _setState(state: StatusState): void {
    this._state = state;
    this.stateChanged.emit();
  }

  private _requests = 0;
  private _serverSettings: ServerConnection.ISettings | undefined;
  private _state: StatusState = { kind: 'idle' };
  private _trans: TranslationBundle;
}

/**
 * The namespace for `StatusModel` statics.
 */
export namespace StatusModel {
  /**
   * How to build a `StatusModel`.
   */
  export interface IOptions {
    /**
     * Settings of the Jupyter server to ask; the page's own server if unset.
     */
    serverSettings?: ServerConnection.ISettings;

    /**
     * Translation bundle of the `westtek` domain for error messages.
     */
    trans?: TranslationBundle;
  }
}
