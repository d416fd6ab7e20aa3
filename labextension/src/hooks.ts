/**
 * The React hooks of the sidebar's components: follow the model, and a clock that ticks.
 */
import * as React from 'react';

import { GpuOutletModel } from './model';

/** Re-render on every change of the model. */
export function useModel(model: GpuOutletModel): void {
  const [, setTick] = React.useState(0);
  React.useEffect(() => {
    const onChange = () => setTick(t => t + 1);
    model.changed.connect(onChange);
    return () => {
      model.changed.disconnect(onChange);
    };
  }, [model]);
}

/** The current time, every second while the panel is visible (elapsed time, cost so far). */
export function useNow(active: boolean): number {
  const [now, setNow] = React.useState(Date.now());
  React.useEffect(() => {
    if (!active) {
      return;
    }
    setNow(Date.now());
    const timer = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(timer);
  }, [active]);
  return now;
}
