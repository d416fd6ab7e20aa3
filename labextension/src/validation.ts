/**
 * Live validation of the launch form, with the same rules as the server: familyId required;
 * gpuCount 1, 2, 4 or 8; one of the six templates; name at most 64 characters;
 * autoStopAfterHours a number above 0; idleStopMinutes 0 (off) to a week in minutes, or empty
 * (the server's default); idleGpuUtil 0 to 100 percent, or empty (the server's default). Whether the family is in gpuoutlet's catalog is the quote's to say
 * (the server answers `unknown_family` with the close ids). Pure functions.
 */
import type { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { IFamilyView, ILaunchForm, ILaunchRequest, ITemplateView } from './types';

export const GPU_COUNTS: readonly number[] = [1, 2, 4, 8];
export const MAX_NAME_LENGTH = 64;
export const DEFAULT_TEMPLATE = 'ubuntu-24-04';
/** The longest idle stop the server accepts: a week (longer is a typo; auto-stop exists). */
export const MAX_IDLE_MINUTES = 7 * 24 * 60;

export interface IValidation {
  /** Problems by form field; empty when the form can be sent. */
  fields: Partial<Record<keyof ILaunchForm, string>>;
  /** The request body when there is no problem. */
  request: ILaunchRequest | null;
}

export function emptyForm(): ILaunchForm {
  return {
    familyId: '',
    gpuCount: 1,
    templateId: DEFAULT_TEMPLATE,
    region: '',
    name: '',
    autoStopAfterHours: '',
    idleStopMinutes: '',
    idleGpuUtil: ''
  };
}

function spaced(value: string): boolean {
  return value !== value.trim();
}

/** Check the form; `templates` is null until the server listed them (any id is then sent). */
export function validateForm(
  form: ILaunchForm,
  templates: readonly ITemplateView[] | null = null
): IValidation {
  const fields: IValidation['fields'] = {};
  const familyId = form.familyId;
  if (!familyId.trim()) {
    fields.familyId = 'Pick a GPU family.';
  } else if (spaced(familyId)) {
    fields.familyId = 'Must not start or end with a space.';
  }
  if (!GPU_COUNTS.includes(form.gpuCount)) {
    fields.gpuCount =
      `A rental has ${GPU_COUNTS.slice(0, -1).join(', ')} or ${GPU_COUNTS[GPU_COUNTS.length - 1]} ` +
      `GPUs (${form.gpuCount} asked for): pick one of those.`;
  }
  if (!form.templateId.trim()) {
    fields.templateId = `Pick a template (the default is ${DEFAULT_TEMPLATE}).`;
  } else if (templates !== null && !templates.some(t => t.id === form.templateId)) {
    fields.templateId =
      `gpuoutlet has no template “${form.templateId}”: pick one of ` +
      `${templates.map(t => t.id).join(', ')}.`;
  }
  if (form.region && spaced(form.region)) {
    fields.region = 'Must not start or end with a space.';
  }
  const nameLength = [...form.name].length;
  if (nameLength > MAX_NAME_LENGTH) {
    fields.name = `At most ${MAX_NAME_LENGTH} characters (${nameLength} now).`;
  }
  let hours: number | undefined;
  if (form.autoStopAfterHours.trim()) {
    hours = Number(form.autoStopAfterHours);
    if (!Number.isFinite(hours) || hours <= 0) {
      fields.autoStopAfterHours = 'A number of hours above 0, or empty for no auto-stop.';
    }
  }
  let idleMinutes: number | undefined;
  if (form.idleStopMinutes.trim()) {
    idleMinutes = Number(form.idleStopMinutes);
    if (!Number.isFinite(idleMinutes) || idleMinutes < 0 || idleMinutes > MAX_IDLE_MINUTES) {
      fields.idleStopMinutes =
        `Minutes from 0 (no idle stop for this rental) to ${MAX_IDLE_MINUTES} (a week), ` +
        "or empty for this server's default.";
    }
  }
  let gpuUtil: number | undefined;
  if (form.idleGpuUtil.trim()) {
    gpuUtil = Number(form.idleGpuUtil);
    if (!Number.isFinite(gpuUtil) || gpuUtil < 0 || gpuUtil > 100) {
      fields.idleGpuUtil =
        "A GPU utilisation from 0 (the GPUs do not count) to 100 %, or empty for this server's default.";
    } else if (gpuUtil > 0 && idleMinutes === 0) {
      fields.idleGpuUtil = 'Needs an idle stop: the GPUs only decide when an idle rental stops.';
    }
  }
  if (Object.keys(fields).length > 0) {
    return { fields, request: null };
  }
  const request: ILaunchRequest = {
    familyId,
    gpuCount: form.gpuCount,
    templateId: form.templateId
  };
  if (form.region) {
    request.region = form.region;
  }
  if (form.name) {
    request.name = form.name;
  }
  if (hours !== undefined) {
    request.autoStopAfterHours = hours;
  }
  if (idleMinutes !== undefined) {
    request.idleStopMinutes = idleMinutes;
  }
  if (gpuUtil !== undefined) {
    request.idleGpuUtil = gpuUtil;
  }
  return { fields, request };
}

/**
 * What a quote depends on (the body of `rentals/preview` without the name and the stops): a
 * new quote is asked for only when this changes.
 */
export function quoteKey(request: ILaunchRequest): string {
  const { familyId, gpuCount, templateId, region } = request;
  return JSON.stringify([familyId, gpuCount, templateId ?? DEFAULT_TEMPLATE, region ?? '']);
}

/**
 * The catalog's cheapest price per hour of this family with this many GPUs (the whole machine),
 * or null: a hint while gpuoutlet's quote is on its way (the quote's price is what is billed).
 */
export function catalogPriceCents(
  form: ILaunchForm,
  families: readonly IFamilyView[] | null
): number | null {
  const family = families?.find(f => f.id === form.familyId);
  if (!family || !GPU_COUNTS.includes(form.gpuCount)) {
    return null;
  }
  const offer = family.offers.find(o => o.gpuCount === form.gpuCount);
  return offer ? offer.pricePerHourCents : null;
}

/**
 * The name to suggest after renting `name`: "alice/exp-42" → "alice/exp-43" ("exp-009" →
 * "exp-010"); a name without a number at its end gets "-2"; an empty one stays empty.
 */
export function nextName(name: string): string {
  const trimmed = name.trim();
  const match = /(\d+)$/.exec(trimmed);
  if (!match) {
    return trimmed ? `${trimmed}-2` : '';
  }
  const digits = match[1];
  const next = String(Number(digits) + 1).padStart(digits.length, '0');
  return trimmed.slice(0, trimmed.length - digits.length) + next;
}

/** The form fields the command's arguments set (they are validated like typed values). */
export function formFromArgs(args: ReadonlyPartialJSONObject): Partial<ILaunchForm> | null {
  const form: Partial<ILaunchForm> = {};
  for (const key of ['familyId', 'templateId', 'region', 'name'] as const) {
    if (typeof args[key] === 'string') {
      form[key] = args[key] as string;
    }
  }
  // gpuoutlet's family and template ids are lower-case: RTX-4090 means rtx-4090.
  for (const key of ['familyId', 'templateId'] as const) {
    if (form[key] !== undefined) {
      form[key] = (form[key] as string).toLowerCase();
    }
  }
  if (typeof args.gpuCount === 'number') {
    form.gpuCount = args.gpuCount;
  }
  return Object.keys(form).length ? form : null;
}
