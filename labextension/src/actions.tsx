/**
 * The actions that need JupyterLab's dialogs and clipboard, shared by the panel and the
 * commands: confirm before stopping a rental (a stop destroys the pod and its disk), pick one
 * to stop, copy text.
 */
import { Clipboard, Dialog, InputDialog, showDialog } from '@jupyterlab/apputils';
import * as React from 'react';

import { formatCents, formatRate } from './format';
import { canStop, GpuOutletModel, rentalTitle } from './model';
import { IRentalView } from './types';

/** The body of the stop dialog: which rental, what it cost so far, and that a stop is final. */
export function StopDialogBody({
  rental,
  notice
}: {
  rental: IRentalView;
  notice: string;
}): React.ReactElement {
  const alias = rental.ssh?.alias;
  return (
    <div className="jp-GpuOutlet-stopDialog">
      <p className="jp-GpuOutlet-stopWhat">
        <strong>
          {rentalTitle(rental)}
          {rental.name ? ` (${rental.name})` : ''}
        </strong>
        , rental <code>{rental.id}</code>, {formatRate(rental.pricePerHourCents)},{' '}
        {formatCents(rental.costCents)} so far.
      </p>
      <p className="jp-GpuOutlet-stopNotice" role="alert">
        {notice}
      </p>
      {alias && (
        <p className="jp-GpuOutlet-muted">
          Its SSH alias <code>{alias}</code> and its kernel are removed.
        </p>
      )}
    </div>
  );
}

/** Ask, then stop. Returns true when the stop was requested (and accepted by the server). */
export async function confirmAndStop(model: GpuOutletModel, rental: IRentalView): Promise<boolean> {
  const result = await showDialog({
    title: 'Stop this GPU rental for good?',
    body: <StopDialogBody rental={rental} notice={model.stopNotice} />,
    buttons: [
      Dialog.cancelButton({ label: 'Keep it running' }),
      Dialog.warnButton({ label: 'Stop and destroy the pod' })
    ],
    defaultButton: 0
  });
  if (!result.button.accept) {
    return false;
  }
  return (await model.stop(rental.id)) !== null;
}

/** "Stop a GPU rental…": pick one of the stoppable rentals, then confirm. */
export async function pickAndStop(model: GpuOutletModel): Promise<boolean> {
  await model.loadRentals();
  const candidates = model.stoppable;
  if (candidates.length === 0) {
    await showDialog({
      title: 'No GPU rental to stop',
      body: model.rentalsError
        ? model.rentalsError.message
        : 'None of your rentals is provisioning or running.',
      buttons: [Dialog.okButton()]
    });
    return false;
  }
  let rental: IRentalView | undefined = candidates[0];
  if (candidates.length > 1) {
    const labels = candidates.map(r => `${rentalTitle(r)} · ${r.status} · ${r.name ?? r.id}`);
    const choice = await InputDialog.getItem({
      title: 'Stop which GPU rental?',
      items: labels,
      okLabel: 'Next'
    });
    if (!choice.button.accept || choice.value === null) {
      return false;
    }
    rental = candidates[labels.indexOf(choice.value)];
  }
  if (!rental || !canStop(rental)) {
    return false;
  }
  return confirmAndStop(model, rental);
}

/** Copy to the system clipboard (the async Clipboard API, else JupyterLab's fallback). */
export async function copyText(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    Clipboard.copyToSystem(text);
  }
}
