import { GpuOutletModel } from '../model';
import { SignInModel } from '../signin';
import { ICodeSentReply, ISignedInReply, ISignedOutReply, IStatusView } from '../types';
import { FakeServer, FAMILIES, KEYS, quoting, Reply, STATUS, TEMPLATES, WALLET } from './fake';

const EMAIL = 'alice@example.com';

const SENT: ICodeSentReply = {
  email: EMAIL,
  created: false,
  message: `gpuoutlet emailed a 6-digit sign-in code to ${EMAIL}.`,
  resendAfterSeconds: 30,
  codeLifetimeSeconds: 600,
  attemptsPerCode: 5,
  hint: null
};

const SIGNED_IN: ISignedInReply = {
  session: STATUS.session!,
  message: `Signed in to http://127.0.0.1:9999 as ${EMAIL}.`,
  sidSource: 'a sign-in from Jupyter',
  credentialsFile: '/home/alice/.config/gpuoutlet/credentials',
  note: null,
  problem: null
};

const SIGNED_OUT_STATUS: IStatusView = {
  ...STATUS,
  configured: false,
  state: 'not_configured',
  sidConfigured: false,
  sidSource: null,
  problem: 'Not signed in to gpuoutlet.',
  session: null,
  sessionState: 'signed_out'
};

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: ms => (t += ms) };
}

function codeInvalid(attemptsLeft: number): Reply {
  return Reply.error(401, {
    code: 'code_invalid',
    message: 'That sign-in code is not right.',
    upstreamCode: 'code_invalid',
    upstreamStatus: 401,
    details: { attemptsLeft }
  });
}

describe('SignInModel', () => {
  it('sends a code, counts down to the next one, and says how long the code lives', async () => {
    const server = new FakeServer().on('POST auth/request-code', SENT);
    const time = clock();
    const form = new SignInModel({ request: server.request, now: time.now });
    form.setEmail(`  ${EMAIL} `);
    expect(await form.sendCode()).toBe(true);
    expect(server.calls[0].body).toEqual({ email: EMAIL });
    expect(form.step).toBe('code');
    expect(form.resendIn()).toBe(30);
    expect(form.codeLeft()).toBe(600);
    time.advance(12_500);
    expect(form.resendIn()).toBe(18);
    time.advance(20_000);
    expect(form.resendIn()).toBe(0);
    time.advance(600_000);
    expect(form.codeDead).toBe(true); // ten minutes are over: send a new one
  });

  it('refuses an address that is no address before sending anything', async () => {
    const server = new FakeServer();
    const form = new SignInModel({ request: server.request });
    form.setEmail('alice');
    expect(await form.sendCode()).toBe(false);
    expect(form.emailError).toContain('you@example.com');
    expect(server.calls).toHaveLength(0);
  });

  it("says gpuoutlet's invalid_email on the field", async () => {
    const server = new FakeServer().on(
      'POST auth/request-code',
      Reply.error(400, {
        code: 'invalid_email',
        message: 'That is not an email address gpuoutlet accepts.',
        upstreamCode: 'invalid_email'
      })
    );
    const form = new SignInModel({ request: server.request });
    form.setEmail('a@b');
    expect(await form.sendCode()).toBe(false);
    expect(form.step).toBe('email');
    expect(form.emailError).toContain('does not accept “a@b”');
  });

  it('takes a code sent under 30 s ago as sent, with when a new one can go', async () => {
    const server = new FakeServer().on(
      'POST auth/request-code',
      Reply.error(429, {
        code: 'code_request_rate_limited',
        message: 'A sign-in code was sent to that address less than 30 s ago.',
        upstreamCode: 'code_request_rate_limited',
        retryAfterSeconds: 21
      })
    );
    const time = clock();
    const form = new SignInModel({ request: server.request, now: time.now });
    form.setEmail(EMAIL);
    await form.sendCode();
    expect(form.step).toBe('code');
    expect(form.error).toBeNull();
    expect(form.resendIn()).toBe(21);
    expect(form.notice).toContain('less than 30 s ago: use it, or send a new one in 21 s');
  });

  it('says how many tries are left, and that a code is dead after five', async () => {
    let left = 4;
    const server = new FakeServer()
      .on('POST auth/request-code', SENT)
      .on('POST auth/verify-code', () => codeInvalid(left--));
    const form = new SignInModel({ request: server.request });
    form.setEmail(EMAIL);
    await form.sendCode();
    form.setCode('111111');
    expect(await form.verify()).toBeNull();
    expect(form.code).toBe(''); // not kept once sent
    expect(form.attemptsLeft).toBe(4);
    expect(form.codeError).toContain('4 tries left for this code');
    for (let i = 0; i < 3; i++) {
      form.setCode('111111');
      await form.verify();
    }
    expect(form.codeError).toContain('1 try left');
    form.setCode('111111');
    await form.verify();
    expect(form.attemptsLeft).toBe(0);
    expect(form.codeDead).toBe(true);
    expect(form.codeError).toContain('no longer works');
    // The code never travels anywhere but the verify request's body.
    const verifies = server.callsTo('auth/verify-code', 'POST');
    expect(verifies.map(c => c.body)).toEqual(Array(5).fill({ email: EMAIL, code: '111111' }));
  });

  it('says an expired code is expired, and checks the six digits itself', async () => {
    const server = new FakeServer()
      .on('POST auth/request-code', SENT)
      .on(
        'POST auth/verify-code',
        Reply.error(401, { code: 'code_expired', message: 'expired', upstreamCode: 'code_expired' })
      );
    const form = new SignInModel({ request: server.request });
    form.setEmail(EMAIL);
    await form.sendCode();
    form.setCode('12 34');
    expect(await form.verify()).toBeNull();
    expect(form.codeError).toContain('6 digits');
    expect(server.callsTo('auth/verify-code', 'POST')).toHaveLength(0);
    form.setCode('123 456');
    await form.verify();
    expect(server.callsTo('auth/verify-code', 'POST')[0].body).toEqual({
      email: EMAIL,
      code: '123456'
    });
    expect(form.codeDead).toBe(true);
    expect(form.codeError).toContain('expired: a code works for 10 minutes');
  });
});

