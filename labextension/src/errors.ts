/**
 * Errors of the gpuoutlet REST API, and what the sidebar says about each.
 *
 * The server extension answers `{"error": {"code", "message", ...}}` (IErrorBody, generated
 * from its models): its own codes, or the rentals API's codes passed through with the API's
 * own message in `upstreamMessage`. The message is already in the user's words; this module
 * picks the headline, the amounts and lists to show beside it, and keeps the API's words.
 *
 * Pure: no JupyterLab imports, so the mapping is unit-tested on its own.
 */
import { IErrorBody, IFieldProblem } from './types';

/** Which request failed: a 404 means something else for `status` than for a rental. */
export type Endpoint =
  | 'status'
  | 'templates'
  | 'families'
  | 'wallet'
  | 'keys'
  | 'addKey'
  | 'rentals'
  | 'preview'
  | 'launch'
  | 'rental'
  | 'stop'
  | 'keep'
  | 'settle'
  | 'saveSize'
  | 'transfer'
  | 'telemetry'
  | 'ports'
  | 'forward'
  | 'auth'
  | 'requestCode'
  | 'verifyCode'
  | 'logout';

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
  | 'session_expired'
  | 'insufficient_balance'
  | 'unknown_family'
  | 'model_unavailable'
  | 'key_not_on_account'
  | 'upstream_unreachable'
  | 'upstream_malformed'
  | 'upstream_failed'
  | 'rate_limited'
  | 'validation'
  | 'spending_cap'
  | 'not_active'
  | 'starting'
  | 'not_found'
  | 'network'
  | 'auth'
  | 'create_lost'
  | 'pod'
  | 'sign_in'
  | 'other_account'
  | 'other';

export interface IErrorInfo {
  kind: ErrorKind;
  /** The error code as the server sent it (`insufficient_balance`, `http_404`, ...). */
  code: string;
  /** A short headline. */
  title: string;
  /** The full, specific message: what happened and what to do. */
  message: string;
  /** The rentals API's own words, when the message does not quote them already. */
  apiSaid?: string;
  /** Field problems of a validation error, keyed by the form field (camelCase). */
  fields?: Record<string, string>;
  /** `insufficient_balance`: one hour of the rental, and what the wallet has available. */
  neededCents?: number;
  availableCents?: number;
  /** `rate_limited`: when to try again. */
  retryAfterSeconds?: number;
  /** `unknown_family`: close ids; `model_unavailable`: what has capacity now. */
  suggestions?: string[];
  alternatives?: string[];
  /** The rentals API's own `details` (`code_invalid`: `attemptsLeft`). */
  details?: Record<string, unknown>;
}

/** The command that enables the server extension, for the "missing" message. */
export const ENABLE_COMMAND = 'jupyter server extension enable gpuoutlet_jupyter';

/** Where the HTTP status class points, for codes the sidebar has no headline of its own for. */
function statusTitle(status: number): string {
  if (status === 0) {
    return 'Error';
  }
  if (status >= 500) {
    return `The gpuoutlet extension failed (${status})`;
  }
  if (status === 409) {
    return 'Not possible right now (409)';
  }
  if (status >= 400) {
    return `Refused (${status})`;
  }
  return `Error ${status}`;
}

