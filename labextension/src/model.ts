/**
 * The sidebar's state and everything it does, with no view: polls, launch, stop, validation.
 *
 * Rentals are long-polled as ONE list (`GET rentals?wait=&since=`), never one request per
 * rental; status, families and the wallet are refreshed at the configured interval, and the
 * wallet (with the burn) again whenever a rental changes status. Both polls back off on failure
 * and stand by while the panel is hidden.
 */
import { UUID } from '@lumino/coreutils';
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { ApiError, describeError, Endpoint, IErrorInfo } from './errors';
import {
  IFamiliesReply,
  IFamily,
  ILaunchForm,
  ILaunchRequest,
  IRentalsReply,
  IRentalView,
  IStatus,
  IWallet
} from './types';
import { emptyForm, hourCostCents, IValidation, validateForm } from './validation';

/** One typed call to the server extension (see `requestAPI`); injected, so tests fake it. */
export type Requester = <T>(path: string, init?: RequestInit, endpoint?: Endpoint) => Promise<T>;

/** Statuses in which a rental can still be stopped (and is shown as active). */
export const ACTIVE_STATUSES: readonly string[] = ['provisioning', 'running', 'stopping'];

export function isActive(rental: IRentalView): boolean {
  return !rental.gone && ACTIVE_STATUSES.includes(rental.status);
}

export function canStop(rental: IRentalView): boolean {
  return !rental.gone && (rental.status === 'provisioning' || rental.status === 'running');
}

/** What the family, count and name of a rental read like: "rtx-4090 × 2 · alice/exp-42". */
export function rentalTitle(rental: IRentalView, families: IFamily[] | null = null): string {
  const family = families?.find(f => f.id === rental.familyId);
  const label = family?.displayName ?? rental.familyId ?? 'GPU';
  return `${label} × ${rental.gpuCount ?? 1}`;
}

/** What the sidebar asks of one rental: `POST rentals/{id}/stop` or `.../keep`. */
export type RentalAction = 'stop' | 'keep';

/** The requests of one action in flight, and the last failure, by rental id. */
interface IActionState {
  pending: Set<string>;
  errors: Map<string, IErrorInfo>;
}

export namespace GpuOutletModel {
  export interface IOptions {
    request: Requester;
    /** Seconds between two refreshes of the status, the families and the wallet. */
    refreshInterval?: number;
    /** Seconds one long-poll of the rentals list may wait for a change. */
    longPollSeconds?: number;
    /** Start polling at once (default true); tests drive the model by hand. */
    auto?: boolean;
    /** A new Idempotency-Key (default: a UUID). */
    newKey?: () => string;
    /** Whether the panel is shown at first (default true); hidden, the polls stand by. */
    visible?: boolean;
    /** The clock, in ms (default Date.now): when replies arrive, for the countdowns. */
    now?: () => number;
  }
}

export const DEFAULT_REFRESH_INTERVAL = 15;
export const DEFAULT_LONG_POLL_SECONDS = 30;
/** The longest pause between two attempts after repeated failures, in ms. */
const MAX_BACKOFF_MS = 60_000;
/** The pause between two long-polls of the rentals list that succeeded, in ms. */
const RENTALS_GAP_MS = 100;

export class GpuOutletModel implements IDisposable {
  constructor(options: GpuOutletModel.IOptions) {
    this._request = options.request;
    this._newKey = options.newKey ?? (() => UUID.uuid4());
    this._now = options.now ?? (() => Date.now());
    this._refreshInterval = positive(options.refreshInterval, DEFAULT_REFRESH_INTERVAL);
    this._longPollSeconds = positive(options.longPollSeconds, DEFAULT_LONG_POLL_SECONDS);
    const auto = options.auto ?? true;
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
    // stop() clears the pending timer at once (dispose alone leaves it to fire, idle).
    for (const poll of [this._refreshPoll, this._rentalsPoll]) {
      void poll.stop();
      poll.dispose();
    }
    Signal.clearData(this);
  }

  // State.

  get status(): IStatus | null {
    return this._status;
  }

  /** An error about the whole extension (missing, not configured, unreachable), or null. */
  get statusError(): IErrorInfo | null {
    return this._statusError;
  }

  /** Null until loaded, or when the API does not list families. */
  get families(): IFamily[] | null {
    return this._families;
  }

  get familiesError(): IErrorInfo | null {
    return this._familiesError;
  }

  get wallet(): IWallet | null {
    return this._wallet;
  }

  get walletError(): IErrorInfo | null {
    return this._walletError;
  }

