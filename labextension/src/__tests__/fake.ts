/**
 * A fake of the server extension's REST API for the model's tests: canned replies by path,
 * and a record of every request.
 */
import { ApiError, Endpoint, errorFromResponse } from '../errors';
import { Requester } from '../model';
import { IFamily, IRentalView, IStatus, IWallet } from '../types';

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
    return this.calls.filter(c => c.method === method && c.path.startsWith(prefix));
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
    const result = handler(call);
    if (result instanceof Reply) {
      throw errorFromResponse(result.status, result.text, endpoint ?? null);
    }
    if (result instanceof ApiError) {
      throw result;
    }
    return result as T;
  };
}

export const STATUS: IStatus = {
  configured: true,
  state: 'running',
  apiUrl: 'http://127.0.0.1:9999',
  sidConfigured: true,
  sidSource: 'GPUOUTLET_SID',
  problem: null,
  version: '0.1.0'
};

export const FAMILIES: IFamily[] = [
  {
    id: 'rtx-4090',
    displayName: 'NVIDIA GeForce RTX 4090',
    gpuMemoryGb: 24,
    pricePerHourCents: 65,
    regions: ['FI', 'US', 'DE'],
    available: true
  },
  {
    id: 'rtx-3090',
    displayName: 'NVIDIA GeForce RTX 3090',
    gpuMemoryGb: 24,
    pricePerHourCents: 39,
    regions: ['US', 'NL'],
    available: true
  },
  {
    id: 'h100-80gb',
    displayName: 'NVIDIA H100 80GB',
    gpuMemoryGb: 80,
    pricePerHourCents: 280,
    regions: ['US'],
    available: true
  },
  {
    id: 'l4',
    displayName: 'NVIDIA L4',
    gpuMemoryGb: 24,
    pricePerHourCents: 10,
    regions: ['US'],
    available: false
  }
];

export const WALLET: IWallet = { availableCents: 1000, reservedCents: 65, currency: 'USD' };

export function view(id: string, change: Partial<IRentalView> = {}): IRentalView {
  return {
    id,
    status: 'provisioning',
    host: null,
    port: null,
    pricePerHourCents: 65,
    startedAt: '2026-06-07T08:14:22Z',
    error: null,
    familyId: 'rtx-4090',
    gpuCount: 1,
    templateId: 'ubuntu-24-04',
    region: null,
    name: null,
    autoStopAfterHours: null,
    stoppedAt: null,
    endedAt: null,
    version: 1,
    phase: 'Provisioning: the provider is allocating a machine.',
    polls: 0,
    upstreamError: null,
    gone: false,
    createdHere: true,
    ssh: null,
    kernel: null,
    ...change
  };
}
