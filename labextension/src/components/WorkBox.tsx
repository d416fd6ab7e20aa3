import * as React from 'react';

import { askAndTransfer, formatBytes } from '../actions';
import { GpuOutletModel } from '../model';
import { IRentalView, ITransferView } from '../types';
import { ErrorBox } from './ErrorBox';

const VERBS: Record<string, string> = {
  upload: 'Uploading',
  download: 'Downloading',
  save: 'Saving',
  workdir: 'Pushing the working folder'
};

/** "Uploading 120.0 MB of 200.0 MB (60%) · 31.2 MB/s · data.bin". */
export function transferText(transfer: ITransferView): string {
  const verb = VERBS[transfer.kind] ?? transfer.kind;
  const parts = [
    transfer.bytesTotal
      ? `${verb} ${formatBytes(transfer.bytesDone)} of ${formatBytes(transfer.bytesTotal)} (${Math.floor((100 * transfer.bytesDone) / transfer.bytesTotal)}%)`
      : `${verb} ${formatBytes(transfer.bytesDone)}`,
    `${formatBytes(Math.round(transfer.rate))}/s`
  ];
  if (transfer.current) {
    parts.push(transfer.current);
  }
  return parts.join(' · ');
}

export interface IWorkBoxProps {
  rental: IRentalView;
  model: GpuOutletModel;
}

/**
 * A rental's work: the transfer running (a progress bar with bytes and rate), the newest save
 * (what, where, when), and while it runs "Upload folder" and "Download results".
 */
export function WorkBox({ rental, model }: IWorkBoxProps): React.ReactElement | null {
  const running = rental.status === 'running' && !rental.gone && !!rental.ssh?.alias;
  const transfer = rental.transfer;
  const moving = transfer?.state === 'running';
  const save = rental.saves[0];
  const error = model.transferError(rental.id);
  if (!running && !save && !transfer) {
    return null;
  }
  const fraction =
    moving && transfer.bytesTotal > 0
      ? Math.min(1, transfer.bytesDone / transfer.bytesTotal)
      : null;
  return (
    <div className="jp-GpuOutlet-work">
      {moving && (
        <div className="jp-GpuOutlet-transfer" data-kind={transfer.kind}>
          <div
            className={`jp-GpuOutlet-progress${fraction === null ? ' jp-mod-indeterminate' : ''}`}
            role="progressbar"
            aria-label={VERBS[transfer.kind] ?? 'Transfer'}
            aria-valuemin={0}
            aria-valuemax={100}
            aria-valuenow={fraction === null ? undefined : Math.round(fraction * 100)}
          >
            <div
              className="jp-GpuOutlet-progressBar"
              style={fraction === null ? undefined : { width: `${(fraction * 100).toFixed(1)}%` }}
            />
          </div>
          <div className="jp-GpuOutlet-transferText jp-GpuOutlet-muted">
            {transferText(transfer)}
          </div>
        </div>
      )}
      {!moving && transfer && transfer.kind !== 'save' && (
        <div
          className={`jp-GpuOutlet-transferDone jp-mod-${transfer.state}`}
          data-state={transfer.state}
        >
          {transfer.state === 'done'
            ? transfer.summary
            : `The ${transfer.kind} ${transfer.state}: ${transfer.error ?? ''}`}
        </div>
      )}
      {save && (
        <div
          className={`jp-GpuOutlet-lastSave${save.error ? ' jp-mod-failed' : ''}`}
          data-reason={save.reason}
          title={`Saved to ${save.localDir}`}
        >
          {save.summary}
          {save.finishedAt ? ` (${new Date(save.finishedAt).toLocaleString()})` : ''}
        </div>
      )}
      {running && (
        <div className="jp-GpuOutlet-actions jp-GpuOutlet-workActions">
          <button
            className="jp-GpuOutlet-button jp-GpuOutlet-upload"
            disabled={moving}
            title={`Copy a folder of this machine to the pod's ${model.remoteWorkdir} (only what changed)`}
            onClick={() => void askAndTransfer(model, rental, 'up')}
          >
            Upload folder
          </button>
          <button
            className="jp-GpuOutlet-button jp-GpuOutlet-download"
            disabled={moving}
            title={`Copy the pod's ${model.remoteWorkdir} to a folder here`}
            onClick={() => void askAndTransfer(model, rental, 'down')}
          >
            Download results
          </button>
        </div>
      )}
      {error && <ErrorBox error={error} />}
    </div>
  );
}
