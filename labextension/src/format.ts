/**
 * Money, time and cost for people. Pure functions: the model and the view share them.
 */

/** 65 → "$0.65", 28000 → "$280.00"; another currency keeps its code: "0.65 EUR". */
export function formatCents(cents: number, currency = 'USD'): string {
  const sign = cents < 0 ? '-' : '';
  const abs = Math.abs(Math.round(cents));
  const whole = Math.floor(abs / 100).toLocaleString('en-US');
  const amount = `${whole}.${String(abs % 100).padStart(2, '0')}`;
  return currency === 'USD' ? `${sign}$${amount}` : `${sign}${amount} ${currency}`;
}

/** 65 → "$0.65/h". */
export function formatRate(centsPerHour: number, currency = 'USD'): string {
  return `${formatCents(centsPerHour, currency)}/h`;
}

/** Seconds → "42s", "3m 05s", "2h 07m", "3d 4h". */
export function formatElapsed(totalSeconds: number): string {
  const s = Math.max(0, Math.floor(totalSeconds));
  if (s < 60) {
    return `${s}s`;
  }
  const minutes = Math.floor(s / 60);
  if (minutes < 60) {
    return `${minutes}m ${String(s % 60).padStart(2, '0')}s`;
  }
  const hours = Math.floor(minutes / 60);
  if (hours < 24) {
    return `${hours}h ${String(minutes % 60).padStart(2, '0')}m`;
  }
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

/** Milliseconds since the epoch of an ISO 8601 time, or null when it is not one. */
export function parseTime(iso: string | null | undefined): number | null {
  if (!iso) {
    return null;
  }
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? ms : null;
}

/** The part of a rental's life that is billed so far, in seconds. */
export function elapsedSeconds(
  rental: { startedAt: string; stoppedAt: string | null; endedAt?: string | null },
  now: number
): number {
  const start = parseTime(rental.startedAt);
  if (start === null) {
    return 0;
  }
  // The API's stoppedAt, else when the server saw it end (the seed does not document stoppedAt).
  const end = parseTime(rental.stoppedAt) ?? parseTime(rental.endedAt) ?? now;
  return Math.max(0, (end - start) / 1000);
}

/** Cost so far from the API's own fields: the locked rate times the time since startedAt. */
export function costSoFarCents(
  rental: {
    startedAt: string;
    stoppedAt: string | null;
    endedAt?: string | null;
    pricePerHourCents: number;
  },
  now: number
): number {
  return Math.ceil((rental.pricePerHourCents * elapsedSeconds(rental, now)) / 3600);
}

/**
 * How long the available balance lasts at the current burn: "45 min left", "3.2 h left",
 * "4.5 days left", ">99 days left"; null (nothing burns) → "nothing burning".
 */
export function formatHoursLeft(hours: number | null | undefined): string {
  if (hours === null || hours === undefined || !Number.isFinite(hours)) {
    return 'nothing burning';
  }
  const h = Math.max(0, hours);
  if (h < 1) {
    return `${Math.floor(h * 60)} min left`;
  }
  if (h < 48) {
    return `${(Math.floor(h * 10 + 1e-9) / 10).toFixed(1)} h left`;
  }
  const days = h / 24;
  if (days > 99) {
    return '>99 days left';
  }
  return `${(Math.floor(days * 10 + 1e-9) / 10).toFixed(1)} days left`;
}

/** A countdown: 75 → "1:15", 5 → "0:05", 3725 → "1:02:05" (whole seconds, rounded up). */
export function formatCountdown(totalSeconds: number): string {
  const s = Math.max(0, Math.ceil(totalSeconds));
  const seconds = String(s % 60).padStart(2, '0');
  const minutes = Math.floor(s / 60);
  if (minutes < 60) {
    return `${minutes}:${seconds}`;
  }
  return `${Math.floor(minutes / 60)}:${String(minutes % 60).padStart(2, '0')}:${seconds}`;
}

/** A span given in minutes: 0.3 → "18 s", 30 → "30 min", 7.5 → "7.5 min", 150 → "2.5 h". */
export function formatMinutes(minutes: number): string {
  const m = Math.max(0, minutes);
  if (m < 1) {
    return `${Math.round(m * 60)} s`;
  }
  const trim = (value: number) => String(Math.round(value * 10) / 10);
  if (m < 120) {
    return `${trim(m)} min`;
  }
  return `${trim(m / 60)} h`;
}
