/**
 * The sidebar's state and everything it does, with no view: polls, the quote, launch, stop,
 * keys, validation.
 *
 * Rentals are long-polled as ONE list (`GET rentals?wait=&since=`), never one request per
 * rental; the status (with the session), families, templates, keys and the wallet are
 * refreshed at the configured interval, and the wallet (with the burn) again whenever a rental
 * changes status. Both polls back off on failure and stand by while the panel is hidden.
 *
 * Before a create the form is priced by gpuoutlet's quote (`POST rentals/preview`): asked for
 * only when what it depends on changes (family, count, template, region), never on a timer, so
 * viewers do not add upstream requests by looking. The create is sent once and never retried:
 * the rentals API has no idempotency key.
 */
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { createMayHaveHappened, describeError, Endpoint, ErrorKind, IErrorInfo } from './errors';
import { formatCents, parseTime } from './format';
import { PodWatcher } from './pods';
import {
  IAddKeyReply,
  ICreateReply,
  IApiProblemView,
  IFamiliesView,
  IFamilyView,
  IKeysView,
  ILaunchForm,
  INotice,
  IPendingCreateView,
  IPreviewView,
  IRentalsView,
  IRentalView,
  ISettleReply,
  ISaveSizeView,
  ISignedOutReply,
  IStatusView,
  IStopReply,
  ITemplatesView,
  ITemplateView,
  ITransferReply,
  IWalletView
} from './types';
import { SignInModel } from './signin';
import {
  catalogPriceCents,
  emptyForm,
  IValidation,
  nextName,
  quoteKey,
  validateForm
} from './validation';

/** One typed call to the server extension (see `requestAPI`); injected, so tests fake it. */
export type Requester = <T>(path: string, init?: RequestInit, endpoint?: Endpoint) => Promise<T>;

/** Statuses in which a rental can still be stopped (and is shown as active). */
export const ACTIVE_STATUSES: readonly string[] = ['provisioning', 'running', 'stopping'];

/** What a stop destroys, said before every stop when the server has not said it yet. */
export const STOP_NOTICE =
  'Stopping is permanent: gpuoutlet destroys the pod and wipes its disk (no pause, no ' +
  'resume). Copy anything you need off it first (scp, rsync, or push it to S3 or Hugging Face).';

export function isActive(rental: IRentalView): boolean {
  return !rental.gone && ACTIVE_STATUSES.includes(rental.status);
}

/** The failures that say the rentals API itself does not answer (not this server, not you). */
export const UPSTREAM_KINDS: readonly ErrorKind[] = [
  'upstream_unreachable',
  'upstream_failed',
  'upstream_malformed'
];

/** Whether `error` is the rentals API not answering: the sidebar's one banner says it. */
export function isUpstream(error: IErrorInfo | null | undefined): boolean {
  return !!error && UPSTREAM_KINDS.includes(error.kind);
}

export function canStop(rental: IRentalView): boolean {
  return !rental.gone && (rental.status === 'provisioning' || rental.status === 'running');
}

/** What the family and count of a rental read like: "rtx-4090 × 2". */
export function rentalTitle(rental: IRentalView): string {
  return `${rental.familyId ?? 'GPU'} × ${rental.gpuCount ?? 1}`;
}

/** What the sidebar asks of one rental: `POST rentals/{id}/stop` or `.../keep`. */
export type RentalAction = 'stop' | 'keep';

/** How a stop asked from here ended: stopped now, or it had been stopped already. */
export type StopOutcome = 'stopped' | 'already_stopped';

/** The requests of one action in flight, and the last failure, by rental id. */
interface IActionState {
  pending: Set<string>;
  errors: Map<string, IErrorInfo>;
}

/** The quote for one form (its `quoteKey`), or why there is none. */
interface IQuoteState {
  key: string;
  reply: IPreviewView | null;
  error: IErrorInfo | null;
  loading: boolean;
}

/** A reason a create would be refused now, as the form shows it (amounts for a short wallet). */
export interface IProblem extends INotice {
  neededCents?: number;
  availableCents?: number;
}

export namespace GpuOutletModel {
  export interface IOptions {
    request: Requester;
    /** Seconds between two refreshes of the status, the families, keys and the wallet. */
    refreshInterval?: number;
    /** Seconds one long-poll of the rentals list may wait for a change. */
    longPollSeconds?: number;
    /** Start polling at once (default true); tests drive the model by hand. */
    auto?: boolean;
    /** Whether the panel is shown at first (default true); hidden, the polls stand by. */
    visible?: boolean;
    /** The clock, in ms (default Date.now): when replies arrive, for the countdowns. */
    now?: () => number;
    /** How long the form must rest before a quote is asked for, in ms (default 400). */
    quoteDelay?: number;
  }
}

export const DEFAULT_REFRESH_INTERVAL = 15;
export const DEFAULT_LONG_POLL_SECONDS = 30;
export const DEFAULT_QUOTE_DELAY_MS = 400;
/** The longest pause between two attempts after repeated failures, in ms. */
const MAX_BACKOFF_MS = 60_000;
/** The pause between two long-polls of the rentals list that succeeded, in ms. */
const RENTALS_GAP_MS = 100;

