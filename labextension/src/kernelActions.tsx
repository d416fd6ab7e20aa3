/**
 * What the rental cards' kernel buttons need of JupyterLab: the shut-down confirmation, and
 * opening the notebook of a reattached kernel (its session is already on the adopted kernel).
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, ISessionContext, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import * as React from 'react';

import { formatDateTime } from './format';
import { IKernelView, IReattachReply } from './types';

/** The body of the shut-down dialog: which kernel, and that its variables end with it. */
export function ShutDownDialogBody({ kernel }: { kernel: IKernelView }): React.ReactElement {
  return (
    <div className="jp-GpuOutlet-stopDialog jp-GpuOutlet-shutDownDialog">
      <p>
        <strong>{kernel.notebook?.split('/').pop() ?? `Kernel ${kernel.wrapper}`}</strong> on rental{' '}
        <code>{kernel.rentalId}</code>
        {kernel.since ? `, detached since ${formatDateTime(kernel.since)}` : ''}.
      </p>
      <p className="jp-GpuOutlet-stopNotice" role="alert">
        It ends on its machine, with its variables and whatever it is still running: they cannot be
        brought back. The rental keeps running (and billing).
      </p>
    </div>
  );
}

/** Ask before a shut down; true to go on. */
export async function confirmShutDown(kernel: IKernelView): Promise<boolean> {
  const result = await showDialog({
    title: 'Shut down this detached kernel?',
    body: <ShutDownDialogBody kernel={kernel} />,
    buttons: [
      Dialog.cancelButton({ label: 'Keep it' }),
      Dialog.warnButton({ label: 'Shut down the kernel' })
    ],
    defaultButton: 0
  });
  return result.button.accept;
}

/** What a document widget opened by `docmanager:open` has, as far as this needs it. */
interface IOpened {
  context?: { sessionContext?: ISessionContext };
}

/**
 * Open what a reattached kernel belongs to: its notebook, on the adopted kernel (the server
 * started a session on that path for it), or a new notebook on it when none is known.
 */
export async function openReattached(app: JupyterFrontEnd, reply: IReattachReply): Promise<void> {
  try {
    if (reply.path) {
      const widget = (await app.commands.execute('docmanager:open', {
        path: reply.path
      })) as IOpened | undefined;
      const session = widget?.context?.sessionContext;
      if (session && reply.kernelId) {
        await session.ready;
        // Open from before (its old session went with the old Jupyter): onto the adopted one.
        if (session.session?.kernel?.id !== reply.kernelId) {
          await session.changeKernel({ id: reply.kernelId });
        }
      }
      return;
    }
    if (reply.kernelId) {
      await app.commands.execute('notebook:create-new', { kernelId: reply.kernelId });
      return;
    }
    // Nothing was started (no server to start it): the next start of the kernelspec adopts it.
    await app.serviceManager.kernelspecs.refreshSpecs();
    await app.commands.execute('notebook:create-new', { kernelName: reply.kernelName });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    await showErrorMessage('The reattached kernel’s notebook could not be opened', message);
  }
}
