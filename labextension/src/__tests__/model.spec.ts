import { GpuOutletModel } from '../model';
import { FakeServer, FAMILIES, Reply, STATUS, view, WALLET } from './fake';

function configuredServer(): FakeServer {
  return new FakeServer()
    .on('GET status', STATUS)
    .on('GET families', { families: FAMILIES })
    .on('GET wallet', WALLET)
    .on('GET rentals', { rentals: [], version: 0 });
}

function makeModel(server: FakeServer, keys: string[] = []): GpuOutletModel {
  let n = 0;
  return new GpuOutletModel({
    request: server.request,
    auto: false,
    newKey: () => keys[n++] ?? `key-${n}`
  });
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

describe('GpuOutletModel refresh', () => {
  it('loads the status, the families and the wallet, and picks the cheapest available family', async () => {
    const server = configuredServer();
    const model = makeModel(server);
    let changes = 0;
    model.changed.connect(() => changes++);
    await model.refresh();
    expect(model.status?.apiUrl).toBe(STATUS.apiUrl);
    expect(model.families?.map(f => f.id)).toEqual(FAMILIES.map(f => f.id));
    expect(model.wallet).toEqual(WALLET);
    // l4 is cheaper but unavailable
    expect(model.form.familyId).toBe('rtx-3090');
    expect(model.hourCostCents).toBe(39);
    expect(changes).toBeGreaterThan(0);
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

  it('does not ask for families or the wallet when no sid is configured', async () => {
    const problem = 'No gpuoutlet session is configured ... set GPUOUTLET_SID=<sid> ...';
    const server = configuredServer().on('GET status', {
      ...STATUS,
      configured: false,
      sidConfigured: false,
      sidSource: null,
      problem
    });
    const model = makeModel(server);
    await model.refresh();
    expect(model.status?.configured).toBe(false);
    expect(model.status?.problem).toBe(problem);
    expect(server.callsTo('families')).toHaveLength(0);
    expect(server.callsTo('wallet')).toHaveLength(0);
    model.dispose();
  });

  it('keeps the form usable when the API does not list families (endpoint_unavailable)', async () => {
    const server = configuredServer().on(
      'GET families',
      Reply.error(404, { code: 'endpoint_unavailable', message: 'GET /v1/families is not offered' })
    );
    const model = makeModel(server);
    await model.refresh();
    expect(model.families).toBeNull();
    expect(model.familiesError?.kind).toBe('endpoint_unavailable');
    model.updateForm({ familyId: 'anything-goes' });
    expect(model.validation.request?.familyId).toBe('anything-goes');
    model.dispose();
  });

  it('says the balance is short before the click', async () => {
    const server = configuredServer().on('GET wallet', {
      availableCents: 100,
      reservedCents: 0,
      currency: 'USD'
    });
    const model = makeModel(server);
    await model.refresh();
    model.updateForm({ familyId: 'rtx-4090', gpuCount: 1 });
    expect(model.hourCostCents).toBe(65);
    expect(model.balanceShort).toBe(false);
    model.updateForm({ gpuCount: 2 });
    expect(model.hourCostCents).toBe(130);
    expect(model.balanceShort).toBe(true);
    model.dispose();
  });
});

describe('GpuOutletModel rentals', () => {
  it('reads the list once, then long-polls it with wait and since: one request per tick', async () => {
    const server = configuredServer().on('GET rentals', {
      rentals: [view('rent_1', { version: 3 }), view('rent_2', { version: 2 })],
      version: 3
    });
    const model = new GpuOutletModel({
      request: server.request,
      auto: false,
      longPollSeconds: 25
    });
    await model.pollRentals();
    expect(server.calls.map(c => c.path)).toEqual(['rentals']);
    expect(model.rentals.map(r => r.id).sort()).toEqual(['rent_1', 'rent_2']);
    expect(model.rentalsVersion).toBe(3);
    await model.pollRentals();
    expect(server.calls[1].path).toBe('rentals?wait=25&since=3');
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
      kernel: 'gpuoutlet-rent_1'
    });
    model.applyRentals({ rentals: [running], version: 2 });
    expect(model.rentals[0].status).toBe('running');
    expect(model.rentals[0].ssh?.command).toBe('ssh gpuoutlet-rent_1');
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
  it('sends the form as the camelCase body with an Idempotency-Key, then shows the rental', async () => {
    const created = view('rent_9', { version: 4, name: 'alice/exp-42' });
    const server = configuredServer().on('POST rentals', created);
    const model = makeModel(server, ['k-1']);
    await model.refresh();
    model.updateForm({
      familyId: 'rtx-4090',
      gpuCount: 2,
      templateId: 'pytorch',
      region: 'FI',
      name: 'alice/exp-42',
      autoStopAfterHours: '1.5'
    });
    const result = await model.launch();
    expect(result?.id).toBe('rent_9');
    const [post] = server.callsTo('rentals', 'POST');
    expect(post.body).toEqual({
      familyId: 'rtx-4090',
      gpuCount: 2,
      templateId: 'pytorch',
      region: 'FI',
      name: 'alice/exp-42',
      autoStopAfterHours: 1.5
    });
    expect(post.headers['idempotency-key']).toBe('k-1');
    expect(post.headers['content-type']).toBeUndefined(); // requestAPI sets it, not the model
    expect(model.rentals.map(r => r.id)).toEqual(['rent_9']);
    expect(model.launching).toBe(false);
    expect(model.launchError).toBeNull();
    model.dispose();
  });

  it('leaves optional fields out of the body', async () => {
    const server = configuredServer().on('POST rentals', view('rent_1'));
    const model = makeModel(server);
    await model.refresh();
    model.updateForm({ familyId: 'rtx-4090' });
    await model.launch();
    expect(server.callsTo('rentals', 'POST')[0].body).toEqual({
      familyId: 'rtx-4090',
      gpuCount: 1,
      templateId: 'ubuntu-24-04'
    });
    model.dispose();
  });

  it('does not send an invalid form', async () => {
    const server = configuredServer();
    const model = makeModel(server);
    await model.refresh();
    model.updateForm({ name: 'x'.repeat(65) });
    expect(model.validation.fields.name).toContain('64');
    expect(await model.launch()).toBeNull();
    expect(server.callsTo('rentals', 'POST')).toHaveLength(0);
    expect(model.launchError?.kind).toBe('validation');
    expect(model.launchError?.fields?.name).toContain('64');
    model.dispose();
  });

  it('shows a 402 with both amounts', async () => {
    const server = configuredServer().on(
      'POST rentals',
      Reply.error(402, {
        code: 'insufficient_balance',
        message: 'Insufficient balance.',
        requiredCents: 2240,
        availableCents: 1000
      })
    );
    const model = makeModel(server);
    await model.refresh();
    model.updateForm({ familyId: 'h100-80gb', gpuCount: 8 });
    expect(await model.launch()).toBeNull();
    const error = model.launchError;
    expect(error?.kind).toBe('insufficient_balance');
    expect(error?.requiredCents).toBe(2240);
    expect(error?.availableCents).toBe(1000);
    expect(error?.message).toContain('$22.40');
    expect(error?.message).toContain('$10.00');
    expect(error?.message).toContain('$12.40');
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
    const model = makeModel(server);
    await model.refresh();
    await model.launch();
    expect(model.launchError?.kind).toBe('validation');
    expect(model.launchError?.fields).toEqual({ region: 'unknown region "XX"' });
    // Editing the form clears a validation error.
    model.updateForm({ region: '' });
    expect(model.launchError).toBeNull();
    model.dispose();
  });

  it('reuses the Idempotency-Key to retry after an ambiguous failure, never after a success', async () => {
    let fail = true;
    const server = configuredServer().on('POST rentals', () =>
      fail
        ? Reply.error(502, { code: 'upstream_unreachable', message: 'timed out' })
        : view('rent_1')
    );
    const model = makeModel(server, ['k-1', 'k-2', 'k-3']);
    await model.refresh();
    await model.launch();
    expect(model.launchError?.kind).toBe('upstream_unreachable');
    fail = false;
    await model.launch();
    await model.launch();
    const keys = server.callsTo('rentals', 'POST').map(c => c.headers['idempotency-key']);
    expect(keys).toEqual(['k-1', 'k-1', 'k-2']);
    model.dispose();
  });

  it('uses a new key when the request changed', async () => {
    const server = configuredServer().on('POST rentals', () =>
      Reply.error(503, { code: 'starting', message: 'still starting' })
    );
    const model = makeModel(server, ['k-1', 'k-2']);
    await model.refresh();
    await model.launch();
    model.updateForm({ gpuCount: 2 });
    await model.launch();
    const keys = server.callsTo('rentals', 'POST').map(c => c.headers['idempotency-key']);
    expect(keys).toEqual(['k-1', 'k-2']);
    model.dispose();
  });

  it('shows no_capacity and rate_limited specifically', async () => {
    const server = configuredServer().on('POST rentals', () =>
      Reply.error(409, { code: 'no_capacity', message: 'No rtx-4090 x 8 in JP.' })
    );
    const model = makeModel(server);
    await model.refresh();
    await model.launch();
    expect(model.launchError?.kind).toBe('no_capacity');
    expect(model.launchError?.message).toBe('No rtx-4090 x 8 in JP.');
    server.on('POST rentals', () =>
      Reply.error(429, { code: 'rate_limited', message: 'Slow down.', retryAfterSeconds: 3 })
    );
    await model.launch();
    expect(model.launchError?.kind).toBe('rate_limited');
    expect(model.launchError?.retryAfterSeconds).toBe(3);
    model.dispose();
  });
});

describe('GpuOutletModel stop', () => {
  it('posts to rentals/{id}/stop and shows the stopping view', async () => {
    const server = configuredServer().on('POST rentals/rent_1/stop', () =>
      view('rent_1', { status: 'stopping', version: 9 })
    );
    const model = makeModel(server);
    model.applyRentals({
      rentals: [view('rent_1', { status: 'running', version: 2 })],
      version: 2
    });
    const pending = model.stop('rent_1');
    expect(model.isStopping('rent_1')).toBe(true);
    const result = await pending;
    expect(result?.status).toBe('stopping');
    expect(model.isStopping('rent_1')).toBe(false);
    expect(model.rentals[0].status).toBe('stopping');
    expect(model.stoppable).toHaveLength(0);
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
    model.updateForm({ region: 'US' });
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
    kernels: 0,
    busyKernels: 0
  };

  it('sends idleStopMinutes (0 too) and shows the server default from the status', async () => {
    const server = configuredServer()
      .on('GET status', { ...STATUS, idleStopMinutes: 30, idleWarnMinutes: 5 })
      .on('POST rentals', view('rent_1'));
    const model = makeModel(server);
    await model.refresh();
    expect(model.idleStopDefault).toBe(30);
    model.updateForm({ familyId: 'rtx-4090', idleStopMinutes: '0.3' });
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
    const model = makeModel(server);
    await model.refresh();
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
    // A list with an older view of rent_2 keeps the newer view and its receipt time.
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
    server.on('GET wallet', WALLET); // an older server: no costCents
    await model.loadWallet();
    expect(model.spentCents(now)).toBeNull();
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
});