export class GpuOutletModel implements IDisposable {
  constructor(options: GpuOutletModel.IOptions) {
    this._request = options.request;
    this._now = options.now ?? (() => Date.now());
    this._refreshInterval = positive(options.refreshInterval, DEFAULT_REFRESH_INTERVAL);
    this._longPollSeconds = positive(options.longPollSeconds, DEFAULT_LONG_POLL_SECONDS);
    this._quoteDelay = options.quoteDelay ?? DEFAULT_QUOTE_DELAY_MS;
    this.signIn = new SignInModel({
      request: this._request,
      now: this._now,
      onSignedIn: () => this._afterSessionChange()
    });
    this.signIn.changed.connect(() => this._changed.emit());
    const auto = options.auto ?? true;
    this._polling = auto;
    this._visible = options.visible ?? true;
    const standby = () => (this._visible ? 'when-hidden' : true);
    this._refreshPoll = new Poll({
      auto,
      name: 'gpuoutlet:refresh',
      factory: () => this.refresh(),
      frequency: {
        interval: this._refreshInterval * 1000,
        backoff: true,
        max: Math.max(MAX_BACKOFF_MS, this._refreshInterval * 1000)
      },
      standby
    });
    this._rentalsPoll = new Poll({
      auto,
      name: 'gpuoutlet:rentals',
      factory: () => this.pollRentals(),
      frequency: { interval: RENTALS_GAP_MS, backoff: true, max: MAX_BACKOFF_MS },
      standby
    });
  }

  /** The "Sign in to gpuoutlet" form's state (shown while `needsSignIn`). */
  readonly signIn: SignInModel;

  /** Emitted on every change of anything the view shows. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._clearQuoteTimer();
    // stop() clears the pending timer at once (dispose alone leaves it to fire, idle).
    for (const poll of [this._refreshPoll, this._rentalsPoll]) {
      void poll.stop();
      poll.dispose();
    }
    Signal.clearData(this);
  }

  // State.

  get status(): IStatusView | null {
    return this._status;
  }

  /** An error about the whole extension (missing, not configured, unreachable), or null. */
  get statusError(): IErrorInfo | null {
    return this._statusError;
  }

  /** What to say before every stop (the server's words once the status is read). */
  get stopNotice(): string {
    return this._status?.stopNotice || STOP_NOTICE;
  }

  /** The six templates; null until read. */
  get templates(): ITemplateView[] | null {
    return this._templates;
  }

  get templatesError(): IErrorInfo | null {
    return this._templatesError;
  }

  /** The template the form has picked, or null (unknown, or not read yet). */
  get template(): ITemplateView | null {
    return this._templates?.find(t => t.id === this._form.templateId) ?? null;
  }

  /** The GPU families derived from gpuoutlet's catalog; null until read. */
  get families(): IFamilyView[] | null {
    return this._families;
  }

  get familiesError(): IErrorInfo | null {
    return this._familiesError;
  }

  /** The family the form has picked, or null (not in the catalog, or not read yet). */
  get family(): IFamilyView | null {
    return this._families?.find(f => f.id === this._form.familyId) ?? null;
  }

  get wallet(): IWalletView | null {
    return this._wallet;
  }

  /** When the wallet shown arrived (ms, the model's clock). */
  get walletAt(): number {
    return this._walletAt;
  }

  get walletError(): IErrorInfo | null {
    return this._walletError;
  }

  /** The account's SSH keys and the local one the SSH entries use; null until read. */
  get keys(): IKeysView | null {
    return this._keys;
  }

  get keysError(): IErrorInfo | null {
    return this._keysError;
  }

  /**
   * True when the local key is known not to be on the account: a pod created now would not
   * let it in, so the sidebar offers "Add this key" and refuses to rent until it is there.
   */
  get keyMissing(): boolean {
    const local = this._keys?.local;
    return !!local && !local.onAccount;
  }

  get addingKey(): boolean {
    return this._addingKey;
  }

  get addKeyError(): IErrorInfo | null {
    return this._addKeyError;
  }

  /** What the server said after the key was added (new pods let it in, running ones do not). */
  get addKeyNote(): string | null {
    return this._addKeyNote;
  }

  /**
   * The error that says the gpuoutlet session has expired (401 `unauthorized` from any
   * request), with how to sign in again; null while the session works.
   */
  get sessionExpired(): IErrorInfo | null {
    const errors = [
      this._walletError,
      this._familiesError,
      this._keysError,
      this._quote?.error ?? null,
      this._launchError
    ];
    return errors.find(e => e?.kind === 'session_expired') ?? null;
  }

  /**
   * Whether the panel asks to sign in: no session at all, or one gpuoutlet ended (a 401 from
   * any request, or the status saying so). What the form holds is kept meanwhile.
   */
  get needsSignIn(): boolean {
    const state = this._status?.sessionState;
    return (
      this._status !== null &&
      (state === 'signed_out' || state === 'expired' || this.sessionExpired !== null)
    );
  }

  /** Whether a sign-out is on its way. */
  get signingOut(): boolean {
    return this._signingOut;
  }

  /** What the last sign-out did, in words (what is no longer watched), until the next sign-in. */
  get signedOut(): ISignedOutReply | null {
    return this._signedOut;
  }

  get signOutError(): IErrorInfo | null {
    return this._signOutError;
  }

