import { ApiError, describeError, errorFromResponse, NETWORK_ERROR } from '../errors';

describe('errorFromResponse', () => {
  it('reads the JSON error member', () => {
    const error = errorFromResponse(
      402,
      JSON.stringify({
        error: {
          code: 'insufficient_balance',
          message: 'no',
          requiredCents: 65,
          availableCents: 10
        }
      }),
      'launch'
    );
    expect(error.status).toBe(402);
    expect(error.code).toBe('insufficient_balance');
    expect(error.body.requiredCents).toBe(65);
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

  it('gives both amounts of a 402 and what is missing', () => {
    const info = body(402, {
      code: 'insufficient_balance',
      message: 'x',
      requiredCents: 65,
      availableCents: 10
    });
    expect(info.kind).toBe('insufficient_balance');
    expect(info.message).toContain('$0.65');
    expect(info.message).toContain('$0.10');
    expect(info.message).toContain('$0.55');
    expect([info.requiredCents, info.availableCents]).toEqual([65, 10]);
  });

  it('falls back to the server message when a 402 lacks the amounts', () => {
    const info = body(402, { code: 'insufficient_balance', message: 'Top up.' });
    expect(info.message).toBe('Top up.');
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

  it('maps the other codes', () => {
    expect(body(502, { code: 'upstream_malformed', message: 'm' }).kind).toBe('upstream_malformed');
    expect(body(409, { code: 'no_capacity', message: 'm' }).kind).toBe('no_capacity');
    expect(body(503, { code: 'starting', message: 'm' }).kind).toBe('starting');
    expect(body(404, { code: 'endpoint_unavailable', message: 'm' }, 'families').kind).toBe(
      'endpoint_unavailable'
    );
    expect(body(401, { code: 'unauthenticated', message: 'm' }).kind).toBe('auth');
    expect(body(409, { code: 'spending_cap', message: 'Not rented: ...' })).toMatchObject({
      kind: 'spending_cap',
      title: 'Over your spending cap',
      message: 'Not rented: ...'
    });
    expect(body(409, { code: 'not_active', message: 'It stopped.' }, 'keep')).toMatchObject({
      kind: 'not_active',
      message: 'It stopped.'
    });
    expect(body(404, { code: 'not_found', message: 'No rental rent_x.' }, 'rental').kind).toBe(
      'not_found'
    );
    expect(body(500, { code: 'internal_error', message: 'bug' }).title).toBe('Error 500');
    const rate = body(429, { code: 'rate_limited', message: 'Slow down.', retryAfterSeconds: 4 });
    expect(rate.message).toBe('Slow down. Retrying in 4 s is fine.');
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
      title: 'Something went wrong',
      message: 'boom'
    });
  });
});
