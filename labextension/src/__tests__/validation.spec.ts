import {
  elapsedSeconds,
  formatCents,
  formatCountdown,
  formatDateTime,
  formatElapsed,
  formatHoursLeft,
  formatMinutes,
  formatTimeLeft
} from '../format';
import { catalogPriceCents, emptyForm, quoteKey, validateForm } from '../validation';
import { FAMILIES, TEMPLATES } from './fake';

describe('validateForm', () => {
  const form = (change = {}) => ({ ...emptyForm(), familyId: 'rtx-4090', ...change });

  it('accepts a minimal form', () => {
    expect(validateForm(form(), TEMPLATES)).toEqual({
      fields: {},
      request: { familyId: 'rtx-4090', gpuCount: 1, templateId: 'ubuntu-24-04' }
    });
  });

  it('checks the GPU threshold of the idle stop: 0 to 100, and only with an idle stop', () => {
    const v = (change: object) => validateForm(form(change), TEMPLATES);
    expect(v({ idleGpuUtil: '101' }).fields.idleGpuUtil).toContain('0 (the GPUs do not count)');
    expect(v({ idleGpuUtil: 'x' }).fields.idleGpuUtil).toContain('to 100 %');
    expect(v({ idleGpuUtil: '20', idleStopMinutes: '0' }).fields.idleGpuUtil).toContain(
      'Needs an idle stop'
    );
    expect(v({ idleGpuUtil: '20', idleStopMinutes: '30' }).request).toMatchObject({
      idleStopMinutes: 30,
      idleGpuUtil: 20
    });
    expect(v({ idleGpuUtil: '' }).request).not.toHaveProperty('idleGpuUtil');
  });

  it('allows names of up to 64 characters, counted as characters', () => {
    expect(validateForm(form({ name: 'a'.repeat(64) })).fields.name).toBeUndefined();
    expect(validateForm(form({ name: 'é'.repeat(64) })).fields.name).toBeUndefined();
    expect(validateForm(form({ name: 'a'.repeat(65) })).fields.name).toBe(
      'At most 64 characters (65 now).'
    );
  });

  it('checks the family, the count, the template, the region and auto-stop', () => {
    const v = (change: object) => validateForm(form(change), TEMPLATES).fields;
    expect(v({ familyId: '' }).familyId).toBe('Pick a GPU family.');
    expect(v({ familyId: ' rtx-4090' }).familyId).toContain('space');
    // Whether a family is in the catalog is the quote's to say (with the close ids).
    expect(v({ familyId: 'rtx-5090' }).familyId).toBeUndefined();
    expect(v({ gpuCount: 3 }).gpuCount).toBe(
      'A rental has 1, 2, 4 or 8 GPUs (3 asked for): pick one of those.'
    );
    expect(v({ templateId: '' }).templateId).toContain('ubuntu-24-04');
    expect(v({ templateId: 'tensorflow' }).templateId).toBe(
      'gpuoutlet has no template “tensorflow”: pick one of ubuntu-24-04, pytorch, a1111.'
    );
    expect(v({ templateId: 'a1111' }).templateId).toBeUndefined();
    expect(v({ region: 'US ' }).region).toContain('space');
    expect(v({ autoStopAfterHours: '0' }).autoStopAfterHours).toBeDefined();
    expect(v({ autoStopAfterHours: 'abc' }).autoStopAfterHours).toBeDefined();
    expect(v({ autoStopAfterHours: '2.5' }).autoStopAfterHours).toBeUndefined();
  });

  it('sends any template id until the templates are read', () => {
    expect(validateForm(form({ templateId: 'vllm' }), null).request?.templateId).toBe('vllm');
  });

  it('checks the idle stop: empty is the server default, 0 is off, up to a week', () => {
    const check = (idleStopMinutes: string) => validateForm(form({ idleStopMinutes }));
    expect(check('').request).not.toHaveProperty('idleStopMinutes');
    expect(check('  ').request).not.toHaveProperty('idleStopMinutes');
    expect(check('0').request?.idleStopMinutes).toBe(0);
    expect(check('0.3').request?.idleStopMinutes).toBe(0.3);
    expect(check('30').request?.idleStopMinutes).toBe(30);
    expect(check('10080').request?.idleStopMinutes).toBe(10080);
    for (const bad of ['-1', 'abc', '10081', 'Infinity', '1e9']) {
      const result = check(bad);
      expect(result.request).toBeNull();
      expect(result.fields.idleStopMinutes).toBe(
        "Minutes from 0 (no idle stop for this rental) to 10080 (a week), or empty for this server's default."
      );
    }
  });
});

