import * as React from 'react';

import { formatCountdown, formatDateTime } from '../format';
import { useModel, useNow } from '../hooks';
import { GpuOutletModel } from '../model';
import { ErrorBox } from './ErrorBox';
import { Field } from './Field';
import { Notice } from './Notice';

export interface ISignInProps {
  model: GpuOutletModel;
}

/**
 * "Sign in to gpuoutlet": the email, "Send code", then the code gpuoutlet emailed, with the
 * vendor's limits in words (one code per email every 30 s, counted down; 10 minutes per code;
 * 5 wrong tries). The server keeps the session and uses it at once: the panel fills in.
 */
export function SignIn({ model }: ISignInProps): React.ReactElement {
  useModel(model);
  const form = model.signIn;
  const now = useNow(form.step === 'code');
  const status = model.status;
  const expired = model.sessionExpired !== null || status?.sessionState === 'expired';
  const lastEmail = status?.lastEmail ?? null;
  React.useEffect(() => {
    // The account last signed in here: most people sign in again as the same one.
    if (lastEmail && !form.email) {
      form.setEmail(lastEmail);
    }
  }, [lastEmail]);
  const resendIn = form.resendIn(now);
  const codeLeft = form.codeLeft(now);
  return (
    <section className="jp-GpuOutlet-signIn" aria-label="Sign in to gpuoutlet">
      <h3 className="jp-GpuOutlet-subheading">Sign in to gpuoutlet</h3>
      {expired && (
        <Notice level="warn" code="session_expired" title="Your gpuoutlet session has ended">
          gpuoutlet no longer accepts this Jupyter server&apos;s session (it ends after 30 days
          without use, or when you sign out elsewhere). Sign in again: the form and your rentals are
          kept.
        </Notice>
      )}
      {model.signedOut && (
        <Notice level="info" code="signed_out" title="Signed out">
          {model.signedOut.message}
          {model.signedOut.note && <p>{model.signedOut.note}</p>}
        </Notice>
      )}
      {form.step === 'email' ? (
        <form
          className="jp-GpuOutlet-signInForm"
          noValidate // our own check, in words, under the field
          onSubmit={event => {
            event.preventDefault();
            void form.sendCode();
          }}
        >
          <p className="jp-GpuOutlet-muted jp-GpuOutlet-signInHow">
            gpuoutlet emails you a 6-digit code: no password, no cookie to copy.
            {status?.apiUrl && <> ({status.apiUrl})</>}
          </p>
          <Field label="Email" errorId="gpuoutlet-email-error" error={form.emailError ?? undefined}>
            <input
              className="jp-mod-styled"
              type="email"
              name="email"
              autoComplete="email"
              placeholder="you@example.com"
              aria-describedby="gpuoutlet-email-error"
              aria-invalid={!!form.emailError}
              value={form.email}
              onChange={e => form.setEmail(e.target.value)}
            />
          </Field>
          <button
            type="submit"
            className="jp-mod-styled jp-mod-accept jp-GpuOutlet-primary"
            disabled={form.sending}
          >
            {form.sending ? 'Sending…' : 'Send code'}
          </button>
        </form>
      ) : (
        <form
          className="jp-GpuOutlet-signInForm"
          onSubmit={event => {
            event.preventDefault();
            void form.verify();
          }}
        >
          <p className="jp-GpuOutlet-codeSent">
            {form.notice ?? (
              <>
                gpuoutlet emailed a 6-digit code to <strong>{form.email}</strong>.
              </>
            )}{' '}
            It works once, for 10 minutes
            {form.codeExpiresAt !== null && codeLeft !== null && codeLeft > 0 && (
              <span
                className="jp-GpuOutlet-codeLeft"
                title={formatDateTime(new Date(form.codeExpiresAt).toISOString())}
              >
                {' '}
                ({formatCountdown(codeLeft)} left)
              </span>
            )}
            ; 5 wrong tries end it.
          </p>
          {form.sent?.hint && (
            <p className="jp-GpuOutlet-muted jp-GpuOutlet-signInHint">{form.sent.hint}</p>
          )}
          <Field label="Code" errorId="gpuoutlet-code-error" error={form.codeError ?? undefined}>
            <input
              className="jp-mod-styled jp-GpuOutlet-code"
              type="text"
              name="code"
              inputMode="numeric"
              autoComplete="one-time-code"
              placeholder="123456"
              maxLength={7}
              aria-describedby="gpuoutlet-code-error"
              aria-invalid={!!form.codeError}
              value={form.code}
              onChange={e => form.setCode(e.target.value)}
            />
          </Field>
          <button
            type="submit"
            className="jp-mod-styled jp-mod-accept jp-GpuOutlet-primary"
            disabled={form.verifying || form.codeDead}
          >
            {form.verifying ? 'Signing in…' : 'Sign in'}
          </button>
          <div className="jp-GpuOutlet-actions">
            <button
              type="button"
              className="jp-GpuOutlet-button jp-GpuOutlet-resend"
              disabled={form.sending || resendIn > 0}
              title="gpuoutlet sends one code per email address every 30 s"
              onClick={() => void form.sendCode()}
            >
              {resendIn > 0 ? `Send a new code (${resendIn} s)` : 'Send a new code'}
            </button>
            <button
              type="button"
              className="jp-GpuOutlet-button"
              onClick={() => form.useAnotherEmail()}
            >
              Use another email
            </button>
          </div>
        </form>
      )}
      {form.error && <ErrorBox error={form.error} />}
    </section>
  );
}
