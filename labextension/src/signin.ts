/**
 * Signing in with gpuoutlet's email code, with no view: the email, "Send code", the code, and
 * the vendor's limits in words. One code per email every 30 s (a countdown to the next), a code
 * lives 10 minutes, 5 wrong tries end it, an address gpuoutlet refuses.
 *
 * The code is held only while it is typed: it is cleared the moment it is sent, and it is never
 * part of an error or a message. The server keeps the session; the sidebar never sees it.
 */
import { ISignal, Signal } from '@lumino/signaling';

import { describeError, IErrorInfo } from './errors';
import type { Requester } from './model';
import type { ICodeSentReply, ISignedInReply } from './types';

/** The vendor's limits (sheet 1.8 and 2.1), used until the server's reply says otherwise. */
export const RESEND_SECONDS = 30;
export const CODE_LIFETIME_SECONDS = 600;
export const ATTEMPTS_PER_CODE = 5;

/** Where the form is: asking for the email, or for the code sent to it. */
export type SignInStep = 'email' | 'code';

/** What a person may type in the code field: digits, with a space or dash between them. */
const CODE = /^\d{6}$/;

export namespace SignInModel {
  export interface IOptions {
    request: Requester;
    /** The clock, in ms (default Date.now). */
    now?: () => number;
    /** Called once signed in (the server already uses the session). */
    onSignedIn?: (reply: ISignedInReply) => void | Promise<void>;
  }
}

export class SignInModel {
  constructor(options: SignInModel.IOptions) {
    this._request = options.request;
    this._now = options.now ?? (() => Date.now());
    this._onSignedIn = options.onSignedIn;
  }

  /** Emitted on every change of what the form shows. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get step(): SignInStep {
    return this._step;
  }

  get email(): string {
    return this._email;
  }

  get code(): string {
    return this._code;
  }

  /** The reply of the last code sent (where it went, the sandbox's hint), or null. */
  get sent(): ICodeSentReply | null {
    return this._sent;
  }

  get sending(): boolean {
    return this._sending;
  }

  get verifying(): boolean {
    return this._verifying;
  }

  /** What is wrong with the email, in words (gpuoutlet's `invalid_email` too), or null. */
  get emailError(): string | null {
    return this._emailError;
  }

  /** What is wrong with the code (wrong, expired, used up), in words, or null. */
  get codeError(): string | null {
    return this._codeError;
  }

  /** Any other failure (the server, the network, another account's rentals), or null. */
  get error(): IErrorInfo | null {
    return this._error;
  }

  /** Tries left on the code sent (after a wrong one), or null when none was wrong yet. */
  get attemptsLeft(): number | null {
    return this._attemptsLeft;
  }

  /** Whether the code sent can no longer work (expired, used up): send a new one. */
  get codeDead(): boolean {
    return this._codeDead || (this._codeExpiresAt !== null && this._now() >= this._codeExpiresAt);
  }

  /** Seconds until a new code may be sent to this address (0: now). */
  resendIn(now = this._now()): number {
    return this._resendAt === null ? 0 : Math.max(0, Math.ceil((this._resendAt - now) / 1000));
  }

  /** Seconds the code sent still works (null: none sent). */
  codeLeft(now = this._now()): number | null {
    return this._codeExpiresAt === null
      ? null
      : Math.max(0, Math.floor((this._codeExpiresAt - now) / 1000));
  }

  /** When the code sent stops working (ms), or null. */
  get codeExpiresAt(): number | null {
    return this._codeExpiresAt;
  }

  // Typing.

  setEmail(email: string): void {
    this._email = email;
    this._emailError = null;
    this._changed.emit();
  }

  setCode(code: string): void {
    this._code = code;
    this._codeError = null;
    this._changed.emit();
  }

  /** Back to the email (another address); the countdown of this one is forgotten. */
  useAnotherEmail(): void {
    this._step = 'email';
    this._code = '';
    this._codeError = null;
    this._error = null;
    this._resendAt = null;
    this._codeExpiresAt = null;
    this._attemptsLeft = null;
    this._codeDead = false;
    this._changed.emit();
  }

  /** Start over at the email step with `email` filled in (a session that ended). */
  reset(email: string | null): void {
    this.useAnotherEmail();
    if (email && !this._email) {
      this._email = email;
      this._changed.emit();
    }
  }

  // Requests.

