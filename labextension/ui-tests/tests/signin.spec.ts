/**
 * Signing in from the sidebar (issue 19), against the real server extension and the sandbox,
 * whose codes go to its mailbox (read here with its admin token, as a person reads their mail):
 * from a server that starts signed out to a running rental with no cookie copied; a wrong code
 * (tries left); the 30 s between codes; a session that ends mid-session brings the sign-in back
 * and keeps the form; sign out. No reply the page gets holds the session or the code.
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import { Locator, Response } from '@playwright/test';
import * as fs from 'fs';

import {
  fillForm,
  PANEL,
  refreshUntil,
  rent,
  resetServers,
  sandboxControl,
  serversInfo,
  stopFromCard
} from './helpers';

interface IMail {
  code: string | null;
}

/** The newest sign-in code the sandbox mailed to `email`. */
async function mailedCode(email: string): Promise<string> {
  const mail = await sandboxControl<{ messages: IMail[] }>(
    'GET',
    `mailbox?email=${encodeURIComponent(email)}`
  );
  const code = mail.messages.find(m => m.code)?.code;
  if (!code) {
    throw new Error(`no sign-in code was mailed to ${email}`);
  }
  return code;
}

/** The sid the server kept in its credentials file ('' when there is none). */
function keptSid(): string {
  try {
    const text = fs.readFileSync(serversInfo().credentialsFile, 'utf-8');
    return /^sid=(.+)$/m.exec(text)?.[1] ?? '';
  } catch {
    return '';
  }
}

/** Every body of the extension's replies this page gets, to search for secrets. */
function collectReplies(page: IJupyterLabPageFixture): string[] {
  const bodies: string[] = [];
  page.on('response', (response: Response) => {
    if (response.url().includes('/gpuoutlet/api/')) {
      response
        .text()
        .then(text => bodies.push(text))
        .catch(() => undefined); // a long-poll cut short by the page's end
    }
  });
  return bodies;
}

async function openSignIn(page: IJupyterLabPageFixture): Promise<Locator> {
  const panel = page.locator(PANEL);
  if (!(await panel.isVisible())) {
    await page.locator('.jp-SideBar li[data-id="gpuoutlet-sidebar"]').click();
  }
  const signIn = panel.locator('.jp-GpuOutlet-signIn');
  await expect(signIn.getByRole('heading', { name: 'Sign in to gpuoutlet' })).toBeVisible();
  return panel;
}

