import * as React from 'react';

import { IErrorInfo } from '../errors';
import { formatCents } from '../format';

export interface IErrorBoxProps {
  error: IErrorInfo;
  className?: string;
  /** Show a "×" that calls this. */
  onDismiss?: () => void;
}

/** An error, inline: a headline, the specific message, and whatever amounts it has. */
export function ErrorBox({ error, className, onDismiss }: IErrorBoxProps): React.ReactElement {
  return (
    <div
      className={`jp-GpuOutlet-error jp-GpuOutlet-error-${error.kind} ${className ?? ''}`}
      role="alert"
      data-kind={error.kind}
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
      {error.requiredCents !== undefined && error.availableCents !== undefined && (
        <dl className="jp-GpuOutlet-amounts">
          <dt>Needed (one hour)</dt>
          <dd className="jp-GpuOutlet-required">{formatCents(error.requiredCents)}</dd>
          <dt>Available</dt>
          <dd className="jp-GpuOutlet-available">{formatCents(error.availableCents)}</dd>
        </dl>
      )}
      <div className="jp-GpuOutlet-errorMessage">{error.message}</div>
    </div>
  );
}
