/**
 * The notebooks whose kernel ran on a rental that ended: each is told so, once, with a way to
 * pick another kernel.
 *
 * A rental's kernel runs on its machine; when the rental stops (from the sidebar, `%gpu_stop`,
 * the idle stop, the website, a wallet at $0) the machine and the kernel are gone. The server
 * extension shuts the kernel down and deletes its session (no restart is tried); here, a
 * notebook that loses such a kernel, or opens on the kernelspec of a rental that ended (a
 * reload), asks the server about the rental and says "rental X was stopped: pick another
 * kernel". Nothing is asked while no gpuoutlet kernel is involved. No JupyterLab import here
 * (types only), so the logic is unit-tested on its own; index.ts gives it the notifications.
 */
import type { ISessionContext } from '@jupyterlab/apputils';
import type { Widget } from '@lumino/widgets';

import { IRentalsView, IRentalView } from './types';

/** `gpuoutlet-<rental id, lowercased>-<8 hex>` (and the older `gpuoutlet-<id>`): the rental. */
const KERNEL_NAME = /^gpuoutlet-(rent_[0-9a-z_-]+?)(?:-[0-9a-f]{8})?$/;

/** The lowercased rental id a gpuoutlet kernel name is for, or null for any other kernel. */
export function rentalOfKernel(name: string | null | undefined): string | null {
  const match = KERNEL_NAME.exec(name ?? '');
  return match ? match[1] : null;
}

/**
 * What a notebook is told when its kernel's rental ended; null while the rental goes on. Short:
 * JupyterLab cuts a notification's message after 140 characters.
 */
export function endedMessage(rental: IRentalView, path: string): string | null {
  const name = path.split('/').pop() ?? '';
  const where = name ? ` for ${name}` : '';
  if (rental.gone) {
    return `Rental ${rental.id} is gone, and its kernel with it: pick another kernel${where}.`;
  }
  if (rental.status === 'stopped' || rental.status === 'stopping') {
    return `Rental ${rental.id} was stopped: pick another kernel${where}.`;
  }
  if (rental.status === 'failed') {
    return `Rental ${rental.id} failed: pick another kernel${where}.`;
  }
  return null;
}

/** The notebook-like widgets of the main area that have a kernel (their session context). */
interface IWithSession extends Widget {
  sessionContext: ISessionContext;
}

function hasSession(widget: Widget): widget is IWithSession {
  const context = (widget as unknown as { sessionContext?: unknown }).sessionContext;
  return !!context && typeof context === 'object' && 'sessionChanged' in context;
}

/** How often, and how far apart, a notebook being opened is looked at (see `_opened`). */
const OPEN_TRIES = 40;
const OPEN_DELAY_MS = 250;

export namespace RentalKernelWatch {
  export interface IOptions {
    /** `GET rentals` of the server extension (the list it tracks; no upstream request). */
    listRentals: () => Promise<IRentalsView>;
    /** Open the kernel picker of a notebook. */
    selectKernel: (context: ISessionContext) => Promise<void>;
    /** Tell the user, with a way to pick another kernel (JupyterLab's notifications). */
    notify: (message: string, select: () => void) => void;
  }
}

/** Watches the session contexts handed to `watch`; see the module's comment. */
export class RentalKernelWatch {
  constructor(options: RentalKernelWatch.IOptions) {
    this._list = options.listRentals;
    this._select = options.selectKernel;
    this._notify = options.notify;
  }

  /** Follow the kernels of every widget of `widgets` that has a session (once each). */
  watchAll(widgets: Iterable<Widget>): void {
    for (const widget of widgets) {
      if (hasSession(widget)) {
        this.watch(widget.sessionContext);
      }
    }
  }

  /** Follow one notebook's kernel. */
  watch(context: ISessionContext): void {
    if (this._watched.has(context) || context.isDisposed) {
      return;
    }
    this._watched.add(context);
    let last = context.session?.kernel?.name ?? context.kernelPreference.name ?? '';
    context.kernelChanged.connect((_, change) => {
      if (change.newValue) {
        last = change.newValue.name;
      } else if (rentalOfKernel(last)) {
        void this.check(context, last);
      }
    });
    context.sessionChanged.connect((_, change) => {
      if (change.newValue === null && rentalOfKernel(last)) {
        void this.check(context, last); // the server shut it down with its session
      } else if (change.newValue?.kernel) {
        last = change.newValue.kernel.name;
      }
    });
    context.statusChanged.connect((_, status) => {
      if (status === 'dead' && rentalOfKernel(last)) {
        void this.check(context, last);
      }
    });
    context.disposed.connect(() => this._watched.delete(context));
    this._opened(context);
  }

  /**
   * A notebook opened on the kernelspec of a rental that ended (a reload, a notebook opened
   * again): JupyterLab asks for another kernel while its session context is still initialising
   * (its `ready` waits for the answer), once the notebook's own kernel name is known. So look
   * a few times, a moment apart, while the notebook is loaded and has no session.
   */
  private _opened(context: ISessionContext, tries = OPEN_TRIES): void {
    if (context.isDisposed || context.session || tries <= 0) {
      return;
    }
    const preferred = context.kernelPreference.name ?? '';
    if (rentalOfKernel(preferred)) {
      void this.check(context, preferred);
      return;
    }
    setTimeout(() => this._opened(context, tries - 1), OPEN_DELAY_MS);
  }

  /** Ask the server about the rental of `kernel`; say it ended (once per notebook and rental). */
  async check(context: ISessionContext, kernel: string): Promise<string | null> {
    const id = rentalOfKernel(kernel);
    if (id === null) {
      return null;
    }
    const key = `${context.path}\n${id}`;
    if (this._told.has(key)) {
      return null;
    }
    let rentals: IRentalView[];
    try {
      rentals = (await this._list()).rentals;
    } catch {
      return null; // the server cannot say: JupyterLab's own kernel messages stand
    }
    const rental = rentals.find(r => r.id.toLowerCase() === id);
    const message = rental ? endedMessage(rental, context.path) : null;
    if (message === null || this._told.has(key)) {
      return null;
    }
    this._told.add(key);
    this._notify(message, () => void this._select(context));
    return message;
  }

  private _list: () => Promise<IRentalsView>;
  private _select: (context: ISessionContext) => Promise<void>;
  private _notify: (message: string, select: () => void) => void;
  private _watched = new Set<ISessionContext>();
  private _told = new Set<string>();
}
