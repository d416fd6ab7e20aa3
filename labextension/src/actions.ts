/**
 * The actions that need JupyterLab's dialogs and clipboard, shared by the panel and the
 * commands: confirm before stopping a rental, pick one to stop, copy text.
 */
import { Clipboard, Dialog, InputDialog, showDialog } from '@jupyterlab/apputils';

import { formatCents, formatRate } from './format';
import { canStop, GpuOutletModel, rentalTitle } from './model';
import { costSoFarCents } from './format';
import { IRentalView } from './types';

/** Ask, then stop. Returns true when the stop was requested (and accepted by the server). */
export async function confirmAndStop(model: GpuOutletModel, rental: IRentalView): Promise<boolean> {
  const title = rentalTitle(rental, model.families);
  const cost = formatCents(costSoFarCents(rental, Date.now()));
  const alias = rental.ssh?.alias;
  const lines = [
    `${title}${rental.name ? ` (${rental.name})` : ''}, rental ${rental.id}, ` +
      `${formatRate(rental.pricePerHourCents)}, ${cost} so far.`,
    'The machine is torn down: anything not copied off it is lost.' +
      (alias ? ` Its SSH alias ${alias} and its kernel are removed.` : '')
  ];
  const result = await showDialog({
    title: 'Stop this GPU rental?',
    body: lines.join('\n\n'),
    buttons: [
      Dialog.cancelButton({ label: 'Keep it running' }),
      Dialog.warnButton({ label: 'Stop rental' })
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
    const labels = candidates.map(
      r => `${rentalTitle(r, model.families)} · ${r.status} · ${r.name ?? r.id}`
    );
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
