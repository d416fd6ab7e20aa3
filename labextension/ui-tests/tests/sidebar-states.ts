/**
 * The sidebar's states that the screenshot tests picture, as the server extension's replies
 * (`{base_url}gpuoutlet/api/...`) at one frozen instant, `NOW`. Everything that moves in a real
 * run (rental ids, start times and so elapsed time, the wallet, the sandbox's port in the API
 * URL and the SSH config path) is fixed here instead, so the pictures are the same on every run.
 *
 * Typed with the generated REST types (src/generated/rest.ts) and type-checked with the sidebar
 * (`jlpm typecheck`), so a change of the server's models that these replies no longer fit
 * fails before the browser runs.
 */
import { family as catalogFamily, preview, TEMPLATES, view } from '../../src/__tests__/fake';
import type {
  ICodeSentReply,
  IErrorBody,
  IFamilyView,
  IIdleStopView,
  IKernelsView,
  IKernelView,
  IKeysView,
  INotice,
  IPortsView,
  IPreviewView,
  IRentalsView,
  IRentalView,
  ISaveSizeView,
  IStatusView,
  ITelemetryView,
  ITemplatesView,
  IWalletView
} from '../../src/types';

/** The browser's clock while a state is pictured (Date.now() returns this and only this). */
export const NOW = Date.parse('2026-06-07T09:15:00Z');

/** An error reply: the HTTP status and the JSON `error` member the server sends. */
export interface IErrorReply {
  status: number;
  error: IErrorBody;
}

/** What each endpoint answers while the sidebar is in one state (`POST rentals/preview` too). */
export interface ISidebarState {
  status: IStatusView;
  templates: ITemplatesView | IErrorReply;
  families: { families: IFamilyView[] } | IErrorReply;
  wallet: IWalletView | IErrorReply;
  keys: IKeysView | IErrorReply;
  rentals: IRentalsView | IErrorReply;
  preview: IPreviewView | IErrorReply;
  /** `GET rentals/{id}/save-size` of any rental (the stop dialog's "Save ~/work (…) first?"). */
  saveSize?: ISaveSizeView;
  /** The rentals' remote kernels (none when a state does not say). */
  kernels?: IKernelsView | IErrorReply;
  /** `POST auth/request-code` (the sign-in's code step). */
  codeSent?: ICodeSentReply;
}

const API_URL = 'https://gpuoutlet.ai';
const STOP_NOTICE =
  'Stopping is permanent: gpuoutlet destroys the pod and wipes its disk (no pause, no resume). ' +
  'Copy anything you need off it first (scp, rsync, or push it to S3 or Hugging Face).';

const STATUS: IStatusView = {
  configured: true,
  state: 'running',
  backend: 'server',
  apiUrl: API_URL,
  sidConfigured: true,
  sidSource: 'GPUOUTLET_SID',
  problem: null,
  version: '0.1.0',
  sshDir: '/home/alice/.ssh',
  pollInterval: 2,
  maxPolls: 60,
  maxWait: 60,
  idleStopMinutes: null,
  idleWarnMinutes: 5,
  maxHourlySpendCents: null,
  session: {
    userId: 'usr_01JX8M2Q4R7T9V1W3Y5Z7B9D1F',
    email: 'alice@example.com',
    expiresAt: '2026-07-07T08:14:22Z',
    secondsLeft: Math.round((Date.parse('2026-07-07T08:14:22Z') - NOW) / 1000),
    warning: null
  },
  sessionProblem: null,
  sessionState: 'signed_in',
  lastEmail: 'alice@example.com',
  credentialsFile: '/home/alice/.config/gpuoutlet/credentials',
  stopNotice: STOP_NOTICE,
  stateProblems: []
};

/** The six templates, as the server lists them (gpuoutlet_jupyter/api/templates.py). */
const ALL_TEMPLATES: ITemplatesView = {
  templates: [
    TEMPLATES[0],
    TEMPLATES[1],
    {
      id: 'vllm',
      title: 'vLLM',
      contents: 'vLLM inference server preloaded; the model is given with --model org/name',
      ports: [],
      portsNote: 'not stated by gpuoutlet',
      default: false
    },
    {
      id: 'ollama',
      title: 'Ollama',
      contents: 'Ollama daemon, ready for `ollama pull`',
      ports: [11434],
      portsNote: null,
      default: false
    },
    TEMPLATES[2],
    {
      id: 'text-gen-webui',
      title: 'text-generation-webui',
      contents: 'oobabooga text-generation-webui',
      ports: [7860],
      portsNote: null,
      default: false
    }
  ]
};

