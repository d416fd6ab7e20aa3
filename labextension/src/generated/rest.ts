/**
 * The gpuoutlet server extension's REST replies (`{base_url}gpuoutlet/api/...`), generated
 * from gpuoutlet_jupyter/rest/schema.json by `jlpm rest-types` (json-schema-to-typescript).
 * Do not edit: change the pydantic models in gpuoutlet_jupyter/rest/models.py, run
 * `python -m gpuoutlet_jupyter.rest.schema`, then `jlpm rest-types`.
 */

/**
 * Every reply of the gpuoutlet extension's REST API.
 */
export interface IGpuOutletRest {
  AddKeyReply: IAddKeyReply;
  AuthView: IAuthView;
  CodeSentReply: ICodeSentReply;
  CreateReply: ICreateReply;
  ErrorReply: IErrorReply;
  FamiliesView: IFamiliesView;
  ForwardView: IForwardView;
  ForwardsView: IForwardsView;
  KernelShutDownReply: IKernelShutDownReply;
  KernelsView: IKernelsView;
  KeysView: IKeysView;
  PortsView: IPortsView;
  PreviewView: IPreviewView;
  ReattachReply: IReattachReply;
  RentalView: IRentalView;
  RentalsView: IRentalsView;
  SaveSizeView: ISaveSizeView;
  SettleReply: ISettleReply;
  SignedInReply: ISignedInReply;
  SignedOutReply: ISignedOutReply;
  StatusView: IStatusView;
  StopReply: IStopReply;
  TelemetryView: ITelemetryView;
  TemplatesView: ITemplatesView;
  TransferReply: ITransferReply;
  WalletView: IWalletView;
}
/**
 * ``POST keys``: the local public key, added to the account.
 */
export interface IAddKeyReply {
  alreadyOnAccount: boolean;
  key: IKeyView;
  note: string;
}
/**
 * One of the account's SSH keys.
 */
export interface IKeyView {
  algorithm: string | null;
  createdAt: string | null;
  fingerprint: string;
  id: string;
  /**
   * The key this server's SSH entries use.
   */
  local: boolean;
  name: string;
}
/**
 * ``GET auth``: who is signed in, and how to sign in.
 */
export interface IAuthView {
  apiUrl: string;
  credentialsFile: string;
  /**
   * Where sign-in codes appear (a local sandbox).
   */
  hint: string | null;
  lastEmail: string | null;
  /**
   * Why there is no usable session, in words.
   */
  problem: string | null;
  session: ISessionView | null;
  sessionState: 'signed_in' | 'signed_out' | 'expired' | 'unknown';
  /**
   * Where the session comes from (never the sid).
   */
  sidSource: string | null;
}
/**
 * Who is signed in (``GET /v1/auth/me``).
 */
export interface ISessionView {
  email: string;
  expiresAt: string;
  secondsLeft: number;
  userId: string;
  /**
   * Set when fewer than 3 days are left.
   */
  warning: string | null;
}
/**
 * ``POST auth/request-code``: gpuoutlet emailed a sign-in code.
 */
export interface ICodeSentReply {
  /**
   * 5 wrong tries end a code.
   */
  attemptsPerCode: number;
  /**
   * A code works for 10 minutes, once.
   */
  codeLifetimeSeconds: number;
  /**
   * gpuoutlet made a new account for this address.
   */
  created: boolean;
  email: string;
  /**
   * Where the code appears when the API sends no mail (a local sandbox).
   */
  hint: string | null;
  /**
   * Where the code went and how it works, in words.
   */
  message: string;
  /**
   * One code per email every 30 s.
   */
  resendAfterSeconds: number;
}
/**
 * The rental a create made (``POST rentals``).
 */
