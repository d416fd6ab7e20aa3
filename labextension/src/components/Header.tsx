import * as React from 'react';

import { formatDateTime, formatTimeLeft } from '../format';
import { GpuOutletModel } from '../model';
import { ErrorBox } from './ErrorBox';
import { Notice } from './Notice';

export interface IHeaderProps {
  model: GpuOutletModel;
}

/**
 * The sidebar's header: the title and the refresh button; who is signed in and until when
 * (a warning when fewer than 3 days are left, the way to sign in again once it has ended);
 * and, when the wallet lasts under an hour at the current burn, that every pod stops at $0.
 */
export function Header({ model }: IHeaderProps): React.ReactElement {
  const status = model.status;
  const session = status?.configured ? status.session : null;
  const expired = model.sessionExpired;
  const atZero = model.wallet?.warnings.find(w => w.code === 'wallet_under_an_hour');
  return (
    <>
      <header className="jp-GpuOutlet-header">
        <h2 className="jp-GpuOutlet-heading">GPU rentals</h2>
        <button
          className="jp-GpuOutlet-iconButton"
          title="Refresh now"
          aria-label="Refresh now"
          onClick={() => void model.refreshNow()}
        >
          ⟳
        </button>
      </header>
      {session && !expired && (
        <div
          className={`jp-GpuOutlet-session${session.warning ? ' jp-mod-warn' : ''}`}
          aria-label="gpuoutlet session"
        >
          <span className="jp-GpuOutlet-email" title={`gpuoutlet user ${session.userId}`}>
            {session.email}
          </span>
          <span
            className="jp-GpuOutlet-expires"
            title={`The session ends ${formatDateTime(session.expiresAt)}; every request moves it on`}
          >
            session ends {formatTimeLeft(session.secondsLeft)}
          </span>
        </div>
      )}
      {session?.warning && !expired && (
        <Notice level="warn" code="session_ending" title="Your gpuoutlet session ends soon">
          {session.warning}
        </Notice>
      )}
      {expired && <ErrorBox error={expired} className="jp-GpuOutlet-sessionExpired" />}
      {!session && !expired && status?.configured && status.sessionProblem && (
        <div className="jp-GpuOutlet-muted jp-GpuOutlet-sessionProblem">
          Who is signed in could not be read: {status.sessionProblem}
        </div>
      )}
      {atZero && (
        <Notice level="warn" code={atZero.code} title="Every pod stops at $0">
          {atZero.message}
        </Notice>
      )}
    </>
  );
}