  /** The rentals that may still cost money (a sign-out leaves them unwatched: it says so). */
  get active(): IRentalView[] {
    return this._rentals.filter(isActive);
  }

  /**
   * Sign out: the server tells gpuoutlet, deletes the credentials file and stops watching (the
   * view has asked first when rentals may still be billed). The form is kept.
   */
  async signOut(): Promise<ISignedOutReply | null> {
    if (this._signingOut) {
      return null;
    }
    this._signingOut = true;
    this._signOutError = null;
    this._changed.emit();
    try {
      const reply = await this._request<ISignedOutReply>(
        'auth/logout',
        { method: 'POST', body: '{}' },
        'logout'
      );
      this._signedOut = reply;
      this.signIn.reset(this._status?.session?.email ?? this._status?.lastEmail ?? null);
      await this._afterSessionChange();
      return reply;
    } catch (error) {
      this._signOutError = describeError(error);
      return null;
    } finally {
      this._signingOut = false;
      this._changed.emit();
    }
  }

  /**
   * The session changed (a sign-in here or elsewhere, a sign-out): what was said under the old
   * one goes, the list is read afresh from the new service (its versions start over above the
   * old ones, but a reply is taken whatever its version), everything else is read again.
   */
  private async _afterSessionChange(): Promise<void> {
    for (const name of ['_walletError', '_familiesError', '_keysError', '_launchError'] as const) {
      if (this[name]?.kind === 'session_expired' || this[name]?.kind === 'not_configured') {
        this[name] = null;
      }
    }
    this._quote = null;
    this._rentalsVersion = null;
    this._changed.emit();
    await this.refresh().catch(() => undefined); // the error is in statusError
    if (this._status?.configured) {
      await this.loadRentals();
      this._wakeRentalsPoll();
      this._signedOut = null;
      void this.requestQuote(true);
    }
  }

  /**
   * The cost so far of the rentals this server tracks at `now` (ms): the wallet reply's
   * `costCents` (the API's own charges) plus the burn since it arrived, so it grows between
   * two refreshes.
   */
  spentCents(now: number): number | null {
    const wallet = this._wallet;
    if (wallet === null) {
      return null;
    }
    const hours = Math.max(0, now - this._walletAt) / 3_600_000;
    return wallet.costCents + Math.floor(wallet.burnCentsPerHour * hours);
  }

  /** The server's default idle stop for a new rental, in minutes; null when it is off. */
  /** The server's default GPU threshold of an idle stop (null: the GPUs do not count). */
  get idleGpuUtilDefault(): number | null {
    return this._status?.idleGpuUtil ?? null;
  }

  /** A watcher of one rental's pod (telemetry, ports) for an expanded card; dispose it after. */
  watchPod(rentalId: string): PodWatcher {
    return new PodWatcher({ rentalId, request: this._request });
  }

  get idleStopDefault(): number | null {
    const minutes = this._status?.idleStopMinutes;
    return typeof minutes === 'number' && minutes > 0 ? minutes : null;
  }

  /**
   * Why what the sidebar shows may be old: the rentals API does not answer. One error for the
   * whole sidebar (its banner), whichever request learnt it: the server's own watching (the
   * list's and the status's `apiProblem`) or a failed read of the wallet, families or keys.
   */
  get apiProblem(): IErrorInfo | null {
    const failed = [
      this._walletError,
      this._familiesError,
      this._keysError,
      this._templatesError,
      this._rentalsError,
      this._quote?.error ?? null
    ].find(isUpstream);
    const watching = this._rentalsProblem ?? this._status?.apiProblem ?? null;
    if (failed) {
      return watching ? { ...failed, message: watching.message } : failed;
    }
    if (!watching) {
      return null;
    }
    const url = this._status?.apiUrl;
    return {
      kind: 'upstream_unreachable',
      code: 'api_problem',
      title: `The rentals API${url ? ` at ${url}` : ''} is not answering`,
      message: watching.message
    };
  }

  /** When the rentals API stopped answering (ms), as the server's watching saw it; or null. */
  get apiProblemSince(): number | null {
    const watching = this._rentalsProblem ?? this._status?.apiProblem ?? null;
    return watching ? parseTime(watching.since) : null;
  }

  /** Every rental the server tracks, active ones first, then newest first. */
  get rentals(): readonly IRentalView[] {
    return this._rentals;
  }

  /**
   * Creates the server has not settled yet: their answer from gpuoutlet was lost and the
   * rental is being looked for by its name, or several rentals match and the user says which
   * to keep (`settleCreate`). Each one's price counts against the spending cap meanwhile.
   */
  get pendingCreates(): readonly IPendingCreateView[] {
    return this._pendingCreates;
  }

  /** Whether a choice for this create is on its way to the server. */
  settling(createId: string): boolean {
    return this._settling.has(createId);
  }

  /** Why the last choice for this create failed, if it did. */
  settleError(createId: string): IErrorInfo | null {
    return this._settleErrors.get(createId) ?? null;
  }

  /** What the last launch's reply said besides the rental (a lost answer found again). */
  get launchNote(): string | null {
    return this._launchNote;
  }

  get rentalsLoaded(): boolean {
    return this._rentalsVersion !== null;
  }

