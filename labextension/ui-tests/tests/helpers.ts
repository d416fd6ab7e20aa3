import { expect, IJupyterLabPageFixture } from '@jupyterlab/galata';
import { Locator, Page, Route } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';

import type { ISidebarState } from './sidebar-states';

export const PANEL = '#gpuoutlet-sidebar';

/** Open the GPU rentals sidebar from its tab and wait for the form and the wallet. */
export async function openPanel(page: IJupyterLabPageFixture): Promise<Locator> {
  const panel = page.locator(PANEL);
  if (!(await panel.isVisible())) {
    await page.locator('.jp-SideBar li[data-id="gpuoutlet-sidebar"]').click();
  }
  await expect(panel).toBeVisible();
  await expect(panel.locator('.jp-GpuOutlet-walletAvailable')).toBeVisible();
  await expect(panel.locator('select[name="familyId"] option[value="rtx-4090"]')).toHaveCount(1);
  return panel;
}

/** Fill the launch form; the cost line must show the hour reserved before the click. */
export async function fillForm(
  panel: Locator,
  form: {
    familyId: string;
    gpuCount?: number;
    name?: string;
    region?: string;
    /** Empty (the default): the server's default idle stop. */
    idleStopMinutes?: string;
  }
): Promise<void> {
  await panel.locator('select[name="familyId"]').selectOption(form.familyId);
  await panel.locator('.jp-GpuOutlet-segment', { hasText: String(form.gpuCount ?? 1) }).click();
  await panel.locator('select[name="region"]').selectOption(form.region ?? '');
  await panel.locator('input[name="name"]').fill(form.name ?? '');
  await panel.locator('input[name="idleStopMinutes"]').fill(form.idleStopMinutes ?? '');
}

/** Parse "$1,234.56" into cents. */
export function cents(text: string | null): number {
  const match = /\$([\d,]+)\.(\d\d)/.exec(text ?? '');
  if (!match) {
    throw new Error(`no amount in ${JSON.stringify(text)}`);
  }
  return Number(match[1].replace(/,/g, '')) * 100 + Number(match[2]);
}

/** The ids of the rental cards shown. */
export async function rentalIds(panel: Locator): Promise<string[]> {
  return panel
    .locator('.jp-GpuOutlet-rental')
    .evaluateAll(nodes => nodes.map(n => n.getAttribute('data-rental-id') ?? ''));
}

/** Wait for a rental card that was not there before; returns it. */
export async function newCard(panel: Locator, before: string[]): Promise<Locator> {
  let id = '';
  await expect
    .poll(async () => {
      id = (await rentalIds(panel)).find(r => !before.includes(r)) ?? '';
      return id;
    })
    .not.toBe('');
  return panel.locator(`.jp-GpuOutlet-rental[data-rental-id="${id}"]`);
}

/** Rent with the form as it is; returns the new rental's card. */
export async function rent(panel: Locator): Promise<Locator> {
  const before = await rentalIds(panel);
  await panel.getByRole('button', { name: 'Rent GPU' }).click();
  return newCard(panel, before);
}

/** The stop dialog's button that stops for good. */
export const STOP_BUTTON = 'Stop and destroy the pod';

/**
 * Stop a rental from its card, through the confirmation dialog, which must say before the stop
 * that the pod and its disk are destroyed.
 */
export async function stopFromCard(page: IJupyterLabPageFixture, card: Locator): Promise<void> {
  await card.getByRole('button', { name: 'Stop' }).click();
  const dialog = page.locator('.jp-Dialog');
  await expect(dialog).toContainText('Stop this GPU rental for good?');
  await expect(dialog.locator('.jp-GpuOutlet-stopNotice')).toContainText(
    'gpuoutlet destroys the pod and wipes its disk'
  );
  await dialog.getByRole('button', { name: STOP_BUTTON }).click();
  await expect(dialog).toHaveCount(0);
}

/** What start_servers.py wrote: the sandbox's URL, admin token and the account's session. */
export interface IServersInfo {
  sandboxUrl: string;
  adminToken: string;
  accountId: string;
  sid: string;
  email: string;
  tmp: string;
  port: number;
  /** start_servers.py's own pid (it starts everything over on SIGUSR1). */
  pid: number;
  /** The sandbox's pid: its process also serves the pods' SSH. */
  sandboxPid: number;
  /** Grows with every fresh start. */
  generation: number;
  /** Whether the account has the key the server's SSH entries use. */
  keyOnAccount: boolean;
  /** Whether JupyterLab started with no session (it signs in from the sidebar). */
  signedOut: boolean;
  /** Where a sign-in from the sidebar keeps the session. */
  credentialsFile: string;
  publicKeyFile: string;
}

