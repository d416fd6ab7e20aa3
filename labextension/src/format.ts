/**
 * Money, time and cost for people. Pure functions: the model and the view share them.
 */
import type { IFamilyView } from './types';

/** 65 → "$0.65", 28000 → "$280.00" (gpuoutlet bills in US cents; another code is kept). */
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

/**
 * A time ahead, for people: "in 45 min", "in 5 h", "in 2.5 days", "in 29 days"; "now" when it
 * has passed.
 */
export function formatTimeLeft(seconds: number): string {
  const s = Math.max(0, seconds);
  if (s < 60) {
    return s > 0 ? 'in under a minute' : 'now';
  }
  if (s < 3600) {
    return `in ${Math.floor(s / 60)} min`;
  }
  const hours = s / 3600;
  if (hours < 48) {
    return `in ${Math.floor(hours)} h`;
  }
  const days = hours / 24;
  return days < 10
    ? `in ${(Math.floor(days * 10) / 10).toFixed(1)} days`
    : `in ${Math.floor(days)} days`;
}

/** An ISO 8601 time as "7 Jul 2026, 08:14 UTC" (UTC, so every viewer reads the same). */
export function formatDateTime(iso: string): string {
  const ms = parseTime(iso);
  if (ms === null) {
    return iso;
  }
  const date = new Date(ms);
  const months = [
    'Jan',
    'Feb',
    'Mar',
    'Apr',
    'May',
    'Jun',
    'Jul',
    'Aug',
    'Sep',
    'Oct',
    'Nov',
    'Dec'
  ];
  const pad = (n: number) => String(n).padStart(2, '0');
  return (
    `${date.getUTCDate()} ${months[date.getUTCMonth()]} ${date.getUTCFullYear()}, ` +
    `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())} UTC`
  );
}

/** An instant in ms as "7 Jul 2026, 08:14 UTC". */
export function formatInstant(ms: number): string {
  return formatDateTime(new Date(ms).toISOString());
}

/** How long ago, for people: 12 → "12 s", 200 → "3 min", 7200 → "2 h", 259200 → "3.0 days". */
export function formatAgo(totalSeconds: number): string {
  const s = Math.max(0, totalSeconds);
  if (s < 90) {
    return `${Math.round(s)} s`;
  }
  if (s < 90 * 60) {
    return `${Math.round(s / 60)} min`;
  }
  if (s < 48 * 3600) {
    return `${Math.round(s / 3600)} h`;
  }
  return `${(s / 86400).toFixed(1)} days`;
}

/**
 * A family as the select shows it: "rtx-4090 · $0.65/h · 24 GB". The price right after the id,
 * so that a narrow sidebar cuts off the memory, never the price (the hint below has it all).
 */
export function familyLabel(family: IFamilyView): string {
  return `${family.id} · ${formatRate(family.minPricePerGpuHourCents)} · ${family.vramGb} GB`;
}
