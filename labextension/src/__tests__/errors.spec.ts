import {
  ApiError,
  createMayHaveHappened,
  describeError,
  errorFromResponse,
  NETWORK_ERROR
} from '../errors';

/**
 * The error bodies below are the server extension's (gpuoutlet_jupyter/rest/errors.py): its own
 * codes, or the rentals API's codes passed through with `upstreamCode`/`upstreamMessage`.
 */
describe('errorFromResponse', () => {
  it('reads the JSON error member', () => {
    const error = errorFromResponse(
      403,
      JSON.stringify({
        error: {
          code: 'insufficient_balance',
          message: 'no',
          neededCents: 65,
          availableCents: 10
        }
      }),
      'launch'
    );
    expect(error.status).toBe(403);
    expect(error.code).toBe('insufficient_balance');
    expect(error.body.neededCents).toBe(65);
    expect(error.endpoint).toBe('launch');
  });

  it('survives a body that is not JSON (Jupyter 404 page, a proxy 502)', () => {
    const error = errorFromResponse(404, '<html>404</html>', 'status', 'Not Found');
    expect(error.code).toBe('http_404');
    expect(error.message).toBe('HTTP 404 Not Found');
  });

  it("reads Jupyter's own JSON errors", () => {
    const error = errorFromResponse(403, JSON.stringify({ message: 'Forbidden', reason: null }));
    expect(error.code).toBe('http_403');
    expect(error.message).toBe('Forbidden');
  });
});