export interface ICreateReply {
  /**
   * When gpuoutlet stops it (its autoStopAfterHours, counted from startedAt).
   */
  autoStopAt: string | null;
  /**
   * When the rentals API last confirmed this state (null: not since this server started): how old what is shown is.
   */
  checkedAt?: string | null;
  /**
   * What it has cost: the API's `totalChargedCents` (a stop's settled total).
   */
  costCents: number;
  /**
   * False: made elsewhere, found by reconciling.
   */
  createdHere: boolean;
  /**
   * When it stopped, failed or vanished.
   */
  endedAt: string | null;
  /**
   * The provider's error when it failed.
   */
  error: string | null;
  familyId: string | null;
  /**
   * The API no longer reports it.
   */
  gone: boolean;
  gpuCount: number | null;
  host: string | null;
  id: string;
  idleStop: IIdleStopView | null;
  /**
   * Its kernelspec while running.
   */
  kernel: string | null;
  name: string | null;
  /**
   * Set when its answer was lost and the rental was found again by its name, or when the same request was already under way: what happened.
   */
  note: string | null;
  /**
   * What is happening, in words, and what to do.
   */
  phase: string;
  polls: number;
  port: number | null;
  /**
   * Locked at creation.
   */
  pricePerHourCents: number;
  provider: string | null;
  /**
   * While provisioning.
   */
  provisioning: IProvisioningView | null;
  quote: IQuoteView | null;
  region: string | null;
  /**
   * The pod's folders saved before a stop.
   */
  savePaths: string[];
  /**
   * They are the default (the remote workdir).
   */
  savePathsDefault: boolean;
  /**
   * Its saves, newest first.
   */
  saves: ISaveView[];
  ssh: ISSHView | null;
  startedAt: string;
  /**
   * `provisioning`, `running`, `stopping`, `stopped`, `failed`.
   */
  status: string;
  /**
   * Once this server stopped it.
   */
  stop: IStopView | null;
  /**
   * `idle` when this server stopped it for that.
   */
  stopReason: string | null;
  stoppedAt: string | null;
  /**
   * The template it was created with (ours).
   */
  templateId: string | null;
  /**
   * The API's live cost (null: not sent).
   */
  totalChargedCents: number | null;
  /**
   * The transfer running, or the last one.
   */
  transfer: ITransferView | null;
  /**
   * The last failed poll's error.
   */
  upstreamError: string | null;
  /**
   * Grows with every change a viewer could see.
   */
  version: number;
  /**
   * Its working folder's push and setup.
   */
  workdir: IWorkdirView | null;
}
/**
 * A rental's idle auto-stop; the timer members are null until it runs.
 */
export interface IIdleStopView {
  busyKernels: number;
  /**
   * This server decides the idle stop (another server owns it otherwise).
   */
  decidedHere: boolean;
  /**
   * The highest GPU utilisation the idle stop saw at its last look.
   */
  gpuPeak?: number | null;
  /**
   * Why the idle stop could not see the GPUs (only the kernels count).
   */
  gpuProblem?: string | null;
  /**
   * GPU-aware idle stop: utilisation (percent) that counts as activity (null: the GPUs do not count).
   */
  gpuUtil?: number | null;
  kernels: number;
  lastActiveAt: string | null;
  minutes: number;
  /**
   * Computed when the reply is made.
   */
  secondsLeft: number | null;
  stopAt: string | null;
  warnMinutes: number;
  /**
   * Show the idle warning with a “Keep it” button.
   */
  warning: boolean;
}
/**
 * How far along provisioning is, in time: the bar moves with ``elapsedSeconds``.
 */
export interface IProvisioningView {
  /**
   * Since the create, when the reply was made.
   */
  elapsedSeconds: number;
  /**
   * gpuoutlet's estimate (null: a rental made elsewhere, no quote).
   */
  expectedSeconds: number | null;
}
/**
 * gpuoutlet's quote (``rentals/preview``) a rental was created on.
 */
export interface IQuoteView {
  /**
   * gpuoutlet's estimate to running.
   */
  estimatedProvisionSeconds: number;
  listingId?: string | null;
  model?: string | null;
  /**
   * The whole hourly price (all GPUs).
   */
  pricePerHourCents: number;
  providerCode?: string | null;
  region?: string | null;
}
/**
 * One save of a rental's work: what, to where, when, and what it did not copy.
 */
export interface ISaveView {
  /**
   * Bytes copied by this save.
   */
  bytes: number;
  /**
   * Everything in the save paths is saved.
   */
  complete: boolean;
  /**
   * Why it failed (the stop went ahead).
   */
  error: string | null;
  /**
   * Files copied by this save.
   */
  files: number;
  finishedAt: string | null;
  leftOutBytes: number;
  /**
   * Left out over `maxSaveBytes`.
   */
  leftOutFiles: number;
  /**
   * Where they went on this machine (one subfolder each).
   */
  localDir: string;
  /**
   * Save paths the pod does not have.
   */
  missing: string[];
  /**
   * The pod's folders saved.
   */
  paths: string[];
  /**
   * `user` (a stop you asked for), `idle`, `cap`, `manual` (Save now), `auto_stop` (ahead of autoStopAfterHours), `wallet` (ahead of the wallet at $0).
   */
  reason: string;
  startedAt: string | null;
  /**
   * What it did, in words.
   */
  summary: string;
  /**
   * It ran out of `saveTimeoutSeconds`.
   */
  timedOut: boolean;
}
/**
 * The SSH step's outcome.
 */
export interface ISSHView {
  /**
   * `gpuoutlet-<id>`.
   */
  alias?: string | null;
  /**
   * What to type: `ssh gpuoutlet-<id>`.
   */
  command?: string | null;
  /**
   * The ssh config the alias is in.
   */
  configFile?: string | null;
  /**
   * Why no entry was written.
   */
  error?: string | null;
  /**
   * The Include line could not be added: where to add it.
   */
  includeWarning?: string | null;
}
/**
 * The API's answer to this server's stop.
 */
