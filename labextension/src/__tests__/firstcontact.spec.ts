/**
 * What a first-time user sees (issue 15), without a browser: one banner when the rentals API
 * does not answer, the next name after renting, the family's price in its label, and what a
 * notebook whose rental ended is told.
 */
import { familyLabel } from '../format';
import { endedMessage, RentalKernelWatch, rentalOfKernel } from '../endedKernels';
import { GpuOutletModel, isUpstream } from '../model';
import { IRentalsView } from '../types';
import { formFromArgs, nextName } from '../validation';
import {
  FakeServer,
  FAMILIES,
  KEYS,
  quoting,
  Reply,
  STATUS,
  TEMPLATES,
  view,
  WALLET
} from './fake';

const UNREACHABLE = Reply.error(502, {
  code: 'upstream_unreachable',
  message: 'Could not reach the rentals API at https://gpuoutlet.ai (ConnectError).',
  apiUrl: 'https://gpuoutlet.ai'
});

function server(): FakeServer {
  return new FakeServer()
    .on('GET status', STATUS)
    .on('GET templates', { templates: TEMPLATES })
    .on('GET families', { families: FAMILIES })
    .on('GET wallet', WALLET)
    .on('GET keys', KEYS)
    .on('GET rentals', { rentals: [], version: 0 })
    .on('POST rentals/preview', quoting);
}

describe('the rentals API not answering', () => {
  it('is one problem, whichever requests learnt it, with the watching’s own words', async () => {
    const fake = server()
      .on('GET wallet', UNREACHABLE)
      .on('GET families', UNREACHABLE)
      .on('GET keys', UNREACHABLE);
    const model = new GpuOutletModel({ request: fake.request, auto: false });
    await model.refresh();
    expect(isUpstream(model.walletError)).toBe(true);
    expect(isUpstream(model.familiesError)).toBe(true);
    expect(model.apiProblem?.kind).toBe('upstream_unreachable');
    expect(model.apiProblem?.title).toBe(
      'The rentals API at https://gpuoutlet.ai cannot be reached'
    );
    // The list comes from the server's own watching: its apiProblem says since when.
    const list: IRentalsView = {
      rentals: [view('rent_1', { status: 'running', checkedAt: '2026-06-07T09:00:00Z' })],
      version: 3,
      apiProblem: {
        message: 'Could not reach the rentals API (ConnectError). Check your network.',
        since: '2026-06-07T09:01:00Z',
        lastOkAt: '2026-06-07T09:00:00Z'
      }
    };
    model.applyRentals(list);
    expect(model.apiProblem?.message).toBe(list.apiProblem?.message);
    expect(model.apiProblemSince).toBe(Date.parse('2026-06-07T09:01:00Z'));
    model.dispose();
  });

  it('comes from the list alone when every other read still works (cached)', () => {
    const model = new GpuOutletModel({ request: server().request, auto: false });
    expect(model.apiProblem).toBeNull();
    model.applyRentals({
      rentals: [],
      version: 1,
      apiProblem: { message: 'API 503.', since: '2026-06-07T09:01:00Z', lastOkAt: null }
    });
    expect(model.apiProblem?.code).toBe('api_problem');
    model.applyRentals({ rentals: [], version: 2, apiProblem: null });
    expect(model.apiProblem).toBeNull();
    model.dispose();
  });
});

describe('the form after renting', () => {
  it.each([
    ['alice/exp-42', 'alice/exp-43'],
    ['exp-009', 'exp-010'],
    ['alice/exp', 'alice/exp-2'],
    ['', '']
  ])('suggests %s → %s', (name, next) => {
    expect(nextName(name)).toBe(next);
  });

  it('suggests the next name once the rental is made, not before', async () => {
    const fake = server().on('POST rentals', view('rent_9', { version: 4 }));
    const model = new GpuOutletModel({ request: fake.request, auto: false, quoteDelay: 1 });
    await model.refresh();
    model.updateForm({ familyId: 'rtx-4090', name: 'alice/exp-42' });
    await model.requestQuote();
    expect((await model.launch())?.id).toBe('rent_9');
    expect(fake.callsTo('rentals', 'POST')[0].body).toMatchObject({ name: 'alice/exp-42' });
    expect(model.form.name).toBe('alice/exp-43');
    model.dispose();
  });

  it('shows a family’s price right after its id (a narrow select cuts the end)', () => {
    const label = familyLabel(FAMILIES[0]);
    expect(label.indexOf('$')).toBeLessThan(label.indexOf('GB'));
    expect(label.startsWith(`${FAMILIES[0].id} · $`)).toBe(true);
  });

  it('takes family and template ids in any case from the command', () => {
    expect(formFromArgs({ familyId: 'RTX-4090', templateId: 'PyTorch' })).toEqual({
      familyId: 'rtx-4090',
      templateId: 'pytorch'
    });
  });
});

describe('a notebook whose kernel ran on a rental that ended', () => {
  const ID = 'rent_01JX8K7C2E4G6J8M0P2R4T6V8X';
  const KERNEL = `gpuoutlet-${ID.toLowerCase()}-1a2b3c4d`;

  it('knows a gpuoutlet kernel by its name', () => {
    expect(rentalOfKernel(KERNEL)).toBe(ID.toLowerCase());
    expect(rentalOfKernel(`gpuoutlet-${ID.toLowerCase()}`)).toBe(ID.toLowerCase());
    expect(rentalOfKernel('python3')).toBeNull();
    expect(rentalOfKernel(null)).toBeNull();
  });

  it('is told once that the rental was stopped, and asked to pick another kernel', async () => {
    const told: string[] = [];
    const picked: unknown[] = [];
    let listed = 0;
    const watch = new RentalKernelWatch({
      listRentals: async () => {
        listed++;
        return { rentals: [view(ID, { status: 'stopped' })], version: 3 };
      },
      selectKernel: async context => {
        picked.push(context);
      },
      notify: (message, select) => {
        told.push(message);
        select();
      }
    });
    const context = { path: 'work/exp.ipynb' } as never;
    const message = await watch.check(context, KERNEL);
    expect(message).toBe(`Rental ${ID} was stopped: pick another kernel for exp.ipynb.`);
    expect(message!.length).toBeLessThanOrEqual(140); // JupyterLab cuts a notification there
    expect(told).toEqual([message]);
    expect(picked).toEqual([context]);
    expect(await watch.check(context, KERNEL)).toBeNull(); // once
    expect(listed).toBe(1);
    expect(await watch.check(context, 'python3')).toBeNull(); // not ours: nothing asked
    expect(listed).toBe(1);
  });

  it('says nothing while the rental runs (the kernel died for another reason)', () => {
    expect(endedMessage(view(ID, { status: 'running' }), 'x.ipynb')).toBeNull();
    expect(endedMessage(view(ID, { status: 'failed' }), '')).toContain('failed: pick another');
    expect(endedMessage(view(ID, { status: 'running', gone: true }), '')).toContain('is gone');
  });
});
