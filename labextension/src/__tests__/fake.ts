/**
 * A fake of the server extension's REST API for the model's tests: canned replies by path,
 * and a record of every request. The replies are typed with the generated REST types, so a
 * change of the server's models that these no longer fit fails `jlpm typecheck`.
 */
import { ApiError, Endpoint, errorFromResponse } from '../errors';
import { Requester } from '../model';
import {
  IFamilyView,
  IKeysView,
  IPreviewView,
  IRentalView,
  IStatusView,
  ITemplateView,
  IWalletView
} from '../types';

export interface ICall {
  path: string;
  method: string;
  body: unknown;
  headers: Record<string, string>;
  endpoint?: Endpoint;
}

type Handler = (call: ICall) => unknown;

/** A reply that is an error: the status and the JSON text the server would send. */
export class Reply {
  constructor(
    readonly status: number,
    readonly text: string
  ) {}

  static error(status: number, error: Record<string, unknown>): Reply {
    return new Reply(status, JSON.stringify({ error }));
  }
}

export class FakeServer {
  calls: ICall[] = [];
  routes = new Map<string, Handler>();

  on(key: string, handler: Handler | unknown): this {
    this.routes.set(key, typeof handler === 'function' ? (handler as Handler) : () => handler);
    return this;
  }

  callsTo(prefix: string, method = 'GET'): ICall[] {
    return this.calls.filter(
      c => c.method === method && (c.path === prefix || c.path.startsWith(`${prefix}?`))
    );
  }

  request: Requester = async <T>(
    path: string,
    init: RequestInit = {},
    endpoint?: Endpoint
  ): Promise<T> => {
    const method = (init.method ?? 'GET').toUpperCase();
    const headers: Record<string, string> = {};
    new Headers(init.headers ?? {}).forEach((value, key) => {
      headers[key.toLowerCase()] = value;
    });
    const call: ICall = {
      path,
      method,
      body: typeof init.body === 'string' ? JSON.parse(init.body) : undefined,
      headers,
      endpoint
    };
    this.calls.push(call);
    const bare = path.split('?')[0];
    const handler = this.routes.get(`${method} ${bare}`);
    if (!handler) {
      throw errorFromResponse(404, '<html>404: Not Found</html>', endpoint ?? null, 'Not Found');
    }
    const result = await handler(call);
    if (result instanceof Reply) {
      throw errorFromResponse(result.status, result.text, endpoint ?? null);
    }
    if (result instanceof ApiError) {
      throw result;
    }
    return result as T;
  };
}

export const STOP_NOTICE_TEXT =
  'Stopping is permanent: gpuoutlet destroys the pod and wipes its disk (no pause, no resume).';

export const STATUS: IStatusView = {
  configured: true,
  state: 'running',
  backend: 'server',
  apiUrl: 'http://127.0.0.1:9999',
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
    userId: 'usr_01H8E3ZQ4R7T9V1W3Y5Z7B9D1F',
    email: 'alice@example.com',
    expiresAt: '2026-07-07T08:14:22Z',
    secondsLeft: 29 * 86400,
    warning: null
  },
  sessionProblem: null,
  sessionState: 'signed_in',
  lastEmail: 'alice@example.com',
  credentialsFile: '/home/alice/.config/gpuoutlet/credentials',
  stopNotice: STOP_NOTICE_TEXT,
  stateProblems: []
};

export const TEMPLATES: ITemplateView[] = [
  {
    id: 'ubuntu-24-04',
    title: 'Ubuntu 24.04',
    contents: 'Ubuntu 24.04 with CUDA drivers only',
    ports: [],
    portsNote: null,
    default: true
  },
  {
    id: 'pytorch',
    title: 'PyTorch',
    contents: 'Ubuntu + CUDA + PyTorch 2.x + transformers + accelerate',
    ports: [],
    portsNote: null,
    default: false
  },
  {
    id: 'a1111',
    title: 'Stable Diffusion WebUI',
    contents: 'AUTOMATIC1111 Stable Diffusion WebUI',
    ports: [7860],
    portsNote: null,
    default: false
  }
];