  /**
   * The cost so far of the rentals this server tracks at `now` (ms): the wallet reply's
   * `costCents` plus the burn since it arrived, so it grows between two refreshes. Null when
   * the server does not report it.
   */
  spentCents(now: number): number | null {
    const wallet = this._wallet;
    if (typeof wallet?.costCents !== 'number') {
      return null;
    }
    const burn = typeof wallet.burnCentsPerHour === 'number' ? wallet.burnCentsPerHour : 0;
    const hours = Math.max(0, now - this._walletAt) / 3_600_000;
    return wallet.costCents + Math.floor(burn * hours);
  }

  /** The server's default idle stop for a new rental, in minutes; null when it is off. */
  get idleStopDefault(): number | null {
    const minutes = this._status?.idleStopMinutes;
    return typeof minutes === 'number' && minutes > 0 ? minutes : null;
  }

  /** Every rental the server tracks, newest first. */
  get rentals(): readonly IRentalView[] {
    return this._rentals;
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
    return validateForm(this._form, this._families);
  }

  /** The hour of cost the launch reserves against the wallet's available balance. */
  get hourCostCents(): number | null {
    return hourCostCents(this._form, this._families);
  }

  /** True when the wallet is known and holds less than the hour the launch reserves. */
  get balanceShort(): boolean {
    const cost = this.hourCostCents;
    return cost !== null && this._wallet !== null && this._wallet.availableCents < cost;
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

  /** Whether a "keep it" request (restart the idle timer) of this rental is in flight. */
  isKeeping(id: string): boolean {
    return this._actions.keep.pending.has(id);
  }

  keepError(id: string): IErrorInfo | null {
    return this._actions.keep.errors.get(id) ?? null;
  }

  /**
   * When the view of this rental shown now arrived (ms, the model's clock): its idle stop's
   * `secondsLeft` was true then, and counts down from there.
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
   * The panel was shown or hidden: hidden, both polls stand by; shown again, they refresh.
   */
  setVisible(visible: boolean): void {
    if (visible === this._visible) {
      return;
    }
    this._visible = visible;
    if (visible) {
      void this._refreshPoll.refresh();
      void this._rentalsPoll.refresh();
    }
    this._changed.emit();
  }

  /** Refresh everything now (the view's refresh button). */
  async refreshNow(): Promise<void> {
    await Promise.all([this._refreshPoll.refresh(), this._rentalsPoll.refresh()]);
  }

  // The form.

  /** Change some fields of the launch form; validation is live (see `validation`). */
  updateForm(change: Partial<ILaunchForm>): void {
    const next = { ...this._form, ...change };
    if (change.familyId !== undefined && change.familyId !== this._form.familyId) {
      // A region of another family may not exist for this one.
      const family = this._families?.find(f => f.id === next.familyId);
      if (next.region && family && !family.regions.includes(next.region)) {
        next.region = '';
      }
    }
    this._form = next;
    if (this._launchError?.kind === 'validation') {
      this._launchError = null;
    }
    this._changed.emit();
  }

  // Requests.

  /**
   * One refresh tick: the status, then (when configured) the families and the wallet.
   * Rejects when the status cannot be read, so the poll backs off.
   */
  async refresh(): Promise<void> {
    try {
      this._status = await this._request<IStatus>('status', {}, 'status');
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
    await Promise.all([this.loadFamilies(), this.loadWallet()]);
    this._changed.emit();
  }

  async loadFamilies(): Promise<void> {
    try {
      const reply = await this._request<IFamiliesReply>('families', {}, 'families');
      this._families = reply.families ?? [];
      this._familiesError = null;
      if (!this._form.familyId || !this._families.some(f => f.id === this._form.familyId)) {
        const pick = cheapestAvailable(this._families);
        if (pick && !this._form.familyId) {
          this._form = { ...this._form, familyId: pick.id };
        }
      }
    } catch (error) {
      this._familiesError = describeError(error);
      if (this._familiesError.kind === 'endpoint_unavailable') {
        this._families = null;
      }
    }
    this._changed.emit();
  }

  async loadWallet(): Promise<void> {
    try {
      this._wallet = await this._request<IWallet>('wallet', {}, 'wallet');
      this._walletAt = this._now();
      this._walletError = null;
    } catch (error) {
      this._walletError = describeError(error);
      if (this._walletError.kind === 'endpoint_unavailable') {
        this._wallet = null;
      }
    }
    this._changed.emit();
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
      this.applyRentals(await this._request<IRentalsReply>(path, {}, 'rentals'));
      this._rentalsError = null;
    } catch (error) {
      this._rentalsError = describeError(error);
      throw error;
    } finally {
      this._changed.emit();
    }
  }

  /** Take a list reply; a view newer than the list (from a launch or stop reply) is kept. */
  applyRentals(reply: IRentalsReply): void {
    if (this._rentalsVersion !== null && reply.version < this._rentalsVersion) {
      return; // an older list than the one shown
    }
    const listed = new Set(reply.rentals.map(r => r.id));
    const newer = this._rentals.filter(r => !listed.has(r.id) && r.version > reply.version);
    const at = this._now();
    const merged = reply.rentals.map(r => {
      const mine = this._rentals.find(m => m.id === r.id);
      if (mine && mine.version > r.version) {
        return mine;
      }
      this._receivedAt.set(r.id, at);
      return r;
    });
    this._setRentals([...newer, ...merged]);
    this._rentalsVersion = reply.version;
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
   * wallet again (the refresh poll alone would show the old burn for up to its interval).
   */
  private _setRentals(rentals: IRentalView[]): void {
    const before = statusKey(this._rentals);
    this._rentals = sortRentals(rentals);
    const ids = new Set(this._rentals.map(r => r.id));
    for (const id of [...this._receivedAt.keys()]) {
      if (!ids.has(id)) {
        this._receivedAt.delete(id);
      }
    }
    // (Not for the first list: the refresh poll reads the wallet at the start anyway.)
    const loaded = this._rentalsVersion !== null;
    if (loaded && this._status?.configured && statusKey(this._rentals) !== before) {
      void this.loadWallet();
    }
  }

  /**
   * Rent with the form's values. Returns the new rental's view, or null (the error is in
   * `launchError`). A retry of the same request after an ambiguous failure reuses its
   * Idempotency-Key, so it never rents twice.
   */
  async launch(): Promise<IRentalView | null> {
    if (this._launching) {
      return null;
    }
    const { request } = this.validation;
    if (!request) {
      this._launchError = {
        kind: 'validation',
        title: 'Check the form',
        message: 'Some fields need a change before the GPU can be rented.',
        fields: { ...this.validation.fields } as Record<string, string>
      };
      this._changed.emit();
      return null;
    }
    const key = this._keyFor(request);
    this._launching = true;
    this._launchError = null;
    this._changed.emit();
    try {
      const view = await this._request<IRentalView>(
        'rentals',
        {
          method: 'POST',
          body: JSON.stringify(request),
          headers: { 'Idempotency-Key': key }
        },
        'launch'
      );
      this._pendingKey = null;
      this.applyRental(view); // a new rental: the wallet (and burn) is read again
      return view;
    } catch (error) {
      this._launchError = describeError(error);
      if (!isAmbiguous(error)) {
        this._pendingKey = null;
      }
      if (this._launchError.kind === 'insufficient_balance') {
        void this.loadWallet();
      }
      return null;
    } finally {
      this._launching = false;
      this._changed.emit();
    }
  }

  /** Ask the server to stop a rental (the view asks the user first). */
  stop(id: string): Promise<IRentalView | null> {
    return this._act('stop', id); // running → stopping: the wallet is read again
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
  private async _act(action: RentalAction, id: string): Promise<IRentalView | null> {
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
        { method: 'POST', body: '{}' },
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

  dismissLaunchError(): void {
    this._launchError = null;
    this._changed.emit();
  }

  private _keyFor(request: ILaunchRequest): string {
    const body = JSON.stringify(request);
    if (this._pendingKey?.body !== body) {
      this._pendingKey = { body, key: this._newKey() };
    }
    return this._pendingKey.key;
  }

  private _request: Requester;
  private _newKey: () => string;
  private _now: () => number;
  private _refreshInterval: number;
  private _longPollSeconds: number;
  private _refreshPoll: Poll;
  private _rentalsPoll: Poll;
  private _changed = new Signal<this, void>(this);
  private _isDisposed = false;
  private _visible = true;
  private _status: IStatus | null = null;
  private _statusError: IErrorInfo | null = null;
  private _families: IFamily[] | null = null;
  private _familiesError: IErrorInfo | null = null;
  private _wallet: IWallet | null = null;
  private _walletError: IErrorInfo | null = null;
  private _walletAt = 0;
  private _rentals: IRentalView[] = [];
  private _rentalsVersion: number | null = null;
  private _rentalsError: IErrorInfo | null = null;
  private _form: ILaunchForm = emptyForm();
  private _launching = false;
  private _launchError: IErrorInfo | null = null;
  private _pendingKey: { body: string; key: string } | null = null;
  private _actions: Record<RentalAction, IActionState> = {
    stop: { pending: new Set(), errors: new Map() },
    keep: { pending: new Set(), errors: new Map() }
  };
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

function cheapestAvailable(families: IFamily[]): IFamily | null {
  const available = families.filter(f => f.available);
  if (available.length === 0) {
    return null;
  }
  return available.reduce((a, b) => (b.pricePerHourCents < a.pricePerHourCents ? b : a));
}

/** A failure after which the rental may or may not exist: a retry must reuse the key. */
function isAmbiguous(error: unknown): boolean {
  if (!(error instanceof ApiError)) {
    return true;
  }
  return error.status === 0 || error.status >= 500 || error.code === 'network_error';
}