describe('GpuOutletModel signing in and out', () => {
  function server(status: () => IStatusView): FakeServer {
    return new FakeServer()
      .on('GET status', () => status())
      .on('GET templates', { templates: TEMPLATES })
      .on('GET families', { families: FAMILIES })
      .on('GET wallet', WALLET)
      .on('GET keys', KEYS)
      .on('GET rentals', { rentals: [], version: 3 })
      .on('POST rentals/preview', quoting)
      .on('POST auth/request-code', SENT);
  }

  it('asks to sign in when signed out, fills in at once after, and keeps the form', async () => {
    let status = SIGNED_OUT_STATUS;
    const fake = server(() => status).on('POST auth/verify-code', () => {
      status = STATUS;
      return SIGNED_IN;
    });
    const model = new GpuOutletModel({ request: fake.request, auto: false, quoteDelay: 1 });
    await model.refresh();
    expect(model.needsSignIn).toBe(true);
    expect(fake.callsTo('wallet')).toHaveLength(0);
    model.updateForm({ familyId: 'h100-80gb', name: 'alice/exp-42' });
    model.signIn.setEmail(EMAIL);
    await model.signIn.sendCode();
    model.signIn.setCode('123456');
    const reply = await model.signIn.verify();
    expect(reply?.session.email).toBe(EMAIL);
    expect(model.needsSignIn).toBe(false);
    expect(model.status?.session?.email).toBe(EMAIL);
    expect(model.wallet).toEqual(WALLET);
    expect(model.form.familyId).toBe('h100-80gb');
    expect(model.form.name).toBe('alice/exp-42');
    expect(model.rentalsLoaded).toBe(true);
    model.dispose();
  });

  it('asks to sign in again after a 401 mid-session, and clears it once signed in', async () => {
    let walletReply: unknown = Reply.error(401, {
      code: 'unauthorized',
      message: 'Your gpuoutlet session has expired.',
      upstreamCode: 'unauthorized',
      upstreamStatus: 401
    });
    const fake = server(() => STATUS)
      .on('GET wallet', () => walletReply)
      .on('POST auth/verify-code', () => {
        walletReply = WALLET;
        return SIGNED_IN;
      });
    const model = new GpuOutletModel({ request: fake.request, auto: false, quoteDelay: 1 });
    await model.refresh();
    expect(model.sessionExpired?.kind).toBe('session_expired');
    expect(model.needsSignIn).toBe(true);
    model.signIn.setEmail(EMAIL);
    await model.signIn.sendCode();
    model.signIn.setCode('123456');
    await model.signIn.verify();
    expect(model.sessionExpired).toBeNull();
    expect(model.needsSignIn).toBe(false);
    model.dispose();
  });

  it('signs out, says what is no longer watched, and asks to sign in', async () => {
    let status = STATUS;
    const out: ISignedOutReply = {
      message: 'Signed out of http://127.0.0.1:9999.',
      vendorTold: true,
      credentialsRemoved: true,
      credentialsFile: '/home/alice/.config/gpuoutlet/credentials',
      stillRunning: [],
      note: null
    };
    const fake = server(() => status).on('POST auth/logout', () => {
      status = { ...SIGNED_OUT_STATUS, lastEmail: EMAIL };
      return out;
    });
    const model = new GpuOutletModel({ request: fake.request, auto: false, quoteDelay: 1 });
    await model.refresh();
    expect(model.needsSignIn).toBe(false);
    expect(await model.signOut()).toEqual(out);
    expect(model.needsSignIn).toBe(true);
    expect(model.signedOut?.message).toContain('Signed out');
    expect(model.signIn.email).toBe(EMAIL); // ready to sign in again
    model.dispose();
  });
});
