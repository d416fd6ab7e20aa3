/**
 * The shapes of the gpuoutlet server extension's REST API under `{base_url}gpuoutlet/api/`.
 *
 * Unknown fields are ignored, never an error: every interface lists what the sidebar reads.
 */

/** `GET status`: where the rentals API is and whether a session (sid) is configured. */
export interface IStatus {
  configured: boolean;
  /** `new`, `starting`, `running`, `not_configured` or `stopped`. */
  state: string;
  apiUrl: string;
  sidConfigured: boolean;
  sidSource: string | null;
  /** Why the extension cannot talk to the API, with how to fix it; null when it can. */
  problem: string | null;
  version: string;
  sshDir?: string;
  pollInterval?: number;
  maxWait?: number;
}

/** One GPU family from `GET families`; the price is the cheapest per GPU and hour. */
export interface IFamily {
  id: string;
  displayName: string | null;
  gpuMemoryGb: number | null;
  pricePerHourCents: number;
  regions: string[];
  available: boolean;
}

export interface IFamiliesReply {
  families: IFamily[];
}

/** `GET wallet`: money is integer cents. */
export interface IWallet {
  availableCents: number;
  reservedCents: number;
  currency: string;
}

/** The SSH step's outcome: an alias and command to use, or why none was written. */
export interface ISSHInfo {
  alias?: string;
  command?: string;
  configFile?: string;
  includeWarning?: string;
  error?: string;
}

/** Rental statuses the API documents (others may come; they are shown as they are). */
export type RentalStatus = 'provisioning' | 'running' | 'failed' | 'stopping' | 'stopped' | string;

/** One rental as the server extension reports it: the API's fields plus what it did. */
export interface IRentalView {
  id: string;
  status: RentalStatus;
  host: string | null;
  port: number | null;
  pricePerHourCents: number;
  /** ISO 8601 UTC. */
  startedAt: string;
  error: string | null;
  familyId: string | null;
  gpuCount: number | null;
  templateId: string | null;
  region: string | null;
  name: string | null;
  autoStopAfterHours: number | null;
  stoppedAt: string | null;
  /** Grows on every change a viewer could see. */
  version: number;
  /** What is happening now, in words, with what to do if anything. */
  phase: string;
  polls: number;
  upstreamError: string | null;
  /** The API no longer reports this rental. */
  gone: boolean;
  createdHere: boolean;
  ssh: ISSHInfo | null;
  /** The kernelspec name of a kernel running on this rental, or null. */
  kernel: string | null;
}

export interface IRentalsReply {
  rentals: IRentalView[];
  version: number;
}

/** The body of `POST rentals` (camelCase, as the upstream API). */
export interface ILaunchRequest {
  familyId: string;
  gpuCount: number;
  templateId?: string;
  region?: string;
  name?: string;
  autoStopAfterHours?: number;
}

/** One problem of a 400 `validation_error`. */
export interface IFieldProblem {
  field: string;
  problem: string;
}

/** The `error` member of every error response. */
export interface IErrorBody {
  code: string;
  message: string;
  problems?: IFieldProblem[];
  requiredCents?: number;
  availableCents?: number;
  apiUrl?: string;
  retryAfterSeconds?: number;
  upstreamMessage?: string;
  [key: string]: unknown;
}

/** What the launch form holds; numbers stay strings until they are validated. */
export interface ILaunchForm {
  familyId: string;
  gpuCount: number;
  templateId: string;
  region: string;
  name: string;
  autoStopAfterHours: string;
}
