/**
 * What a rental card says about its idle stop, from the server's `idleStop` and the time the
 * view was received. Pure functions, so the countdown and the warning are unit-tested.
 *
 * The countdown runs from `secondsLeft` as the server computed it when it replied, minus the
 * time since the reply arrived (both on the browser's clock): a skewed clock between the
 * browser and the server cannot shift it, as comparing `stopAt` with `Date.now()` would.
 */
import { formatCountdown, formatMinutes } from './format';
import { IIdleStopView, IRentalView } from './types';

/**
 * - `stopped`: this server stopped the rental for being idle;
 * - `warning`: it is about to be stopped ("Keep it" restarts the timer);
 * - `countdown`: the quiet line, with the time left because the stop is close;
 * - `quiet`: the quiet line only ("Stops after 30 min idle").
 */
export type IdleKind = 'stopped' | 'warning' | 'countdown' | 'quiet';

export interface IIdleLine {
  kind: IdleKind;
  /** The whole line: `prefix`, then `countdown` (when there is one), then `suffix`. */
  text: string;
  prefix: string;
  /** The ticking part ("1:05"), which the view renders in its own element; or null. */
  countdown: string | null;
  suffix: string;
  /** Seconds until the stop now (counted down locally), or null when unknown or busy. */
  secondsLeft: number | null;
  /** "1 kernel busy", "2 kernels busy", or null. */
  busy: string | null;
}

/** With this many seconds left or fewer, the quiet line shows the countdown too. */
export function countdownFrom(idle: IIdleStopView): number {
  return Math.max(60, 2 * idle.warnMinutes * 60);
}

/** `secondsLeft` of a view received at `receivedAt`, at `now` (ms, the same clock); ≥ 0. */
export function secondsLeftAt(idle: IIdleStopView, receivedAt: number, now: number): number | null {
  if (typeof idle.secondsLeft !== 'number' || !Number.isFinite(idle.secondsLeft)) {
    return null;
  }
  return Math.max(0, idle.secondsLeft - Math.max(0, now - receivedAt) / 1000);
}

/** The line a card shows about its idle stop, or null when there is nothing to say. */
export function idleLine(rental: IRentalView, receivedAt: number, now: number): IIdleLine | null {
  const idle = rental.idleStop ?? null;
  if (rental.stopReason === 'idle') {
    const verb = rental.status === 'stopping' ? 'Stopping' : 'Stopped';
    const text = idle
      ? `${verb} after ${formatMinutes(idle.minutes)} idle: nothing ran on it.`
      : `${verb} for being idle: nothing ran on it.`;
    return line('stopped', text, null, '', null, null);
  }
  if (!idle || rental.gone || rental.status !== 'running' || !(idle.minutes > 0)) {
    return null;
  }
  if (idle.decidedHere === false) {
    // Another Jupyter server made it and times its idle stop: this one knows no countdown.
    const text = `Stops after ${formatMinutes(idle.minutes)} idle, timed by the Jupyter server that made it`;
    return line('quiet', text, null, '', null, null);
  }
  const busyKernels = idle.busyKernels > 0 ? idle.busyKernels : 0;
  const gpuUtil = idle.gpuUtil ?? null;
  const gpuPeak = idle.gpuPeak ?? null;
  // The GPU-aware idle stop: a GPU at or over the threshold holds the timer as a busy kernel.
  const gpuBusy = gpuUtil !== null && gpuPeak !== null && gpuPeak >= gpuUtil;
  const busyParts = [
    busyKernels > 0 ? `${busyKernels} kernel${busyKernels === 1 ? '' : 's'} busy` : null,
    gpuBusy ? `GPU busy (${Math.round(gpuPeak)} %)` : null
  ].filter((part): part is string => part !== null);
  const busy = busyParts.length > 0 ? busyParts.join(', ') : null;
  const left = secondsLeftAt(idle, receivedAt, now);
  const gpus = gpuUtil !== null ? ` with its GPUs under ${gpuUtil} %` : '';
  const after = `Stops after ${formatMinutes(idle.minutes)} idle${gpus}`;
  if (idle.warning) {
    if (left === null) {
      return line(
        'warning',
        'Idle: stopping soon unless something runs on it',
        null,
        '',
        null,
        busy
      );
    }
    return line(
      'warning',
      'Idle: stopping in ',
      formatCountdown(left),
      ' unless something runs on it',
      left,
      busy
    );
  }
  // A busy kernel holds the timer: counting down would be wrong.
  if (busy === null && left !== null && left <= countdownFrom(idle)) {
    return line(
      'countdown',
      `${after} · in `,
      formatCountdown(left),
      ' unless something runs',
      left,
      busy
    );
  }
  return line('quiet', after, null, '', busy === null ? left : null, busy);
}

function line(
  kind: IdleKind,
  prefix: string,
  countdown: string | null,
  suffix: string,
  secondsLeft: number | null,
  busy: string | null
): IIdleLine {
  const text = `${prefix}${countdown ?? ''}${suffix}`;
  return { kind, text, prefix, countdown, suffix, secondsLeft, busy };
}
