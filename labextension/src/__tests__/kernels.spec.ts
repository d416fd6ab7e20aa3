import { KernelsModel } from '../kernels';
import { IKernelsView, IKernelView } from '../types';
import { FakeServer, Reply } from './fake';

function kernel(wrapper: string, change: Partial<IKernelView> = {}): IKernelView {
  return {
    wrapper,
    rentalId: 'rent_A',
    kernelName: 'gpuoutlet-rent_a-1234abcd',
    state: 'connected',
    attempt: 0,
    error: null,
    since: '2026-06-07T09:00:00Z',
    startedAt: '2026-06-07T08:00:00Z',
    detached: false,
    drivenHere: true,
    kernelId: 'k-1',
    notebook: '/home/alice/work/train.ipynb',
    detachTimeoutSeconds: null,
    endsAt: null,
    reattachRequested: false,
    notice: 'kernel on rent_A is connected',
    ...change
  };
}

const DETACHED = kernel('det1', {
  state: 'detached',
  detached: true,
  drivenHere: false,
  kernelId: null,
  notice: 'kernel on rent_A is detached'
});

function listing(kernels: IKernelView[], version: number): IKernelsView {
  return { kernels, version };
}

function makeModel(server: FakeServer): KernelsModel {
  return new KernelsModel({ request: server.request, auto: false, longPollSeconds: 7 });
}

describe('KernelsModel', () => {
  it('reads the list, then long-polls it from its version; kernels by rental', async () => {
    const server = new FakeServer().on(
      'GET remote-kernels',
      listing([kernel('a1'), kernel('b1', { rentalId: 'rent_B' }), DETACHED], 5)
    );
    const model = makeModel(server);
    let changes = 0;
    model.changed.connect(() => changes++);
    await model.pollKernels();
    expect(model.loaded).toBe(true);
    expect(model.forRental('rent_A').map(k => k.wrapper)).toEqual(['a1', 'det1']);
    expect(model.forRental('rent_B').map(k => k.wrapper)).toEqual(['b1']);
    await model.pollKernels();
    expect(server.calls.map(c => c.path)).toEqual([
      'remote-kernels',
      'remote-kernels?wait=7&since=5'
    ]);
    expect(changes).toBe(2);
    model.dispose();
  });

  it('keeps the newer list when a long-poll and a read cross', async () => {
    let reply = listing([kernel('a1', { state: 'reconnecting', attempt: 3 })], 9);
    const server = new FakeServer().on('GET remote-kernels', () => reply);
    const model = makeModel(server);
    await model.pollKernels();
    reply = listing([kernel('a1')], 8);
    await model.loadKernels();
    expect(model.kernels[0].state).toBe('reconnecting');
    model.dispose();
  });

  it('keeps what it had and says why when the list cannot be read; the poll backs off', async () => {
    let fail = false;
    const server = new FakeServer().on('GET remote-kernels', () =>
      fail ? Reply.error(500, { code: 'internal_error', message: 'boom' }) : listing([], 3)
    );
    const model = makeModel(server);
    await model.pollKernels();
    fail = true;
    await expect(model.pollKernels()).rejects.toThrow('boom');
    expect(model.error?.message).toBe('boom');
    expect(model.loaded).toBe(true);
    model.dispose();
  });

  it('reattaches: one request at a time, then reads the list again', async () => {
    let reattached = false;
    const server = new FakeServer()
      .on('GET remote-kernels', () => listing([reattached ? kernel('det1') : DETACHED], 4))
      .on('POST remote-kernels/det1/reattach', () => {
        reattached = true;
        return {
          kernel: DETACHED,
          kernelName: DETACHED.kernelName,
          kernelId: 'k-2',
          path: 'work/train.ipynb',
          adopted: true,
          message: 'Reattached'
        };
      });
    const model = makeModel(server);
    await model.pollKernels();
    const first = model.reattach('det1');
    expect(model.pending('det1')).toBe('reattach');
    expect(await model.reattach('det1')).toBeNull(); // in flight already
    const reply = await first;
    expect(reply?.path).toBe('work/train.ipynb');
    expect(model.pending('det1')).toBeNull();
    expect(model.kernels[0].state).toBe('connected');
    expect(model.note('rent_A')).toBeNull();
    expect(server.callsTo('remote-kernels/det1/reattach', 'POST')).toHaveLength(1);
    model.dispose();
  });

  it('says when a reattach found the kernel ended and started a new one', async () => {
    const server = new FakeServer()
      .on('GET remote-kernels', listing([], 4))
      .on('POST remote-kernels/det1/reattach', {
        kernel: DETACHED,
        kernelName: DETACHED.kernelName,
        kernelId: 'k-3',
        path: null,
        adopted: false,
        message: 'The detached kernel det1 had ended'
      });
    const model = makeModel(server);
    await model.reattach('det1');
    expect(model.note('rent_A')).toContain('had ended');
    model.dismissNote('rent_A');
    expect(model.note('rent_A')).toBeNull();
    model.dispose();
  });

  it('gives its own headline to a shut down that could not reach the machine', async () => {
    const server = new FakeServer().on('GET remote-kernels', listing([DETACHED], 4)).on(
      'POST remote-kernels/det1/shutdown',
      Reply.error(502, {
        code: 'kernel_unreachable',
        message: 'The kernel det1 on rent_A could not be reached to shut it down.',
        rentalId: 'rent_A'
      })
    );
    const model = makeModel(server);
    await model.pollKernels();
    expect(await model.shutDown('det1')).toBeNull();
    const error = model.actionError('det1');
    expect(error?.title).toBe('Its machine did not answer');
    expect(error?.message).toContain('could not be reached');
    model.dispose();
  });
});