function fieldsOf(problems: IFieldProblem[] | null | undefined): Record<string, string> {
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
    return { kind: 'other', code: 'error', title: 'Something went wrong', message };
  }
  const { status, body, endpoint } = error;
  const code = body.code;
  const info = (kind: ErrorKind, title: string, extra: Partial<IErrorInfo> = {}): IErrorInfo => {
    const result: IErrorInfo = { kind, code, title, message: body.message, ...extra };
    if (body.details) {
      result.details = body.details;
    }
    const said = body.upstreamMessage;
    if (said && !result.message.includes(said)) {
      result.apiSaid = said;
    }
    return result;
  };
  if (code === NETWORK_ERROR) {
    return info('network', 'The Jupyter server does not answer', {
      message: `The Jupyter server could not be reached (${body.message}). Check that it is still running, then reload this page.`
    });
  }
  // Jupyter's own 404 (an HTML page, no JSON `error`): no gpuoutlet handlers at all.
  if (status === 404 && (endpoint === 'status' || code.startsWith('http_'))) {
    return info('extension_missing', 'The gpuoutlet server extension is not running', {
      message:
        'This Jupyter server has no gpuoutlet API (404 on gpuoutlet/api/status): the ' +
        'server extension is not installed or not enabled. Install gpuoutlet-jupyter in the ' +
        `environment that runs the Jupyter server, run \`${ENABLE_COMMAND}\`, and restart the server.`
    });
  }
  switch (code) {
    case 'not_configured':
      return info('not_configured', 'No gpuoutlet session is configured');
    case 'unauthorized':
      // gpuoutlet's 401: the sid expired or was signed out. The message says how to sign in.
      return info('session_expired', 'Your gpuoutlet session has expired');
    case 'insufficient_balance': {
      const needed = numberOrUndefined(body.neededCents);
      const available = numberOrUndefined(body.availableCents);
      return info('insufficient_balance', 'Not enough balance', {
        neededCents: needed,
        availableCents: available
      });
    }
    case 'unknown_family':
      return info(
        'unknown_family',
        `Unknown GPU family${body.familyId ? ` “${body.familyId}”` : ''}`,
        {
          suggestions: stringsOf(body.suggestions),
          fields: { familyId: body.message }
        }
      );
    case 'model_unavailable':
      return info('model_unavailable', 'No machine like this is free right now', {
        alternatives: stringsOf(body.alternatives)
      });
    case 'invalid_count':
      return info('validation', 'A rental has 1, 2, 4 or 8 GPUs', {
        fields: { gpuCount: body.message, ...fieldsOf(body.problems) }
      });
    case 'validation_error':
    case 'validation_failed':
    case 'invalid_json':
      return info('validation', 'The request was refused', { fields: fieldsOf(body.problems) });
    case 'key_not_on_account':
      return info('key_not_on_account', 'Your SSH key is not on your gpuoutlet account');
    case 'upstream_unreachable': {
      const where = body.apiUrl ? ` at ${body.apiUrl}` : '';
      return info('upstream_unreachable', `The rentals API${where} cannot be reached`);
    }
    case 'upstream_malformed':
      return info('upstream_malformed', 'The rentals API answered something unexpected');
    case 'rate_limited': {
      const retry = numberOrUndefined(body.retryAfterSeconds);
      return info('rate_limited', 'Too many requests to gpuoutlet', {
        message:
          retry !== undefined
            ? `${body.message} Try again in ${retry} s (gpuoutlet allows 100 requests a minute per session, shared with its website).`
            : body.message,
        retryAfterSeconds: retry
      });
    }
    case 'not_created':
      return info('create_lost', 'Not created, nothing charged');
    case 'create_unknown':
      return info('create_lost', 'The answer to this create was lost');
    case 'create_ambiguous':
      return info('create_lost', 'Several rentals match this create: keep which?');
    case 'spending_cap':
      return info('spending_cap', 'Over your spending cap');
    case 'code_request_rate_limited':
      return info('sign_in', 'A code was sent less than 30 s ago', {
        retryAfterSeconds: numberOrUndefined(body.retryAfterSeconds)
      });
    case 'code_invalid':
      return info('sign_in', 'That sign-in code is not right');
    case 'code_expired':
      return info('sign_in', 'That sign-in code has expired');
    case 'invalid_email':
      return info('sign_in', 'gpuoutlet does not accept that email address', {
        fields: { email: body.message }
      });
    case 'other_account_active':
      return info('other_account', 'Rentals of another account are still watched here');
    case 'not_active':
      return info('not_active', 'This rental is not running any more');
    case 'starting':
      return info('starting', 'The gpuoutlet extension is starting');
    case 'pod_not_reachable':
      return info('pod', 'The pod cannot be reached');
    case 'pod_unreachable':
    case 'pod_error':
      return info('pod', 'The pod did not answer over SSH');
    case 'forward_failed':
      return info('pod', 'The port could not be opened');
    case 'rental_not_found':
      return info('not_found', 'No such rental on your account');
    case 'unauthenticated':
      return info('auth', 'Jupyter refused the request', {
        message: `${body.message} Reload the page; you may need to log in to Jupyter again.`
      });
    case 'forbidden':
      if (body.upstreamCode === 'forbidden') {
        return info('auth', 'gpuoutlet does not allow this');
      }
      return info('auth', 'Jupyter refused the request', {
        message: `${body.message} Reload the page; you may need to log in to Jupyter again.`
      });
    default:
      break;
  }
  if (status === 404) {
    return info('not_found', 'Not found');
  }
  if (body.upstreamStatus && body.upstreamStatus >= 500) {
    return info('upstream_failed', `The rentals API failed (${body.upstreamStatus})`);
  }
  return info('other', statusTitle(status));
}

/**
 * Whether a failed create may have been made anyway: the answer was lost on the way back (the
 * rentals API has no idempotency key, so it must never be sent again blindly).
 */
export function createMayHaveHappened(error: unknown): boolean {
  if (!(error instanceof ApiError)) {
    return true;
  }
  if (error.status === 0 || error.code === NETWORK_ERROR) {
    return true;
  }
  if (['not_created', 'create_unknown', 'create_ambiguous'].includes(error.code)) {
    return false; // the server settled it (or says how) by the rental's name
  }
  return ['upstream_unreachable', 'upstream_malformed', 'internal_error'].includes(error.code)
    ? true
    : error.status >= 500 && error.status !== 503;
}

function numberOrUndefined(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function stringsOf(value: unknown): string[] | undefined {
  return Array.isArray(value) && value.length > 0 ? value.map(String) : undefined;
}