export interface IStopView {
  /**
   * gpuoutlet said it was stopped already when this server first stopped it (stopped elsewhere): nothing was settled by this server.
   */
  alreadyStopped: boolean;
  /**
   * What the rental cost in all.
   */
  finalChargedCents: number;
  /**
   * Refunded (it ran under 60 s).
   */
  refundedCents: number;
  /**
   * When the stop was asked for (ISO 8601).
   */
  requestedAt: string | null;
}
/**
 * A transfer between this machine and a rental's pod: running, or the last one.
 */
export interface ITransferView {
  bytesDone: number;
  /**
   * Of the folder(s) planned so far.
   */
  bytesTotal: number;
  /**
   * The file or folder moving now.
   */
  current: string | null;
  elapsedSeconds: number;
  error: string | null;
  filesDone: number;
  filesTotal: number;
  finishedAt: string | null;
  id: string;
  /**
   * `upload`, `download`, `save` or `workdir`.
   */
  kind: string;
  localDir: string;
  /**
   * `rsync` or `tar` (the pod has no rsync).
   */
  method: string | null;
  /**
   * Bytes per second over the last few seconds.
   */
  rate: number;
  remoteDirs: string[];
  startedAt: string | null;
  /**
   * `running`, `done`, `failed` or `cancelled`.
   */
  state: string;
  summary: string | null;
  /**
   * Bytes sent over ssh: fewer than the files' when a cut transfer resumed.
   */
  wireBytes: number | null;
}
/**
 * The working folder pushed and set up before the rental's kernel is offered.
 */
export interface IWorkdirView {
  error: string | null;
  exitStatus: number | null;
  localDir: string | null;
  /**
   * The setup command's last lines of output.
   */
  output: string[];
  remoteDir: string;
  /**
   * The setup command, run once.
   */
  setup: string | null;
  /**
   * `pending`, `syncing`, `setup`, `done` or `failed`.
   */
  state: string;
}
/**
 * Every error answer: ``{"error": {...}}`` with an HTTP status of 4xx or 5xx.
 */
export interface IErrorReply {
  error: IErrorBody;
}
/**
 * The ``error`` member of every error reply.
 */
export interface IErrorBody {
  /**
   * `model_unavailable`: what has capacity now.
   */
  alternatives?: string[] | null;
  /**
   * The rentals API the server talks to.
   */
  apiUrl?: string | null;
  /**
   * `insufficient_balance`: the wallet.
   */
  availableCents?: number | null;
  /**
   * `spending_cap`: active rentals.
   */
  burnCentsPerHour?: number | null;
  /**
   * `create_ambiguous`: the rentals that match it (keep one or more with `POST creates/{createId}`).
   */
  candidates?: string[] | null;
  /**
   * `spending_cap`: the cap.
   */
  capCentsPerHour?: number | null;
  /**
   * Ours (`validation_error`, `spending_cap`, `key_not_on_account`, `unknown_family`, `not_configured`, `upstream_unreachable`, ...) or the API's own (`insufficient_balance`, `model_unavailable`, `rate_limited`, ...).
   */
  code: string;
  /**
   * `not_created`, `create_unknown`, `create_ambiguous`: the create whose answer was lost.
   */
  createId?: string | null;
  /**
   * The rentals API's `details`.
   */
  details?: {
    [k: string]: unknown | undefined;
  } | null;
  /**
   * `unknown_family`: the id asked for.
   */
  familyId?: string | null;
  /**
   * `key_not_on_account`: the local key's.
   */
  fingerprint?: string | null;
  /**
   * What went wrong and what to do, in words.
   */
  message: string;
  /**
   * `insufficient_balance`: one hour.
   */
  neededCents?: number | null;
  /**
   * `spending_cap`: the quote (null: no quote, the cap failed closed).
   */
  priceCentsPerHour?: number | null;
  /**
   * `validation_error` (ours) and `validation_failed` (the API's): every field and its problem.
   */
  problems?: IFieldProblem[] | null;
  /**
   * `not_active`, `pod_not_reachable`: the rental.
   */
  rentalId?: string | null;
  /**
   * `other_account_active`: the rentals that may still be billed.
   */
  rentals?: string[] | null;
  /**
   * 429: when to try again.
   */
  retryAfterSeconds?: number | null;
  /**
   * `not_active`: its state.
   */
  state?: string | null;
  /**
   * `unknown_family`: close ids.
   */
  suggestions?: string[] | null;
  /**
   * The rentals API's own error code.
   */
  upstreamCode?: string | null;
  /**
   * The rentals API's own message.
   */
  upstreamMessage?: string | null;
  /**
   * The rentals API's HTTP status.
   */
  upstreamStatus?: number | null;
}
/**
 * One member of a request and what is wrong with it.
 */
