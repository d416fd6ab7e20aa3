/**
 * Errors of the gpuoutlet REST API, and what the sidebar says about each.
 *
 * Pure: no JupyterLab imports, so the mapping is unit-tested on its own.
 */
import { formatCents } from './format';
import { IErrorBody, IFieldProblem } from './types';

/** Which request failed: a 404 means something else for `status` than for a rental. */
export type Endpoint =
  'status' | 'families' | 'wallet' | 'rentals' | 'launch' | 'rental' | 'stop' | 'keep';

/** A failed request to the server extension: the HTTP status and the JSON `error` member. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: IErrorBody,
    readonly endpoint: Endpoint | null = null
  ) {
    super(body.message);
    this.name = 'ApiError';
  }

  get code(): string {
    return this.body.code;
  }
}

/** The `code` of a failure that never reached the server (the Jupyter server is down). */
export const NETWORK_ERROR = 'network_error';

/**
 * An ApiError from an HTTP status and a response text, which may not be JSON at all
 * (Jupyter's own 404 page when the server extension is not loaded, a proxy's 502 page).
 */
export function errorFromResponse(
  status: number,
  text: string,
  endpoint: Endpoint | null = null,
  statusText = ''
): ApiError {
  let body: IErrorBody | null = null;
  try {
    const data = JSON.parse(text) as unknown;
    const error = (data as { error?: unknown } | null)?.error;
    if (error && typeof error === 'object' && typeof (error as IErrorBody).code === 'string') {
      const candidate = error as IErrorBody;
      body = { ...candidate, message: String(candidate.message ?? candidate.code) };
    } else if (data && typeof (data as { message?: unknown }).message === 'string') {
      // Jupyter's own JSON errors: {"message": ..., "reason": ...}
      body = { code: `http_${status}`, message: (data as { message: string }).message };
    }
  } catch {
    // not JSON: fall through
  }
  if (body === null) {
    body = {
      code: `http_${status}`,
      message: `HTTP ${status}${statusText ? ` ${statusText}` : ''}`
    };
  }
  return new ApiError(status, body, endpoint);
}

/** How the sidebar shows one error. */
export type ErrorKind =
  | 'extension_missing'
  | 'not_configured'
  | 'insufficient_balance'
  | 'upstream_unreachable'
  | 'upstream_malformed'
  | 'no_capacity'
  | 'rate_limited'
  | 'validation'
  | 'spending_cap'
  | 'not_active'
  | 'starting'
  | 'endpoint_unavailable'
  | 'not_found'
  | 'network'
  | 'auth'
  | 'other';

export interface IErrorInfo {
  kind: ErrorKind;
  /** A short headline. */
  title: string;
  /** The full, specific message: what happened and what to do. */
  message: string;
  /** Field problems of a validation error, keyed by the form field (camelCase). */
  fields?: Record<string, string>;
  requiredCents?: number;
  availableCents?: number;
  retryAfterSeconds?: number;
}

/** The command that enables the server extension, for the "missing" message. */
export const ENABLE_COMMAND = 'jupyter server extension enable gpuoutlet_jupyter';

function fieldsOf(problems: IFieldProblem[] | undefined): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const { field, problem } of problems ?? []) {
    fields[field] = fields[field] ? `${fields[field]}; ${problem}` : problem;
  }
  return fields;
}

/** What to show for an error thrown by a request (or anything else thrown). */
export function describeError(error: unknown): IErrorInfo {
  if (!(error instanceof ApiError)) {
    const message = error instanceof Error ? error.message : String(error);
    return { kind: 'other', title: 'Something went wrong', message };
  }
  const { status, body, endpoint } = error;
  const code = body.code;
  if (code === NETWORK_ERROR) {
    return {
      kind: 'network',
      title: 'The Jupyter server does not answer',
      message: `The Jupyter server could not be reached (${body.message}). Check that it is still running, then reload this page.`
    };
  }
  // Jupyter's own 404 (an HTML page, no JSON `error`): no gpuoutlet handlers at all.
  if (status === 404 && (endpoint === 'status' || code.startsWith('http_'))) {
    return {
      kind: 'extension_missing',
      title: 'The gpuoutlet server extension is not running',
      message:
        'This Jupyter server has no gpuoutlet API (404 on gpuoutlet/api/status): the ' +
        'server extension is not installed or not enabled. Install gpuoutlet-jupyter in the ' +
        `environment that runs the Jupyter server, run \`${ENABLE_COMMAND}\`, and restart the server.`
    };
  }
  switch (code) {
    case 'not_configured':
      return {
        kind: 'not_configured',
        title: 'No gpuoutlet session is configured',
        message: body.message
      };
    case 'insufficient_balance': {
      const required = numberOrUndefined(body.requiredCents);
      const available = numberOrUndefined(body.availableCents);
      let message = body.message;
      if (required !== undefined && available !== undefined) {
        const missing = Math.max(0, required - available);
        message =
          `This rental needs ${formatCents(required)} (one hour of its cost) available in ` +
          `your wallet, which has ${formatCents(available)} available. Add at least ` +
          `${formatCents(missing)} to your gpuoutlet wallet, or pick a cheaper GPU or fewer GPUs.`;
      }
      return {
        kind: 'insufficient_balance',
        title: 'Not enough balance',
        message,
        requiredCents: required,
        availableCents: available
      };
    }
    case 'upstream_unreachable': {
      const where = typeof body.apiUrl === 'string' ? ` at ${body.apiUrl}` : '';
      return {
        kind: 'upstream_unreachable',
        title: `The rentals API${where} cannot be reached`,
        message: body.message
      };
    }
    case 'upstream_malformed':
      return {
        kind: 'upstream_malformed',
        title: 'The rentals API answered something unexpected',
        message: body.message
      };
    case 'no_capacity':
      return {
        kind: 'no_capacity',
        title: 'No capacity right now',
        message: body.message
      };
    case 'rate_limited': {
      const retry = numberOrUndefined(body.retryAfterSeconds);
      return {
        kind: 'rate_limited',
        title: 'Too many requests',
        message:
          retry !== undefined ? `${body.message} Retrying in ${retry} s is fine.` : body.message,
        retryAfterSeconds: retry
      };
    }
    case 'validation_error':
    case 'invalid_json':
      return {
        kind: 'validation',
        title: 'The request was refused',
        message: body.message,
        fields: fieldsOf(body.problems)
      };
    case 'spending_cap':
      return {
        kind: 'spending_cap',
        title: 'Over your spending cap',
        message: body.message
      };
    case 'not_active':
      return {
        kind: 'not_active',
        title: 'This rental is not running any more',
        message: body.message
      };
    case 'starting':
      return {
        kind: 'starting',
        title: 'The gpuoutlet extension is starting',
        message: body.message
      };
    case 'endpoint_unavailable':
      return {
        kind: 'endpoint_unavailable',
        title: 'Not offered by this rentals API',
        message: body.message
      };
    case 'unauthenticated':
      return {
        kind: 'auth',
        title: 'The gpuoutlet session was refused',
        message: body.message
      };
    case 'forbidden':
      return {
        kind: 'auth',
        title: 'Not allowed',
        message: `${body.message} Reload the page; you may need to log in to Jupyter again.`
      };
    default:
      break;
  }
  if (status === 404) {
    return { kind: 'not_found', title: 'Not found', message: body.message };
  }
  return {
    kind: 'other',
    title: status ? `Error ${status}` : 'Error',
    message: body.message
  };
}

function numberOrUndefined(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}
