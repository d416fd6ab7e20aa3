/**
 * The sidebar's states that the screenshot tests picture, as the server extension's replies
 * (`{base_url}gpuoutlet/api/...`) at one frozen instant, `NOW`. Everything that moves in a real
 * run (rental ids, start times and so elapsed time and cost, the wallet, the sandbox's port in
 * the API URL and the SSH config path) is fixed here instead, so the pictures are the same on
 * every run.
 *
 * Typed with the sidebar's own interfaces and type-checked with it (`jlpm typecheck`), so a
 * change of the REST API's shape that these replies no longer fit fails before the browser runs.
 */
import { view } from '../../src/__tests__/fake';
import { costSoFarCents } from '../../src/format';
import type {
  IErrorBody,
  IFamiliesReply,
  IFamily,
  IIdleStop,
  IRentalsReply,
  IRentalView,
  IStatus,
  IWallet
} from '../../src/types';

/** The browser's clock while a state is pictured (Date.now() returns this and only this). */
export const NOW = Date.parse('2026-06-07T09:15:00Z');

/** An error reply: the HTTP status and the JSON `error` member the server sends. */
export interface IErrorReply {
  status: number;
  error: IErrorBody;
}

/** What each endpoint answers while the sidebar is in one state. */
export interface ISidebarState {
  status: IStatus;
  families: IFamiliesReply | IErrorReply;
  wallet: IWallet | IErrorReply;
  rentals: IRentalsReply | IErrorReply;
}

const API_URL = 'https://gpuoutlet.ai';

const STATUS: IStatus = {
  configured: true,
  state: 'running',
  apiUrl: API_URL,
  sidConfigured: true,
  sidSource: 'GPUOUTLET_SID',
  problem: null,
  version: '0.1.0',
  idleStopMinutes: null,
  idleWarnMinutes: 5
};

/** Some of the sandbox's catalogue (gpuoutlet_jupyter/sandbox/catalogue.py). */
const FAMILIES: IFamily[] = [
  family('rtx-3090', 'NVIDIA GeForce RTX 3090', 24, 39, ['US', 'NL', 'FR', 'SG']),
  family('rtx-4090', 'NVIDIA GeForce RTX 4090', 24, 65, ['FI', 'US', 'CA', 'DE', 'SG', 'JP']),
  family('a6000', 'NVIDIA RTX A6000', 48, 79, ['US', 'DE', 'GB']),
  family('l40s', 'NVIDIA L40S', 48, 99, ['US', 'SE']),
  family('h100-80gb', 'NVIDIA H100 80GB', 80, 249, ['US'], false)
];

function family(
  id: string,
  displayName: string,
  gpuMemoryGb: number,
  pricePerHourCents: number,
  regions: string[],
  available = true
): IFamily {
  return { id, displayName, gpuMemoryGb, pricePerHourCents, regions, available };
}

/** `minutes` before NOW, as the API writes times (ISO 8601 UTC). */
function before(minutes: number): string {
  return new Date(NOW - minutes * 60_000).toISOString().replace('.000Z', 'Z');
}

/** A rental this server made, as the server extension reports it; `change` says what differs. */
function rental(id: string, change: Partial<IRentalView>): IRentalView {
  return view(id, {
    startedAt: before(1),
    region: 'FI',
    idleStop: null,
    stopReason: null,
    ...change
  });
}

const PROVISIONING = rental('rent_01JX8M2Q4R7T9V1W3Y5Z7B9D1F', {
  familyId: 'l40s',
  pricePerHourCents: 99,
  region: 'US',
  name: 'alice/sweep-7',
  startedAt: before(0.75),
  version: 4,
  phase: "Provisioning: waiting for the pod's SSH daemon (poll 9 of ~60).",
  polls: 9
});

const RUNNING_ID = 'rent_01JX8K7C2E4G6J8M0P2R4T6V8X';
const RUNNING_ALIAS = `gpuoutlet-${RUNNING_ID}`;