export interface IFieldProblem {
  /**
   * The member as the request names it (`gpuCount`).
   */
  field: string;
  /**
   * What is wrong and what to do.
   */
  problem: string;
}
export interface IFamiliesView {
  families: IFamilyView[];
}
/**
 * A GPU family, derived from the catalog's listings.
 */
export interface IFamilyView {
  /**
   * The `familyId` a create takes.
   */
  id: string;
  listings: number;
  /**
   * Cheapest per GPU, rounded up.
   */
  minPricePerGpuHourCents: number;
  models: string[];
  offers: IOfferView[];
  providers: string[];
  /**
   * ISO codes, what a create's `region` takes.
   */
  regionCodes: string[];
  /**
   * Display regions (`US-East`).
   */
  regions: string[];
  vramGb: number;
}
/**
 * One GPU count of a family at its cheapest.
 */
export interface IOfferView {
  gpuCount: number;
  listings: number;
  /**
   * The cheapest listing's whole price.
   */
  pricePerHourCents: number;
  providers: string[];
  regions: string[];
}
/**
 * A port of the pod forwarded to this Jupyter server's machine over the shared SSH
 * connection; it ends with the rental.
 */
export interface IForwardView {
  localPort: number;
  /**
   * `http://127.0.0.1:<local port>/` on the server's machine.
   */
  localUrl: string;
  openedAt: string | null;
  /**
   * `{base_url}proxy/<local port>/` through jupyter-server-proxy (works when JupyterLab runs on another machine); null without it.
   */
  proxyPath: string | null;
  remoteHost: string;
  remotePort: number;
  rentalId: string;
}
/**
 * The rental's open forwards.
 */
export interface IForwardsView {
  forwards: IForwardView[];
  rentalId: string;
}
/**
 * ``POST remote-kernels/ID/shutdown``: a detached kernel and its folder ended on its machine.
 */
export interface IKernelShutDownReply {
  message: string;
  rentalId: string;
  wrapper: string;
}
/**
 * The remote kernels of every rental (or one), by rental, newest first; the version is the
 * long-poll's cursor (it moves with any change of any kernel's state).
 */
export interface IKernelsView {
  kernels: IKernelView[];
  version: number;
}
/**
 * One remote kernel of a rental and how its connection is (never its key).
 */
export interface IKernelView {
  /**
   * While reconnecting: the try under way (else 0).
   */
  attempt: number;
  /**
   * How long it runs on once detached (null: until the rental stops).
   */
  detachTimeoutSeconds: number | null;
  /**
   * No Jupyter drives it: Reattach and Shut down apply.
   */
  detached: boolean;
  /**
   * This Jupyter server drives it (`kernelId` is its).
   */
  drivenHere: boolean;
  /**
   * Detached with a detach timeout: when it ends by itself (ISO 8601).
   */
  endsAt: string | null;
  /**
   * Why the last reconnect attempt failed.
   */
  error: string | null;
  /**
   * Its Jupyter kernel id, while this server drives it.
   */
  kernelId: string | null;
  /**
   * The rental's kernelspec.
   */
  kernelName: string;
  /**
   * The notebook it was started for, when known.
   */
  notebook: string | null;
  /**
   * Its state in words: `kernel on rent_… lost its connection, reconnecting, attempt 3`.
   */
  notice: string;
  /**
   * The next start of its kernelspec adopts it.
   */
  reattachRequested: boolean;
  rentalId: string;
  /**
   * When `state` last changed (ISO 8601); for a kernel whose Jupyter went away without a word, when that Jupyter last changed it.
   */
  since: string | null;
  /**
   * When the kernel was started (ISO 8601).
   */
  startedAt: string | null;
  /**
   * `connecting`, `connected`, `reconnecting` (see `attempt`) or `detached` (no Jupyter drives it: it may be reattached or shut down).
   */
  state: string;
  /**
   * The kernel's id on its machine (its keeper's): what Reattach and Shut down take.
   */
  wrapper: string;
}
/**
 * The account's keys, and the local one (pods get the account's keys at launch only).
 */
export interface IKeysView {
  keys: IKeyView[];
  local: ILocalKeyView | null;
  /**
   * Why there is no local key to show.
   */
  localProblem: string | null;
}
/**
 * The key this server's SSH entries use.
 */
export interface ILocalKeyView {
  algorithm: string;
  comment: string;
  fingerprint: string;
  identityFile: string;
  /**
   * False: new pods will not let it in; add it.
   */
  onAccount: boolean;
  publicKeyFile: string;
}
/**
 * The pod's ports: the template's known ones, the listening ones, the open forwards.
 */
