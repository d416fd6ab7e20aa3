/**
 * What an expanded rental card shows of its pod: its GPUs' telemetry and its ports.
 *
 * A `PodWatcher` lives while its card is expanded. It polls `rentals/ID/telemetry` once per
 * sampling interval (short polls, not long-polls: a page must not hold one open request per
 * rental); every poll is a look that keeps the server's one sampler per rental running, and the
 * sampler stops by itself once no card (and no %gpu_top) looks. Hidden panel: the poll stands by.
 * A pod without nvidia-smi is said once, and not asked again.
 */
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { describeError, Endpoint, IErrorInfo } from './errors';
import { IForwardView, IPortsView, ITelemetryView } from './types';

/** The one typed request of the model (`requestAPI`). */
export type PodRequest = <T>(path: string, init?: RequestInit, endpoint?: Endpoint) => Promise<T>;

/** Until the first reply says the server's interval, in ms. */
const FIRST_INTERVAL_MS = 5_000;
const MAX_BACKOFF_MS = 60_000;

export class PodWatcher implements IDisposable {
  constructor(options: PodWatcher.IOptions) {
    this.rentalId = options.rentalId;
    this._request = options.request;
    this._poll = new Poll({
      auto: options.auto ?? true,
      name: `gpuoutlet:telemetry:${options.rentalId}`,
      factory: () => this._sample(),
      frequency: { interval: FIRST_INTERVAL_MS, backoff: true, max: MAX_BACKOFF_MS },
      standby: 'when-hidden'
    });
  }

  readonly rentalId: string;

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get telemetry(): ITelemetryView | null {
    return this._telemetry;
  }

  get telemetryError(): IErrorInfo | null {
    return this._telemetryError;
  }

  get ports(): IPortsView | null {
    return this._ports;
  }

  get portsError(): IErrorInfo | null {
    return this._portsError;
  }

  get loadingPorts(): boolean {
    return this._loadingPorts;
  }

  /** The pod port being opened now, if any. */
  get opening(): number | null {
    return this._opening;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  private _path(tail: string): string {
    return `rentals/${encodeURIComponent(this.rentalId)}/${tail}`;
  }

  private async _sample(): Promise<void> {
    if (this._isDisposed) {
      return;
    }
    try {
      const view = await this._request<ITelemetryView>(this._path('telemetry'), {}, 'telemetry');
      this._telemetry = view;
      this._telemetryError = null;
      const interval = Math.max(250, view.intervalSeconds * 1000);
      if (this._poll.frequency.interval !== interval) {
        this._poll.frequency = { ...this._poll.frequency, interval };
      }
      if (view.state === 'unavailable') {
        // Said once: nothing more to ask this pod.
        void this._poll.stop();
      }
    } catch (error) {
      this._telemetryError = describeError(error);
      if (this._telemetryError.code === 'pod_not_reachable') {
        void this._poll.stop(); // the rental ended: its card collapses with it
      }
      this._changed.emit();
      throw error; // the poll backs off
    }
    this._changed.emit();
  }

  /** Read the pod's ports (the template's, the listening ones, the forwards). */
  async refreshPorts(): Promise<void> {
    this._loadingPorts = true;
    this._changed.emit();
    try {
      this._ports = await this._request<IPortsView>(this._path('ports'), {}, 'ports');
      this._portsError = null;
    } catch (error) {
      this._portsError = describeError(error);
    } finally {
      this._loadingPorts = false;
      if (!this._isDisposed) {
        this._changed.emit();
      }
    }
  }

  /**
   * Forward the pod's port here (over the rental's shared SSH connection) and return where it
   * opens: the Jupyter server's proxy path when it has jupyter-server-proxy, else the local URL.
   */
  async open(port: number): Promise<IForwardView | null> {
    this._opening = port;
    this._portsError = null;
    this._changed.emit();
    try {
      const forward = await this._request<IForwardView>(
        this._path('forwards'),
        { method: 'POST', body: JSON.stringify({ port }) },
        'forward'
      );
      void this.refreshPorts();
      return forward;
    } catch (error) {
      this._portsError = describeError(error);
      return null;
    } finally {
      this._opening = null;
      if (!this._isDisposed) {
        this._changed.emit();
      }
    }
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

  private _request: PodRequest;
  private _poll: Poll;
  private _changed = new Signal<this, void>(this);
  private _telemetry: ITelemetryView | null = null;
  private _telemetryError: IErrorInfo | null = null;
  private _ports: IPortsView | null = null;
  private _portsError: IErrorInfo | null = null;
  private _loadingPorts = false;
  private _opening: number | null = null;
  private _isDisposed = false;
}

export namespace PodWatcher {
  export interface IOptions {
    rentalId: string;
    request: PodRequest;
    /** Start polling at once (default true; tests drive it). */
    auto?: boolean;
  }
}

/** Where to open a forward: the proxy path on this page's origin, else its local URL. */
export function forwardUrl(forward: IForwardView): string {
  return forward.proxyPath ?? forward.localUrl;
}
