import * as React from 'react';

import { formatCents, formatHoursLeft, formatRate } from '../format';
import { useNow } from '../hooks';
import { GpuOutletModel } from '../model';

/** Below this many hours of balance left at the current burn, the line is a warning. */
const LOW_HOURS = 1;

export interface ISpendProps {
  model: GpuOutletModel;
}

/** The burn of the active rentals, how long the balance lasts at it, the cost so far, the cap. */
export function Spend({ model }: ISpendProps): React.ReactElement | null {
  const now = useNow(model.visible);
  const wallet = model.wallet;
  if (wallet === null || typeof wallet.burnCentsPerHour !== 'number') {
    return null;
  }
  const currency = wallet.currency;
  const burn = wallet.burnCentsPerHour;
  const hoursLeft = burn > 0 ? (wallet.hoursLeft ?? null) : null;
  const low = hoursLeft !== null && hoursLeft < LOW_HOURS;
  const spent = model.spentCents(now);
  const cap = wallet.maxHourlySpendCents ?? null;
  const active = wallet.activeRentals ?? 0;
  return (
    <div
      className={`jp-GpuOutlet-spend${low ? ' jp-mod-warn' : ''}`}
      role="group"
      aria-label="Spending"
    >
      <span
        title={
          burn > 0
            ? `What your ${active === 1 ? 'active rental costs' : `${active} active rentals cost`} per hour`
            : 'Nothing is running, so nothing is being spent'
        }
      >
        Burn <strong className="jp-GpuOutlet-burn">{formatRate(burn, currency)}</strong>
      </span>
      <span
        className="jp-GpuOutlet-hoursLeft"
        title="How long the available balance lasts at this burn"
      >
        {formatHoursLeft(hoursLeft)}
      </span>
      {spent !== null && (
        <span title="The cost so far of the rentals this Jupyter server tracks">
          <span className="jp-GpuOutlet-spent">{formatCents(spent, currency)}</span> so far
        </span>
      )}
      {cap !== null && cap > 0 && (
        <span title="The spending cap of this Jupyter server: a rental that would take the burn over it is refused">
          cap <span className="jp-GpuOutlet-cap">{formatRate(cap, currency)}</span>
        </span>
      )}
    </div>
  );
}
