import * as React from 'react';

import { confirmAndStop } from '../actions';
import {
  elapsedSeconds,
  formatAgo,
  formatCents,
  formatElapsed,
  formatMinutes,
  formatRate,
  parseTime
} from '../format';
import { idleLine } from '../idle';
import { canStop, GpuOutletModel, isActive, rentalTitle } from '../model';
import { provisioningProgress } from '../progress';
import { IRentalView } from '../types';
import { ErrorBox } from './ErrorBox';
import { IdleText } from './IdleText';
import { Notice } from './Notice';
import { PodPanel } from './PodPanel';
import { RentalKernels } from './RentalKernels';
import { SshCommand } from './SshCommand';
import { WorkBox } from './WorkBox';

/** Open a new notebook with this kernelspec (the "Open a notebook on this GPU" button). */
export type OpenNotebook = (kernel: string) => Promise<void>;

export interface IRentalCardProps {
  rental: IRentalView;
  model: GpuOutletModel;
  /** The time the card shows the rental at (ms): elapsed, progress, idle countdown. */
  now: number;
  openNotebook: OpenNotebook;
}

/**
 * One rental: title, status, progress against gpuoutlet's estimate while provisioning, time
 * and what gpuoutlet charged, its idle stop (with "Keep it" when the stop is near), the SSH
 * command and the template's ports, and its actions with their outcome.
 */
export function RentalCard({
  rental,
  model,
  now,
  openNotebook
}: IRentalCardProps): React.ReactElement {
  const status = rental.gone ? 'gone' : rental.status;
  const ended = !isActive(rental);
  const running = rental.status === 'running' && !rental.gone;
  const command = running ? (rental.ssh?.command ?? undefined) : undefined;
  const stopError = model.stopError(rental.id);
  const stopping = model.isStopping(rental.id);
  const outcome = model.stopOutcome(rental.id);
  const received = model.receivedAt(rental.id);
  const progress = provisioningProgress(rental, received, now);
  const idle = idleLine(rental, received, now);
  const keepError = model.keepError(rental.id);
  const keeping = model.isKeeping(rental.id);
  const template = model.templates?.find(t => t.id === rental.templateId) ?? null;
  const stop = rental.stop;
  const [expanded, setExpanded] = React.useState(false);
  const stale = staleAge(rental, model, now);
  return (
    <li
      className={`jp-GpuOutlet-rental jp-mod-${status}`}
      data-rental-id={rental.id}
      data-status={status}
      data-kernel={rental.kernel ?? undefined}
    >
      <div className="jp-GpuOutlet-rentalHead">
        <span className="jp-GpuOutlet-rentalTitle">{rentalTitle(rental)}</span>
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
        {rental.templateId ? <span> · {rental.templateId}</span> : null}
      </div>
      {progress && (
        <div className="jp-GpuOutlet-provisioning">
          <div
            className={`jp-GpuOutlet-progress${progress.fraction === null ? ' jp-mod-indeterminate' : ''}`}
            role="progressbar"
            aria-label="Provisioning"
            aria-valuemin={0}
            aria-valuemax={100}
            aria-valuenow={
              progress.fraction === null ? undefined : Math.round(progress.fraction * 100)
            }
            aria-valuetext={progress.text}
          >
            <div
              className="jp-GpuOutlet-progressBar"
              style={
                progress.fraction === null
                  ? undefined
                  : { width: `${(progress.fraction * 100).toFixed(1)}%` }
              }
            />
          </div>
          <div className="jp-GpuOutlet-progressText jp-GpuOutlet-muted">{progress.text}</div>
        </div>
      )}
      {/* Running with its SSH command below: the phase would only repeat the command (and a
          failed poll, when the API does not answer: the banner says it, the stale line below
          says how old this is); stopped for being idle: the idle line says it. */}
      {!(command && (!rental.upstreamError || model.apiProblem)) && idle?.kind !== 'stopped' && (
        <div className="jp-GpuOutlet-phase">{rental.phase}</div>
      )}
      <div className="jp-GpuOutlet-meta">
        <span title="Time since it started">
          <span className="jp-GpuOutlet-elapsed">{formatElapsed(elapsedSeconds(rental, now))}</span>{' '}
          elapsed
        </span>
        <span className="jp-GpuOutlet-rate">{formatRate(rental.pricePerHourCents)}</span>
        {rental.status !== 'failed' && (
          <span title="What gpuoutlet has charged for it (billed per second while it runs)">
            <span className="jp-GpuOutlet-costSoFar">{formatCents(rental.costCents)}</span>{' '}
            {ended ? 'in all' : 'so far'}
          </span>
        )}
        {stop && stop.refundedCents > 0 && (
          <span className="jp-GpuOutlet-refunded">
            {formatCents(stop.refundedCents)} refunded (it ran under a minute)
          </span>
        )}
      </div>
      {stale && (
        <div className="jp-GpuOutlet-muted jp-GpuOutlet-stale" data-stale="true">
          As gpuoutlet last reported it, {stale} ago: it has not answered since.
        </div>
      )}
      {outcome === 'already_stopped' && (
        <Notice level="info" code="already_stopped" className="jp-GpuOutlet-stopOutcome">
          It was stopped already (from another window, the gpuoutlet website, or by gpuoutlet
          itself): nothing more to do, and nothing more is charged.
        </Notice>
      )}
      {outcome === 'stopped' && stop && (
        <Notice level="info" code="stopped" className="jp-GpuOutlet-stopOutcome">
          Stopped for good: {formatCents(stop.finalChargedCents)} in all
          {stop.refundedCents > 0 ? `, ${formatCents(stop.refundedCents)} refunded` : ''}.
        </Notice>
      )}
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
      {running && template && template.ports.length > 0 && rental.ssh?.alias && (
        <div className="jp-GpuOutlet-ports jp-GpuOutlet-muted">
          {template.title} serves port {template.ports.join(', ')}: open it with{' '}
          <code>
            ssh -N {template.ports.map(p => `-L ${p}:localhost:${p}`).join(' ')} {rental.ssh.alias}
          </code>
          , then http://localhost:{template.ports[0]}
        </div>
      )}
      {running && rental.ssh?.alias && (
        <button
          className="jp-GpuOutlet-linkButton jp-GpuOutlet-expand"
          aria-expanded={expanded}
          title="Its GPUs over the last 10 minutes (sampled while shown) and its ports"
          onClick={() => setExpanded(!expanded)}
        >
          {expanded ? '▾ GPUs and ports' : '▸ GPUs and ports'}
        </button>
      )}
      {running && rental.ssh?.alias && expanded && <PodPanel rental={rental} model={model} />}
      <RentalKernels rental={rental} now={now} />
      {running && rental.ssh?.includeWarning && (
        <div className="jp-GpuOutlet-warning">{rental.ssh.includeWarning}</div>
      )}
      <WorkBox rental={rental} model={model} />
      {!ended && (
        <div className="jp-GpuOutlet-actions">
          {running && rental.kernel && (
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
              title="Stop for good: gpuoutlet destroys the pod and its disk (asks first)"
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

/** How old an active rental's view is ("3 min") while the rentals API fails; else null. */
export function staleAge(rental: IRentalView, model: GpuOutletModel, now: number): string | null {
  const checked = parseTime(rental.checkedAt);
  if (!isActive(rental) || checked === null || !(model.apiProblem || rental.upstreamError)) {
    return null;
  }
  const seconds = (now - checked) / 1000;
  return seconds >= STALE_SECONDS ? formatAgo(seconds) : null;
}

/** A view confirmed longer ago than this is said to be old, while the API fails. */
const STALE_SECONDS = 30;