export interface IPortsView {
  forwards: IForwardView[];
  known: IKnownPortView[];
  listening: IListeningPortView[];
  rentalId: string;
  templateId: string | null;
}
/**
 * A port the rental's template is known to serve.
 */
export interface IKnownPortView {
  /**
   * False: the software's default, not in gpuoutlet's docs.
   */
  documented: boolean;
  label: string;
  /**
   * Something listens on it on the pod now.
   */
  listening: boolean;
  port: number;
}
/**
 * A TCP port something listens on, on the pod.
 */
export interface IListeningPortView {
  address: string;
  port: number;
  /**
   * The program, when `ss -p` could tell.
   */
  process: string | null;
}
/**
 * What a create would do, without doing it (``POST rentals/preview``).
 */
export interface IPreviewView {
  availableCents: number;
  /**
   * The active rentals' prices summed.
   */
  burnCentsPerHour: number;
  /**
   * The line to show before the user confirms.
   */
  confirmation: string;
  /**
   * The SSH entries' key is on the account (null: nothing to check).
   */
  keyOnAccount: boolean | null;
  /**
   * The spending cap (null: none).
   */
  maxHourlySpendCents: number | null;
  /**
   * Why a create would be refused (empty: it would go).
   */
  problems: INotice[];
  quote: IQuoteView;
  /**
   * The create body that would be sent upstream.
   */
  request: {
    [k: string]: unknown | undefined;
  };
}
/**
 * A warning, or a reason a create would be refused: a stable code and a sentence.
 */
export interface INotice {
  /**
   * `wallet_under_an_hour`, `open_invoices`, `insufficient_balance`, `spending_cap`, `key_not_on_account`, ...
   */
  code: string;
  /**
   * What it is, in words, with what to do.
   */
  message: string;
}
/**
 * ``POST remote-kernels/ID/reattach``: the detached kernel is adopted by a start of its kernelspec
 * (``kernel``: as it was when Reattach was asked for).
 */
export interface IReattachReply {
  /**
   * The kernel started is the detached one, variables and all (false: that one had ended, a new one was started; null: nothing was started here).
   */
  adopted: boolean | null;
  kernel: IKernelView;
  /**
   * The Jupyter kernel this server started, which adopted it (null: nothing was started here; the next start of `kernelName` adopts it).
   */
  kernelId: string | null;
  /**
   * The kernelspec that adopts it.
   */
  kernelName: string;
  /**
   * What happened and what to do next, in words.
   */
  message: string;
  /**
   * Its notebook, relative to Jupyter's root, now with a session on that kernel: open it (null: none known, or it is not there any more).
   */
  path: string | null;
}
/**
 * One rental: the rentals API's fields as it last sent them, and what this server knows.
 */
export interface IRentalView {
  /**
   * When gpuoutlet stops it (its autoStopAfterHours, counted from startedAt).
   */
  autoStopAt: string | null;
  /**
   * When the rentals API last confirmed this state (null: not since this server started): how old what is shown is.
   */
  checkedAt?: string | null;
  /**
   * What it has cost: the API's `totalChargedCents` (a stop's settled total).
   */
  costCents: number;
  /**
   * False: made elsewhere, found by reconciling.
   */
  createdHere: boolean;
  /**
   * When it stopped, failed or vanished.
   */
  endedAt: string | null;
  /**
   * The provider's error when it failed.
   */
  error: string | null;
  familyId: string | null;
  /**
   * The API no longer reports it.
   */
  gone: boolean;
  gpuCount: number | null;
  host: string | null;
  id: string;
  idleStop: IIdleStopView | null;
  /**
   * Its kernelspec while running.
   */
  kernel: string | null;
  name: string | null;
  /**
   * What is happening, in words, and what to do.
   */
  phase: string;
  polls: number;
  port: number | null;
  /**
   * Locked at creation.
   */
  pricePerHourCents: number;
  provider: string | null;
  /**
   * While provisioning.
   */
  provisioning: IProvisioningView | null;
  quote: IQuoteView | null;
  region: string | null;
  /**
   * The pod's folders saved before a stop.
   */
  savePaths: string[];
  /**
   * They are the default (the remote workdir).
   */
  savePathsDefault: boolean;
  /**
   * Its saves, newest first.
   */
  saves: ISaveView[];
  ssh: ISSHView | null;
  startedAt: string;
  /**
   * `provisioning`, `running`, `stopping`, `stopped`, `failed`.
   */
  status: string;
  /**
   * Once this server stopped it.
   */
  stop: IStopView | null;
  /**
   * `idle` when this server stopped it for that.
   */
  stopReason: string | null;
  stoppedAt: string | null;
  /**
   * The template it was created with (ours).
   */
  templateId: string | null;
  /**
   * The API's live cost (null: not sent).
   */
  totalChargedCents: number | null;
  /**
   * The transfer running, or the last one.
   */
  transfer: ITransferView | null;
  /**
   * The last failed poll's error.
   */
  upstreamError: string | null;
  /**
   * Grows with every change a viewer could see.
   */
  version: number;
  /**
   * Its working folder's push and setup.
   */
  workdir: IWorkdirView | null;
}
/**
 * Every tracked rental, newest first, the creates not settled yet, and the list's version
 * (the long-poll's cursor: it grows with a change of either).
 */