  /** "Send code": gpuoutlet emails a code; the form moves on to the code. */
  async sendCode(): Promise<boolean> {
    const email = this._email.trim();
    if (!email || !email.includes('@') || /\s/.test(email)) {
      this._emailError = 'Type your email address, such as you@example.com.';
      this._changed.emit();
      return false;
    }
    if (this._sending) {
      return false;
    }
    this._sending = true;
    this._emailError = null;
    this._error = null;
    this._changed.emit();
    try {
      const reply = await this._request<ICodeSentReply>(
        'auth/request-code',
        { method: 'POST', body: JSON.stringify({ email }) },
        'requestCode'
      );
      this._codeSent(email, reply);
      return true;
    } catch (error) {
      const info = describeError(error);
      if (info.code === 'code_request_rate_limited') {
        // A code went to this address under 30 s ago: it still works; say when a new one can go.
        const wait = info.retryAfterSeconds ?? RESEND_SECONDS;
        this._codeSent(email, null, wait);
        this._codeError = null;
        this._notice =
          `A code was sent to ${email} less than ${RESEND_SECONDS} s ago: use it, or send a ` +
          `new one in ${wait} s.`;
      } else if (info.code === 'invalid_email' || info.fields?.email) {
        this._emailError =
          info.code === 'invalid_email'
            ? `gpuoutlet does not accept “${email}” as an email address: check it.`
            : (info.fields?.email ?? info.message);
      } else {
        this._error = info;
      }
      return false;
    } finally {
      this._sending = false;
      this._changed.emit();
    }
  }

  /** A line about the last code request that is not an error (a code sent under 30 s ago). */
  get notice(): string | null {
    return this._notice;
  }

  /** "Sign in": the code goes to the server, which signs in and keeps the session. */
  async verify(): Promise<ISignedInReply | null> {
    const digits = this._code.replace(/[\s-]/g, '');
    // Not kept once sent (nor when refused here): it is typed again if it was wrong.
    this._code = '';
    if (!CODE.test(digits)) {
      this._codeError = 'The code is the 6 digits of the email gpuoutlet sent.';
      this._changed.emit();
      return null;
    }
    if (this._verifying) {
      return null;
    }
    this._verifying = true;
    this._codeError = null;
    this._error = null;
    this._changed.emit();
    try {
      const reply = await this._request<ISignedInReply>(
        'auth/verify-code',
        { method: 'POST', body: JSON.stringify({ email: this._email.trim(), code: digits }) },
        'verifyCode'
      );
      this._step = 'email';
      this._sent = null;
      this._notice = null;
      this._resendAt = null;
      this._codeExpiresAt = null;
      this._attemptsLeft = null;
      await this._onSignedIn?.(reply);
      return reply;
    } catch (error) {
      const info = describeError(error);
      const left = info.details?.attemptsLeft;
      if (info.code === 'code_invalid') {
        this._attemptsLeft = typeof left === 'number' ? left : null;
        this._codeDead = this._attemptsLeft === 0;
        this._codeError = this._codeDead
          ? 'That code no longer works: 5 wrong tries end a code (and a code works once). ' +
            'Send a new one.'
          : `That code is not right${
              this._attemptsLeft !== null
                ? `: ${this._attemptsLeft} ${this._attemptsLeft === 1 ? 'try' : 'tries'} left for this code`
                : ''
            }. Check the latest email from gpuoutlet.`;
      } else if (info.code === 'code_expired') {
        this._codeDead = true;
        this._codeError = 'That code has expired: a code works for 10 minutes. Send a new one.';
      } else if (info.fields?.code) {
        this._codeError = info.fields.code;
      } else {
        this._error = info;
      }
      return null;
    } finally {
      this._verifying = false;
      this._changed.emit();
    }
  }

  private _codeSent(email: string, reply: ICodeSentReply | null, wait?: number): void {
    const now = this._now();
    this._step = 'code';
    this._sent = reply;
    this._notice = null;
    this._email = email;
    this._code = '';
    this._codeError = null;
    this._attemptsLeft = null;
    this._codeDead = false;
    this._resendAt = now + (wait ?? reply?.resendAfterSeconds ?? RESEND_SECONDS) * 1000;
    if (reply) {
      this._codeExpiresAt = now + (reply.codeLifetimeSeconds ?? CODE_LIFETIME_SECONDS) * 1000;
    } else if (this._codeExpiresAt === null) {
      // The code sent before (by another tab, or before a reload): it lives 10 minutes from
      // then, which is at most 10 minutes from now.
      this._codeExpiresAt = now + CODE_LIFETIME_SECONDS * 1000;
    }
  }

  private _request: Requester;
  private _now: () => number;
  private _onSignedIn?: (reply: ISignedInReply) => void | Promise<void>;
  private _changed = new Signal<this, void>(this);
  private _step: SignInStep = 'email';
  private _email = '';
  private _code = '';
  private _sent: ICodeSentReply | null = null;
  private _notice: string | null = null;
  private _sending = false;
  private _verifying = false;
  private _emailError: string | null = null;
  private _codeError: string | null = null;
  private _error: IErrorInfo | null = null;
  private _attemptsLeft: number | null = null;
  private _codeDead = false;
  private _resendAt: number | null = null;
  private _codeExpiresAt: number | null = null;
}
