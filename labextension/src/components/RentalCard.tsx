import * as React from 'react';

import { confirmAndStop } from '../actions';
import {
  costSoFarCents,
  elapsedSeconds,
  formatCents,
  formatElapsed,
  formatMinutes,
  formatRate
} from '../format';
import { idleLine } from '../idle';
import { canStop, GpuOutletModel, isActive, rentalTitle } from '../model';
import { IRentalView } from '../types';
import { ErrorBox } from './ErrorBox';
import { IdleText } from './IdleText';
import { SshCommand } from './SshCommand';

/** Open a new notebook with this kernelspec (the "Open a notebook on this GPU" button). */
export type OpenNotebook = (kernel: string) => Promise<void>;

export interface IRentalCardProps {
  rental: IRentalView;
  model: GpuOutletModel;
  /** The time the card shows the rental at (ms): elapsed, cost so far, idle countdown. */
  now: number;
  openNotebook: OpenNotebook;
}

/**
 * One rental: title, status, progress while provisioning, time and cost, its idle stop (with
 * "Keep it" when the stop is near), the SSH command, and its actions with their errors.
 */
export function RentalCard({
  rental,
  model,
  now,
  openNotebook
}: IRentalCardProps): React.ReactElement {
  const status = rental.gone ? 'gone' : rental.status;
  const ended = !isActive(rental);
  const command = rental.status === 'running' ? rental.ssh?.command : undefined;
  const stopError = model.stopError(rental.id);
  const stopping = model.isStopping(rental.id);
  const cost = costSoFarCents(rental, now);
  const idle = idleLine(rental, model.receivedAt(rental.id), now);
  const keepError = model.keepError(rental.id);
  const keeping = model.isKeeping(rental.id);
  return (
    <li
      className={`jp-GpuOutlet-rental jp-mod-${status}`}
      data-rental-id={rental.id}
      data-status={status}
      data-kernel={rental.kernel ?? undefined}
    >
      <div className="jp-GpuOutlet-rentalHead">
        <span className="jp-GpuOutlet-rentalTitle">{rentalTitle(rental, model.families)}</span>
        {!rental.createdHere && (
          <span
            className="jp-GpuOutlet-badge jp-GpuOutlet-elsewhere"
            title="Not made from this Jupyter server: another machine or the gpuoutlet website made it. It is billed all the same; this server found it by comparing with the rentals API's list."
          >
            made elsewhere
          </span>
        )}
        <span className={`jp-GpuOutlet-badge jp-mod-${status}`}>{status}</span>
      </div>
      <div className="jp-GpuOutlet-rentalSub jp-GpuOutlet-muted">
        {rental.name ? <span className="jp-GpuOutlet-rentalName">{rental.name} · </span> : null}
        <span>{rental.id}</span>
        {rental.region ? <span> · {rental.region}</span> : null}
      </div>
      {rental.status === 'provisioning' && !rental.gone && (
        <div
          className="jp-GpuOutlet-progress"
          role="progressbar"
          aria-label="Provisioning"
          aria-valuetext={rental.phase}
        >
          <div className="jp-GpuOutlet-progressBar" />
        </div>
      )}
      {/* Running with its SSH command below: the phase would only repeat the command; stopped
          for being idle: the idle line says it. */}
      {!(command && !rental.upstreamError) && idle?.kind !== 'stopped' && (
        <div className="jp-GpuOutlet-phase">{rental.phase}</div>
      )}
      <div className="jp-GpuOutlet-meta">
        <span title="Time since it started">
          <span className="jp-GpuOutlet-elapsed">{formatElapsed(elapsedSeconds(rental, now))}</span>{' '}
          elapsed
        </span>
        <span className="jp-GpuOutlet-rate">{formatRate(rental.pricePerHourCents)}</span>
        {rental.status !== 'failed' && (
          <span title="Cost so far (the locked rate times the time since it started)">
            <span className="jp-GpuOutlet-costSoFar">{formatCents(cost)}</span> so far
          </span>
        )}
        {rental.autoStopAfterHours ? <span>auto-stop {rental.autoStopAfterHours} h</span> : null}
      </div>
      {idle?.kind === 'warning' && (
        <div className="jp-GpuOutlet-idleWarning" role="alert" data-idle={idle.kind}>
          <span className="jp-GpuOutlet-idleText">
            <IdleText line={idle} />
            {idle.busy && <span className="jp-GpuOutlet-busy"> ({idle.busy})</span>}
          </span>
          <button
            className="jp-GpuOutlet-button jp-GpuOutlet-keep"
            disabled={keeping}
            title={`Restart the idle timer: stopped only after another ${formatMinutes(rental.idleStop?.minutes ?? 0)} with nothing running on it`}
            onClick={() => void model.keep(rental.id)}
          >
            {keeping ? 'Keeping…' : 'Keep it'}
          </button>
        </div>
      )}
      {idle && idle.kind !== 'warning' && (
        <div className={`jp-GpuOutlet-idle jp-mod-${idle.kind}`} data-idle={idle.kind}>
          <IdleText line={idle} />
          {idle.busy && <span className="jp-GpuOutlet-busy"> · {idle.busy}</span>}
        </div>
      )}
      {keepError && <ErrorBox error={keepError} />}
      {command && <SshCommand command={command} />}
      {rental.status === 'running' && rental.ssh?.includeWarning && (
        <div className="jp-GpuOutlet-warning">{rental.ssh.includeWarning}</div>
      )}
      {!ended && (
        <div className="jp-GpuOutlet-actions">
          {rental.status === 'running' && rental.kernel && (
            <button
              className="jp-GpuOutlet-button jp-GpuOutlet-openNotebook"
              onClick={() => void openNotebook(rental.kernel as string)}
            >
              Open a notebook on this GPU
            </button>
          )}
          {canStop(rental) && (
            <button
              className="jp-GpuOutlet-button jp-GpuOutlet-stop"
              disabled={stopping}
              onClick={() => void confirmAndStop(model, rental)}
            >
              {stopping ? 'Stopping…' : 'Stop'}
            </button>
          )}
        </div>
      )}
      {stopError && <ErrorBox error={stopError} />}
    </li>
  );
}