export interface IRentalsView {
  /**
   * Set while the rentals API does not answer: the list may be old.
   */
  apiProblem?: IApiProblemView | null;
  /**
   * Creates whose answer was lost, not settled yet (`POST creates/{id}`).
   */
  pendingCreates?: IPendingCreateView[];
  rentals: IRentalView[];
  version: number;
}
/**
 * The rentals API does not answer the watching: what is shown is as it last said.
 */
export interface IApiProblemView {
  /**
   * When the API last answered (null: never).
   */
  lastOkAt: string | null;
  /**
   * The last failure, in words, with what to do.
   */
  message: string;
  /**
   * When the failures began (ISO 8601).
   */
  since: string;
}
/**
 * A create not settled yet: sent and unanswered, or its answer lost and being looked for,
 * or matched by several rentals, waiting for the user to say which to keep.
 */
export interface IPendingCreateView {
  /**
   * `ambiguous`: the rentals that match it.
   */
  candidates: string[];
  familyId: string;
  gpuCount: number;
  /**
   * `create_…`: what `POST creates/{id}` settles.
   */
  id: string;
  /**
   * What is happening, in words, and what to do.
   */
  message: string;
  /**
   * The name it was sent with (how it is found again).
   */
  name: string;
  /**
   * gpuoutlet's quote: counted against the spending cap until settled.
   */
  pricePerHourCents: number;
  /**
   * Why its answer was lost.
   */
  reason: string | null;
  sentAt: string | null;
  /**
   * `sending`, `looking` (its answer was lost), `ambiguous`.
   */
  state: string;
}
/**
 * ``GET rentals/{id}/save-size``: what a save would copy, from one quick `du`.
 */
export interface ISaveSizeView {
  /**
   * The whole fits under the cap (null: unknown).
   */
  fits: boolean | null;
  /**
   * Where a save goes.
   */
  localDir: string;
  /**
   * The byte cap of a save (null: none).
   */
  maxSaveBytes: number | null;
  paths: IPathSizeView[];
  rentalId: string;
  saveTimeoutSeconds: number | null;
  /**
   * `~/work (412 MB)`, for the stop dialog.
   */
  text: string;
  totalBytes: number | null;
}
/**
 * One save path on the pod.
 */
export interface IPathSizeView {
  /**
   * Its apparent size (null: unknown).
   */
  bytes: number | null;
  exists: boolean;
  path: string;
}
/**
 * ``POST creates/{id}``: the rentals kept, and the stops of the others.
 */
export interface ISettleReply {
  kept: IRentalView[];
  stopped: IStopReply[];
}
/**
 * The rental after a stop was asked for, with the notice that a stop is permanent.
 */
export interface IStopReply {
  /**
   * gpuoutlet said it was stopped already (409 `already_stopped`): the stop is done, nothing was charged by this call.
   */
  alreadyStopped: boolean;
  /**
   * When gpuoutlet stops it (its autoStopAfterHours, counted from startedAt).
   */
  autoStopAt: string | null;
  /**
   * When the rentals API last confirmed this state (null: not since this server started): how old what is shown is.
   */
  checkedAt?: string | null;
  /**
   * What it has cost: the API's `totalChargedCents` (a stop's settled total).
   */
  costCents: number;
  /**
   * False: made elsewhere, found by reconciling.
   */
  createdHere: boolean;
  /**
   * When it stopped, failed or vanished.
   */
  endedAt: string | null;
  /**
   * The provider's error when it failed.
   */
  error: string | null;
  familyId: string | null;
  /**
   * The API no longer reports it.
   */
  gone: boolean;
  gpuCount: number | null;
  host: string | null;
  id: string;
  idleStop: IIdleStopView | null;
  /**
   * Its kernelspec while running.
   */
  kernel: string | null;
  name: string | null;
  /**
   * A stop destroys the pod and its disk.
   */
  notice: string;
  /**
   * What is happening, in words, and what to do.
   */
  phase: string;
  polls: number;
  port: number | null;
  /**
   * Locked at creation.
   */
  pricePerHourCents: number;
  provider: string | null;
  /**
   * While provisioning.
   */
  provisioning: IProvisioningView | null;
  quote: IQuoteView | null;
  region: string | null;
  /**
   * The pod's folders saved before a stop.
   */
  savePaths: string[];
  /**
   * They are the default (the remote workdir).
   */
  savePathsDefault: boolean;
  /**
   * Its saves, newest first.
   */
  saves: ISaveView[];
  ssh: ISSHView | null;
  startedAt: string;
  /**
   * `provisioning`, `running`, `stopping`, `stopped`, `failed`.
   */
  status: string;
  /**
   * Once this server stopped it.
   */
  stop: IStopView | null;
  /**
   * `idle` when this server stopped it for that.
   */
  stopReason: string | null;
  stoppedAt: string | null;
  /**
   * The template it was created with (ours).
   */
  templateId: string | null;
  /**
   * The API's live cost (null: not sent).
   */
  totalChargedCents: number | null;
  /**
   * The transfer running, or the last one.
   */
  transfer: ITransferView | null;
  /**
   * The last failed poll's error.
   */
  upstreamError: string | null;
  /**
   * Grows with every change a viewer could see.
   */
  version: number;
  /**
   * Its working folder's push and setup.
   */
  workdir: IWorkdirView | null;
}
/**
 * ``POST auth/verify-code``: signed in; the server uses the session at once.
 */
