import * as React from 'react';

import { confirmAndSignOut } from '../actions';
import { formatDateTime, formatTimeLeft } from '../format';
import { GpuOutletModel } from '../model';
import { ErrorBox } from './ErrorBox';
import { Notice } from './Notice';

export interface IHeaderProps {
  model: GpuOutletModel;
}

/**
 * The sidebar's header: the title and the refresh button; who is signed in and until when
 * (a warning when fewer than 3 days are left), with "Sign out"; and, when the wallet lasts
 * under an hour at the current burn, that every pod stops at $0. Once the session has ended,
 * the sign-in below says so.
 */
export function Header({ model }: IHeaderProps): React.ReactElement {
  const status = model.status;
  const session = status?.configured ? status.session : null;
  // Said by the sign-in form when it is shown (the server's own sign-in).
  const expired = model.needsSignIn ? null : model.sessionExpired;
  const signedIn = !!session && !model.needsSignIn;
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
      {session && signedIn && (
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
          <button
            type="button"
            className="jp-GpuOutlet-linkButton jp-GpuOutlet-signOut"
            disabled={model.signingOut}
            title="Sign out of gpuoutlet: it ends the session, and this server forgets it"
            onClick={() => void confirmAndSignOut(model)}
          >
            {model.signingOut ? 'Signing out…' : 'Sign out'}
          </button>
        </div>
      )}
      {model.signOutError && <ErrorBox error={model.signOutError} />}
      {session?.warning && signedIn && (
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