describe('describeError', () => {
  const body = (status: number, error: Record<string, unknown>, endpoint = 'launch') =>
    describeError(errorFromResponse(status, JSON.stringify({ error }), endpoint as never));

  it('says how to install the server extension on a 404 of status', () => {
    const info = describeError(errorFromResponse(404, 'nope', 'status'));
    expect(info.kind).toBe('extension_missing');
    expect(info.message).toContain('jupyter server extension enable gpuoutlet_jupyter');
  });

  it('keeps the not_configured message, which says how to set a sid', () => {
    const message =
      'No gpuoutlet session is configured for https://gpuoutlet.ai. ... GPUOUTLET_SID=<sid> ...';
    const info = body(503, { code: 'not_configured', message }, 'rentals');
    expect(info.kind).toBe('not_configured');
    expect(info.message).toBe(message);
  });

  it('says an expired session is one, with how to sign in again (not "sign in" for any 403)', () => {
    const message =
      'Your gpuoutlet session has expired or was signed out, so nothing could be done (gpuoutlet ' +
      'said: “Not signed in”). Sign in again: on https://gpuoutlet.ai sign in, copy the new `sid` ...';
    const expired = body(401, {
      code: 'unauthorized',
      message,
      upstreamCode: 'unauthorized',
      upstreamMessage: 'Not signed in',
      upstreamStatus: 401
    });
    expect(expired).toMatchObject({
      kind: 'session_expired',
      code: 'unauthorized',
      title: 'Your gpuoutlet session has expired',
      message
    });
    expect(expired.apiSaid).toBeUndefined(); // quoted in the message already
    // gpuoutlet's 403 for a short wallet is not a sign-in problem.
    const short = body(403, {
      code: 'insufficient_balance',
      message: 'Not enough balance for 8× h100-80gb: ... (gpuoutlet said: “wallet too low”)',
      upstreamCode: 'insufficient_balance',
      upstreamMessage: 'wallet too low',
      neededCents: 2240,
      availableCents: 1000
    });
    expect(short.kind).toBe('insufficient_balance');
    expect([short.neededCents, short.availableCents]).toEqual([2240, 1000]);
    // ... and gpuoutlet's own `forbidden` is not Jupyter refusing the page.
    const forbidden = body(403, {
      code: 'forbidden',
      message: 'gpuoutlet refused: that rental belongs to someone else.',
      upstreamCode: 'forbidden',
      upstreamMessage: 'Not allowed'
    });
    expect(forbidden.title).toBe('gpuoutlet does not allow this');
    expect(forbidden.apiSaid).toBe('Not allowed');
    expect(body(403, { code: 'forbidden', message: 'XSRF cookie missing' }).message).toContain(
      'log in to Jupyter again'
    );
  });

  it('names an unknown family with the close ids, against the family field', () => {
    const message =
      "There is no GPU family 'rtx-5090' in gpuoutlet's catalog. Did you mean rtx-4090 or rtx-3090? ...";
    const info = body(
      400,
      {
        code: 'unknown_family',
        message,
        familyId: 'rtx-5090',
        suggestions: ['rtx-4090', 'rtx-3090']
      },
      'preview'
    );
    expect(info).toMatchObject({
      kind: 'unknown_family',
      title: 'Unknown GPU family “rtx-5090”',
      suggestions: ['rtx-4090', 'rtx-3090'],
      fields: { familyId: message }
    });
  });

  it('puts an invalid count against the GPU field', () => {
    const info = body(400, {
      code: 'invalid_count',
      message: 'gpuoutlet refused the GPU count: a rental has 1, 2, 4 or 8 GPUs.',
      upstreamCode: 'invalid_count',
      upstreamMessage: 'GPU count must be 1, 2, 4 or 8'
    });
    expect(info.kind).toBe('validation');
    expect(info.title).toBe('A rental has 1, 2, 4 or 8 GPUs');
    expect(info.fields?.gpuCount).toContain('1, 2, 4 or 8 GPUs');
    expect(info.apiSaid).toBe('GPU count must be 1, 2, 4 or 8');
  });

  it('lists what has capacity now when the shape is unavailable', () => {
    const info = body(400, {
      code: 'model_unavailable',
      message: 'No provider has 8× b200 right now. Available now: 1× b200 in US-East.',
      upstreamCode: 'model_unavailable',
      upstreamMessage: 'No provider available for this config',
      alternatives: ['1× b200 in US-East']
    });
    expect(info).toMatchObject({
      kind: 'model_unavailable',
      alternatives: ['1× b200 in US-East'],
      apiSaid: 'No provider available for this config'
    });
  });

  it('says when to try again after a rate limit', () => {
    const rate = body(429, {
      code: 'rate_limited',
      message: 'gpuoutlet refused: too many requests.',
      retryAfterSeconds: 23,
      upstreamMessage: 'Too many requests. Retry after 23 seconds.'
    });
    expect(rate.kind).toBe('rate_limited');
    expect(rate.retryAfterSeconds).toBe(23);
    expect(rate.message).toContain('Try again in 23 s');
    expect(rate.apiSaid).toBe('Too many requests. Retry after 23 seconds.');
  });

  it('names the API that cannot be reached', () => {
    const info = body(502, {
      code: 'upstream_unreachable',
      message: 'connect timeout',
      apiUrl: 'https://gpuoutlet.ai'
    });
    expect(info.kind).toBe('upstream_unreachable');
    expect(info.title).toBe('The rentals API at https://gpuoutlet.ai cannot be reached');
  });

  it('maps the other codes, and any other by its status class with the message kept', () => {
    expect(body(502, { code: 'upstream_malformed', message: 'm' }).kind).toBe('upstream_malformed');
    expect(body(503, { code: 'starting', message: 'm' }).kind).toBe('starting');
    expect(body(401, { code: 'unauthenticated', message: 'm' }).kind).toBe('auth');
    expect(body(409, { code: 'key_not_on_account', message: 'Not rented: ...' }).kind).toBe(
      'key_not_on_account'
    );
    expect(body(409, { code: 'spending_cap', message: 'Not rented: ...' })).toMatchObject({
      kind: 'spending_cap',
      title: 'Over your spending cap',
      message: 'Not rented: ...'
    });
    expect(body(409, { code: 'not_active', message: 'It stopped.' }, 'keep')).toMatchObject({
      kind: 'not_active',
      message: 'It stopped.'
    });
    expect(
      body(404, { code: 'rental_not_found', message: 'No rental rent_x.' }, 'stop')
    ).toMatchObject({
      kind: 'not_found',
      title: 'No such rental on your account'
    });
    expect(body(500, { code: 'internal_error', message: 'bug' }).title).toBe(
      'The gpuoutlet extension failed (500)'
    );
    const other = body(502, {
      code: 'internal_error',
      message: 'gpuoutlet failed (500): try again shortly.',
      upstreamCode: 'internal_error',
      upstreamMessage: 'unexpected',
      upstreamStatus: 500
    });
    expect(other).toMatchObject({
      kind: 'upstream_failed',
      title: 'The rentals API failed (500)',
      apiSaid: 'unexpected'
    });
    expect(body(400, { code: 'duplicate_key', message: 'Already there.' })).toMatchObject({
      kind: 'other',
      title: 'Refused (400)',
      message: 'Already there.'
    });
  });

  it('collects validation problems by field', () => {
    const info = body(400, {
      code: 'validation_error',
      message: 'Invalid',
      problems: [
        { field: 'name', problem: 'too long' },
        { field: 'name', problem: 'bad' },
        { field: 'gpuCount', problem: 'must be one of 1, 2, 4, 8' }
      ]
    });
    expect(info.fields).toEqual({ name: 'too long; bad', gpuCount: 'must be one of 1, 2, 4, 8' });
  });

  it('says the Jupyter server is down on a network error', () => {
    const info = describeError(
      new ApiError(0, { code: NETWORK_ERROR, message: 'Failed to fetch' })
    );
    expect(info.kind).toBe('network');
  });

  it('describes anything else thrown', () => {
    expect(describeError(new Error('boom'))).toEqual({
      kind: 'other',
      code: 'error',
      title: 'Something went wrong',
      message: 'boom'
    });
  });
});

describe('createMayHaveHappened', () => {
  const error = (status: number, code: string) => new ApiError(status, { code, message: 'm' });

  it('is true when the answer may have been lost after gpuoutlet made the rental', () => {
    expect(createMayHaveHappened(error(0, NETWORK_ERROR))).toBe(true);
    expect(createMayHaveHappened(error(502, 'upstream_unreachable'))).toBe(true);
    expect(createMayHaveHappened(error(502, 'upstream_malformed'))).toBe(true);
    expect(createMayHaveHappened(error(500, 'internal_error'))).toBe(true);
    expect(createMayHaveHappened(new Error('?'))).toBe(true);
  });

  it('is false for a refusal (nothing was made)', () => {
    for (const [status, code] of [
      [400, 'validation_error'],
      [403, 'insufficient_balance'],
      [409, 'spending_cap'],
      [409, 'key_not_on_account'],
      [429, 'rate_limited'],
      [401, 'unauthorized'],
      [503, 'not_configured'],
      [503, 'starting']
    ] as const) {
      expect(createMayHaveHappened(error(status, code))).toBe(false);
    }
  });
});