  get rentalsError(): IErrorInfo | null {
    return this._rentalsError;
  }

  /** The list's version of the last reply (the long-poll cursor), or null before the first. */
  get rentalsVersion(): number | null {
    return this._rentalsVersion;
  }

  get form(): ILaunchForm {
    return this._form;
  }

  /** The form's problems by field, and the request body when there are none. */
  get validation(): IValidation {
    return validateForm(this._form, this._templates);
  }

  /** gpuoutlet's quote for the form as it is now, or null (none yet, or it failed). */
  get quote(): IPreviewView | null {
    const state = this._quote;
    const request = this.validation.request;
    if (!state || !request || state.key !== quoteKey(request)) {
      return null;
    }
    return state.reply;
  }

  /** Whether the quote for the form as it is now is on its way. */
  get quoting(): boolean {
    const request = this.validation.request;
    return (
      !!request &&
      (this._quoteTimer !== null ||
        (!!this._quote?.loading && this._quote.key === quoteKey(request)))
    );
  }

  /** Why the quote for the form as it is now could not be had (unknown family, ...), or null. */
  get quoteError(): IErrorInfo | null {
    const state = this._quote;
    const request = this.validation.request;
    if (!state || !request || state.key !== quoteKey(request)) {
      return null;
    }
    return state.error;
  }

  /**
   * What the form would cost an hour: the quote's price, else the catalog's cheapest for the
   * family and count (a hint only), else null.
   */
  get hourCostCents(): number | null {
    return this.quote?.quote.pricePerHourCents ?? catalogPriceCents(this._form, this._families);
  }

  /**
   * Why a create of the form would be refused now: the quote's problems, with the wallet
   * check made against the latest wallet (it is refreshed more often than the form changes)
   * and the key check against the latest keys.
   */
  get problems(): IProblem[] {
    const reply = this.quote;
    if (!reply) {
      return [];
    }
    const found: IProblem[] = reply.problems.filter(
      p => p.code !== 'insufficient_balance' && p.code !== 'key_not_on_account'
    );
    const needed = reply.quote.pricePerHourCents;
    const available = this._wallet?.availableCents ?? reply.availableCents;
    if (available < needed) {
      found.unshift({
        code: 'insufficient_balance',
        message:
          `This rental reserves its first hour, ${formatCents(needed)}, from your wallet when ` +
          `it is created, and the wallet has ${formatCents(available)} available. Add at least ` +
          `${formatCents(needed - available)} on ${this._status?.apiUrl ?? 'gpuoutlet.ai'}, ` +
          'or pick fewer GPUs or a cheaper family.',
        neededCents: needed,
        availableCents: available
      });
    }
    const keyProblem = reply.problems.find(p => p.code === 'key_not_on_account');
    if (this._keys ? this.keyMissing : keyProblem) {
      found.push(
        keyProblem ?? {
          code: 'key_not_on_account',
          message: 'Your SSH key is not on your gpuoutlet account: add it first.'
        }
      );
    }
    return found;
  }

  /** True when the wallet is known and holds less than the hour the quote reserves. */
  get balanceShort(): boolean {
    return this.problems.some(p => p.code === 'insufficient_balance');
  }

  /** Whether "Rent" may be pressed: a valid form, its quote, no problem, nothing in flight. */
  get canLaunch(): boolean {
    return (
      !this._launching &&
      this.validation.request !== null &&
      this.quote !== null &&
      this.problems.length === 0
    );
  }

  get launching(): boolean {
    return this._launching;
  }

  get launchError(): IErrorInfo | null {
    return this._launchError;
  }

  /** Ids of the rentals whose stop request is in flight. */
  isStopping(id: string): boolean {
    return this._actions.stop.pending.has(id);
  }

  stopError(id: string): IErrorInfo | null {
    return this._actions.stop.errors.get(id) ?? null;
  }

  /** How a stop asked from this sidebar ended, or null when none was asked. */
  stopOutcome(id: string): StopOutcome | null {
    return this._stopOutcomes.get(id) ?? null;
  }

  /** Whether a "keep it" request (restart the idle timer) of this rental is in flight. */
  isKeeping(id: string): boolean {
    return this._actions.keep.pending.has(id);
  }

  keepError(id: string): IErrorInfo | null {
    return this._actions.keep.errors.get(id) ?? null;
  }

  /**
   * When the view of this rental shown now arrived (ms, the model's clock): its idle stop's
   * `secondsLeft` and its provisioning's `elapsedSeconds` were true then.
   */
  receivedAt(id: string): number {
    return this._receivedAt.get(id) ?? this._now();
  }

  /** The rentals that can be stopped now. */
  get stoppable(): IRentalView[] {
    return this._rentals.filter(canStop);
  }

  get visible(): boolean {
    return this._visible;
  }

  get refreshInterval(): number {
    return this._refreshInterval;
  }

  get longPollSeconds(): number {
    return this._longPollSeconds;
  }

  // Settings and visibility.

  /** Apply the user's settings (seconds); a change takes effect from the next tick. */
  configure(settings: { refreshInterval?: number; longPollSeconds?: number }): void {
    this._refreshInterval = positive(settings.refreshInterval, this._refreshInterval);
    this._longPollSeconds = positive(settings.longPollSeconds, this._longPollSeconds);
    const interval = this._refreshInterval * 1000;
    this._refreshPoll.frequency = {
      ...this._refreshPoll.frequency,
      interval,
      max: Math.max(MAX_BACKOFF_MS, interval)
    };
  }

