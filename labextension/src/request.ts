import { URLExt } from '@jupyterlab/coreutils';

import { ServerConnection } from '@jupyterlab/services';

/**
 * Path of the West Tek REST API below the Jupyter server's base URL.
 */
export const API_NAMESPACE = 'westtek/api';

/**
 * Call the West Tek server extension.
 *
 * @param endPoint API end point below `westtek/api`, e.g. `'status'`
 * @param init Initial values for the request (method, body…)
 * @param serverSettings Settings of the Jupyter server to call; defaults to
 *   the page's own server, with its auth token and XSRF handling
 * @returns The response body interpreted as JSON
 * @throws {ServerConnection.NetworkError} when the server cannot be reached
 * @throws {ServerConnection.ResponseError} when the server answers non-2xx
 */
export async function requestAPI<T>(
  endPoint = '',
  init: RequestInit = {},
  serverSettings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const requestUrl = URLExt.join(
    serverSettings.baseUrl,
    API_NAMESPACE,
    endPoint
  );

  let response: Response;
  try {
    response = await ServerConnection.makeRequest(
      requestUrl,
      init,
      serverSettings
    );
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }

  let data: any = await response.text();

  if (data.length > 0) {
    try {
      data = JSON.parse(data);
    } catch {
      // Error pages (e.g. Tornado's 404) are HTML; keep the text as is.
    }
  }

  if (!response.ok) {
    throw new ServerConnection.ResponseError(
      response,
      errorText(response, data)
    );
  }

  return data as T;
}

/**
 * The message of an error answer: the West Tek `{message}` body, else a short
 * text body, else the HTTP status (never an HTML page or an object).
 *
 * @param response The error answer
 * @param data Its body, parsed as JSON when it was JSON
 * @returns A sentence to show the researcher
 */
export function errorText(response: Response, data: unknown): string {
  if (data && typeof data === 'object') {
    const message = (data as { message?: unknown }).message;
    if (typeof message === 'string' && message.trim()) {
      return message;
    }
  } else if (
    typeof data === 'string' &&
    data.trim() &&
    !data.trim().startsWith('<') &&
    data.length < 500
  ) {
    return data.trim();
  }
  return `${response.status} ${response.statusText}`.trim();
}
