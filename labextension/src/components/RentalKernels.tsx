import * as React from 'react';

import { formatDateTime, formatElapsed, parseTime } from '../format';
import { KernelsModel } from '../kernels';
import { IReattachReply, IRentalView, IKernelView } from '../types';
import { ErrorBox } from './ErrorBox';
import { Notice } from './Notice';

/** What the rental cards need to show and act on their kernels (given once, by the panel). */
export interface IKernelsContext {
  model: KernelsModel;
  /** Open the notebook a reattached kernel belongs to (or a new one on it). */
  openReattached: (reply: IReattachReply) => Promise<void>;
  /** Ask before a shut down (it ends the kernel and its variables); true to go on. */
  confirmShutDown: (kernel: IKernelView) => Promise<boolean>;
}

export const KernelsContext = React.createContext<IKernelsContext | null>(null);

/** Re-render on every change of the kernels. */
function useKernels(model: KernelsModel | undefined): void {
  const [, setTick] = React.useState(0);
  React.useEffect(() => {
    if (!model) {
      return;
    }
    const onChange = () => setTick(t => t + 1);
    model.changed.connect(onChange);
    return () => {
      model.changed.disconnect(onChange);
    };
  }, [model]);
}

/** The file name of a notebook path. */
function notebookName(path: string | null): string | null {
  return path ? (path.split('/').pop() ?? path) : null;
}

export interface IRentalKernelsProps {
  rental: IRentalView;
  /** The time the card shows (ms), for how long a kernel has been detached. */
  now: number;
}

/**
 * A rental's remote kernels under its card: a notice while one reconnects ("kernel on rent_…
 * lost its connection, reconnecting, attempt 3"), and each kernel with its state; a detached
 * one (its Jupyter went away; it runs on with its variables) with "Reattach" and "Shut down".
 */
export function RentalKernels({ rental, now }: IRentalKernelsProps): React.ReactElement | null {
  const context = React.useContext(KernelsContext);
  useKernels(context?.model);
  if (!context) {
    return null;
  }
  const { model } = context;
  const kernels = model.forRental(rental.id);
  const note = model.note(rental.id);
  const running = rental.status === 'running' && !rental.gone;
  if (kernels.length === 0 && !note) {
    return running && model.error ? (
      <div className="jp-GpuOutlet-kernels jp-GpuOutlet-muted" data-kernels="error">
        Its kernels could not be read: {model.error.message}
      </div>
    ) : null;
  }
  const reconnecting = kernels.filter(k => k.state === 'reconnecting');
  return (
    <div className="jp-GpuOutlet-kernels" data-kernels={kernels.length}>
      {reconnecting.map(k => (
        <div
          key={k.wrapper}
          className="jp-GpuOutlet-kernelNotice"
          role="status"
          data-wrapper={k.wrapper}
          title={k.error ?? undefined}
        >
          {`kernel on ${k.rentalId} lost its connection, reconnecting, attempt ${k.attempt}`}
        </div>
      ))}
      {note && (
        <Notice level="info" code="kernel_note" className="jp-GpuOutlet-kernelNote">
          {note}{' '}
          <button className="jp-GpuOutlet-button" onClick={() => model.dismissNote(rental.id)}>
            OK
          </button>
        </Notice>
      )}
      {kernels.length > 0 && (
        <ul className="jp-GpuOutlet-kernelList" aria-label="Kernels on this GPU">
          {kernels.map(k => (
            <KernelRow key={k.wrapper} kernel={k} context={context} now={now} />
          ))}
        </ul>
      )}
    </div>
  );
}

interface IKernelRowProps {
  kernel: IKernelView;
  context: IKernelsContext;
  now: number;
}

function KernelRow({ kernel, context, now }: IKernelRowProps): React.ReactElement {
  const { model } = context;
  const pending = model.pending(kernel.wrapper);
  const error = model.actionError(kernel.wrapper);
  const name = notebookName(kernel.notebook) ?? `kernel ${kernel.wrapper}`;
  const since = parseTime(kernel.since);
  const title = [kernel.notebook, `kernel ${kernel.wrapper}`, kernel.notice]
    .filter(Boolean)
    .join('\n');
  const reattach = async () => {
    const reply = await model.reattach(kernel.wrapper);
    if (reply) {
      await context.openReattached(reply);
    }
  };
  const shutDown = async () => {
    if (await context.confirmShutDown(kernel)) {
      await model.shutDown(kernel.wrapper);
    }
  };
  return (
    <li
      className={`jp-GpuOutlet-kernel jp-mod-${kernel.state}`}
      data-wrapper={kernel.wrapper}
      data-state={kernel.state}
      title={title}
    >
      <div className="jp-GpuOutlet-kernelHead">
        <span className="jp-GpuOutlet-kernelName">{name}</span>
        <span className={`jp-GpuOutlet-badge jp-GpuOutlet-kernelState jp-mod-${kernel.state}`}>
          {kernel.state === 'reconnecting' ? `reconnecting · ${kernel.attempt}` : kernel.state}
        </span>
      </div>
      {kernel.detached && (
        <>
          <div className="jp-GpuOutlet-kernelSub jp-GpuOutlet-muted">
            {detachedText(kernel, since, now)}
          </div>
          <div className="jp-GpuOutlet-kernelActions">
            <button
              className="jp-GpuOutlet-button jp-GpuOutlet-reattach"
              disabled={pending !== null}
              title="Give it back to its notebook: the rental's kernel is started for it and adopts it, variables and all"
              onClick={() => void reattach()}
            >
              {pending === 'reattach' ? 'Reattaching…' : 'Reattach'}
            </button>
            <button
              className="jp-GpuOutlet-button jp-GpuOutlet-shutDown"
              disabled={pending !== null}
              title="End it and its variables on the machine (asks first)"
              onClick={() => void shutDown()}
            >
              {pending === 'shutdown' ? 'Shutting down…' : 'Shut down'}
            </button>
          </div>
        </>
      )}
      {error && <ErrorBox error={error} />}
    </li>
  );
}

/** "Detached for 12m 5s: it runs on with its variables until the rental stops." */
function detachedText(kernel: IKernelView, since: number | null, now: number): string {
  const how = since !== null ? `Detached for ${formatElapsed((now - since) / 1000)}` : 'Detached';
  const until = kernel.endsAt
    ? `until ${formatDateTime(kernel.endsAt)} (its detach timeout)`
    : 'until the rental stops';
  const asked = kernel.reattachRequested ? ' Reattach asked for.' : '';
  return `${how}: it runs on with its variables ${until}.${asked}`;
}