  /**
   * The panel was shown or hidden: hidden, both polls stand by; shown again, they refresh, and
   * the form gets a quote if it has none.
   */
  setVisible(visible: boolean): void {
    if (visible === this._visible) {
      return;
    }
    this._visible = visible;
    if (visible) {
      void this._refreshPoll.refresh();
      void this._rentalsPoll.refresh();
      this._scheduleQuote();
    }
    this._changed.emit();
  }

  /** The rentals poll may be backing off after failures (a 503 while signed out): go now. */
  private _wakeRentalsPoll(): void {
    if (this._polling && !this._isDisposed) {
      void this._rentalsPoll.refresh();
    }
  }

  /** Refresh everything now (the view's refresh button). */
  async refreshNow(): Promise<void> {
    await Promise.all([this._refreshPoll.refresh(), this._rentalsPoll.refresh()]);
  }

  // The form.

  /** Change some fields of the launch form; validation is live, the quote follows. */
  updateForm(change: Partial<ILaunchForm>): void {
    const next = { ...this._form, ...change };
    if (change.familyId !== undefined && change.familyId !== this._form.familyId) {
      // A region of another family may not exist for this one.
      const family = this._families?.find(f => f.id === next.familyId);
      if (next.region && family && !family.regionCodes.includes(next.region)) {
        next.region = '';
      }
    }
    this._form = next;
    if (this._launchError?.kind === 'validation') {
      this._launchError = null;
    }
    this._scheduleQuote();
    this._changed.emit();
  }

  // Requests.

  /**
   * One refresh tick: the status, then (when configured) the families, templates, keys and
   * the wallet. Rejects when the status cannot be read, so the poll backs off.
   */
  async refresh(): Promise<void> {
    const before = this._status?.sessionState;
    try {
      this._status = await this._request<IStatusView>('status', {}, 'status');
      this._statusError = null;
    } catch (error) {
      this._status = null;
      this._statusError = describeError(error);
      this._changed.emit();
      throw error;
    }
    if (!this._status.configured) {
      this._changed.emit();
      return;
    }
    if (
      before !== undefined &&
      before !== 'signed_in' &&
      this._status.sessionState === 'signed_in'
    ) {
      // Signed in elsewhere (%gpu_login in a notebook, another tab): catch up at once.
      this.signIn.reset(null);
      this._signedOut = null;
      this._rentalsVersion = null;
      this._wakeRentalsPoll();
      void this.requestQuote(true);
    }
    const loads = [this.loadFamilies(), this.loadWallet(), this.loadKeys()];
    if (this._templates === null) {
      loads.push(this.loadTemplates());
    }
    await Promise.all(loads);
    this._changed.emit();
  }

  async loadTemplates(): Promise<void> {
    try {
      const reply = await this._request<ITemplatesView>('templates', {}, 'templates');
      this._templates = reply.templates;
      this._templatesError = null;
      const fallback = reply.templates.find(t => t.default)?.id;
      if (!this._form.templateId && fallback) {
        this._form = { ...this._form, templateId: fallback };
      }
    } catch (error) {
      this._templatesError = describeError(error);
    }
    this._scheduleQuote();
    this._changed.emit();
  }

  async loadFamilies(): Promise<void> {
    try {
      const reply = await this._request<IFamiliesView>('families', {}, 'families');
      this._families = reply.families;
      this._familiesError = null;
      if (!this._form.familyId) {
        const pick = cheapest(this._families);
        if (pick) {
          this._form = { ...this._form, familyId: pick.id };
          this._scheduleQuote();
        }
      }
    } catch (error) {
      this._familiesError = describeError(error);
    }
    this._changed.emit();
  }

  async loadWallet(): Promise<void> {
    try {
      this._wallet = await this._request<IWalletView>('wallet', {}, 'wallet');
      this._walletAt = this._now();
      this._walletError = null;
    } catch (error) {
      this._walletError = describeError(error);
    }
    this._changed.emit();
  }

  async loadKeys(): Promise<void> {
    try {
      this._keys = await this._request<IKeysView>('keys', {}, 'keys');
      this._keysError = null;
    } catch (error) {
      this._keysError = describeError(error);
    }
    this._changed.emit();
  }

  /**
   * "Add this key": post the local public key to the account (the server reads it from the
   * file its SSH entries use), then read the keys and the quote again. Pods created from now
   * on let it in; running ones do not (gpuoutlet copies keys into a pod at launch only).
   */
  async addKey(): Promise<IAddKeyReply | null> {
    if (this._addingKey) {
      return null;
    }
    this._addingKey = true;
    this._addKeyError = null;
    this._changed.emit();
    try {
      const reply = await this._request<IAddKeyReply>(
        'keys',
        { method: 'POST', body: '{}' },
        'addKey'
      );
      this._addKeyNote = reply.note;
      await this.loadKeys();
      if (this._launchError?.kind === 'key_not_on_account') {
        this._launchError = null;
      }
      await this.requestQuote(true);
      return reply;
    } catch (error) {
      this._addKeyError = describeError(error);
      return null;
    } finally {
      this._addingKey = false;
      this._changed.emit();
    }
  }