const RUN = path.join(__dirname, '..', '.run');

export function serversInfo(): IServersInfo {
  return JSON.parse(fs.readFileSync(path.join(RUN, 'servers.json'), 'utf-8'));
}

/**
 * Start the sandbox and JupyterLab over from empty folders (start_servers.py does it on
 * SIGUSR1), wait until the gpuoutlet extension runs again, and load the page anew. For tests
 * that change what cannot be changed back (an expired session, a wallet topped up), and for
 * an account without the server's SSH key (`keyOnAccount: false`).
 */
export async function resetServers(
  page: IJupyterLabPageFixture,
  options: { keyOnAccount?: boolean; signedOut?: boolean; labOnly?: boolean } = {}
): Promise<IServersInfo> {
  const before = serversInfo();
  // Leave JupyterLab first: galata proxies the page's kernel requests, and one meeting the
  // stopped server would fail the test.
  await page.evaluate(() => window.location.assign('about:blank'));
  await page.waitForURL('about:blank');
  fs.writeFileSync(
    path.join(RUN, 'reset.json'),
    JSON.stringify({
      keyOnAccount: options.keyOnAccount ?? true,
      signedOut: options.signedOut ?? false,
      labOnly: options.labOnly ?? false
    })
  );
  process.kill(before.pid, 'SIGUSR1');
  await expect
    .poll(
      () => {
        try {
          return serversInfo().generation;
        } catch {
          return before.generation; // between two generations
        }
      },
      { timeout: 60_000 }
    )
    .toBeGreaterThan(before.generation);
  const status = `http://127.0.0.1:${before.port}/gpuoutlet/api/status`;
  await expect
    .poll(
      async () => {
        try {
          const response = await fetch(status);
          return response.ok ? ((await response.json()) as { state: string }).state : 'down';
        } catch {
          return 'down';
        }
      },
      { timeout: 90_000, intervals: [500] }
    )
    .toBe(options.signedOut ? 'not_configured' : 'running');
  // A fresh layout (`?reset`): the last layout saved may still name a notebook closed just
  // before the restart (its save raced the navigation away), and a restored notebook would
  // start its kernel on its own.
  await page.goto('?reset');
  return serversInfo();
}

/**
 * Restart JupyterLab alone, as a person restarts a Jupyter server: it stops as Jupyter stops
 * (the rentals' remote kernels stay on their pods, detached), starts again on the same folders
 * and sandbox, and the page is loaded anew.
 */
export function restartJupyter(page: IJupyterLabPageFixture): Promise<IServersInfo> {
  return resetServers(page, { labOnly: true });
}

/** A remote kernel's record as the server keeps it (the fields a test needs; never shown). */
export interface IKernelRecord {
  wrapper: string;
  rental_id: string;
  state: string;
  attempt: number;
  ssh_pid: number;
  session_name: string;
}

/** The server's kernel records (`<state dir>/kernels/*.json`), read as the test's user. */
export function kernelRecords(): IKernelRecord[] {
  const folder = path.join(serversInfo().tmp, 'state', 'kernels');
  if (!fs.existsSync(folder)) {
    return [];
  }
  return fs
    .readdirSync(folder)
    .filter(name => name.endsWith('.json') && !name.startsWith('.'))
    .flatMap(name => {
      try {
        return [JSON.parse(fs.readFileSync(path.join(folder, name), 'utf-8')) as IKernelRecord];
      } catch {
        return []; // being replaced right now
      }
    });
}

/**
 * One request to the sandbox's /v1 API as the signed-in user, the way the gpuoutlet website
 * (or another machine) would: with a session of its own, not through this Jupyter server.
 */
export async function asTheWebsite<T>(method: string, route: string, body?: unknown): Promise<T> {
  const sid = await websiteSession();
  const response = await fetch(`${serversInfo().sandboxUrl}/v1/${route}`, {
    method,
    headers: { Cookie: `sid=${sid}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body)
  });
  if (!response.ok) {
    throw new Error(`${method} /v1/${route}: ${response.status} ${await response.text()}`);
  }
  return (await response.json()) as T;
}

/** The website's own session of the account (its own request budget), one per generation. */
const websiteSessions = new Map<number, string>();

async function websiteSession(): Promise<string> {
  const info = serversInfo();
  let sid = websiteSessions.get(info.generation);
  if (sid === undefined) {
    sid = (await sandboxControl<{ sid: string }>('POST', `accounts/${info.accountId}/sessions`))
      .sid;
    websiteSessions.set(info.generation, sid);
  }
  return sid;
}

/** One request to the sandbox's test controls (`/sandbox/...`, with its admin token). */
export async function sandboxControl<T>(method: string, route: string, body?: unknown): Promise<T> {
  const info = serversInfo();
  const response = await fetch(`${info.sandboxUrl}/sandbox/${route}`, {
    method,
    headers: { Authorization: `Bearer ${info.adminToken}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body)
  });
  if (!response.ok) {
    throw new Error(`${method} /sandbox/${route}: ${response.status} ${await response.text()}`);
  }
  return (await response.json()) as T;
}

