import * as React from 'react';

import { IErrorInfo } from '../errors';
import { formatCents } from '../format';

export interface IErrorBoxProps {
  error: IErrorInfo;
  className?: string;
  /** Show a "×" that calls this. */
  onDismiss?: () => void;
  /** Offer each suggested family id (`unknown_family`) as a button that picks it. */
  onSuggestion?: (id: string) => void;
  /** Buttons or lines under the message. */
  children?: React.ReactNode;
}

/**
 * An error, inline: a headline, the specific message, whatever amounts or choices it has, and
 * the rentals API's own words when the message does not quote them.
 */
export function ErrorBox({
  error,
  className,
  onDismiss,
  onSuggestion,
  children
}: IErrorBoxProps): React.ReactElement {
  return (
    <div
      className={`jp-GpuOutlet-error jp-GpuOutlet-error-${error.kind} ${className ?? ''}`}
      role="alert"
      data-kind={error.kind}
      data-code={error.code}
    >
      <div className="jp-GpuOutlet-errorTitle">
        {error.title}
        {onDismiss && (
          <button
            className="jp-GpuOutlet-iconButton jp-GpuOutlet-dismiss"
            aria-label="Dismiss"
            title="Dismiss"
            onClick={onDismiss}
          >
            ×
          </button>
        )}
      </div>
      {error.neededCents !== undefined && error.availableCents !== undefined && (
        <Amounts needed={error.neededCents} available={error.availableCents} />
      )}
      <div className="jp-GpuOutlet-errorMessage">{error.message}</div>
      {error.suggestions && onSuggestion && (
        <div className="jp-GpuOutlet-choices">
          <span className="jp-GpuOutlet-muted">Did you mean</span>
          {error.suggestions.map(id => (
            <button
              key={id}
              type="button"
              className="jp-GpuOutlet-button jp-GpuOutlet-suggestion"
              onClick={() => onSuggestion(id)}
            >
              {id}
            </button>
          ))}
        </div>
      )}
      {error.alternatives && (
        <ul className="jp-GpuOutlet-alternatives" aria-label="Available now">
          {error.alternatives.map(text => (
            <li key={text}>{text}</li>
          ))}
        </ul>
      )}
      {error.apiSaid && (
        <div className="jp-GpuOutlet-apiSaid">gpuoutlet said: “{error.apiSaid}”</div>
      )}
      {children}
    </div>
  );
}

/** A short wallet: the hour a rental reserves, what is available, and what is missing. */
export function Amounts({
  needed,
  available
}: {
  needed: number;
  available: number;
}): React.ReactElement {
  return (
    <dl className="jp-GpuOutlet-amounts">
      <dt>Needed (its first hour)</dt>
      <dd className="jp-GpuOutlet-needed">{formatCents(needed)}</dd>
      <dt>Available</dt>
      <dd className="jp-GpuOutlet-available">{formatCents(available)}</dd>
      <dt>Missing</dt>
      <dd className="jp-GpuOutlet-missing">{formatCents(Math.max(0, needed - available))}</dd>
    </dl>
  );
}
