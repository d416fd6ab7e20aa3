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
  /** The server's default idle stop for new rentals, in minutes; null when it is off. */
  idleStopMinutes?: number | null;
  /** How long before an idle stop the warning shows, in minutes. */
  idleWarnMinutes?: number;
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

/**
 * `GET wallet`: money is integer cents. The server extension adds what its rentals spend
 * (absent from an older one: then the sidebar shows only the balance).
 */
export interface IWallet {
  availableCents: number;
  reservedCents: number;
  currency: string;
  /** The summed price per hour of the rentals that may be billed (provisioning to stopping). */
  burnCentsPerHour?: number;
  /** How long the available balance lasts at that burn; null when nothing burns. */
  hoursLeft?: number | null;
  /** The cost so far of every rental this server tracks. */
  costCents?: number;
  /** How many rentals make up the burn. */
  activeRentals?: number;
  /** The configured cap on the hourly spend; null when there is none. */
  maxHourlySpendCents?: number | null;
}

/** The SSH step's outcome: an alias and command to use, or why none was written. */
export interface ISSHInfo {
  alias?: string;
  command?: string;
  configFile?: string;
  includeWarning?: string;
  error?: string;
}

/**
 * A rental's idle stop (the Jupyter server stops it when none of its remote kernels has run
 * anything for `minutes`). The timer fields are null until it runs, and again once it stopped.
 */
export interface IIdleStop {
  minutes: number;
  /** The warning shows this long before the stop. */
  warnMinutes: number;
  /** ISO 8601 UTC: the last execution, busy kernel or keep; or when it started running. */
  lastActiveAt: string | null;
  /** ISO 8601 UTC: when it is stopped if nothing runs (server clock: shown, never compared). */
  stopAt: string | null;
  /** Seconds until the stop when the reply was made (the countdown starts from this). */
  secondsLeft: number | null;
  /** Show the warning with a "Keep it" button. */
  warning: boolean;
  /** Its remote kernels this Jupyter server runs. */
  kernels: number;
  /** Of those, how many are mid-execution (then it is never stopped). */
  busyKernels: number;
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
  /** When it ended (stoppedAt, else when the server saw it stop, fail or vanish); null while active. */
  endedAt: string | null;
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
  /** Null (or absent from an older server) when it has no idle stop. */
  idleStop?: IIdleStop | null;
  /** `idle`: this server stopped it for being idle. */
  stopReason?: 'idle' | string | null;
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
  /** Minutes without activity before the server stops it; 0 = off; absent = server default. */
  idleStopMinutes?: number;
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
  /** Empty: the server's default. */
  idleStopMinutes: string;
}
