/**
 * The actions that need JupyterLab's dialogs and clipboard, shared by the panel and the
 * commands: confirm before stopping a rental (a stop destroys the pod and its disk), pick one
 * to stop, copy text.
 */
import { Clipboard, Dialog, InputDialog, showDialog } from '@jupyterlab/apputils';
import * as React from 'react';

import { describeError } from './errors';
import { formatCents, formatRate } from './format';
import { canStop, GpuOutletModel, rentalTitle } from './model';
import { IRentalView, ISaveSizeView } from './types';

/** What the stop dialog knows of the save it offers: the size now, or why it is unknown. */
export interface ISaveOffer {
  size: ISaveSizeView | null;
  error: string | null;
  paths: string[];
}

/** "Save ~/work (412 MB) first?", and what a save over the cap or the time limit does. */
function SaveQuestion({ offer }: { offer: ISaveOffer }): React.ReactElement {
  const { size, error, paths } = offer;
  const what = size ? size.text : paths.join(', ');
  return (
    <div className="jp-GpuOutlet-saveOffer">
      <p className="jp-GpuOutlet-saveQuestion">
        Stopping destroys this pod and its disk. Save {what} first?
      </p>
      {size && (
        <p className="jp-GpuOutlet-muted">
          To <code>{size.localDir}</code>
          {size.fits === false && size.maxSaveBytes !== null
            ? `; over the ${formatBytes(size.maxSaveBytes)} limit of a save, so the smallest files are saved first and the rest is named as left out`
            : ''}
          {size.saveTimeoutSeconds
            ? `; the stop goes ahead after ${Math.round(size.saveTimeoutSeconds / 60)} min of saving whatever is left (the pod is billed while it saves)`
            : ''}
          .
        </p>
      )}
      {error && (
        <p className="jp-GpuOutlet-warning jp-GpuOutlet-saveSizeError">
          Its size is unknown ({error}); a save tries all the same.
        </p>
      )}
    </div>
  );
}

/** Bytes in decimal units, as the server's texts count them. */
export function formatBytes(count: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = count;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** The body of the stop dialog: which rental, what it cost so far, and that a stop is final. */
export function StopDialogBody({
  rental,
  notice,
  offer = null
}: {
  rental: IRentalView;
  notice: string;
  offer?: ISaveOffer | null;
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
      {offer && <SaveQuestion offer={offer} />}
      {alias && (
        <p className="jp-GpuOutlet-muted">
          Its SSH alias <code>{alias}</code> and its kernel are removed.
        </p>
      )}
    </div>
  );
}

/** The stop dialog's buttons for a running pod (whose work can be saved first). */
export const SAVE_AND_STOP = 'Save and stop';
export const STOP_WITHOUT_SAVING = 'Stop without saving';

/**
 * Ask, then stop. A running pod's work can be saved first: the dialog says how much (one quick
 * `du` on the pod) and offers [Save and stop] [Stop without saving] [Cancel]. Returns true
 * when the stop was requested (and accepted by the server).
 */
export async function confirmAndStop(model: GpuOutletModel, rental: IRentalView): Promise<boolean> {
  const running = rental.status === 'running' && !rental.gone && !!rental.ssh?.alias;
  let offer: ISaveOffer | null = null;
  if (running) {
    offer = { size: null, error: null, paths: rental.savePaths };
    try {
      offer.size = await model.saveSize(rental.id);
    } catch (error) {
      offer.error = describeError(error).message;
    }
  }
  const buttons = running
    ? [
        Dialog.cancelButton({ label: 'Cancel' }),
        Dialog.warnButton({ label: STOP_WITHOUT_SAVING }),
        Dialog.okButton({ label: SAVE_AND_STOP })
      ]
    : [
        Dialog.cancelButton({ label: 'Keep it running' }),
        Dialog.warnButton({ label: 'Stop and destroy the pod' })
      ];
  const result = await showDialog({
    title: 'Stop this GPU rental for good?',
    body: <StopDialogBody rental={rental} notice={model.stopNotice} offer={offer} />,
    buttons,
    defaultButton: running ? 2 : 0
  });
  if (!result.button.accept) {
    return false;
  }
  const save = running && result.button.label === SAVE_AND_STOP;
  return (await model.stop(rental.id, save)) !== null;
}

/**
 * "Upload folder" (a folder under the Jupyter root to the pod's work folder) or "Download
 * results" (the pod's work folder into a folder here): ask which folder, then start it.
 */
export async function askAndTransfer(
  model: GpuOutletModel,
  rental: IRentalView,
  direction: 'up' | 'down'
): Promise<boolean> {
  const remote = model.remoteWorkdir;
  const up = direction === 'up';
  const answer = await InputDialog.getText({
    title: up ? `Upload a folder to the pod's ${remote}` : `Download the pod's ${remote}`,
    label: up
      ? 'The folder to upload, under the Jupyter root (only what changed moves; .gpuoutletignore excludes files):'
      : 'Into this folder, under the Jupyter root (newer files here are kept):',
    text: up ? '' : `gpuoutlet-results/${rental.name || rental.id}`,
    placeholder: up ? 'e.g. my-project' : undefined,
    okLabel: up ? 'Upload' : 'Download'
  });
  const folder = answer.value?.trim();
  if (!answer.button.accept || !folder) {
    return false;
  }
  return model.transfer(rental.id, direction, folder);
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
