import { GpuOutletModel } from '../model';
import {
  FakeServer,
  FAMILIES,
  KEYS,
  KEYS_MISSING,
  preview,
  quoting,
  Reply,
  STATUS,
  STOP_NOTICE_TEXT,
  TEMPLATES,
  view,
  WALLET
} from './fake';

function configuredServer(): FakeServer {
  return new FakeServer()
    .on('GET status', STATUS)
    .on('GET templates', { templates: TEMPLATES })
    .on('GET families', { families: FAMILIES })
    .on('GET wallet', WALLET)
    .on('GET keys', KEYS)
    .on('GET rentals', { rentals: [], pendingCreates: [], version: 0 })
    .on('POST rentals/preview', quoting);
}

function makeModel(server: FakeServer, options: Partial<GpuOutletModel.IOptions> = {}) {
  return new GpuOutletModel({ request: server.request, auto: false, quoteDelay: 1, ...options });
}

/** A model that has read everything and has the quote for its form. */
async function readyModel(server: FakeServer, options: Partial<GpuOutletModel.IOptions> = {}) {
  const model = makeModel(server, options);
  await model.refresh();
  await model.requestQuote();
  return model;
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

describe('GpuOutletModel refresh', () => {
  it('loads the status, templates, families, keys and wallet, and picks the cheapest family', async () => {
    const server = configuredServer();
    const model = makeModel(server);
    let changes = 0;
    model.changed.connect(() => changes++);
    await model.refresh();
    expect(model.status?.session?.email).toBe('alice@example.com');
    expect(model.families?.map(f => f.id)).toEqual(FAMILIES.map(f => f.id));
    expect(model.templates?.map(t => t.id)).toEqual(TEMPLATES.map(t => t.id));
    expect(model.wallet).toEqual(WALLET);
    expect(model.keys?.local?.onAccount).toBe(true);
    expect(model.keyMissing).toBe(false);
    expect(model.form.familyId).toBe('rtx-3090'); // 32 ¢ a GPU: the cheapest
    expect(model.form.templateId).toBe('ubuntu-24-04');
    // The catalog's price is a hint until gpuoutlet's quote comes.
    expect(model.hourCostCents).toBe(32);
    expect(model.stopNotice).toBe(STOP_NOTICE_TEXT);
    expect(changes).toBeGreaterThan(0);
    // The templates are gpuoutlet's fixed six: read once.
    await model.refresh();
    expect(server.callsTo('templates')).toHaveLength(1);
    expect(server.callsTo('families')).toHaveLength(2);
    model.dispose();
  });

  it('maps a 404 on status to "server extension missing" and rejects (so the poll backs off)', async () => {
    const server = new FakeServer();
    const model = makeModel(server);
    await expect(model.refresh()).rejects.toThrow();
    expect(model.statusError?.kind).toBe('extension_missing');
    expect(model.statusError?.message).toContain(
      'jupyter server extension enable gpuoutlet_jupyter'
    );
    expect(server.callsTo('families')).toHaveLength(0);
    model.dispose();
  });

  it('asks nothing else when no sid is configured', async () => {
    const problem = 'No gpuoutlet session is configured ... set GPUOUTLET_SID=<sid> ...';
    const server = configuredServer().on('GET status', {
      ...STATUS,
      configured: false,
      sidConfigured: false,
      sidSource: null,
      session: null,
      problem
    });
    const model = makeModel(server);
    await model.refresh();
    expect(model.status?.problem).toBe(problem);
    for (const path of ['families', 'wallet', 'keys', 'templates']) {
      expect(server.callsTo(path)).toHaveLength(0);
    }
    await model.requestQuote();
    expect(server.callsTo('rentals/preview', 'POST')).toHaveLength(0);
    model.dispose();
  });

  it('says the session expired, with how to sign in again, from any 401 unauthorized', async () => {
    const message =
      'Your gpuoutlet session has expired or was signed out, so nothing could be done ' +
      '(gpuoutlet said: “Not signed in”). Sign in again: on http://x sign in, copy the new `sid` cookie ...';
    const expired = Reply.error(401, {
      code: 'unauthorized',
      message,
      upstreamCode: 'unauthorized',
      upstreamMessage: 'Not signed in',
      upstreamStatus: 401
    });
    const server = configuredServer().on('GET wallet', expired).on('GET families', expired);
    const model = makeModel(server);
    await model.refresh();
    expect(model.sessionExpired?.kind).toBe('session_expired');
    expect(model.sessionExpired?.title).toBe('Your gpuoutlet session has expired');
    expect(model.sessionExpired?.message).toContain('Sign in again');
    // The API's words are in the message already: not repeated.
    expect(model.sessionExpired?.apiSaid).toBeUndefined();
    server.on('GET wallet', WALLET).on('GET families', { families: FAMILIES });
    await model.refresh();
    expect(model.sessionExpired).toBeNull();
    model.dispose();
  });
});

describe('GpuOutletModel quote', () => {
  it('asks gpuoutlet for a quote of the form, and again only when the price can change', async () => {
    const server = configuredServer();
    const model = await readyModel(server);
    const [call] = server.callsTo('rentals/preview', 'POST');
    expect(call.body).toEqual({ familyId: 'rtx-3090', gpuCount: 1, templateId: 'ubuntu-24-04' });
    expect(call.endpoint).toBe('preview');
    expect(model.quote?.quote.pricePerHourCents).toBe(32);
    expect(model.quote?.confirmation).toContain('at $0.32/h');
    expect(model.canLaunch).toBe(true);
    // A name does not change the price: the same quote, no request.
    model.updateForm({ name: 'alice/exp-42' });
    await model.requestQuote();
    expect(server.callsTo('rentals/preview', 'POST')).toHaveLength(1);
    expect(model.quote).not.toBeNull();
    // Two GPUs: the old quote no longer applies, and nothing may be rented on it.
    model.updateForm({ gpuCount: 2 });
    expect(model.quote).toBeNull();
    expect(model.canLaunch).toBe(false);
    expect(model.hourCostCents).toBe(64); // the catalog's hint meanwhile
    await model.requestQuote();
    expect(model.quote?.quote.pricePerHourCents).toBe(64);
    model.dispose();
  });

  it('asks once the form has rested, not on every keystroke, and not while hidden', async () => {
    const server = configuredServer();
    const model = makeModel(server, { quoteDelay: 20 });
    await model.refresh();
    await sleep(40);
    expect(server.callsTo('rentals/preview', 'POST')).toHaveLength(1);
    model.updateForm({ gpuCount: 2 });
    model.updateForm({ gpuCount: 4 });
    model.updateForm({ gpuCount: 8 });
    expect(model.quoting).toBe(true);
    await sleep(40);
    const bodies = server.callsTo('rentals/preview', 'POST').map(c => c.body);
    expect(bodies).toHaveLength(2);
    expect((bodies[1] as { gpuCount: number }).gpuCount).toBe(8);
    model.setVisible(false);
    model.updateForm({ gpuCount: 1 });
    await sleep(40);
    expect(server.callsTo('rentals/preview', 'POST')).toHaveLength(2);
    model.dispose();
  });

  it('ignores a quote that comes back after the form changed', async () => {
    const server = configuredServer();
    let release: () => void = () => undefined;
    server.on('POST rentals/preview', async (call: { body: unknown }) => {
      const body = call.body as { gpuCount: number };
      if (body.gpuCount === 1) {
        await new Promise<void>(resolve => (release = resolve));
      }
      return preview(body, 111 * body.gpuCount);
    });
    const model = makeModel(server);
    await model.refresh();
    const slow = model.requestQuote();
    model.updateForm({ gpuCount: 2 });
    await model.requestQuote();
    release();
    await slow;
    expect(model.quote?.quote.pricePerHourCents).toBe(222);
    model.dispose();
  });

  it('shows an unknown family with the close ids, against the family field', async () => {
    const server = configuredServer();
    const model = await readyModel(server);
    model.updateForm({ familyId: 'rtx-5090' });
    await model.requestQuote();
    expect(model.quote).toBeNull();
    expect(model.quoteError).toMatchObject({
      kind: 'unknown_family',
      title: 'Unknown GPU family “rtx-5090”',
      suggestions: ['rtx-4090']
    });
    expect(model.quoteError?.fields?.familyId).toContain("'rtx-5090'");
    expect(model.canLaunch).toBe(false);
    model.dispose();
  });

  it('asks a rate-limited quote again once gpuoutlet says it may', async () => {
    let limited = true;
    const server = configuredServer().on('POST rentals/preview', (call: { body: unknown }) =>
      limited
        ? Reply.error(429, {
            code: 'rate_limited',
            message: 'gpuoutlet refused: too many requests.',
            retryAfterSeconds: 1,
            upstreamCode: 'rate_limited'
          })
        : quoting(call as never)
    );
    const model = makeModel(server);
    await model.refresh();
    await model.requestQuote();
    expect(model.quoteError?.kind).toBe('rate_limited');
    expect(model.quoteError?.message).toContain('Try again in 1 s');
    limited = false;
    await sleep(1200);
    expect(server.callsTo('rentals/preview', 'POST')).toHaveLength(2);
    expect(model.quote?.quote.pricePerHourCents).toBe(32);
    model.dispose();
  });

  it('checks the wallet against the quote live: short, then topped up', async () => {
    const server = configuredServer().on('GET wallet', { ...WALLET, availableCents: 100 });
    const model = await readyModel(server);
    model.updateForm({ familyId: 'h100-80gb', gpuCount: 1 });
    await model.requestQuote();
    expect(model.balanceShort).toBe(true);
    expect(model.canLaunch).toBe(false);
    const [short] = model.problems;
    expect(short).toMatchObject({
      code: 'insufficient_balance',
      neededCents: 280,
      availableCents: 100
    });
    expect(short.message).toContain('$2.80');
    expect(short.message).toContain('$1.00 available');
    expect(short.message).toContain('Add at least $1.80');
    server.on('GET wallet', { ...WALLET, availableCents: 5000 });
    await model.loadWallet();
    expect(model.problems).toEqual([]);
    expect(model.canLaunch).toBe(true);
    expect(server.callsTo('rentals/preview', 'POST')).toHaveLength(2); // no quote for a wallet
    model.dispose();
  });

  it('refuses to rent while the quote says the spending cap would be passed', async () => {
    const server = configuredServer().on('POST rentals/preview', (call: { body: unknown }) =>
      preview(call.body as Record<string, unknown>, 32, {
        problems: [{ code: 'spending_cap', message: 'Not rented: over the cap of $0.20/h.' }]
      })
    );
    const model = await readyModel(server);
    expect(model.problems.map(p => p.code)).toEqual(['spending_cap']);
    expect(model.canLaunch).toBe(false);
    model.dispose();
  });
});

describe('GpuOutletModel SSH key', () => {
  it('refuses to rent until the local key is added, then adds it with one POST', async () => {
    let added = false;
    const server = configuredServer()
      .on('GET keys', () => (added ? KEYS : KEYS_MISSING))
      .on('POST keys', () => {
        added = true;
        return {
          key: KEYS.keys[0],
          alreadyOnAccount: false,
          note: 'Added. Pods created from now on let this key in; pods already running do not.'
        };
      })
      .on('POST rentals/preview', (call: { body: unknown }) =>
        preview(call.body as Record<string, unknown>, 32, {
          keyOnAccount: added,
          problems: added
            ? []
            : [{ code: 'key_not_on_account', message: 'Not rented: your SSH key ...' }]
        })
      );
    const model = await readyModel(server);
    expect(model.keyMissing).toBe(true);
    expect(model.problems.map(p => p.code)).toEqual(['key_not_on_account']);
    expect(model.canLaunch).toBe(false);
    const pending = model.addKey();
    expect(model.addingKey).toBe(true);
    expect(await model.addKey()).toBeNull(); // one at a time
    const reply = await pending;
    expect(reply?.alreadyOnAccount).toBe(false);
    const [post] = server.callsTo('keys', 'POST');
    expect(post.body).toEqual({});
    expect(post.endpoint).toBe('addKey');
    expect(server.callsTo('keys', 'POST')).toHaveLength(1);
    expect(model.keyMissing).toBe(false);
    expect(model.addKeyNote).toContain('pods already running do not');
    // The quote was asked again: the key is on the account now.
    expect(server.callsTo('rentals/preview', 'POST')).toHaveLength(2);
    expect(model.canLaunch).toBe(true);
    model.dispose();
  });

  it('keeps the error when the key cannot be added', async () => {
    const server = configuredServer()
      .on('GET keys', KEYS_MISSING)
      .on('POST keys', () =>
        Reply.error(400, {
          code: 'weak_key',
          message: 'gpuoutlet refused the key: RSA keys need at least 2048 bits.',
          upstreamCode: 'weak_key',
          upstreamMessage: 'Keys must be at least RSA 2048 or Ed25519'
        })
      );
    const model = await readyModel(server);
    expect(await model.addKey()).toBeNull();
    expect(model.addKeyError?.message).toContain('2048');
    expect(model.addKeyError?.apiSaid).toBe('Keys must be at least RSA 2048 or Ed25519');
    expect(model.keyMissing).toBe(true);
    model.dispose();
  });
});

describe('GpuOutletModel rentals', () => {
  it('reads the list once, then long-polls it with wait and since: one request per tick', async () => {
    const server = configuredServer().on('GET rentals', {
      rentals: [view('rent_1', { version: 3 }), view('rent_2', { version: 2 })],
      version: 3
    });
    const model = makeModel(server, { longPollSeconds: 25 });
    await model.pollRentals();
    expect(server.calls.map(c => c.path)).toEqual(['rentals']);
    expect(model.rentals.map(r => r.id).sort()).toEqual(['rent_1', 'rent_2']);
    expect(model.rentalsVersion).toBe(3);
    await model.pollRentals();
    expect(server.calls[1].path).toBe('rentals?wait=25&since=3');
    model.dispose();
  });

  it('takes a list of 130 rentals at once, active ones first', async () => {
    const rentals = Array.from({ length: 130 }, (_, i) =>
      view(`rent_${String(i).padStart(3, '0')}`, {
        status: i % 3 === 0 ? 'running' : 'stopped',
        startedAt: new Date(Date.UTC(2026, 5, 7, 8, 0, i)).toISOString()
      })
    );
    const server = configuredServer().on('GET rentals', { rentals, version: 130 });
    const model = makeModel(server);
    await model.pollRentals();
    expect(model.rentals).toHaveLength(130);
    expect(model.stoppable).toHaveLength(44);
    expect(model.rentals.slice(0, 44).every(r => r.status === 'running')).toBe(true);
    expect(model.rentals[0].id).toBe('rent_129'); // the newest running one
    model.dispose();
  });

  it('ignores a list older than the one shown and keeps a newer view of one rental', () => {
    const model = makeModel(new FakeServer());
    model.applyRentals({ rentals: [view('rent_1', { version: 5 })], version: 5 });
    model.applyRentals({ rentals: [], version: 4 });
    expect(model.rentals).toHaveLength(1);
    // A launch reply (version 7) arrives before the list that includes it.
    model.applyRental(view('rent_2', { version: 7 }));
    model.applyRentals({ rentals: [view('rent_1', { version: 5 })], version: 6 });
    expect(model.rentals.map(r => r.id).sort()).toEqual(['rent_1', 'rent_2']);
    // ... and a stale single view does not replace a newer one.
    model.applyRental(view('rent_1', { version: 4, status: 'running' }));
    expect(model.rentals.find(r => r.id === 'rent_1')?.status).toBe('provisioning');
    model.dispose();
  });

  it('updates a rental in place from provisioning to running', () => {
    const model = makeModel(new FakeServer());
    model.applyRentals({ rentals: [view('rent_1', { version: 1 })], version: 1 });
    const running = view('rent_1', {
      version: 2,
      status: 'running',
      host: '127.0.0.1',
      port: 2222,
      ssh: { alias: 'gpuoutlet-rent_1', command: 'ssh gpuoutlet-rent_1' },
      kernel: 'gpuoutlet-rent_1',
      totalChargedCents: 3,
      costCents: 3
    });
    model.applyRentals({ rentals: [running], version: 2 });
    expect(model.rentals[0].status).toBe('running');
    expect(model.rentals[0].ssh?.command).toBe('ssh gpuoutlet-rent_1');
    expect(model.rentals[0].costCents).toBe(3);
    expect(model.stoppable.map(r => r.id)).toEqual(['rent_1']);
    model.dispose();
  });

  it('lists active rentals first, newest first', () => {
    const model = makeModel(new FakeServer());
    model.applyRentals({
      rentals: [
        view('old_stopped', { status: 'stopped', startedAt: '2026-06-07T10:00:00Z' }),
        view('older_running', { status: 'running', startedAt: '2026-06-07T08:00:00Z' }),
        view('newer_running', { status: 'running', startedAt: '2026-06-07T09:00:00Z' })
      ],
      version: 1
    });
    expect(model.rentals.map(r => r.id)).toEqual(['newer_running', 'older_running', 'old_stopped']);
    model.dispose();
  });

  it('records a rentals error and rethrows it (the poll backs off)', async () => {
    const server = configuredServer().on(
      'GET rentals',
      Reply.error(502, {
        code: 'upstream_unreachable',
        message: 'Could not reach the rentals API at http://x: connection refused.',
        apiUrl: 'http://x'
      })
    );
    const model = makeModel(server);
    await expect(model.pollRentals()).rejects.toThrow();
    expect(model.rentalsError?.kind).toBe('upstream_unreachable');
    expect(model.rentalsError?.title).toContain('http://x');
    model.dispose();
  });
});

describe('GpuOutletModel launch', () => {
  it('sends the form once, on the quote shown, without an idempotency key, and shows the rental', async () => {
    const created = view('rent_9', { version: 4, name: 'alice/exp-42' });
    const server = configuredServer().on('POST rentals', created);
    const model = await readyModel(server);
    model.updateForm({
      familyId: 'rtx-4090',
      gpuCount: 2,
      templateId: 'pytorch',
      region: 'FI',
      name: 'alice/exp-42',
      autoStopAfterHours: '1.5'
    });
    expect(await model.launch()).toBeNull(); // no quote for this form yet
    expect(model.launchError?.code).toBe('no_quote');
    expect(server.callsTo('rentals', 'POST')).toHaveLength(0);
    await model.requestQuote();
    const result = await model.launch();
    expect(result?.id).toBe('rent_9');
    const posts = server.callsTo('rentals', 'POST');
    expect(posts).toHaveLength(1);
    expect(posts[0].body).toEqual({
      familyId: 'rtx-4090',
      gpuCount: 2,
      templateId: 'pytorch',
      region: 'FI',
      name: 'alice/exp-42',
      autoStopAfterHours: 1.5
    });
    expect(posts[0].headers).toEqual({}); // no Idempotency-Key: gpuoutlet has none
    expect(model.rentals.map(r => r.id)).toEqual(['rent_9']);
    expect(model.launching).toBe(false);
    expect(model.launchError).toBeNull();
    model.dispose();
  });

  it('leaves optional fields out of the body', async () => {
    const server = configuredServer().on('POST rentals', view('rent_1'));
    const model = await readyModel(server);
    await model.launch();
    expect(server.callsTo('rentals', 'POST')[0].body).toEqual({
      familyId: 'rtx-3090',
      gpuCount: 1,
      templateId: 'ubuntu-24-04'
    });
    model.dispose();
  });

  it('does not send an invalid form: a count of 3, a template gpuoutlet does not have', async () => {
    const server = configuredServer();
    const model = await readyModel(server);
    model.updateForm({ gpuCount: 3, templateId: 'tensorflow', name: 'x'.repeat(65) });
    const { fields } = model.validation;
    expect(fields.gpuCount).toBe(
      'A rental has 1, 2, 4 or 8 GPUs (3 asked for): pick one of those.'
    );
    expect(fields.templateId).toContain('no template “tensorflow”');
    expect(fields.templateId).toContain('pytorch');
    expect(fields.name).toContain('64');
    await model.requestQuote();
    expect(await model.launch()).toBeNull();
    expect(server.callsTo('rentals', 'POST')).toHaveLength(0);
    expect(server.callsTo('rentals/preview', 'POST')).toHaveLength(1);
    expect(model.launchError?.kind).toBe('validation');
    expect(model.launchError?.fields?.gpuCount).toContain('1, 2, 4 or 8');
    model.dispose();
  });

  it("shows the server's short-wallet refusal with both amounts and reads the wallet again", async () => {
    const server = configuredServer().on('POST rentals', () =>
      Reply.error(403, {
        code: 'insufficient_balance',
        message:
          'Not enough balance for 8× h100-80gb: ... $22.40 for this one, and the wallet has ' +
          '$10.00 available. Top up the wallet on http://x ...',
        neededCents: 2240,
        availableCents: 1000
      })
    );
    const model = await readyModel(server);
    const walletReads = server.callsTo('wallet').length;
    expect(await model.launch()).toBeNull();
    const error = model.launchError;
    expect(error?.kind).toBe('insufficient_balance');
    expect(error?.title).toBe('Not enough balance');
    expect(error?.neededCents).toBe(2240);
    expect(error?.availableCents).toBe(1000);
    expect(error?.message).toContain('$22.40');
    expect(server.callsTo('wallet').length).toBe(walletReads + 1);
    model.dispose();
  });

  it('maps the server validation problems to the form fields', async () => {
    const server = configuredServer().on(
      'POST rentals',
      Reply.error(400, {
        code: 'validation_error',
        message: 'Invalid rental request: region: unknown region',
        problems: [{ field: 'region', problem: 'unknown region "XX"' }]
      })
    );
    const model = await readyModel(server);
    await model.launch();
    expect(model.launchError?.kind).toBe('validation');
    expect(model.launchError?.fields).toEqual({ region: 'unknown region "XX"' });
    // Editing the form clears a validation error.
    model.updateForm({ region: '' });
    expect(model.launchError).toBeNull();
    model.dispose();
  });

  it('never sends a create twice; after a lost answer it says where to look first', async () => {
    const server = configuredServer().on('POST rentals', () =>
      Reply.error(502, {
        code: 'upstream_unreachable',
        message: 'Could not reach the rentals API at http://x (ReadTimeout).',
        apiUrl: 'http://x'
      })
    );
    const model = await readyModel(server);
    const lists = server.callsTo('rentals').length;
    await model.launch();
    expect(server.callsTo('rentals', 'POST')).toHaveLength(1);
    expect(model.launchError?.kind).toBe('upstream_unreachable');
    expect(model.launchError?.message).toContain('may have been created anyway');
    expect(model.launchError?.message).toContain('Look there before you rent again');
    expect(server.callsTo('rentals').length).toBe(lists + 1); // the list is read at once
    model.dispose();
  });

  it('says a refusal made before sending was not a create (nothing to look for)', async () => {
    const server = configuredServer().on('POST rentals', () =>
      Reply.error(409, {
        code: 'spending_cap',
        message: 'Not rented: over the cap. Nothing was sent to the API and nothing was charged.'
      })
    );
    const model = await readyModel(server);
    await model.launch();
    expect(model.launchError?.kind).toBe('spending_cap');
    expect(model.launchError?.message).not.toContain('may have been created');
    model.dispose();
  });

  it('shows what has capacity now, and when to retry after a rate limit', async () => {
    const server = configuredServer().on('POST rentals', () =>
      Reply.error(400, {
        code: 'model_unavailable',
        message: 'No provider has 8× rtx-4090 in JP right now. Available now: 8× rtx-4090 in US.',
        upstreamCode: 'model_unavailable',
        upstreamMessage: 'No provider available for this config',
        alternatives: ['8× rtx-4090 in US (from $5.20/h)', '8× h100-80gb in US (from $22.40/h)']
      })
    );
    const model = await readyModel(server);
    await model.launch();
    expect(model.launchError).toMatchObject({
      kind: 'model_unavailable',
      alternatives: ['8× rtx-4090 in US (from $5.20/h)', '8× h100-80gb in US (from $22.40/h)'],
      apiSaid: 'No provider available for this config'
    });
    server.on('POST rentals', () =>
      Reply.error(429, {
        code: 'rate_limited',
        message: 'gpuoutlet refused: too many requests (gpuoutlet said: “Too many requests.”).',
        retryAfterSeconds: 23,
        upstreamMessage: 'Too many requests.'
      })
    );
    await model.launch();
    expect(model.launchError?.kind).toBe('rate_limited');
    expect(model.launchError?.retryAfterSeconds).toBe(23);
    expect(model.launchError?.message).toContain('Try again in 23 s');
    expect(model.launchError?.apiSaid).toBeUndefined();
    model.dispose();
  });

  it('reads the keys again when the server refuses for the SSH key', async () => {
    const server = configuredServer().on('POST rentals', () =>
      Reply.error(409, { code: 'key_not_on_account', message: 'Not rented: your SSH key ...' })
    );
    const model = await readyModel(server);
    server.on('GET keys', KEYS_MISSING);
    await model.launch();
    await sleep(0);
    expect(model.launchError?.kind).toBe('key_not_on_account');
    expect(model.keyMissing).toBe(true);
    model.dispose();
  });
});

describe('GpuOutletModel stop', () => {
  it('posts to rentals/{id}/stop and shows the stopping view with what it cost', async () => {
    const server = configuredServer().on('POST rentals/rent_1/stop', () => ({
      ...view('rent_1', {
        status: 'stopping',
        version: 9,
        costCents: 47,
        stop: {
          finalChargedCents: 47,
          refundedCents: 0,
          requestedAt: '2026-06-07T09:00:00Z',
          alreadyStopped: false
        }
      }),
      alreadyStopped: false,
      notice: STOP_NOTICE_TEXT
    }));
    const model = makeModel(server);
    model.applyRentals({
      rentals: [view('rent_1', { status: 'running', version: 2 })],
      version: 2
    });
    const pending = model.stop('rent_1');
    expect(model.isStopping('rent_1')).toBe(true);
    const result = await pending;
    expect(result?.status).toBe('stopping');
    expect(result?.notice).toBe(STOP_NOTICE_TEXT);
    expect(model.isStopping('rent_1')).toBe(false);
    expect(model.rentals[0].status).toBe('stopping');
    expect(model.rentals[0].stop?.finalChargedCents).toBe(47);
    expect(model.stopOutcome('rent_1')).toBe('stopped');
    expect(model.stoppable).toHaveLength(0);
    // Its work is saved first unless the person said not to ("Stop without saving").
    expect(server.callsTo('rentals/rent_1/stop', 'POST')[0].body).toEqual({ save: true });
    model.dispose();
  });

  it('takes a second stop as done, not as an error', async () => {
    const server = configuredServer().on('POST rentals/rent_1/stop', () => ({
      ...view('rent_1', {
        status: 'stopped',
        version: 9,
        costCents: 12,
        stop: {
          finalChargedCents: 12,
          refundedCents: 0,
          requestedAt: '2026-06-07T09:00:00Z',
          // This server stopped it first (from another window, say) ...
          alreadyStopped: false
        }
      }),
      // ... and gpuoutlet answered this call 409 already_stopped.
      alreadyStopped: true,
      notice: STOP_NOTICE_TEXT
    }));
    const model = makeModel(server);
    model.applyRentals({ rentals: [view('rent_1', { status: 'running' })], version: 1 });
    expect(await model.stop('rent_1')).not.toBeNull();
    expect(model.stopError('rent_1')).toBeNull();
    expect(model.stopOutcome('rent_1')).toBe('already_stopped');
    model.dispose();
  });

  it('keeps a stop error next to the rental', async () => {
    const server = configuredServer().on('POST rentals/rent_1/stop', () =>
      Reply.error(502, { code: 'upstream_unreachable', message: 'connection refused' })
    );
    const model = makeModel(server);
    model.applyRentals({ rentals: [view('rent_1', { status: 'running' })], version: 1 });
    expect(await model.stop('rent_1')).toBeNull();
    expect(model.stopError('rent_1')?.kind).toBe('upstream_unreachable');
    expect(model.stopOutcome('rent_1')).toBeNull();
    model.dispose();
  });
});

describe('GpuOutletModel form', () => {
  it('drops a region the new family does not have', async () => {
    const model = makeModel(configuredServer());
    await model.refresh();
    model.updateForm({ familyId: 'rtx-4090', region: 'FI' });
    model.updateForm({ familyId: 'rtx-3090' });
    expect(model.form.region).toBe('');
    model.updateForm({ familyId: 'rtx-4090', region: 'US' });
    model.updateForm({ familyId: 'h100-80gb' });
    expect(model.form.region).toBe('US');
    model.dispose();
  });
});

describe('GpuOutletModel polling', () => {
  it('stands by while hidden and polls once shown', async () => {
    const server = configuredServer();
    const model = new GpuOutletModel({
      request: server.request,
      refreshInterval: 60,
      visible: false
    });
    await sleep(50);
    expect(server.calls).toHaveLength(0);
    model.setVisible(true);
    await sleep(50);
    expect(server.callsTo('status').length).toBeGreaterThan(0);
    expect(server.callsTo('rentals').length).toBeGreaterThan(0);
    model.dispose();
  });

  it('applies new settings', () => {
    const model = makeModel(configuredServer());
    model.configure({ refreshInterval: 5, longPollSeconds: 10 });
    expect(model.refreshInterval).toBe(5);
    expect(model.longPollSeconds).toBe(10);
    model.configure({ refreshInterval: -1 });
    expect(model.refreshInterval).toBe(5);
    // Longer than the backoff cap: the cap follows.
    model.configure({ refreshInterval: 3600 });
    expect(model.refreshInterval).toBe(3600);
    model.dispose();
  });
});

describe('GpuOutletModel idle stop', () => {
  const idleStop = {
    minutes: 0.4,
    warnMinutes: 0.2,
    lastActiveAt: '2026-06-07T08:00:00Z',
    stopAt: '2026-06-07T08:00:24Z',
    secondsLeft: 8,
    warning: true,
    decidedHere: true,
    kernels: 0,
    busyKernels: 0
  };

  it('sends idleStopMinutes (0 too) and shows the server default from the status', async () => {
    const server = configuredServer()
      .on('GET status', { ...STATUS, idleStopMinutes: 30, idleWarnMinutes: 5 })
      .on('POST rentals', view('rent_1'));
    const model = await readyModel(server);
    expect(model.idleStopDefault).toBe(30);
    model.updateForm({ idleStopMinutes: '0.3' });
    await model.launch();
    model.updateForm({ idleStopMinutes: '0' });
    await model.launch();
    const bodies = server.callsTo('rentals', 'POST').map(c => c.body as Record<string, unknown>);
    expect(bodies.map(b => b.idleStopMinutes)).toEqual([0.3, 0]);
    server.on('GET status', { ...STATUS, idleStopMinutes: null });
    await model.refresh();
    expect(model.idleStopDefault).toBeNull();
    model.dispose();
  });

  it('does not send a bad idle stop, and shows the server refusing one against the field', async () => {
    const server = configuredServer().on(
      'POST rentals',
      Reply.error(400, {
        code: 'validation_error',
        message: 'Invalid rental request: idleStopMinutes: must be from 0 ...',
        problems: [{ field: 'idleStopMinutes', problem: 'must be from 0 (no idle stop) to 10080' }]
      })
    );
    const model = await readyModel(server);
    model.updateForm({ idleStopMinutes: '-2' });
    expect(await model.launch()).toBeNull();
    expect(server.callsTo('rentals', 'POST')).toHaveLength(0);
    expect(model.launchError?.fields?.idleStopMinutes).toContain('Minutes from 0');
    model.updateForm({ idleStopMinutes: '5' });
    await model.launch();
    expect(server.callsTo('rentals', 'POST')).toHaveLength(1);
    expect(model.launchError?.kind).toBe('validation');
    expect(model.launchError?.fields).toEqual({
      idleStopMinutes: 'must be from 0 (no idle stop) to 10080'
    });
    model.dispose();
  });

  it('keep() posts to rentals/{id}/keep and shows the reply: the warning is gone', async () => {
    const kept = view('rent_1', {
      status: 'running',
      version: 6,
      idleStop: { ...idleStop, secondsLeft: 24, warning: false }
    });
    const server = configuredServer().on('POST rentals/rent_1/keep', kept);
    const model = makeModel(server);
    model.applyRentals({
      rentals: [view('rent_1', { status: 'running', version: 5, idleStop })],
      version: 5
    });
    const pending = model.keep('rent_1');
    expect(model.isKeeping('rent_1')).toBe(true);
    expect(await model.keep('rent_1')).toBeNull(); // one at a time
    expect((await pending)?.idleStop?.warning).toBe(false);
    const [call] = server.callsTo('rentals/rent_1/keep', 'POST');
    expect(call.body).toEqual({});
    expect(call.endpoint).toBe('keep');
    expect(server.callsTo('rentals/rent_1/keep', 'POST')).toHaveLength(1);
    expect(model.isKeeping('rent_1')).toBe(false);
    expect(model.rentals[0].idleStop?.warning).toBe(false);
    expect(model.rentals[0].idleStop?.secondsLeft).toBe(24);
    expect(model.keepError('rent_1')).toBeNull();
    model.dispose();
  });

  it('keeps a keep error next to the rental (409 not_active)', async () => {
    const server = configuredServer().on('POST rentals/rent_1/keep', () =>
      Reply.error(409, { code: 'not_active', message: 'rent_1 is stopped: nothing to keep.' })
    );
    const model = makeModel(server);
    model.applyRentals({
      rentals: [view('rent_1', { status: 'running', idleStop })],
      version: 1
    });
    expect(await model.keep('rent_1')).toBeNull();
    expect(model.keepError('rent_1')).toMatchObject({
      kind: 'not_active',
      message: 'rent_1 is stopped: nothing to keep.'
    });
    expect(model.rentals[0].idleStop?.warning).toBe(true);
    model.dispose();
  });

  it('records when each view arrived, on its own clock, for the countdowns', () => {
    let now = 5_000;
    const model = new GpuOutletModel({
      request: new FakeServer().request,
      auto: false,
      now: () => now
    });
    model.applyRentals({
      rentals: [view('rent_1', { version: 1 }), view('rent_2', { version: 1 })],
      version: 1
    });
    now = 9_000;
    model.applyRental(view('rent_2', { version: 2 }));
    expect(model.receivedAt('rent_1')).toBe(5_000);
    expect(model.receivedAt('rent_2')).toBe(9_000);
    now = 12_000;
    // A list with an older view of rent_2 keeps the newer view and its receipt time; rent_1's
    // view is new (its computed numbers were made for this reply).
    model.applyRentals({
      rentals: [view('rent_1', { version: 1 }), view('rent_2', { version: 1 })],
      version: 2
    });
    expect(model.receivedAt('rent_1')).toBe(12_000);
    expect(model.receivedAt('rent_2')).toBe(9_000);
    model.dispose();
  });
});

describe('GpuOutletModel spending', () => {
  const spendingWallet = {
    ...WALLET,
    burnCentsPerHour: 130,
    hoursLeft: 7.69,
    costCents: 42,
    activeRentals: 2,
    maxHourlySpendCents: 500
  };

  it('reads the burn, hours left, cost and cap, and lets the cost grow with the burn', async () => {
    let now = 1_000_000;
    const server = configuredServer().on('GET wallet', spendingWallet);
    const model = new GpuOutletModel({ request: server.request, auto: false, now: () => now });
    await model.refresh();
    expect(model.wallet).toEqual(spendingWallet);
    expect(model.spentCents(now)).toBe(42);
    now += 30 * 60 * 1000; // half an hour at $1.30/h
    expect(model.spentCents(now)).toBe(42 + 65);
    model.dispose();
  });

  it('reads the wallet again when a rental appears or changes status, not on other changes', async () => {
    const server = configuredServer().on('GET wallet', spendingWallet);
    const model = makeModel(server);
    await model.refresh();
    model.applyRentals({ rentals: [view('rent_1', { version: 1 })], version: 1 });
    const reads = () => server.callsTo('wallet').length;
    const first = reads();
    // The same status, a newer view (a poll count, a phase): no wallet read.
    model.applyRentals({ rentals: [view('rent_1', { version: 2, polls: 3 })], version: 2 });
    expect(reads()).toBe(first);
    // Provisioning → running.
    model.applyRentals({
      rentals: [view('rent_1', { version: 3, status: 'running' })],
      version: 3
    });
    expect(reads()).toBe(first + 1);
    // A new rental (a launch reply).
    model.applyRental(view('rent_2', { version: 4 }));
    expect(reads()).toBe(first + 2);
    // Stopped by the server (idle): the burn falls.
    model.applyRentals({
      rentals: [
        view('rent_1', { version: 5, status: 'stopped', stopReason: 'idle' }),
        view('rent_2', { version: 4 })
      ],
      version: 5
    });
    expect(reads()).toBe(first + 3);
    model.dispose();
  });

  it('asks the quote again when the burn changes under a spending cap', async () => {
    const server = configuredServer().on('GET status', { ...STATUS, maxHourlySpendCents: 500 });
    const model = await readyModel(server);
    model.applyRentals({ rentals: [], version: 1 });
    const quotes = () => server.callsTo('rentals/preview', 'POST').length;
    const before = quotes();
    model.applyRental(view('rent_1', { version: 2, status: 'running' }));
    await sleep(0);
    expect(quotes()).toBe(before + 1);
    model.dispose();
  });
});

describe('GpuOutletModel creates whose answer was lost', () => {
  const pending = {
    id: 'create_abc',
    state: 'ambiguous',
    name: 'alice/exp-42',
    familyId: 'rtx-4090',
    gpuCount: 1,
    pricePerHourCents: 65,
    sentAt: '2026-06-07T08:14:22Z',
    reason: 'the connection broke before the answer came',
    candidates: ['rent_1', 'rent_2'],
    message: 'Two rentals match: keep which?'
  };

  it('shows the note of a create found again by its name', async () => {
    const note = 'The answer to this create was lost; found by its name: one rental.';
    const server = configuredServer().on('POST rentals', { ...view('rent_9'), note });
    const model = await readyModel(server);
    const result = await model.launch();
    expect(result?.id).toBe('rent_9');
    expect(result).not.toHaveProperty('note');
    expect(model.launchNote).toBe(note);
    expect(model.rentals.map(r => r.id)).toEqual(['rent_9']);
    model.dispose();
  });

  it('lists the pending creates, and keeps the one chosen (the server stops the others)', async () => {
    const server = configuredServer()
      .on('POST rentals', () =>
        Reply.error(409, {
          code: 'create_ambiguous',
          message: pending.message,
          createId: 'create_abc',
          candidates: pending.candidates
        })
      )
      .on('GET rentals', {
        rentals: [view('rent_1'), view('rent_2')],
        pendingCreates: [pending],
        version: 3
      })
      .on('POST creates/create_abc', {
        kept: [view('rent_1', { version: 5 })],
        stopped: [
          {
            ...view('rent_2', { status: 'stopping', version: 6 }),
            notice: STOP_NOTICE_TEXT,
            alreadyStopped: false
          }
        ]
      });
    const model = await readyModel(server);
    expect(await model.launch()).toBeNull();
    expect(model.launchError?.kind).toBe('create_lost');
    expect(model.launchError?.message).not.toContain('may have been created anyway');
    await sleep(5);
    expect(model.pendingCreates.map(p => p.id)).toEqual(['create_abc']);
    expect(await model.settleCreate('create_abc', ['rent_1'])).toBe(true);
    expect(server.callsTo('creates/create_abc', 'POST')[0].body).toEqual({ keep: ['rent_1'] });
    expect(model.pendingCreates).toEqual([]);
    expect(model.rentals.find(r => r.id === 'rent_2')?.status).toBe('stopping');
    model.dispose();
  });

  it('keeps the error of a refused choice beside the create', async () => {
    const server = configuredServer().on('POST creates/create_abc', () =>
      Reply.error(400, { code: 'validation_error', message: 'keep: must name rent_1 or rent_2' })
    );
    const model = await readyModel(server);
    expect(await model.settleCreate('create_abc', 'all')).toBe(false);
    expect(server.callsTo('creates/create_abc', 'POST')[0].body).toEqual({ keep: 'all' });
    expect(model.settleError('create_abc')?.message).toContain('keep: must name');
    model.dispose();
  });
});
