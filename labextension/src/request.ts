import { URLExt } from '@jupyterlab/coreutils';

import { ServerConnection } from '@jupyterlab/services';

/**
 * Path of the West Tek REST API below the Jupyter server's base URL.
 */
export const API_NAMESPACE = 'westtek/api';

/**
 * Call the West Tek server extension and answer the raw response, for bodies
 * read as they come (a stream, a file to download).
 *
 * @param endPoint API end point below `westtek/api`, with any query string
 * @param init Initial values for the request (method, body…)
 * @param serverSettings Settings of the Jupyter server to call
 * @returns The 2xx response, its body unread
 * @throws {ServerConnection.NetworkError} when the server cannot be reached
 * @throws {ServerConnection.ResponseError} when the server answers non-2xx
 */
export async function fetchAPI(
  endPoint: string,
  init: RequestInit = {},
  serverSettings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<Response> {
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
  if (!response.ok) {
    throw new ServerConnection.ResponseError(
      response,
      errorText(response, parseBody(await response.text()))
    );
  }
  return response;
}

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
  const response = await fetchAPI(endPoint, init, serverSettings);
  return parseBody(await response.text()) as T;
}

/**
 * A body as JSON when it is JSON, else its text (error pages, e.g. Tornado's
 * 404, are HTML).
 */
function parseBody(text: string): unknown {
  if (text.length > 0) {
    try {
      return JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
  }
  return text;
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