export interface ISignedInReply {
  /**
   * Where the session was saved (0600); null when it could not be.
   */
  credentialsFile: string | null;
  /**
   * Who, until when, and where the session is kept.
   */
  message: string;
  /**
   * What else to know: GPUOUTLET_SID or a setting comes first after a restart, or the session could not be saved.
   */
  note: string | null;
  /**
   * Signed in, but the rental service could not start: why.
   */
  problem: string | null;
  session: ISessionView;
  /**
   * Where the server's session comes from now.
   */
  sidSource: string;
}
/**
 * ``POST auth/logout``: signed out here, and (when it could be told) at gpuoutlet.
 */
export interface ISignedOutReply {
  credentialsFile: string;
  /**
   * The credentials file was deleted.
   */
  credentialsRemoved: boolean;
  /**
   * What was done, in words.
   */
  message: string;
  /**
   * GPUOUTLET_SID or a setting still holds a session.
   */
  note: string | null;
  /**
   * Rentals that may still be billed, no longer watched until a sign-in.
   */
  stillRunning: string[];
  /**
   * gpuoutlet ended the session (`POST /v1/auth/logout`).
   */
  vendorTold: boolean;
}
/**
 * Where the API is, whether the server can rent, who is signed in.
 */
export interface IStatusView {
  /**
   * Set while the rentals API does not answer the watching.
   */
  apiProblem?: IApiProblemView | null;
  apiUrl: string;
  /**
   * `server` or `in-process`.
   */
  backend: string;
  configured: boolean;
  /**
   * Where a sign-in keeps the session (0600).
   */
  credentialsFile: string;
  /**
   * The default GPU threshold of an idle stop (null: GPUs do not count).
   */
  idleGpuUtil?: number | null;
  /**
   * The default idle stop (null: off).
   */
  idleStopMinutes: number | null;
  idleWarnMinutes: number;
  /**
   * The email of the account last signed in here (to sign in again).
   */
  lastEmail: string | null;
  maxHourlySpendCents: number | null;
  maxPolls: number;
  /**
   * A save's byte cap (null: none).
   */
  maxSaveBytes?: number | null;
  maxWait: number | null;
  note?: string | null;
  pollInterval: number;
  problem: string | null;
  /**
   * `{base_url}proxy/` when jupyter-server-proxy serves this Jupyter server (a forwarded port opens at `<proxyBase><local port>/`); null otherwise.
   */
  proxyBase?: string | null;
  /**
   * The working folder on the pods.
   */
  remoteWorkdir?: string | null;
  /**
   * The request budget's use (null: no service running).
   */
  requestBudget?: IBudgetView | null;
  /**
   * How long a save before a stop may take (null: no limit).
   */
  saveTimeoutSeconds?: number | null;
  /**
   * Where saves go on this machine.
   */
  savesDir?: string | null;
  /**
   * Null when it could not be read.
   */
  session: ISessionView | null;
  /**
   * Why the session could not be read.
   */
  sessionProblem: string | null;
  /**
   * `signed_in`, `signed_out` (no session: sign in), `expired` (gpuoutlet answered 401: sign in again) or `unknown` (it could not be asked).
   */
  sessionState: 'signed_in' | 'signed_out' | 'expired' | 'unknown';
  sidConfigured: boolean;
  /**
   * Where the sid came from (never the sid).
   */
  sidSource: string | null;
  sshDir: string | null;
  /**
   * `new`, `starting`, `running`, `not_configured`, `stopped`.
   */
  state: string;
  /**
   * What was wrong with the rentals state file at start (records set aside).
   */
  stateProblems: string[];
  /**
   * Say it before every stop.
   */
  stopNotice: string;
  /**
   * Seconds between two GPU telemetry samples while someone looks.
   */
  telemetryInterval?: number | null;
  version: string;
}
/**
 * The request budget: this host's share of gpuoutlet's limits, and its use.
 */
