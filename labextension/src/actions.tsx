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

/**
 * "Sign out": when rentals may still be billed, say first that nothing here watches them
 * afterwards (they keep running); then sign out. True when signed out.
 */
export async function confirmAndSignOut(model: GpuOutletModel): Promise<boolean> {
  const active = model.active;
  if (active.length > 0) {
    const result = await showDialog({
      title: 'Sign out of gpuoutlet?',
      body: (
        <div className="jp-GpuOutlet-signOutDialog">
          <p>
            {active.length === 1 ? 'One rental is' : `${active.length} rentals are`} still running
            and billed: {active.map(r => r.name || r.id).join(', ')}. Signing out does not stop{' '}
            {active.length === 1 ? 'it' : 'them'}, and this Jupyter server stops watching{' '}
            {active.length === 1 ? 'it' : 'them'} until you sign in again.
          </p>
          <p className="jp-GpuOutlet-muted">
            SSH entries stay. Stop a rental first if you no longer need it.
          </p>
        </div>
      ),
      buttons: [
        Dialog.cancelButton({ label: 'Stay signed in' }),
        Dialog.warnButton({ label: 'Sign out' })
      ],
      defaultButton: 0
    });
    if (!result.button.accept) {
      return false;
    }
  }
  return (await model.signOut()) !== null;
}

/** Copy to the system clipboard (the async Clipboard API, else JupyterLab's fallback). */
export async function copyText(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    Clipboard.copyToSystem(text);
  }
}