/** A family of the catalog with one offer per GPU count, `perGpu` cents each. */
export function family(id: string, perGpu: number, regions: string[], vramGb = 24): IFamilyView {
  const codes = [...new Set(regions.map(r => r.split('-')[0]))];
  return {
    id,
    models: [id.toUpperCase().replace(/-/g, '_')],
    vramGb,
    minPricePerGpuHourCents: perGpu,
    regions,
    regionCodes: codes,
    providers: ['vast'],
    offers: [1, 2, 4, 8].map(gpuCount => ({
      gpuCount,
      pricePerHourCents: perGpu * gpuCount,
      listings: 1,
      regions,
      providers: ['vast']
    })),
    listings: 4
  };
}

export const FAMILIES: IFamilyView[] = [
  family('rtx-4090', 65, ['US-East', 'FI-Helsinki', 'DE-Frankfurt']),
  family('rtx-3090', 32, ['US-Central', 'NL-Amsterdam']),
  family('h100-80gb', 280, ['US-East'], 80)
];

export const WALLET: IWalletView = {
  availableCents: 1000,
  reservedCents: 65,
  totalCents: 1065,
  openInvoicesCents: 0,
  openInvoiceCount: 0,
  updatedAt: '2026-06-07T08:15:22Z',
  burnCentsPerHour: 0,
  hoursLeft: null,
  costCents: 0,
  activeRentals: 0,
  maxHourlySpendCents: null,
  warnings: []
};

export const KEYS: IKeysView = {
  keys: [
    {
      id: 'key_01H8E3ZQ4R7T9V1W3Y5Z7B9D1F',
      name: 'laptop',
      fingerprint: 'SHA256:abc',
      algorithm: 'ssh-ed25519',
      createdAt: '2026-06-01T08:00:00Z',
      local: true
    }
  ],
  local: {
    identityFile: '/home/alice/.ssh/id_ed25519',
    publicKeyFile: '/home/alice/.ssh/id_ed25519.pub',
    fingerprint: 'SHA256:abc',
    algorithm: 'ssh-ed25519',
    comment: 'alice@laptop',
    onAccount: true
  },
  localProblem: null
};

/** The keys when the local one is not on the account. */
export const KEYS_MISSING: IKeysView = {
  keys: [],
  local: { ...KEYS.local!, onAccount: false },
  localProblem: null
};

/** A quote for `request` at `price` cents an hour, as `POST rentals/preview` answers. */
export function preview(
  request: Record<string, unknown>,
  price: number,
  change: Partial<IPreviewView> = {}
): IPreviewView {
  return {
    request: { templateId: 'ubuntu-24-04', ...request },
    quote: {
      pricePerHourCents: price,
      estimatedProvisionSeconds: 45,
      providerCode: 'vast',
      region: 'US-East',
      model: 'RTX_4090',
      listingId: 'lst_01H8E3ZQ4R7T9V1W3Y5Z7B9D1F'
    },
    availableCents: WALLET.availableCents,
    burnCentsPerHour: 0,
    maxHourlySpendCents: null,
    keyOnAccount: true,
    confirmation: `${String(request.gpuCount)}× ${String(request.familyId)} at $${(price / 100).toFixed(2)}/h from vast, US-East, ready in about 45 s.`,
    problems: [],
    ...change
  };
}

/** Quotes every body at its catalog price (from FAMILIES), like the server would. */
export function quoting(call: ICall): IPreviewView | Reply {
  const body = call.body as { familyId: string; gpuCount: number };
  const fam = FAMILIES.find(f => f.id === body.familyId);
  if (!fam) {
    return Reply.error(400, {
      code: 'unknown_family',
      message: `There is no GPU family '${body.familyId}' in gpuoutlet's catalog.`,
      familyId: body.familyId,
      suggestions: ['rtx-4090']
    });
  }
  return preview(body, fam.minPricePerGpuHourCents * body.gpuCount);
}

export function view(id: string, change: Partial<IRentalView> = {}): IRentalView {
  return {
    id,
    name: null,
    status: 'provisioning',
    familyId: 'rtx-4090',
    gpuCount: 1,
    pricePerHourCents: 65,
    host: null,
    port: null,
    region: null,
    provider: null,
    startedAt: '2026-06-07T08:14:22Z',
    stoppedAt: null,
    totalChargedCents: null,
    error: null,
    templateId: 'ubuntu-24-04',
    version: 1,
    phase: 'Provisioning: the provider is allocating a machine.',
    polls: 0,
    upstreamError: null,
    gone: false,
    createdHere: true,
    ssh: null,
    kernel: null,
    costCents: 0,
    quote: null,
    provisioning: null,
    stop: null,
    idleStop: null,
    stopReason: null,
    endedAt: null,
    ...change
  };
}