test.describe('signing in from the sidebar', () => {
  test('from a server with no session to a running rental, with the sandbox’s code', async ({
    page
  }) => {
    const info = await resetServers(page, { signedOut: true });
    const replies = collectReplies(page);
    const codes: string[] = [];
    try {
      const panel = await openSignIn(page);
      const signIn = panel.locator('.jp-GpuOutlet-signIn');
      // Nothing else is shown (or asked) without a session.
      await expect(panel.locator('.jp-GpuOutlet-launch')).toHaveCount(0);
      await expect(signIn).toContainText('no password, no cookie to copy');

      // An address that is no address is refused on the field, before anything is sent.
      const email = signIn.locator('input[name="email"]');
      await email.fill('alice');
      await signIn.getByRole('button', { name: 'Send code' }).click();
      await expect(signIn.locator('#gpuoutlet-email-error')).toContainText('you@example.com');

      await email.fill(info.email);
      await signIn.getByRole('button', { name: 'Send code' }).click();
      await expect(signIn.locator('.jp-GpuOutlet-codeSent')).toContainText(
        `gpuoutlet emailed a 6-digit code to ${info.email}`
      );
      await expect(signIn.locator('.jp-GpuOutlet-codeSent')).toContainText(
        'It works once, for 10 minutes'
      );
      // The sandbox sends no mail: where its codes are.
      await expect(signIn.locator('.jp-GpuOutlet-signInHint')).toContainText('/sandbox/mailbox');
      // One code per email every 30 s: counted down.
      const resend = signIn.locator('.jp-GpuOutlet-resend');
      await expect(resend).toBeDisabled();
      await expect(resend).toHaveText(/^Send a new code \((2\d|30) s\)$/);

      const code = await mailedCode(info.email);
      codes.push(code);
      const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
      codes.push(wrong);
      const field = signIn.locator('input[name="code"]');
      await field.fill(wrong);
      await signIn.getByRole('button', { name: 'Sign in' }).click();
      await expect(signIn.locator('#gpuoutlet-code-error')).toContainText(
        '4 tries left for this code'
      );
      await expect(field).toHaveValue(''); // not kept once sent

      await field.fill(code);
      await signIn.getByRole('button', { name: 'Sign in' }).click();

      // The panel fills in at once: who is signed in, the wallet, the form.
      await expect(panel.locator('.jp-GpuOutlet-email')).toHaveText(info.email);
      await expect(panel.locator('.jp-GpuOutlet-walletAvailable')).toBeVisible();
      await expect(panel.locator('.jp-GpuOutlet-signIn')).toHaveCount(0);
      await expect(panel.locator('select[name="familyId"] option[value="rtx-4090"]')).toHaveCount(
        1
      );
      const sid = keptSid();
      expect(sid).not.toBe('');
      expect(sid).not.toBe(info.sid);

      // A running rental, with no developer tools opened and no cookie copied.
      await fillForm(panel, { familyId: 'rtx-4090', gpuCount: 1, name: 'galata/signed-in' });
      const card = await rent(panel);
      await expect(card).toHaveAttribute('data-status', 'running', { timeout: 30_000 });
      await stopFromCard(page, card);
      await expect(card).toHaveAttribute('data-status', 'stopped', { timeout: 30_000 });

      // Sign out: gpuoutlet ends the session, the file goes, the sign-in comes back.
      await panel.getByRole('button', { name: 'Sign out' }).click();
      await expect(panel.locator('[data-notice="signed_out"]')).toContainText('Signed out of');
      await expect(panel.locator('.jp-GpuOutlet-signIn input[name="email"]')).toHaveValue(
        info.email
      );
      expect(keptSid()).toBe('');
      const me = await fetch(`${info.sandboxUrl}/v1/auth/me`, {
        headers: { Cookie: `sid=${sid}` }
      });
      expect(me.status).toBe(401);

      for (const secret of [sid, ...codes]) {
        const pattern = new RegExp(`(?<![0-9A-Za-z])${secret}(?![0-9A-Za-z])`);
        expect(replies.filter(body => pattern.test(body))).toEqual([]);
      }
      expect(replies.length).toBeGreaterThan(10);
    } finally {
      await resetServers(page);
    }
  });

  test('a session that ends mid-session brings the sign-in back and keeps the form', async ({
    page
  }) => {
    const info = await resetServers(page);
    const panel = page.locator(PANEL);
    await page.locator('.jp-SideBar li[data-id="gpuoutlet-sidebar"]').click();
    await expect(panel.locator('.jp-GpuOutlet-email')).toHaveText(info.email);
    await expect(panel.locator('select[name="familyId"] option[value="rtx-4090"]')).toHaveCount(1);
    // Work in progress: a filled form.
    await fillForm(panel, { familyId: 'rtx-4090', gpuCount: 2, name: 'alice/exp-7' });
    try {
      await sandboxControl('POST', 'sessions/expire', { sid: info.sid });
      // The server shares the balance for 15 s: the next read of it meets the 401.
      await refreshUntil(panel, async () => {
        await expect(panel.locator('.jp-GpuOutlet-signIn')).toBeVisible({ timeout: 1_000 });
      });
      const signIn = panel.locator('.jp-GpuOutlet-signIn');
      await expect(signIn.locator('[data-notice="session_expired"]')).toContainText(
        'Your gpuoutlet session has ended'
      );
      // The account last signed in here is filled in.
      await expect(signIn.locator('input[name="email"]')).toHaveValue(info.email);
      await expect(panel.locator('.jp-GpuOutlet-email')).toHaveCount(0);

      await signIn.getByRole('button', { name: 'Send code' }).click();
      await expect(signIn.locator('.jp-GpuOutlet-codeSent')).toContainText(info.email);
      await signIn.locator('input[name="code"]').fill(await mailedCode(info.email));
      await signIn.getByRole('button', { name: 'Sign in' }).click();

      await expect(panel.locator('.jp-GpuOutlet-email')).toHaveText(info.email);
      await expect(panel.locator('.jp-GpuOutlet-signIn')).toHaveCount(0);
      // The form as it was left, priced again under the new session.
      await expect(panel.locator('input[name="name"]')).toHaveValue('alice/exp-7');
      await expect(panel.locator('select[name="familyId"]')).toHaveValue('rtx-4090');
      await expect(
        panel.locator('.jp-GpuOutlet-segment[aria-checked="true"]', { hasText: '2' })
      ).toHaveCount(1);
      await expect(
        panel.locator('.jp-GpuOutlet-quote:not(.jp-mod-pending) .jp-GpuOutlet-price')
      ).toHaveText(/^\$\d+\.\d\d\/h$/);
      await expect(panel.locator('.jp-GpuOutlet-error[data-kind="session_expired"]')).toHaveCount(
        0
      );
    } finally {
      await resetServers(page);
    }
  });
});