/** Rent straight through the sandbox's /v1 API, as another machine would; the new id. */
export async function rentElsewhere(body: Record<string, unknown>): Promise<string> {
  return (await asTheWebsite<{ id: string }>('POST', 'rentals', body)).id;
}

/** Make the sandbox forget a rental (the API stops reporting it), through its admin API. */
export async function deleteUpstream(id: string): Promise<void> {
  await sandboxControl('DELETE', `rentals/${id}`);
}

/** Press the sidebar's refresh button until `check` passes (the server caches some replies). */
export async function refreshUntil(
  panel: Locator,
  check: () => Promise<void>,
  timeout = 45_000
): Promise<void> {
  const refresh = panel.getByRole('button', { name: 'Refresh now' });
  await expect(async () => {
    await refresh.click();
    await check();
  }).toPass({ timeout, intervals: [1_000, 2_000, 3_000] });
}

/**
 * Answer the sidebar's requests in this page from `state` instead of the server extension, as
 * the server would: an error reply with its status, the quote for any `POST rentals/preview`,
 * and a long-poll of the rentals list that has seen this version already held for its `wait`
 * (the list does not change). Anything else (a create, a stop) is refused with a 404.
 */
export async function serveSidebarState(page: Page, state: ISidebarState): Promise<void> {
  // A state that says nothing of kernels has none (one long-poll of them, answered at once).
  const replies: Record<string, unknown> = { kernels: { kernels: [], version: 1 }, ...state };
  await page.route('**/gpuoutlet/api/**', async route => {
    const request = route.request();
    const url = new URL(request.url());
    const endpoint = url.pathname.split('/gpuoutlet/api/')[1] ?? '';
    const method = request.method();
    // A state's `kernels` answers the sidebar's one read of them, `GET remote-kernels`.
    const key = endpoint === 'remote-kernels' ? 'kernels' : endpoint;
    const reply =
      method === 'GET'
        ? replies[key]
        : method === 'POST' && endpoint === 'rentals/preview'
          ? replies.preview
          : method === 'POST' && endpoint === 'auth/request-code'
            ? replies.codeSent
            : undefined;
    if (reply === undefined) {
      const message = `${request.method()} ${endpoint}: not part of this sidebar state.`;
      return answer(route, 404, { error: { code: 'not_found', message } });
    }
    const error = reply as { status?: number; error?: unknown };
    if (error.error !== undefined) {
      return answer(route, error.status ?? 500, { error: error.error });
    }
    const since = url.searchParams.get('since');
    const version = (reply as { version?: number }).version;
    if (since !== null && version !== undefined && Number(since) >= version) {
      await held(page, Number(url.searchParams.get('wait') ?? 0) * 1000);
    }
    return answer(route, 200, reply);
  });
}

function answer(route: Route, status: number, body: unknown): Promise<void> {
  // The page may have been closed while a long-poll was held: nothing is waiting then.
  return route
    .fulfill({ status, contentType: 'application/json', body: JSON.stringify(body) })
    .catch(() => undefined);
}

/** Wait this long, or until the page closes. */
function held(page: Page, ms: number): Promise<void> {
  return new Promise(resolve => {
    const timer = setTimeout(resolve, ms);
    page.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Make the left sidebar (which holds `panel`) `width` pixels wide by dragging its handle, then
 * park the mouse where it hovers over nothing in the sidebar.
 */
export async function setSidebarWidth(
  page: IJupyterLabPageFixture,
  panel: Locator,
  width: number
): Promise<void> {
  const handle = page.locator('#jp-main-split-panel > .lm-SplitPanel-handle').first();
  const box = await panel.boundingBox();
  const grip = await handle.boundingBox();
  if (!box || !grip) {
    throw new Error('The left sidebar or its resize handle is not visible.');
  }
  const x = grip.x + grip.width / 2;
  const y = grip.y + 200;
  await page.mouse.move(x, y);
  await page.mouse.down();
  await page.mouse.move(x + width - box.width, y, { steps: 5 });
  await page.mouse.up();
  const viewport = page.viewportSize();
  await page.mouse.move((viewport?.width ?? 1280) - 10, (viewport?.height ?? 800) - 60);
  await expect.poll(async () => Math.round((await panel.boundingBox())?.width ?? 0)).toBe(width);
}