/** Idle for 25 of its 30 minutes: the warning, with 4:12 left on the countdown. */
const IDLE_WARNING: IIdleStop = {
  minutes: 30,
  warnMinutes: 5,
  lastActiveAt: before(25.8),
  stopAt: '2026-06-07T09:19:12Z',
  secondsLeft: 252,
  warning: true,
  kernels: 1,
  busyKernels: 0
};

const RUNNING = rental(RUNNING_ID, {
  status: 'running',
  host: 'gpu-fi-02.sandbox.gpuoutlet.ai',
  port: 22014,
  familyId: 'rtx-4090',
  gpuCount: 2,
  pricePerHourCents: 130,
  name: 'alice/exp-42',
  startedAt: before(47.5),
  autoStopAfterHours: 4,
  version: 9,
  phase: `Running: connect with \`ssh ${RUNNING_ALIAS}\`.`,
  polls: 14,
  ssh: {
    alias: RUNNING_ALIAS,
    command: `ssh ${RUNNING_ALIAS}`,
    configFile: '/home/alice/.ssh/config'
  },
  kernel: `gpuoutlet-${RUNNING_ID.toLowerCase()}`,
  idleStop: IDLE_WARNING
});

const STOPPED = rental('rent_01JX7Z3A5C7E9G1J3L5N7Q9S1U', {
  status: 'stopped',
  familyId: 'rtx-3090',
  pricePerHourCents: 39,
  region: 'US',
  name: 'alice/exp-41',
  startedAt: before(190),
  stoppedAt: before(130),
  endedAt: before(130),
  version: 3,
  phase: 'Stopped.',
  polls: 22
});

/**
 * The wallet as the server extension reports it while it tracks these rentals: $20 bought, the
 * hour of each active one reserved, the cost so far computed as the sidebar computes it.
 */
function wallet(rentals: IRentalView[]): IWallet {
  const active = rentals.filter(r => r.status === 'provisioning' || r.status === 'running');
  const burn = active.reduce((sum, r) => sum + r.pricePerHourCents, 0);
  const costCents = rentals.reduce((sum, r) => sum + costSoFarCents(r, NOW), 0);
  const availableCents = 20_00 - burn - costCents;
  return {
    availableCents,
    reservedCents: burn,
    currency: 'USD',
    burnCentsPerHour: burn,
    hoursLeft: burn > 0 ? availableCents / burn : null,
    costCents,
    activeRentals: active.length,
    maxHourlySpendCents: null
  };
}

const UNREACHABLE: IErrorReply = {
  status: 502,
  error: {
    code: 'upstream_unreachable',
    message:
      `Could not reach the rentals API at ${API_URL} (ConnectError: [Errno 111] Connection ` +
      'refused). Check your network, or point GPUOUTLET_API_URL at the right server (a local ' +
      'sandbox prints its URL when it starts).',
    apiUrl: API_URL
  }
};

/** The states pictured, by name (the name is the screenshot's file name). */
export const STATES: Record<'empty' | 'provisioning' | 'running' | 'error', ISidebarState> = {
  /** Configured, nothing rented yet: the wallet untouched, the form, "No GPU is rented". */
  empty: {
    status: STATUS,
    families: { families: FAMILIES },
    wallet: wallet([]),
    rentals: { rentals: [], version: 1 }
  },
  /** One rental coming up: its progress bar and phase, the burn it adds. */
  provisioning: {
    status: STATUS,
    families: { families: FAMILIES },
    wallet: wallet([PROVISIONING]),
    rentals: { rentals: [PROVISIONING], version: 4 }
  },
  /** One rental running, about to be idle-stopped ("Keep it"), and an ended one folded away. */
  running: {
    status: { ...STATUS, idleStopMinutes: 30 },
    families: { families: FAMILIES },
    wallet: wallet([RUNNING, STOPPED]),
    rentals: { rentals: [RUNNING, STOPPED], version: 12 }
  },
  /** The rentals API cannot be reached: every part that needs it says so. */
  error: {
    status: STATUS,
    families: UNREACHABLE,
    wallet: UNREACHABLE,
    rentals: UNREACHABLE
  }
};

export type StateName = keyof typeof STATES;
