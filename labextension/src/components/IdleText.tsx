import * as React from 'react';

import { IIdleLine } from '../idle';

export interface IIdleTextProps {
  line: IIdleLine;
}

/**
 * An idle line's text; its countdown in a timer with live announcements off, so an alert
 * around it is read once and not again on every tick.
 */
export function IdleText({ line }: IIdleTextProps): React.ReactElement {
  return (
    <>
      {line.prefix}
      {line.countdown !== null && (
        <span className="jp-GpuOutlet-countdown" role="timer" aria-live="off">
          {line.countdown}
        </span>
      )}
      {line.suffix}
    </>
  );
}