describe('quoteKey and catalogPriceCents', () => {
  it('changes only with what the price depends on', () => {
    const base = { familyId: 'rtx-4090', gpuCount: 1, templateId: 'ubuntu-24-04' };
    expect(quoteKey({ ...base, name: 'a', idleStopMinutes: 3 })).toBe(quoteKey(base));
    expect(quoteKey({ familyId: 'rtx-4090', gpuCount: 1 })).toBe(quoteKey(base));
    expect(quoteKey({ ...base, gpuCount: 2 })).not.toBe(quoteKey(base));
    expect(quoteKey({ ...base, region: 'US' })).not.toBe(quoteKey(base));
    expect(quoteKey({ ...base, templateId: 'pytorch' })).not.toBe(quoteKey(base));
  });

  it("is the catalog's cheapest whole machine of the family and count", () => {
    const form = { ...emptyForm(), familyId: 'rtx-4090', gpuCount: 4 };
    expect(catalogPriceCents(form, FAMILIES)).toBe(260);
    expect(catalogPriceCents({ ...form, familyId: 'x' }, FAMILIES)).toBeNull();
    expect(catalogPriceCents(form, null)).toBeNull();
    expect(catalogPriceCents({ ...form, gpuCount: 3 }, FAMILIES)).toBeNull();
  });
});

describe('format', () => {
  it('formats money', () => {
    expect(formatCents(65)).toBe('$0.65');
    expect(formatCents(28000)).toBe('$280.00');
    expect(formatCents(123456789)).toBe('$1,234,567.89');
    expect(formatCents(-5)).toBe('-$0.05');
    expect(formatCents(65, 'EUR')).toBe('0.65 EUR');
  });

  it('formats elapsed time', () => {
    expect(formatElapsed(42.9)).toBe('42s');
    expect(formatElapsed(185)).toBe('3m 05s');
    expect(formatElapsed(7620)).toBe('2h 07m');
    expect(formatElapsed(3 * 86400 + 4 * 3600)).toBe('3d 4h');
  });

  it('says how long the balance lasts, rounded down', () => {
    expect(formatHoursLeft(null)).toBe('nothing burning');
    expect(formatHoursLeft(undefined)).toBe('nothing burning');
    expect(formatHoursLeft(0)).toBe('0 min left');
    expect(formatHoursLeft(0.75)).toBe('45 min left');
    expect(formatHoursLeft(1)).toBe('1.0 h left');
    expect(formatHoursLeft(3.2)).toBe('3.2 h left');
    expect(formatHoursLeft(3.29)).toBe('3.2 h left');
    expect(formatHoursLeft(47.99)).toBe('47.9 h left');
    expect(formatHoursLeft(48)).toBe('2.0 days left');
    expect(formatHoursLeft(30.77 * 24)).toBe('30.7 days left');
    expect(formatHoursLeft(99 * 24)).toBe('99.0 days left');
    expect(formatHoursLeft(100 * 24)).toBe('>99 days left');
    expect(formatHoursLeft(-2)).toBe('0 min left');
  });

  it('formats countdowns and spans of minutes', () => {
    expect(formatCountdown(0)).toBe('0:00');
    expect(formatCountdown(4.2)).toBe('0:05');
    expect(formatCountdown(75)).toBe('1:15');
    expect(formatCountdown(3725)).toBe('1:02:05');
    expect(formatCountdown(-3)).toBe('0:00');
    expect(formatMinutes(0.3)).toBe('18 s');
    expect(formatMinutes(30)).toBe('30 min');
    expect(formatMinutes(7.5)).toBe('7.5 min');
    expect(formatMinutes(150)).toBe('2.5 h');
  });

  it('says when a session ends, in UTC', () => {
    expect(formatTimeLeft(0)).toBe('now');
    expect(formatTimeLeft(-5)).toBe('now');
    expect(formatTimeLeft(30)).toBe('in under a minute');
    expect(formatTimeLeft(45 * 60)).toBe('in 45 min');
    expect(formatTimeLeft(5 * 3600 + 59)).toBe('in 5 h');
    expect(formatTimeLeft(2.5 * 86400)).toBe('in 2.5 days');
    expect(formatTimeLeft(29 * 86400 + 3600)).toBe('in 29 days');
    expect(formatDateTime('2026-07-07T08:14:22Z')).toBe('7 Jul 2026, 08:14 UTC');
    expect(formatDateTime('garbage')).toBe('garbage');
  });

  it('counts the time a rental ran, up to its stop (or the end the server saw)', () => {
    const startedAt = '2026-06-07T08:00:00Z';
    const now = Date.parse('2026-06-07T08:30:00Z');
    expect(elapsedSeconds({ startedAt, stoppedAt: null }, now)).toBe(1800);
    expect(elapsedSeconds({ startedAt, stoppedAt: '2026-06-07T08:06:00Z' }, now)).toBe(360);
    expect(elapsedSeconds({ startedAt: 'garbage', stoppedAt: null }, now)).toBe(0);
    const endedAt = '2026-06-07T08:12:00Z';
    expect(elapsedSeconds({ startedAt, stoppedAt: null, endedAt }, now)).toBe(720);
  });
});
