/**
 * The one typed call to the gpuoutlet server extension: `{base_url}gpuoutlet/api/<path>`.
 *
 * Jupyter's own authentication applies (token or cookie + XSRF, handled by ServerConnection).
 * Failures are thrown as ApiError with the HTTP status and the JSON `error` member.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { ApiError, Endpoint, errorFromResponse, NETWORK_ERROR } from './errors';

/** Where the REST API lives, relative to the server's base URL. */
export const API_NAMESPACE = 'gpuoutlet/api';

export async function requestAPI<T>(
  path = '',
  init: RequestInit = {},
  endpoint: Endpoint | null = null,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, API_NAMESPACE, path);
  const headers = new Headers(init.headers ?? {});
  if (init.body !== undefined && !headers.has('Content-Type')) {
    headers.set('Content-Type', 'application/json');
  }
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, { ...init, headers }, settings);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new ApiError(0, { code: NETWORK_ERROR, message }, endpoint);
  }
  const text = await response.text();
  if (!response.ok) {
    throw errorFromResponse(response.status, text, endpoint, response.statusText);
  }
  if (!text) {
    return {} as T;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ApiError(
      response.status,
      {
        code: 'invalid_reply',
        message: `The gpuoutlet server extension sent a reply that is not JSON (${path}).`
      },
      endpoint
    );
  }
}
