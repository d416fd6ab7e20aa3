import * as React from 'react';

import { formatCents, formatInstant } from '../format';
import { GpuOutletModel, isUpstream } from '../model';
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
  // The session's end and the API not answering are said once, above.
  const saidAbove = error?.kind === 'session_expired' || isUpstream(error);
  if (error && !saidAbove) {
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
      {error && (
        <div className="jp-GpuOutlet-muted jp-GpuOutlet-stale">
          As gpuoutlet said it at {formatInstant(model.walletAt)}; it could not be read since.
        </div>
      )}
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
