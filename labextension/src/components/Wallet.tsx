import * as React from 'react';

import { formatCents } from '../format';
import { GpuOutletModel } from '../model';
import { ErrorBox } from './ErrorBox';
import { Notice } from './Notice';
import { Spend } from './Spend';

export interface IWalletProps {
  model: GpuOutletModel;
}

/**
 * The wallet (gpuoutlet's balance): available, reserved (the first hour of running rentals),
 * and open invoices, with a warning when something is owed; then the spending line.
 */
export function Wallet({ model }: IWalletProps): React.ReactElement | null {
  const wallet = model.wallet;
  const error = model.walletError;
  if (error && error.kind !== 'session_expired') {
    return <ErrorBox error={error} />;
  }
  if (wallet === null) {
    return error ? null : <div className="jp-GpuOutlet-wallet jp-GpuOutlet-muted">Wallet…</div>;
  }
  const owed = wallet.openInvoicesCents > 0;
  const invoices = wallet.warnings.find(w => w.code === 'open_invoices');
  return (
    <section className="jp-GpuOutlet-wallet" aria-label="Wallet">
      <div className="jp-GpuOutlet-balance">
        <div title="Spendable on a new rental">
          <span className="jp-GpuOutlet-label">Available</span>
          <span className="jp-GpuOutlet-walletAvailable">{formatCents(wallet.availableCents)}</span>
        </div>
        <div title="Held for running rentals: the first hour of each">
          <span className="jp-GpuOutlet-label">Reserved</span>
          <span className="jp-GpuOutlet-walletReserved">{formatCents(wallet.reservedCents)}</span>
        </div>
        <div
          className={owed ? 'jp-mod-warn' : undefined}
          title={
            owed
              ? `${wallet.openInvoiceCount} open invoice${wallet.openInvoiceCount === 1 ? '' : 's'}`
              : 'Nothing owed'
          }
        >
          <span className="jp-GpuOutlet-label">Open invoices</span>
          <span className="jp-GpuOutlet-walletInvoices">
            {formatCents(wallet.openInvoicesCents)}
          </span>
        </div>
      </div>
      <Spend model={model} />
      {owed && (
        <Notice level="warn" code="open_invoices" title="You have an open invoice">
          {invoices?.message ??
            `You owe ${formatCents(wallet.openInvoicesCents)} on gpuoutlet: pay it on the website (Billing).`}
        </Notice>
      )}
    </section>
  );
}
