/**
 * Live validation of the launch form, with the same rules as the server (and the seed):
 * familyId required; gpuCount 1, 2, 4 or 8; name at most 64 characters; autoStopAfterHours
 * a number above 0; idleStopMinutes 0 (off) to a week in minutes, or empty (the server's
 * default). Pure functions.
 */
import { IFamily, ILaunchForm, ILaunchRequest } from './types';

export const GPU_COUNTS: readonly number[] = [1, 2, 4, 8];
export const MAX_NAME_LENGTH = 64;
export const DEFAULT_TEMPLATE = 'ubuntu-24-04';
/** The longest idle stop the server accepts: a week (longer is a typo; auto-stop exists). */
export const MAX_IDLE_MINUTES = 7 * 24 * 60;
/** Suggestions only: the field accepts any template id the API knows. */
export const TEMPLATE_SUGGESTIONS: readonly string[] = [
  'ubuntu-24-04',
  'pytorch',
  'tensorflow',
  'jax',
  'cuda-12'
];

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
    idleStopMinutes: ''
  };
}

function spaced(value: string): boolean {
  return value !== value.trim();
}

/**
 * Check the form; `families` is null when the API does not list them (any id is accepted).
 */
export function validateForm(form: ILaunchForm, families: IFamily[] | null): IValidation {
  const fields: IValidation['fields'] = {};
  const familyId = form.familyId;
  if (!familyId.trim()) {
    fields.familyId = 'Pick a GPU family.';
  } else if (spaced(familyId)) {
    fields.familyId = 'Must not start or end with a space.';
  } else if (families !== null) {
    const family = families.find(f => f.id === familyId);
    if (!family) {
      fields.familyId = `Unknown family "${familyId}".`;
    } else if (!family.available) {
      fields.familyId = `${family.displayName ?? family.id} is not available right now.`;
    }
  }
  if (!GPU_COUNTS.includes(form.gpuCount)) {
    fields.gpuCount = `Must be one of ${GPU_COUNTS.join(', ')}.`;
  }
  if (!form.templateId.trim()) {
    fields.templateId = `Give a template id (the default is ${DEFAULT_TEMPLATE}).`;
  } else if (spaced(form.templateId)) {
    fields.templateId = 'Must not start or end with a space.';
  } else if (form.templateId.length > 128) {
    fields.templateId = 'At most 128 characters.';
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
  return { fields, request };
}

/**
 * The hour of cost reserved against the wallet when this form is sent, from the family's
 * price per GPU and hour (the cheapest listing; a region may cost more), or null.
 */
export function hourCostCents(form: ILaunchForm, families: IFamily[] | null): number | null {
  const family = families?.find(f => f.id === form.familyId);
  if (!family || !GPU_COUNTS.includes(form.gpuCount)) {
    return null;
  }
  return family.pricePerHourCents * form.gpuCount;
}