/** Some of the sandbox's catalogue (gpuoutlet_jupyter/sandbox/catalogue.py). */
const FAMILIES: IFamilyView[] = [
  catalogFamily('rtx-3090', 32, ['US-Central', 'NL-Amsterdam', 'FR-Paris', 'SG-Singapore']),
  catalogFamily('rtx-4090', 65, ['US-East', 'US-West', 'DE-Frankfurt', 'FI-Helsinki']),
  catalogFamily('a6000', 79, ['US-East', 'DE-Frankfurt', 'GB-London'], 48),
  catalogFamily('l40s', 99, ['US-Central', 'FI-Helsinki', 'NL-Amsterdam'], 48),
  catalogFamily('h100-80gb', 280, ['US-East', 'US-Central', 'GB-London'], 80)
];

const KEYS: IKeysView = {
  keys: [
    {
      id: 'key_01JX8M2Q4R7T9V1W3Y5Z7B9D1F',
      name: 'alice@laptop',
      fingerprint: 'SHA256:q4Rz8oP2m7vT1xN3bK9cW5yL0dF6hJ2sA8eU4iG7kM0',
      algorithm: 'ssh-ed25519',
      createdAt: '2026-06-01T08:00:00Z',
      local: true
    }
  ],
  local: {
    identityFile: '/home/alice/.ssh/id_ed25519',
    publicKeyFile: '/home/alice/.ssh/id_ed25519.pub',
    fingerprint: 'SHA256:q4Rz8oP2m7vT1xN3bK9cW5yL0dF6hJ2sA8eU4iG7kM0',
    algorithm: 'ssh-ed25519',
    comment: 'alice@laptop',
    onAccount: true
  },
  localProblem: null
};

/** The form's first quote: one RTX 3090 from vast in US-Central. */
const QUOTE: IPreviewView = preview(
  { familyId: 'rtx-3090', gpuCount: 1, templateId: 'ubuntu-24-04' },
  32,
  {
    quote: {
      pricePerHourCents: 32,
      estimatedProvisionSeconds: 45,
      providerCode: 'vast',
      region: 'US-Central',
      model: 'RTX_3090',
      listingId: 'lst_01JX8M2Q4R7T9V1W3Y5Z7B9D1F'
    },
    confirmation:
      '1× rtx-3090 (ubuntu-24-04) at $0.32/h from vast, US-Central, ready in about 45 s. Its ' +
      'first hour, $0.32, is reserved from the wallet; it is billed per second while it runs.'
  }
);

/** `minutes` before NOW, as the API writes times (ISO 8601 UTC). */
function before(minutes: number): string {
  return new Date(NOW - minutes * 60_000).toISOString().replace('.000Z', 'Z');
}

/** A rental this server made, as the server extension reports it; `change` says what differs. */
function rental(id: string, change: Partial<IRentalView>): IRentalView {
  return view(id, { startedAt: before(1), region: 'FI-Helsinki', provider: 'vast', ...change });
}

const PROVISIONING = rental('rent_01JX8M2Q4R7T9V1W3Y5Z7B9D1F', {
  familyId: 'l40s',
  pricePerHourCents: 99,
  region: 'US-Central',
  name: 'alice/sweep-7',
  templateId: 'pytorch',
  startedAt: before(0.3),
  version: 4,
  phase: "Provisioning: waiting for the pod's SSH daemon.",
  polls: 9,
  quote: {
    pricePerHourCents: 99,
    estimatedProvisionSeconds: 45,
    providerCode: 'runpod',
    region: 'US-Central',
    model: 'L40S',
    listingId: 'lst_01JX8M2Q4R7T9V1W3Y5Z7B9D1G'
  },
  provisioning: { elapsedSeconds: 18, expectedSeconds: 45 }
});

const RUNNING_ID = 'rent_01JX8K7C2E4G6J8M0P2R4T6V8X';
const RUNNING_ALIAS = `gpuoutlet-${RUNNING_ID}`;

