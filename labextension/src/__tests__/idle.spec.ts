import { idleLine, secondsLeftAt } from '../idle';
import { IIdleStopView } from '../types';
import { view } from './fake';

function idle(change: Partial<IIdleStopView> = {}): IIdleStopView {
  return {
    minutes: 30,
    warnMinutes: 5,
    lastActiveAt: '2026-06-07T08:00:00Z',
    stopAt: '2026-06-07T08:30:00Z',
    secondsLeft: 1800,
    warning: false,
    decidedHere: true,
    kernels: 1,
    busyKernels: 0,
    ...change
  };
}

const running = (change: Partial<IIdleStopView> = {}, more = {}) =>
  view('rent_1', { status: 'running', idleStop: idle(change), ...more });

// The view arrived at t = 1,000,000 ms on the browser's clock.
const AT = 1_000_000;

describe('idleLine', () => {
  it('says nothing without an idle stop, or while it is not running', () => {
    expect(idleLine(view('rent_1', { status: 'running' }), AT, AT)).toBeNull();
    expect(idleLine(view('rent_1', { status: 'running', idleStop: null }), AT, AT)).toBeNull();
    expect(idleLine(view('rent_1', { idleStop: idle({ secondsLeft: null }) }), AT, AT)).toBeNull();
    expect(idleLine(running({}, { gone: true }), AT, AT)).toBeNull();
    expect(idleLine(running({ minutes: 0 }), AT, AT)).toBeNull();
  });

  it('says another server times it when this one does not (no countdown of its own)', () => {
    const line = idleLine(
      running({
        decidedHere: false,
        secondsLeft: null,
        stopAt: null,
        lastActiveAt: null,
        warning: false
      }),
      AT,
      AT
    );
    expect(line?.kind).toBe('quiet');
    expect(line?.text).toBe('Stops after 30 min idle, timed by the Jupyter server that made it');
    expect(line?.secondsLeft).toBeNull();
  });

  it('is a quiet line while the stop is far', () => {
    const line = idleLine(running(), AT, AT + 5_000);
    expect(line?.kind).toBe('quiet');
    expect(line?.text).toBe('Stops after 30 min idle');
    expect(line?.countdown).toBeNull();
    expect(line?.secondsLeft).toBe(1795);
  });

  it('names the GPU threshold, and a GPU over it holds the timer as a busy kernel', () => {
    const quiet = idleLine(running({ gpuUtil: 20, gpuPeak: 5 }), AT, AT);
    expect(quiet?.text).toBe('Stops after 30 min idle with its GPUs under 20 %');
    expect(quiet?.busy).toBeNull();
    const held = idleLine(running({ gpuUtil: 20, gpuPeak: 87.4, busyKernels: 1 }), AT, AT);
    expect(held?.busy).toBe('1 kernel busy, GPU busy (87 %)');
    expect(held?.secondsLeft).toBeNull();
  });

  it('counts down from secondsLeft at receipt once the stop is close, whatever stopAt says', () => {
    // stopAt is hours away on the browser's clock (a skewed server clock): it is not used.
    const close = running({ secondsLeft: 600, stopAt: '2030-01-01T00:00:00Z' });
    expect(idleLine(close, AT, AT)?.kind).toBe('countdown');
    expect(idleLine(close, AT, AT)?.text).toBe(
      'Stops after 30 min idle · in 10:00 unless something runs'
    );
    const later = idleLine(close, AT, AT + 61_000);
    expect(later?.countdown).toBe('8:59');
    expect(later?.prefix + (later?.countdown ?? '') + later?.suffix).toBe(later?.text);
    // 601 s later it is at 0, never below.
    expect(idleLine(close, AT, AT + 601_000)?.countdown).toBe('0:00');
  });

  it('shows the warning with its countdown', () => {
    const line = idleLine(running({ secondsLeft: 95, warning: true }), AT, AT + 10_000);
    expect(line?.kind).toBe('warning');
    expect(line?.text).toBe('Idle: stopping in 1:25 unless something runs on it');
    expect(line?.countdown).toBe('1:25');
    expect(line?.busy).toBeNull();
    const unknown = idleLine(running({ secondsLeft: null, warning: true }), AT, AT);
    expect(unknown?.text).toBe('Idle: stopping soon unless something runs on it');
  });

  it('does not count down while a kernel is busy, and says how many are', () => {
    const one = idleLine(running({ secondsLeft: 30, busyKernels: 1 }), AT, AT + 10_000);
    expect(one?.kind).toBe('quiet');
    expect(one?.busy).toBe('1 kernel busy');
    expect(one?.secondsLeft).toBeNull();
    expect(idleLine(running({ busyKernels: 2, kernels: 2 }), AT, AT)?.busy).toBe('2 kernels busy');
  });

  it('says a rental was stopped for being idle', () => {
    const stopped = view('rent_1', {
      status: 'stopped',
      stopReason: 'idle',
      idleStop: idle({ minutes: 0.4, secondsLeft: null, stopAt: null, lastActiveAt: null })
    });
    expect(idleLine(stopped, AT, AT)).toMatchObject({
      kind: 'stopped',
      text: 'Stopped after 24 s idle: nothing ran on it.'
    });
    const stopping = { ...stopped, status: 'stopping', idleStop: null };
    expect(idleLine(stopping, AT, AT)?.text).toBe('Stopping for being idle: nothing ran on it.');
    // Stopped by hand: nothing about idleness.
    expect(idleLine({ ...stopped, stopReason: null }, AT, AT)).toBeNull();
  });
});

describe('secondsLeftAt', () => {
  it('subtracts the time since receipt, never below 0; a clock going back does not add', () => {
    expect(secondsLeftAt(idle({ secondsLeft: 100 }), AT, AT + 40_000)).toBe(60);
    expect(secondsLeftAt(idle({ secondsLeft: 100 }), AT, AT + 400_000)).toBe(0);
    expect(secondsLeftAt(idle({ secondsLeft: 100 }), AT, AT - 5_000)).toBe(100);
    expect(secondsLeftAt(idle({ secondsLeft: null }), AT, AT)).toBeNull();
  });
});
