import * as React from 'react';

import { formatCents, formatElapsed, formatRate } from '../format';
import { GpuOutletModel, isUpstream } from '../model';
import { Amounts, ErrorBox } from './ErrorBox';

export interface IQuoteBoxProps {
  model: GpuOutletModel;
}

/**
 * gpuoutlet's quote for the form, before anything is rented: the price an hour, where and how
 * soon, the confirmation line, what the wallet keeps, and every reason the create would be
 * refused (a short wallet with both amounts, the spending cap, the SSH key).
 */
export function QuoteBox({ model }: IQuoteBoxProps): React.ReactElement {
  const reply = model.quote;
  const error = model.quoteError;
  const wallet = model.wallet;
  const problems = model.problems;
  const hint = model.hourCostCents;
  if (error?.kind === 'session_expired') {
    // The header says it, with how to sign in again: once is enough.
    return (
      <div className="jp-GpuOutlet-quote jp-mod-pending" data-code={error.code}>
        No price while the gpuoutlet session has expired: sign in again (see above).
      </div>
    );
  }
  if (isUpstream(error)) {
    // The banner above says the rentals API does not answer: once is enough.
    return (
      <div className="jp-GpuOutlet-quote jp-mod-pending" data-code={error?.code}>
        No price while the rentals API does not answer (see above).
      </div>
    );
  }
  if (error) {
    return (
      <ErrorBox
        error={error}
        className="jp-GpuOutlet-quoteError"
        onSuggestion={id => model.updateForm({ familyId: id })}
      >
        {error.kind === 'rate_limited' && (
          <div className="jp-GpuOutlet-muted">The quote is asked for again by itself then.</div>
        )}
      </ErrorBox>
    );
  }
  if (!reply) {
    return (
      <div className="jp-GpuOutlet-quote jp-mod-pending" aria-live="polite">
        {model.validation.request === null ? (
          <span>Fill in the form to see gpuoutlet&apos;s price.</span>
        ) : (
          <span>
            Asking gpuoutlet for a price…
            {hint !== null ? ` (the catalog's cheapest: ${formatRate(hint)})` : ''}
          </span>
        )}
      </div>
    );
  }
  const { quote } = reply;
  const where = [quote.providerCode, quote.region].filter(Boolean).join(' in ');
  const short = problems.some(p => p.code === 'insufficient_balance');
  return (
    <div
      className={`jp-GpuOutlet-quote${problems.length ? ' jp-mod-warn' : ''}`}
      aria-live="polite"
      aria-label="gpuoutlet's quote"
    >
      <div className="jp-GpuOutlet-quoteHead">
        <strong className="jp-GpuOutlet-price">{formatRate(quote.pricePerHourCents)}</strong>
        <span className="jp-GpuOutlet-muted">
          {where ? `from ${where} · ` : ''}ready in about{' '}
          {formatElapsed(quote.estimatedProvisionSeconds)}
        </span>
      </div>
      <div className="jp-GpuOutlet-confirmation">{reply.confirmation}</div>
      {wallet && !short && (
        <div className="jp-GpuOutlet-muted jp-GpuOutlet-after">
          {formatCents(wallet.availableCents)} available,{' '}
          {formatCents(wallet.availableCents - quote.pricePerHourCents)} left once its first hour is
          reserved.
        </div>
      )}
      {problems.map(problem => (
        <div
          key={problem.code}
          className="jp-GpuOutlet-problem"
          role="alert"
          data-problem={problem.code}
        >
          {problem.neededCents !== undefined && problem.availableCents !== undefined && (
            <>
              <div className="jp-GpuOutlet-problemTitle">Not enough balance</div>
              <Amounts needed={problem.neededCents} available={problem.availableCents} />
            </>
          )}
          <div>
            {problem.code === 'key_not_on_account' && model.keyMissing
              ? 'Add your SSH key first (above): a pod created now would not let it in.'
              : problem.message}
          </div>
        </div>
      ))}
    </div>
  );
}