  /**
   * Ask gpuoutlet's quote for the form as it is now (`POST rentals/preview`), unless the one
   * shown is for the same family, count, template and region already (`force` asks anyway).
   * A rate-limited quote is asked again once the API says it may be.
   */
  async requestQuote(force = false): Promise<void> {
    this._clearQuoteTimer();
    const request = this.validation.request;
    if (!request || !this._status?.configured) {
      return;
    }
    const key = quoteKey(request);
    const current = this._quote;
    if (!force && current?.key === key && (current.loading || current.reply || current.error)) {
      if (!current.error || current.error.kind !== 'rate_limited') {
        return;
      }
    }
    const state: IQuoteState = { key, reply: null, error: null, loading: true };
    this._quote = state;
    this._changed.emit();
    try {
      const reply = await this._request<IPreviewView>(
        'rentals/preview',
        { method: 'POST', body: JSON.stringify(request) },
        'preview'
      );
      if (this._quote === state) {
        state.reply = reply;
      }
    } catch (error) {
      if (this._quote === state) {
        state.error = describeError(error);
        const retry = state.error.retryAfterSeconds;
        if (state.error.kind === 'rate_limited' && retry !== undefined && !this._isDisposed) {
          this._quoteTimer = setTimeout(
            () => {
              this._quoteTimer = null;
              void this.requestQuote(true);
            },
            Math.max(1, retry) * 1000
          );
        }
      }
    } finally {
      state.loading = false;
      this._changed.emit();
    }
  }

  /**
   * One rentals tick: the whole list at once, then long-polls for the next change of it.
   * Rejects when the list cannot be read, so the poll backs off.
   */
  pollRentals(): Promise<void> {
    const since = this._rentalsVersion;
    return this._readRentals(
      since === null
        ? 'rentals'
        : `rentals?wait=${encodeURIComponent(String(this._longPollSeconds))}&since=${since}`
    );
  }

  /** Read the whole list once, without waiting (the "Stop a GPU rental…" command). */
  async loadRentals(): Promise<void> {
    await this._readRentals('rentals').catch(() => undefined); // the error is in rentalsError
  }

  private async _readRentals(path: string): Promise<void> {
    try {
      this.applyRentals(await this._request<IRentalsView>(path, {}, 'rentals'));
      this._rentalsError = null;
    } catch (error) {
      this._rentalsError = describeError(error);
      throw error;
    } finally {
      this._changed.emit();
    }
  }

  /** Take a list reply; a view newer than the list (from a launch or stop reply) is kept. */
  applyRentals(reply: IRentalsView): void {
    if (this._rentalsVersion !== null && reply.version < this._rentalsVersion) {
      return; // an older list than the one shown
    }
    const listed = new Set(reply.rentals.map(r => r.id));
    const newer = this._rentals.filter(r => !listed.has(r.id) && r.version > reply.version);
    const at = this._now();
    const mine = new Map(this._rentals.map(r => [r.id, r]));
    const merged = reply.rentals.map(r => {
      const shown = mine.get(r.id);
      if (shown && shown.version > r.version) {
        return shown;
      }
      // Its computed numbers (secondsLeft, elapsedSeconds) were true when this reply was made.
      this._receivedAt.set(r.id, at);
      return r;
    });
    this._setRentals([...newer, ...merged]);
    this._pendingCreates = reply.pendingCreates ?? [];
    this._rentalsVersion = reply.version;
    this._rentalsProblem = reply.apiProblem ?? null;
    this._changed.emit();
  }

  /** Take one rental's view (a launch or stop reply) if it is newer than the one shown. */
  applyRental(view: IRentalView): void {
    const index = this._rentals.findIndex(r => r.id === view.id);
    if (index >= 0 && this._rentals[index].version > view.version) {
      return;
    }
    const next = [...this._rentals];
    if (index >= 0) {
      next[index] = view;
    } else {
      next.push(view);
    }
    this._receivedAt.set(view.id, this._now());
    this._setRentals(next);
    this._changed.emit();
  }

  /**
   * Show these rentals; when one appeared, went or changed status, the burn changed: read the
   * wallet again (the refresh poll alone would show the old burn for up to its interval), and
   * the quote too when a spending cap makes it depend on the burn.
   */
  private _setRentals(rentals: IRentalView[]): void {
    const before = statusKey(this._rentals);
    this._rentals = sortRentals(rentals);
    if (this._rentals.length !== this._receivedAt.size) {
      const ids = new Set(this._rentals.map(r => r.id));
      for (const id of [...this._receivedAt.keys()]) {
        if (!ids.has(id)) {
          this._receivedAt.delete(id);
        }
      }
    }
    // (Not for the first list: the refresh poll reads the wallet at the start anyway.)
    const loaded = this._rentalsVersion !== null;
    if (loaded && this._status?.configured && statusKey(this._rentals) !== before) {
      void this.loadWallet();
      if (this._status.maxHourlySpendCents) {
        void this.requestQuote(true);
      }
    }
  }