/** Idle for 25 of its 30 minutes: the warning, with 4:12 left on the countdown. */
const IDLE_WARNING: IIdleStopView = {
  minutes: 30,
  warnMinutes: 5,
  lastActiveAt: before(25.8),
  stopAt: '2026-06-07T09:19:12Z',
  secondsLeft: 252,
  warning: true,
  decidedHere: true,
  kernels: 1,
  busyKernels: 0
};

const RUNNING = rental(RUNNING_ID, {
  status: 'running',
  host: 'gpu-fi-02.sandbox.gpuoutlet.ai',
  port: 22014,
  familyId: 'rtx-4090',
  gpuCount: 2,
  pricePerHourCents: 148,
  name: 'alice/exp-42',
  templateId: 'a1111',
  startedAt: before(47.5),
  totalChargedCents: 115,
  costCents: 115,
  version: 9,
  phase: `Running: connect with \`ssh ${RUNNING_ALIAS}\`.`,
  polls: 14,
  ssh: {
    alias: RUNNING_ALIAS,
    command: `ssh ${RUNNING_ALIAS}`,
    configFile: '/home/alice/.ssh/config'
  },
  kernel: `gpuoutlet-${RUNNING_ID.toLowerCase()}`,
  idleStop: IDLE_WARNING,
  // "Download results" under way: its bar, bytes and rate.
  transfer: {
    id: 'tr_1',
    kind: 'download',
    state: 'running',
    localDir: '/home/alice/gpuoutlet-results/alice-exp-42',
    remoteDirs: ['~/work'],
    startedAt: before(0.1),
    finishedAt: null,
    elapsedSeconds: 6.2,
    bytesDone: 187_400_000,
    bytesTotal: 412_000_000,
    filesDone: 31,
    filesTotal: 64,
    rate: 30_200_000,
    current: 'checkpoints/epoch-3.pt',
    method: 'rsync',
    wireBytes: null,
    summary: null,
    error: null
  }
});

/** What the stop dialog offers to save first (`GET rentals/{id}/save-size`). */
const SAVE_SIZE: ISaveSizeView = {
  rentalId: RUNNING_ID,
  paths: [{ path: '~/work', exists: true, bytes: 412_000_000 }],
  totalBytes: 412_000_000,
  maxSaveBytes: 20_000_000_000,
  fits: true,
  saveTimeoutSeconds: 600,
  localDir: '~/gpuoutlet-saves/alice-exp-42',
  text: '~/work (412.0 MB)'
};

const STOPPED = rental('rent_01JX7Z3A5C7E9G1J3L5N7Q9S1U', {
  status: 'stopped',
  familyId: 'rtx-3090',
  pricePerHourCents: 32,
  region: 'US-Central',
  name: 'alice/exp-41',
  startedAt: before(190),
  stoppedAt: before(130),
  endedAt: before(130),
  totalChargedCents: 32,
  costCents: 32,
  version: 3,
  phase: 'Stopped.',
  polls: 22
});

/**
 * The wallet as the server extension reports it while it tracks these rentals: the balance
 * less the hour each active one holds and what gpuoutlet charged, the burn, how long it lasts.
 */
