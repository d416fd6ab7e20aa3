/**
 * The rentals' remote kernels, for the sidebar: how each is connected (connected, reconnecting
 * with its attempt, detached), and "Reattach" and "Shut down" of a detached one.
 *
 * One long-poll for every kernel of every rental (`GET remote-kernels?wait=&since=`), never one per
 * rental or kernel; the server answers it from the kernel records it reads once per change for
 * all viewers, with no request to the rentals API. The poll backs off on failure and stands by
 * while the panel is hidden.
 */
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { describeError, IErrorInfo } from './errors';
import { DEFAULT_LONG_POLL_SECONDS, Requester } from './model';
import { IKernelShutDownReply, IKernelsView, IKernelView, IReattachReply } from './types';

/** What the sidebar asks of one detached kernel. */
export type KernelAction = 'reattach' | 'shutdown';

/** Headlines for the kernel endpoints' own error codes (the message says the rest). */
const TITLES: Record<string, string> = {
  kernel_not_found: 'This kernel has ended',
  kernel_attached: 'This kernel is attached to a notebook',
  kernel_unreachable: 'Its machine did not answer',
  reattach_failed: 'The kernel could not be reattached',
  rental_not_running: 'Its rental is not running any more'
};

/** The longest pause between two attempts after repeated failures, in ms. */
const MAX_BACKOFF_MS = 60_000;
/** The pause between two long-polls that succeeded, in ms. */
const GAP_MS = 100;

export namespace KernelsModel {
  export interface IOptions {
    request: Requester;
    /** Seconds one long-poll may wait for a change. */
    longPollSeconds?: number;
    /** Start polling at once (default true); tests drive the model by hand. */
    auto?: boolean;
    /** Whether the panel is shown at first (default true); hidden, the poll stands by. */
    visible?: boolean;
  }
}

export class KernelsModel implements IDisposable {
  constructor(options: KernelsModel.IOptions) {
    this._request = options.request;
    this._longPollSeconds = options.longPollSeconds ?? DEFAULT_LONG_POLL_SECONDS;
    this._visible = options.visible ?? true;
    this._poll = new Poll({
      auto: options.auto ?? true,
      name: 'gpuoutlet:kernels',
      factory: () => this.pollKernels(),
      frequency: { interval: GAP_MS, backoff: true, max: MAX_BACKOFF_MS },
      standby: () => (this._visible ? 'when-hidden' : true)
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
    void this._poll.stop();
    this._poll.dispose();
    Signal.clearData(this);
  }

  /** Every remote kernel, by rental, newest first. */
  get kernels(): readonly IKernelView[] {
    return this._kernels;
  }

  get loaded(): boolean {
    return this._version !== null;
  }

  /** Why the list could not be read (it keeps what it last had), or null. */
  get error(): IErrorInfo | null {
    return this._error;
  }

  /** The kernels of one rental. */
  forRental(rentalId: string): IKernelView[] {
    return this._kernels.filter(k => k.rentalId === rentalId);
  }

  /** The action in flight for this kernel, or null. */
  pending(wrapper: string): KernelAction | null {
    return this._pending.get(wrapper) ?? null;
  }

  /** Why the last action on this kernel failed, or null. */
  actionError(wrapper: string): IErrorInfo | null {
    return this._errors.get(wrapper) ?? null;
  }

  /** What the server said of the last action on a kernel of this rental that needs saying. */
  note(rentalId: string): string | null {
    return this._notes.get(rentalId) ?? null;
  }

  dismissNote(rentalId: string): void {
    if (this._notes.delete(rentalId)) {
      this._changed.emit();
    }
  }

  get visible(): boolean {
    return this._visible;
  }

  /** Shown or hidden: hidden, the poll stands by; shown again, it reads at once. */
  setVisible(visible: boolean): void {
    if (visible === this._visible) {
      return;
    }
    this._visible = visible;
    if (visible) {
      void this._poll.refresh();
    }
  }

  configure(settings: { longPollSeconds?: number }): void {
    const seconds = settings.longPollSeconds;
    if (typeof seconds === 'number' && Number.isFinite(seconds) && seconds > 0) {
      this._longPollSeconds = seconds;
    }
  }

  /** One tick: the whole list, then long-polls for its next change. Rejects on failure. */
  pollKernels(): Promise<void> {
    const since = this._version;
    return this._read(
      since === null
        ? 'remote-kernels'
        : `remote-kernels?wait=${encodeURIComponent(String(this._longPollSeconds))}&since=${since}`
    );
  }

  /** Read the list once, without waiting (after an action). */
  async loadKernels(): Promise<void> {
    await this._read('remote-kernels').catch(() => undefined); // the error is in `error`
  }

  /**
   * "Reattach": the server starts the rental's kernel for the kernel's notebook, which adopts
   * the detached one. The reply says which notebook (and Jupyter kernel) to open; null on
   * failure (the error is in `actionError`).
   */
  async reattach(wrapper: string): Promise<IReattachReply | null> {
    const reply = await this._act<IReattachReply>('reattach', wrapper);
    if (reply && reply.adopted === false) {
      this._notes.set(reply.kernel.rentalId, reply.message);
    }
    return reply;
  }

  /** "Shut down" a detached kernel (the view has asked first); null on failure. */
  shutDown(wrapper: string): Promise<IKernelShutDownReply | null> {
    return this._act<IKernelShutDownReply>('shutdown', wrapper);
  }

  private async _act<T>(action: KernelAction, wrapper: string): Promise<T | null> {
    if (this._pending.has(wrapper)) {
      return null;
    }
    this._pending.set(wrapper, action);
    this._errors.delete(wrapper);
    this._changed.emit();
    try {
      return await this._request<T>(`remote-kernels/${encodeURIComponent(wrapper)}/${action}`, {
        method: 'POST',
        body: '{}'
      });
    } catch (error) {
      const info = describeError(error);
      this._errors.set(wrapper, { ...info, title: TITLES[info.code] ?? info.title });
      return null;
    } finally {
      this._pending.delete(wrapper);
      await this.loadKernels();
    }
  }

  private async _read(path: string): Promise<void> {
    try {
      this._apply(await this._request<IKernelsView>(path));
      this._error = null;
    } catch (error) {
      this._error = describeError(error);
      throw error;
    } finally {
      this._changed.emit();
    }
  }

  private _apply(reply: IKernelsView): void {
    if (this._version !== null && reply.version < this._version) {
      return; // older than the list shown (a long-poll and a read crossed)
    }
    this._kernels = reply.kernels;
    this._version = reply.version;
    const present = new Set(reply.kernels.map(k => k.wrapper));
    for (const wrapper of [...this._errors.keys()]) {
      if (!present.has(wrapper)) {
        this._errors.delete(wrapper);
      }
    }
  }

  private _request: Requester;
  private _longPollSeconds: number;
  private _visible: boolean;
  private _poll: Poll;
  private _changed = new Signal<this, void>(this);
  private _isDisposed = false;
  private _kernels: IKernelView[] = [];
  private _version: number | null = null;
  private _error: IErrorInfo | null = null;
  private _pending = new Map<string, KernelAction>();
  private _errors = new Map<string, IErrorInfo>();
  private _notes = new Map<string, string>();
}