  /**
   * Rent with the form's values, on the quote shown. Returns the new rental's view, or null
   * (the error is in `launchError`). Sent once: after a lost answer the rental may exist, and
   * the message says to look for it rather than rent again.
   */
  async launch(): Promise<IRentalView | null> {
    if (this._launching) {
      return null;
    }
    const { request, fields } = this.validation;
    if (!request) {
      this._launchError = {
        kind: 'validation',
        code: 'validation_error',
        title: 'Check the form',
        message: 'Some fields need a change before the GPU can be rented.',
        fields: { ...fields } as Record<string, string>
      };
      this._changed.emit();
      return null;
    }
    if (!this.quote) {
      this._launchError = {
        kind: 'other',
        code: 'no_quote',
        title: 'No price yet',
        message: "Wait for gpuoutlet's quote: nothing is rented before you have seen its price."
      };
      this._changed.emit();
      return null;
    }
    this._launching = true;
    this._launchError = null;
    this._launchNote = null;
    this._changed.emit();
    try {
      const { note, ...view } = await this._request<ICreateReply>(
        'rentals',
        { method: 'POST', body: JSON.stringify(request) },
        'launch'
      );
      this._launchNote = note ?? null;
      this.applyRental(view); // a new rental: the wallet (and burn) is read again
      // The next rental gets the next name (alice/exp-42, then alice/exp-43), not this one's.
      this._form = { ...this._form, name: nextName(this._form.name) };
      return view;
    } catch (error) {
      const info = describeError(error);
      if (info.code === 'create_ambiguous') {
        void this.loadRentals(); // the matching rentals, and the choice, are in the list
      }
      if (createMayHaveHappened(error)) {
        info.message +=
          ' The rental may have been created anyway (the answer was lost on the way back, and ' +
          'gpuoutlet cannot tell a repeated create from a new one): it shows up under “Your ' +
          'rentals” within a minute if it was. Look there before you rent again.';
        void this.loadRentals();
      }
      this._launchError = info;
      if (info.kind === 'insufficient_balance') {
        void this.loadWallet();
      }
      if (info.kind === 'key_not_on_account') {
        void this.loadKeys();
      }
      return null;
    } finally {
      this._launching = false;
      this._changed.emit();
    }
  }

  /**
   * Ask the server to stop a rental for good (the view has asked the user first). A rental
   * gpuoutlet says is stopped already is a stop done, not an error.
   */
  async stop(id: string, save = true): Promise<IStopReply | null> {
    // The server saves the rental's work first (bounded by its save_timeout) unless told not to.
    const reply = (await this._act('stop', id, { save })) as IStopReply | null;
    if (reply) {
      // Said of this very call: gpuoutlet answered 409 `already_stopped`.
      this._stopOutcomes.set(id, reply.alreadyStopped ? 'already_stopped' : 'stopped');
      this._changed.emit();
    }
    return reply;
  }

  /**
   * "Keep it": restart the idle timer of a rental (its warning goes away). Returns the
   * rental's new view, or null (the error is in `keepError(id)`).
   */
  keep(id: string): Promise<IRentalView | null> {
    return this._act('keep', id);
  }

  /**
   * `POST rentals/{id}/{action}` and show the rental's view it answers; one request per rental
   * and action at a time. Null when one is in flight already, or on failure (the error is then
   * kept for that rental and action until the next try).
   */
  private async _act(
    action: RentalAction,
    id: string,
    body: Record<string, unknown> = {}
  ): Promise<IRentalView | null> {
    const { pending, errors } = this._actions[action];
    if (pending.has(id)) {
      return null;
    }
    pending.add(id);
    errors.delete(id);
    this._changed.emit();
    try {
      const view = await this._request<IRentalView>(
        `rentals/${encodeURIComponent(id)}/${action}`,
        { method: 'POST', body: JSON.stringify(body) },
        action
      );
      this.applyRental(view);
      return view;
    } catch (error) {
      errors.set(id, describeError(error));
      return null;
    } finally {
      pending.delete(id);
      this._changed.emit();
    }
  }

  /**
   * Settle a create whose answer was lost and that several rentals match: keep `keep` (or
   * all), the server stops the others (the view has asked the user first). Returns whether
   * the server took the choice (else the error is in `settleError`).
   */
  async settleCreate(createId: string, keep: string[] | 'all'): Promise<boolean> {
    if (this._settling.has(createId)) {
      return false;
    }
    this._settling.add(createId);
    this._settleErrors.delete(createId);
    this._changed.emit();
    try {
      const reply = await this._request<ISettleReply>(
        `creates/${encodeURIComponent(createId)}`,
        { method: 'POST', body: JSON.stringify({ keep }) },
        'settle'
      );
      for (const view of [...reply.kept, ...reply.stopped]) {
        this.applyRental(view);
      }
      this._pendingCreates = this._pendingCreates.filter(p => p.id !== createId);
      return true;
    } catch (error) {
      this._settleErrors.set(createId, describeError(error));
      return false;
    } finally {
      this._settling.delete(createId);
      this._changed.emit();
    }
  }

  /** What a save of the rental would copy now (one quick `du` on its pod): the stop dialog's. */
  saveSize(id: string): Promise<ISaveSizeView> {
    return this._request<ISaveSizeView>(
      `rentals/${encodeURIComponent(id)}/save-size`,
      {},
      'saveSize'
    );
  }