export interface IBudgetView {
  /**
   * gpuoutlet's X-RateLimit-Limit, last seen.
   */
  apiLimit: number | null;
  /**
   * gpuoutlet's X-RateLimit-Remaining, now.
   */
  apiRemaining: number | null;
  /**
   * When gpuoutlet's window ends.
   */
  apiResetAt: string | null;
  heldSeconds: number | null;
  /**
   * Every request is held until then (a 429).
   */
  heldUntil: string | null;
  lastPause: IPauseView | null;
  /**
   * Requests at most in any hour (gpuoutlet: 1,000).
   */
  perHour: number;
  /**
   * Requests at most in any minute (gpuoutlet: 100).
   */
  perMinute: number;
  /**
   * 429s gpuoutlet answered since the start.
   */
  rateLimitedCount: number;
  usedLastHour: number;
  usedLastMinute: number;
  /**
   * Requests waiting for their turn now.
   */
  waiting: number;
}
/**
 * A 429 of gpuoutlet, and how long every request was held after it.
 */
export interface IPauseView {
  at: string | null;
  /**
   * False: no Retry-After, the vendor's 30 s.
   */
  retryAfterGiven: boolean;
  seconds: number;
}
/**
 * A rental's GPU telemetry: sampled every interval while anyone looks (this reply is a
 * look), the last ten minutes kept.
 */
export interface ITelemetryView {
  /**
   * 0 until the first sample.
   */
  gpuCount: number;
  gpuModel: string | null;
  gpus: IGpuInfo[];
  historySeconds: number;
  intervalSeconds: number;
  message: string | null;
  rentalId: string;
  /**
   * Oldest first.
   */
  samples: ITelemetrySample[];
  /**
   * The sampler runs now (someone looks).
   */
  sampling: boolean;
  /**
   * `waiting` (no sample yet), `sampling`, `unavailable` (no nvidia-smi on the pod: `message` says so, and it is not asked again) or `error` (the last sample failed: `message`).
   */
  state: string;
  /**
   * Grows with every sample or error: `?since=` long-polls.
   */
  version: number;
}
/**
 * One GPU of a pod.
 */
export interface IGpuInfo {
  index: number;
  /**
   * MiB.
   */
  memoryTotal: number | null;
  name: string;
}
/**
 * Every GPU of a pod at one moment.
 */
export interface ITelemetrySample {
  at: string;
  gpus: IGpuReading[];
}
/**
 * One GPU at one moment; a value the GPU does not report is null.
 */
export interface IGpuReading {
  index: number;
  /**
   * MiB.
   */
  memoryTotal: number | null;
  /**
   * MiB.
   */
  memoryUsed: number | null;
  /**
   * Watts.
   */
  power: number | null;
  /**
   * Degrees Celsius.
   */
  temperature: number | null;
  /**
   * Percent, 0-100.
   */
  utilization: number | null;
}
export interface ITemplatesView {
  templates: ITemplateView[];
}
/**
 * One of gpuoutlet's machine templates.
 */
export interface ITemplateView {
  contents: string;
  default: boolean;
  id: string;
  /**
   * Ports its software serves (reach them over SSH).
   */
  ports: number[];
  portsNote: string | null;
  title: string;
}
/**
 * A rental's transfer (``rentals/{id}/transfer``, ``…/save``) and the rental's version.
 */
export interface ITransferReply {
  rentalId: string;
  transfer: ITransferView | null;
  /**
   * The rental's version (the long-poll cursor).
   */
  version: number;
}
/**
 * The balance (``GET /v1/billing/balance``) plus what the tracked rentals burn.
 */
export interface IWalletView {
  activeRentals: number;
  /**
   * Spendable on a new rental.
   */
  availableCents: number;
  /**
   * The active rentals' prices summed.
   */
  burnCentsPerHour: number;
  /**
   * What the tracked rentals have cost.
   */
  costCents: number;
  /**
   * How long the wallet (total) lasts at that burn; null when nothing burns.
   */
  hoursLeft: number | null;
  /**
   * The spending cap (null: none).
   */
  maxHourlySpendCents: number | null;
  openInvoiceCount: number;
  /**
   * Owed on open invoices (0: nothing).
   */
  openInvoicesCents: number;
  /**
   * Held for running rentals (their first hour).
   */
  reservedCents: number;
  /**
   * Available plus reserved.
   */
  totalCents: number;
  updatedAt: string | null;
  /**
   * `wallet_under_an_hour` (every pod stops at $0), `open_invoices`.
   */
  warnings: INotice[];
}
