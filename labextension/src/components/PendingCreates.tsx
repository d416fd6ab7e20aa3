import { Dialog, showDialog } from '@jupyterlab/apputils';
import * as React from 'react';

import { formatRate } from '../format';
import { GpuOutletModel } from '../model';
import { IPendingCreateView } from '../types';
import { ErrorBox } from './ErrorBox';
import { Notice } from './Notice';

export interface IPendingCreatesProps {
  model: GpuOutletModel;
}

/**
 * Creates whose answer from gpuoutlet was lost, not settled yet: the server looks for the
 * rental by its name (its price counts against the spending cap meanwhile), or several rentals
 * match and the user keeps one (the others are stopped) or all.
 */
export function PendingCreates({ model }: IPendingCreatesProps): React.ReactElement | null {
  if (model.pendingCreates.length === 0) {
    return null;
  }
  return (
    <div className="jp-GpuOutlet-pendingCreates">
      {model.pendingCreates.map(p => (
        <PendingCreate key={p.id} model={model} pending={p} />
      ))}
    </div>
  );
}

function PendingCreate({
  model,
  pending
}: {
  model: GpuOutletModel;
  pending: IPendingCreateView;
}): React.ReactElement {
  const ambiguous = pending.state === 'ambiguous';
  const error = model.settleError(pending.id);
  const busy = model.settling(pending.id);
  const keepOne = async (rentalId: string) => {
    const others = pending.candidates.filter(c => c !== rentalId);
    const result = await showDialog({
      title: 'Keep one rental, stop the others for good?',
      body: (
        <div className="jp-GpuOutlet-stopDialog">
          <p>
            Keep <code>{rentalId}</code>; stop {others.map(o => o).join(', ')}.
          </p>
          <p className="jp-GpuOutlet-stopNotice" role="alert">
            {model.stopNotice}
          </p>
        </div>
      ),
      buttons: [
        Dialog.cancelButton({ label: 'Decide later' }),
        Dialog.warnButton({ label: 'Keep it, stop the others' })
      ],
      defaultButton: 0
    });
    if (result.button.accept) {
      await model.settleCreate(pending.id, [rentalId]);
    }
  };
  return (
    <Notice
      level={ambiguous ? 'warn' : 'info'}
      code={`create_${pending.state}`}
      className="jp-GpuOutlet-pendingCreate"
      title={
        ambiguous
          ? `${pending.candidates.length} rentals match ${pending.name}`
          : `Looking for ${pending.name} (${pending.gpuCount}× ${pending.familyId}, ${formatRate(pending.pricePerHourCents)})`
      }
    >
      <p>{pending.message}</p>
      {ambiguous && (
        <div className="jp-GpuOutlet-actions">
          {pending.candidates.map(c => (
            <button
              key={c}
              type="button"
              className="jp-GpuOutlet-button jp-GpuOutlet-keepOne"
              disabled={busy}
              onClick={() => void keepOne(c)}
            >
              Keep {c}
            </button>
          ))}
          <button
            type="button"
            className="jp-GpuOutlet-button jp-GpuOutlet-keepAll"
            disabled={busy}
            onClick={() => void model.settleCreate(pending.id, 'all')}
          >
            Keep all
          </button>
        </div>
      )}
      {error && <ErrorBox error={error} />}
    </Notice>
  );
}