  /**
   * Start an upload (`up`: a folder under the Jupyter root to the pod's work folder) or a
   * download (`down`: the pod's work folder into a folder here). Its progress comes with the
   * rental's view; false when it could not start (the error is in `transferError(id)`).
   */
  async transfer(id: string, direction: 'up' | 'down', localDir: string): Promise<boolean> {
    if (this._transfers.pending.has(id)) {
      return false;
    }
    this._transfers.pending.add(id);
    this._transfers.errors.delete(id);
    this._changed.emit();
    try {
      await this._request<ITransferReply>(
        `rentals/${encodeURIComponent(id)}/transfer`,
        { method: 'POST', body: JSON.stringify({ direction, localDir }) },
        'transfer'
      );
      return true;
    } catch (error) {
      this._transfers.errors.set(id, describeError(error));
      return false;
    } finally {
      this._transfers.pending.delete(id);
      this._changed.emit();
    }
  }

  transferError(id: string): IErrorInfo | null {
    return this._transfers.errors.get(id) ?? null;
  }

  /** The pods' work folder (`~/work`), as the server says. */
  get remoteWorkdir(): string {
    return this._status?.remoteWorkdir || '~/work';
  }

  dismissLaunchError(): void {
    this._launchError = null;
    this._changed.emit();
  }

  /** Ask for a quote once the form has rested (only while the panel is shown). */
  private _scheduleQuote(): void {
    this._clearQuoteTimer();
    const request = this.validation.request;
    if (!request || !this._visible || this._isDisposed || !this._status?.configured) {
      return;
    }
    const current = this._quote;
    if (current?.key === quoteKey(request) && !current.error) {
      return; // the quote shown (or on its way) is for this form already
    }
    this._quoteTimer = setTimeout(() => {
      this._quoteTimer = null;
      void this.requestQuote();
    }, this._quoteDelay);
  }

  private _clearQuoteTimer(): void {
    if (this._quoteTimer !== null) {
      clearTimeout(this._quoteTimer);
      this._quoteTimer = null;
    }
  }

  private _request: Requester;
  private _now: () => number;
  private _refreshInterval: number;
  private _longPollSeconds: number;
  private _quoteDelay: number;
  private _refreshPoll: Poll;
  private _rentalsPoll: Poll;
  private _changed = new Signal<this, void>(this);
  private _isDisposed = false;
  private _visible = true;
  private _status: IStatusView | null = null;
  private _statusError: IErrorInfo | null = null;
  private _templates: ITemplateView[] | null = null;
  private _templatesError: IErrorInfo | null = null;
  private _families: IFamilyView[] | null = null;
  private _familiesError: IErrorInfo | null = null;
  private _wallet: IWalletView | null = null;
  private _walletError: IErrorInfo | null = null;
  private _walletAt = 0;
  private _keys: IKeysView | null = null;
  private _keysError: IErrorInfo | null = null;
  private _addingKey = false;
  private _addKeyError: IErrorInfo | null = null;
  private _addKeyNote: string | null = null;
  private _rentals: IRentalView[] = [];
  private _rentalsVersion: number | null = null;
  private _rentalsError: IErrorInfo | null = null;
  private _pendingCreates: IPendingCreateView[] = [];
  private _settling = new Set<string>();
  private _settleErrors = new Map<string, IErrorInfo>();
  private _launchNote: string | null = null;
  private _rentalsProblem: IApiProblemView | null = null;
  private _form: ILaunchForm = emptyForm();
  private _quote: IQuoteState | null = null;
  private _quoteTimer: ReturnType<typeof setTimeout> | null = null;
  private _launching = false;
  private _launchError: IErrorInfo | null = null;
  private _actions: Record<RentalAction, IActionState> = {
    stop: { pending: new Set(), errors: new Map() },
    keep: { pending: new Set(), errors: new Map() }
  };
  private _transfers: IActionState = { pending: new Set(), errors: new Map() };
  private _stopOutcomes = new Map<string, StopOutcome>();
  private _polling: boolean;
  private _signingOut = false;
  private _signedOut: ISignedOutReply | null = null;
  private _signOutError: IErrorInfo | null = null;
  private _receivedAt = new Map<string, number>();
}

function positive(value: number | undefined, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : fallback;
}

/** What the burn depends on: which rentals there are, and each one's status. */
function statusKey(rentals: readonly IRentalView[]): string {
  return rentals
    .map(r => `${r.id}:${r.gone ? 'gone' : r.status}`)
    .sort()
    .join(',');
}

/** Active rentals first, then by start time, newest first. */
function sortRentals(rentals: IRentalView[]): IRentalView[] {
  return [...rentals].sort((a, b) => {
    const active = Number(isActive(b)) - Number(isActive(a));
    if (active !== 0) {
      return active;
    }
    return (Date.parse(b.startedAt) || 0) - (Date.parse(a.startedAt) || 0);
  });
}

/** The family with the cheapest GPU hour: the form's first pick. */
function cheapest(families: IFamilyView[]): IFamilyView | null {
  if (families.length === 0) {
    return null;
  }
  return families.reduce((a, b) => (b.minPricePerGpuHourCents < a.minPricePerGpuHourCents ? b : a));
}
