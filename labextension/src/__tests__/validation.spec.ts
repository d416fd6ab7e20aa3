import { costSoFarCents, elapsedSeconds, formatCents, formatElapsed } from '../format';
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

  it('computes the cost so far from the locked rate and the start, up to the stop', () => {
    const startedAt = '2026-06-07T08:00:00Z';
    const now = Date.parse('2026-06-07T08:30:00Z');
    expect(elapsedSeconds({ startedAt, stoppedAt: null }, now)).toBe(1800);
    expect(costSoFarCents({ startedAt, stoppedAt: null, pricePerHourCents: 65 }, now)).toBe(33);
    const stoppedAt = '2026-06-07T08:06:00Z';
    expect(costSoFarCents({ startedAt, stoppedAt, pricePerHourCents: 100 }, now)).toBe(10);
    expect(elapsedSeconds({ startedAt: 'garbage', stoppedAt: null }, now)).toBe(0);
  });
});
