/**
 * How far a provisioning rental is, in time: the bar moves with the seconds since the create
 * against gpuoutlet's `estimatedProvisionSeconds` (the quote the rental was made on), not with
 * how many times the server polled. Pure functions, unit-tested.
 *
 * The server sends `provisioning.elapsedSeconds` as it was when it replied; the view adds the
 * time since the reply arrived (both on the browser's clock), so a clock skewed between the
 * browser and the server does not move the bar.
 */
import { formatElapsed } from './format';
import { IRentalView } from './types';

/** The bar never claims more than this before the rental is running: the estimate may be short. */
export const MAX_FRACTION = 0.95;

export interface IProgress {
  /** 0 to MAX_FRACTION; null: no estimate (a rental made elsewhere), an indeterminate bar. */
  fraction: number | null;
  /** Seconds since the create, now. */
  elapsedSeconds: number;
  /** gpuoutlet's estimate, or null. */
  expectedSeconds: number | null;
  /** "about 20 s left", "taking longer than the 45 s gpuoutlet estimated (1m 05s so far)". */
  text: string;
}

/**
 * The progress of `rental` at `now` (ms), its view received at `receivedAt` (ms, same clock);
 * null when it is not provisioning (or the server sent no provisioning member).
 */
export function provisioningProgress(
  rental: IRentalView,
  receivedAt: number,
  now: number
): IProgress | null {
  const info = rental.provisioning;
  if (rental.status !== 'provisioning' || rental.gone || !info) {
    return null;
  }
  const since = Math.max(0, now - receivedAt) / 1000;
  const elapsed = Math.max(0, info.elapsedSeconds + since);
  const expected =
    typeof info.expectedSeconds === 'number' && info.expectedSeconds > 0
      ? info.expectedSeconds
      : null;
  if (expected === null) {
    return {
      fraction: null,
      elapsedSeconds: elapsed,
      expectedSeconds: null,
      text: `${formatElapsed(elapsed)} so far (no estimate: it was not created here)`
    };
  }
  const fraction = Math.min(MAX_FRACTION, elapsed / expected);
  const left = expected - elapsed;
  const text =
    left >= 1
      ? `about ${formatElapsed(Math.ceil(left))} left of gpuoutlet's ${formatElapsed(expected)} estimate`
      : `taking longer than the ${formatElapsed(expected)} gpuoutlet estimated (${formatElapsed(elapsed)} so far)`;
  return { fraction, elapsedSeconds: elapsed, expectedSeconds: expected, text };
}