function wallet(
  rentals: IRentalView[],
  change: Partial<IWalletView> = {},
  balanceCents = 20_00
): IWalletView {
  const active = rentals.filter(r => r.status === 'provisioning' || r.status === 'running');
  const burn = active.reduce((sum, r) => sum + r.pricePerHourCents, 0);
  const costCents = rentals.reduce((sum, r) => sum + r.costCents, 0);
  const reservedCents = burn;
  const totalCents = balanceCents - costCents;
  return {
    availableCents: totalCents - reservedCents,
    reservedCents,
    totalCents,
    openInvoicesCents: 0,
    openInvoiceCount: 0,
    updatedAt: before(0.1),
    burnCentsPerHour: burn,
    hoursLeft: burn > 0 ? Math.round((totalCents / burn) * 100) / 100 : null,
    costCents,
    activeRentals: active.length,
    maxHourlySpendCents: null,
    warnings: [],
    ...change
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

/** The server's watching has not reached the API for 4 minutes (its `apiProblem`). */
const API_DOWN = {
  message: UNREACHABLE.error.message,
  since: before(4),
  lastOkAt: before(4.2)
};

/** The wallet's warnings as the server words them (gpuoutlet_jupyter/service/money.py). */
const AT_ZERO: INotice = {
  code: 'wallet_under_an_hour',
  message:
    "At the current burn ($5.92/h) the wallet's $3.85 lasts about 39 minutes. When it reaches " +
    '$0 gpuoutlet stops every pod, and a stop destroys the pod and its disk: top up on ' +
    `${API_URL} now, or stop what you do not need.`
};
const OPEN_INVOICE: INotice = {
  code: 'open_invoices',
  message: `You owe $100.00 on 1 open invoice. Pay it on ${API_URL} (Billing); the invoice email has a pay link.`
};

const BIG = rental('rent_01JX8P4S6U8W0Y2A4C6E8G0J2L', {
  status: 'running',
  host: 'gpu-us-07.sandbox.gpuoutlet.ai',
  port: 22031,
  familyId: 'rtx-4090',
  gpuCount: 8,
  pricePerHourCents: 520,
  region: 'US-East',
  name: 'alice/train-70b',
  templateId: 'pytorch',
  startedAt: before(12),
  totalChargedCents: 104,
  costCents: 104,
  version: 6,
  phase: 'Running: connect with `ssh gpuoutlet-rent_01JX8P4S6U8W0Y2A4C6E8G0J2L`.',
  ssh: {
    alias: 'gpuoutlet-rent_01JX8P4S6U8W0Y2A4C6E8G0J2L',
    command: 'ssh gpuoutlet-rent_01JX8P4S6U8W0Y2A4C6E8G0J2L',
    configFile: '/home/alice/.ssh/config'
  },
  kernel: 'gpuoutlet-rent_01jx8p4s6u8w0y2a4c6e8g0j2l'
});
const SMALL = rental('rent_01JX8N3R5T7V9X1Z3B5D7F9H1K', {
  ...RUNNING,
  id: 'rent_01JX8N3R5T7V9X1Z3B5D7F9H1K',
  name: 'alice/eval',
  pricePerHourCents: 72,
  gpuCount: 1,
  idleStop: null,
  startedAt: before(30),
  totalChargedCents: 36,
  costCents: 36,
  ssh: {
    alias: 'gpuoutlet-rent_01JX8N3R5T7V9X1Z3B5D7F9H1K',
    command: 'ssh gpuoutlet-rent_01JX8N3R5T7V9X1Z3B5D7F9H1K',
    configFile: '/home/alice/.ssh/config'
  }
});

/** A remote kernel of the `KERNELS` rental, as the server lists it. */
function kernel(wrapper: string, notebook: string, change: Partial<IKernelView>): IKernelView {
  return {
    wrapper,
    rentalId: KERNELS_RENTAL.id,
    kernelName: `gpuoutlet-${KERNELS_RENTAL.id.toLowerCase()}-5f0c2a91`,
    state: 'connected',
    attempt: 0,
    error: null,
    since: before(20),
    startedAt: before(25),
    detached: false,
    drivenHere: true,
    kernelId: `7d1c9e0b-3a52-4f7e-9c1d-${wrapper.padStart(12, '0')}`,
    notebook: `/home/alice/work/${notebook}`,
    detachTimeoutSeconds: null,
    endsAt: null,
    reattachRequested: false,
    notice: `kernel on ${KERNELS_RENTAL.id} is connected`,
    ...change
  };
}

const KERNELS_RENTAL = rental('rent_01JX8Q5T7V9X1Z3B5D7F9H1K3M', {
  ...SMALL,
  id: 'rent_01JX8Q5T7V9X1Z3B5D7F9H1K3M',
  name: 'alice/sweep',
  templateId: 'pytorch',
  ssh: {
    alias: 'gpuoutlet-rent_01JX8Q5T7V9X1Z3B5D7F9H1K3M',
    command: 'ssh gpuoutlet-rent_01JX8Q5T7V9X1Z3B5D7F9H1K3M',
    configFile: '/home/alice/.ssh/config'
  },
  kernel: 'gpuoutlet-rent_01jx8q5t7v9x1z3b5d7f9h1k3m-5f0c2a91'
});

/** One kernel connected, one reconnecting (its third try), one left detached by a restart. */
const KERNELS: IKernelView[] = [
  kernel('a41c07d2e9b3f816', 'train.ipynb', {}),
  kernel('5be2d8c1f04a9e37', 'eval.ipynb', {
    state: 'reconnecting',
    attempt: 3,
    since: before(0.4),
    error: 'ssh: connect to host gpu-fi-02.sandbox.gpuoutlet.ai port 22014: Connection timed out',
    notice: `kernel on ${KERNELS_RENTAL.id} lost its connection, reconnecting, attempt 3`
  }),
  kernel('c93f1a6e27d04b58', 'sweep.ipynb', {
    state: 'detached',
    since: before(41.5),
    startedAt: before(95),
    detached: true,
    drivenHere: false,
    kernelId: null,
    notice: `kernel on ${KERNELS_RENTAL.id} is detached`
  })
];

/** The states pictured, by name (the name is the screenshot's file name). */
export const STATES = {
  /** Configured, nothing rented yet: the wallet untouched, the form with its quote. */
  empty: {
    status: STATUS,
    templates: ALL_TEMPLATES,
    families: { families: FAMILIES },
    wallet: wallet([]),
    keys: KEYS,
    rentals: { rentals: [], pendingCreates: [], version: 1 },
    preview: QUOTE
  },
  /** One rental coming up: its progress against gpuoutlet's estimate, the burn it adds. */
  provisioning: {
    status: STATUS,
    templates: ALL_TEMPLATES,
    families: { families: FAMILIES },
    wallet: wallet([PROVISIONING]),
    keys: KEYS,
    rentals: { rentals: [PROVISIONING], pendingCreates: [], version: 4 },
    preview: QUOTE
  },
  /** One rental running, about to be idle-stopped ("Keep it"), and an ended one folded away. */
  running: {
    status: { ...STATUS, idleStopMinutes: 30 },
    templates: ALL_TEMPLATES,
    families: { families: FAMILIES },
    wallet: wallet([RUNNING, STOPPED]),
    keys: KEYS,
    rentals: { rentals: [RUNNING, STOPPED], pendingCreates: [], version: 12 },
    preview: QUOTE,
    saveSize: SAVE_SIZE
  },
  /**
   * The SSH key is not on the account ("Add this key", and no rent until it is), the session
   * ends in two days, and the quote asks more than the wallet has.
   */
  key: {
    status: {
      ...STATUS,
      session: {
        ...STATUS.session!,
        expiresAt: '2026-06-09T09:15:00Z',
        secondsLeft: 2 * 86400,
        warning:
          'Your gpuoutlet session ends in about 2.0 days (2026-06-09 09:15 UTC). Any request ' +
          'extends it by 30 days; if it lapses, sign in again to keep renting.'
      }
    },
    templates: ALL_TEMPLATES,
    families: { families: FAMILIES },
    wallet: wallet([], {}, 1_50),
    keys: { keys: [], local: { ...KEYS.local!, onAccount: false }, localProblem: null },
    rentals: { rentals: [], pendingCreates: [], version: 1 },
    preview: {
      ...QUOTE,
      availableCents: 1_50,
      keyOnAccount: false,
      problems: [
        {
          code: 'key_not_on_account',
          message:
            'Not rented: your SSH key (/home/alice/.ssh/id_ed25519, SHA256:q4Rz8oP2m7vT1xN3bK9c' +
            'W5yL0dF6hJ2sA8eU4iG7kM0) is not on your gpuoutlet account ...'
        }
      ]
    }
  },
  /** Money: the wallet lasts under an hour at the burn (every pod stops at $0), and an invoice is open. */
  money: {
    status: STATUS,
    templates: ALL_TEMPLATES,
    families: { families: FAMILIES },
    // $3.85 left at $5.92/h: about 39 minutes (the reserve is each hour less what it ran).
    wallet: wallet([BIG, SMALL], {
      availableCents: 33,
      reservedCents: 352,
      totalCents: 385,
      hoursLeft: 0.65,
      openInvoicesCents: 100_00,
      openInvoiceCount: 1,
      warnings: [AT_ZERO, OPEN_INVOICE]
    }),
    keys: KEYS,
    rentals: { rentals: [BIG, SMALL], pendingCreates: [], version: 8 },
    preview: QUOTE
  },
  /** A running rental's kernels: one reconnecting (the card says so), one left detached. */
  kernels: {
    status: STATUS,
    templates: ALL_TEMPLATES,
    families: { families: FAMILIES },
    wallet: wallet([KERNELS_RENTAL]),
    keys: KEYS,
    rentals: { rentals: [KERNELS_RENTAL], version: 7 },
    preview: QUOTE,
    kernels: { kernels: KERNELS, version: 30 }
  },
  /**
   * Not signed in (a fresh install): "Sign in to gpuoutlet", the email of the account last
   * signed in here filled in; "Send code" leads to the code step.
   */
  signin: {
    status: {
      ...STATUS,
      configured: false,
      state: 'not_configured',
      sidConfigured: false,
      sidSource: null,
      problem: 'Not signed in to gpuoutlet at https://gpuoutlet.ai.',
      session: null,
      sessionState: 'signed_out'
    },
    templates: ALL_TEMPLATES,
    families: { families: FAMILIES },
    wallet: wallet([]),
    keys: KEYS,
    rentals: { rentals: [], pendingCreates: [], version: 1 },
    preview: QUOTE,
    codeSent: {
      email: 'alice@example.com',
      created: false,
      message: 'gpuoutlet emailed a 6-digit sign-in code to alice@example.com.',
      resendAfterSeconds: 30,
      codeLifetimeSeconds: 600,
      attemptsPerCode: 5,
      hint: null
    }
  },
  /**
   * The rentals API cannot be reached: one banner says so, since when and why; the running
   * rental is shown as gpuoutlet last reported it, and how long ago (its polls fail).
   */
  error: {
    status: { ...STATUS, apiProblem: API_DOWN },
    templates: ALL_TEMPLATES,
    families: UNREACHABLE,
    wallet: UNREACHABLE,
    keys: UNREACHABLE,
    rentals: {
      rentals: [
        {
          ...SMALL,
          checkedAt: before(4.2),
          upstreamError: UNREACHABLE.error.message,
          phase: `${SMALL.phase} The last poll failed, retrying: ${UNREACHABLE.error.message}`
        }
      ],
      version: 9,
      apiProblem: API_DOWN
    },
    preview: UNREACHABLE
  }
} satisfies Record<string, ISidebarState>;

export type StateName = keyof typeof STATES;

/** Ten minutes of a sample every 5 s of the running rental's two GPUs, ending at `NOW`. */
function telemetrySamples(): ITelemetryView['samples'] {
  const samples: ITelemetryView['samples'] = [];
  for (let i = 0; i < 120; i++) {
    const at = new Date(NOW - (119 - i) * 5000).toISOString().replace('.000Z', 'Z');
    // GPU 0 trains from minute 3 on (with the ripple of its epochs); GPU 1 idles, then joins.
    const busy0 = i < 36 ? 4 : 82 + 12 * Math.sin(i / 3);
    const busy1 = i < 84 ? 0 : 64 + 20 * Math.sin(i / 5);
    samples.push({
      at,
      gpus: [busy0, busy1].map((util, index) => ({
        index,
        utilization: Math.round(util),
        memoryUsed: Math.round(600 + (util / 100) * 19_000),
        memoryTotal: 24_564,
        temperature: Math.round(34 + util * 0.45),
        power: Math.round(28 + util * 3.9)
      }))
    });
  }
  return samples;
}

const TELEMETRY: ITelemetryView = {
  rentalId: RUNNING_ID,
  state: 'sampling',
  message: null,
  version: 120,
  sampling: true,
  intervalSeconds: 5,
  historySeconds: 600,
  gpuCount: 2,
  gpuModel: 'NVIDIA GeForce RTX 4090',
  gpus: [0, 1].map(index => ({ index, name: 'NVIDIA GeForce RTX 4090', memoryTotal: 24_564 })),
  samples: telemetrySamples()
};

const PORTS: IPortsView = {
  rentalId: RUNNING_ID,
  templateId: 'a1111',
  known: [
    {
      port: 7860,
      label: 'Stable Diffusion web UI (AUTOMATIC1111)',
      documented: true,
      listening: true
    }
  ],
  listening: [
    { port: 6006, address: '127.0.0.1', process: 'tensorboard' },
    { port: 7860, address: '0.0.0.0', process: 'python3' }
  ],
  forwards: []
};

/** The running rental's card expanded: its GPUs' last ten minutes and its ports. */
export const POD_REPLIES: Record<string, unknown> = {
  [`rentals/${RUNNING_ID}/telemetry`]: TELEMETRY,
  [`rentals/${RUNNING_ID}/ports`]: PORTS
};
