import {
  costSoFarCents,
  elapsedSeconds,
  formatCents,
  formatCountdown,
  formatElapsed,
  formatHoursLeft,
  formatMinutes
} from '../format';
import { emptyForm, hourCostCents, validateForm } from '../validation';
import { FAMILIES } from './fake';

describe('validateForm', () => {
  const form = (change = {}) => ({ ...emptyForm(), familyId: 'rtx-4090', ...change });

  it('accepts a minimal form', () => {
    expect(validateForm(form(), FAMILIES)).toEqual({
      fields: {},
      request: { familyId: 'rtx-4090', gpuCount: 1, templateId: 'ubuntu-24-04' }
    });
  });

  it('allows names of up to 64 characters, counted as characters', () => {
    expect(validateForm(form({ name: 'a'.repeat(64) }), FAMILIES).fields.name).toBeUndefined();
    expect(validateForm(form({ name: 'é'.repeat(64) }), FAMILIES).fields.name).toBeUndefined();
    expect(validateForm(form({ name: 'a'.repeat(65) }), FAMILIES).fields.name).toBe(
      'At most 64 characters (65 now).'
    );
  });

  it('checks the family, the count, the template, the region and auto-stop', () => {
    const v = (change: object) => validateForm(form(change), FAMILIES).fields;
    expect(v({ familyId: '' }).familyId).toBe('Pick a GPU family.');
    expect(v({ familyId: 'nope' }).familyId).toContain('Unknown family');
    expect(v({ familyId: 'l4' }).familyId).toContain('not available');
    expect(v({ gpuCount: 3 }).gpuCount).toBe('Must be one of 1, 2, 4, 8.');
    expect(v({ templateId: '' }).templateId).toContain('ubuntu-24-04');
    expect(v({ templateId: ' pytorch' }).templateId).toContain('space');
    expect(v({ region: 'US ' }).region).toContain('space');
    expect(v({ autoStopAfterHours: '0' }).autoStopAfterHours).toBeDefined();
    expect(v({ autoStopAfterHours: 'abc' }).autoStopAfterHours).toBeDefined();
    expect(v({ autoStopAfterHours: '2.5' }).autoStopAfterHours).toBeUndefined();
  });

  it('checks the idle stop: empty is the server default, 0 is off, up to a week', () => {
    const check = (idleStopMinutes: string) => validateForm(form({ idleStopMinutes }), FAMILIES);
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

  it('accepts any family id when the API does not list families', () => {
    expect(validateForm(form({ familyId: 'h200' }), null).request?.familyId).toBe('h200');
  });
});

describe('hourCostCents', () => {
  it('is the price per GPU and hour times the count', () => {
    expect(hourCostCents({ ...emptyForm(), familyId: 'rtx-4090', gpuCount: 4 }, FAMILIES)).toBe(
      260
    );
    expect(hourCostCents({ ...emptyForm(), familyId: 'x' }, FAMILIES)).toBeNull();
    expect(hourCostCents({ ...emptyForm(), familyId: 'rtx-4090' }, null)).toBeNull();
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

  it('computes the cost so far from the locked rate and the start, up to the stop', () => {
    const startedAt = '2026-06-07T08:00:00Z';
    const now = Date.parse('2026-06-07T08:30:00Z');
    expect(elapsedSeconds({ startedAt, stoppedAt: null }, now)).toBe(1800);
    expect(costSoFarCents({ startedAt, stoppedAt: null, pricePerHourCents: 65 }, now)).toBe(33);
    const stoppedAt = '2026-06-07T08:06:00Z';
    expect(costSoFarCents({ startedAt, stoppedAt, pricePerHourCents: 100 }, now)).toBe(10);
    expect(elapsedSeconds({ startedAt: 'garbage', stoppedAt: null }, now)).toBe(0);
    // No stoppedAt from the API (the seed does not document it): the server's endedAt ends it.
    const endedAt = '2026-06-07T08:12:00Z';
    expect(
      costSoFarCents({ startedAt, stoppedAt: null, endedAt, pricePerHourCents: 100 }, now)
    ).toBe(20);
    expect(costSoFarCents({ startedAt, stoppedAt, endedAt, pricePerHourCents: 100 }, now)).toBe(10);
  });
});
