import * as React from 'react';

import { formatCents } from '../format';
import { GpuOutletModel } from '../model';
import { ErrorBox } from './ErrorBox';
import { Spend } from './Spend';

/** The two balances: what the label says, the class of the amount, and the wallet's member. */
const BALANCES = [
  ['Available', 'jp-GpuOutlet-walletAvailable', 'availableCents'],
  ['Reserved', 'jp-GpuOutlet-walletReserved', 'reservedCents']
] as const;

export interface IWalletProps {
  model: GpuOutletModel;
}

/** The wallet's available and reserved balance, and the spending line when the server has it. */
export function Wallet({ model }: IWalletProps): React.ReactElement {
  const wallet = model.wallet;
  if (model.walletError && model.walletError.kind !== 'endpoint_unavailable') {
    return <ErrorBox error={model.walletError} />;
  }
  if (wallet === null) {
    return (
      <div className="jp-GpuOutlet-wallet jp-GpuOutlet-muted">
        {model.walletError ? 'This rentals API does not report the wallet.' : 'Wallet…'}
      </div>
    );
  }
  return (
    <section className="jp-GpuOutlet-wallet" aria-label="Wallet">
      <div className="jp-GpuOutlet-balance">
        {BALANCES.map(([label, className, cents]) => (
          <div key={label}>
            <span className="jp-GpuOutlet-label">{label}</span>
            <span className={className}>{formatCents(wallet[cents], wallet.currency)}</span>
          </div>
        ))}
      </div>
      {typeof wallet.burnCentsPerHour === 'number' && <Spend model={model} />}
    </section>
  );
}
