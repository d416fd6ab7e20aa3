/**
 * The sidebar's look, compared with committed baselines (screenshots.spec.ts-snapshots/): each
 * state of `STATES` in the light and the dark theme, and the stop confirmation.
 *
 * What moves in a real run is frozen: the sidebar's requests are answered from the state's
 * replies (sidebar-states.ts: fixed ids, times, amounts, URL and SSH command) by the real
 * JupyterLab page, the browser's clock stands still at the state's instant (elapsed time,
 * progress, idle countdown), animations are stopped, and the viewport and the sidebar's width
 * are fixed. The real server extension and sandbox are not asked: sidebar.spec.ts and its
 * neighbours test the data; this spec tests only how it looks.
 *
 * After a change of the sidebar's look, refresh the baselines, then look at them and commit:
 *
 *     scripts/test-js screenshots --update-snapshots
 *
 * That also writes the `running` state to the repository's docs/sidebar-light.png and
 * docs/sidebar-dark.png (the README's pictures), as GPUOUTLET_UPDATE_SCREENSHOTS=1 does on any
 * run.
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import { Locator } from '@playwright/test';
import * as path from 'path';

import { PANEL, serveSidebarState, setSidebarWidth } from './helpers';
import { ISidebarState, NOW, POD_REPLIES, StateName, STATES } from './sidebar-states';

const DOCS = path.resolve(__dirname, '..', '..', '..', 'docs');
/** The state the README pictures. */
const DOCS_STATE: StateName = 'running';
/** The sidebar's width in the pictures: wider than JupyterLab's default, as people use it. */
const WIDTH = 360;

/** What shows once a state is fully rendered: no "Wallet…", "Loading…" or pending quote left. */
const WALLET = '.jp-GpuOutlet-walletAvailable';
const FAMILY = 'select[name="familyId"] option[value="rtx-3090"]';
const TEMPLATE = 'select[name="templateId"] option[value="text-gen-webui"]';
const QUOTE = '.jp-GpuOutlet-price';
const SESSION = '.jp-GpuOutlet-email';
const READY: Record<StateName, string[]> = {
  empty: [WALLET, FAMILY, TEMPLATE, QUOTE, SESSION, '.jp-GpuOutlet-empty'],
  provisioning: [WALLET, FAMILY, QUOTE, '.jp-GpuOutlet-rental[data-status="provisioning"]'],
  running: [WALLET, FAMILY, QUOTE, '.jp-GpuOutlet-idleWarning', '.jp-GpuOutlet-ports'],
  key: [WALLET, QUOTE, '.jp-GpuOutlet-keyWarning', '[data-notice="session_ending"]'],
  money: [QUOTE, '[data-notice="wallet_under_an_hour"]', '[data-notice="open_invoices"]'],
  kernels: [
    WALLET,
    QUOTE,
    '.jp-GpuOutlet-kernelNotice',
    '.jp-GpuOutlet-kernel[data-state="detached"]'
  ],
  // One banner for the whole sidebar, and the running rental said to be old.
  error: ['.jp-GpuOutlet-apiProblem', '[data-stale="true"]'],
  signin: ['.jp-GpuOutlet-signIn input[name="email"][value="alice@example.com"]']
};

test.use({ viewport: { width: 1280, height: 1400 } });

/** Show `name` in the page on a frozen clock; the sidebar at its pictured width. */
async function showState(
  page: IJupyterLabPageFixture,
  name: StateName,
  more: Record<string, unknown> = {}
): Promise<Locator> {
  await page.clock.setFixedTime(NOW);
  const state: ISidebarState = Object.assign({}, STATES[name], more);
  await serveSidebarState(page, state);
  await page.reload(); // so that the whole page runs on the frozen clock
  const panel = page.locator(PANEL);
  await page.locator('.jp-SideBar li[data-id="gpuoutlet-sidebar"]').click();
  for (const selector of READY[name]) {
    await expect(panel.locator(selector)).toBeAttached();
  }
  await setSidebarWidth(page, panel, WIDTH);
  return panel;
}

test.describe('sidebar screenshots', () => {
  for (const name of Object.keys(STATES) as StateName[]) {
    test(`looks as before: ${name}, light and dark`, async ({ page }, testInfo) => {
      const updateDocs =
        name === DOCS_STATE &&
        (process.env.GPUOUTLET_UPDATE_SCREENSHOTS === '1' ||
          ['all', 'changed'].includes(testInfo.config.updateSnapshots));
      const panel = await showState(page, name);
      try {
        for (const theme of ['light', 'dark'] as const) {
          if (theme === 'dark') {
            await page.theme.setDarkTheme();
          }
          await expect(panel).toHaveScreenshot(`${name}-${theme}.png`);
          if (updateDocs) {
            await panel.screenshot({
              path: path.join(DOCS, `sidebar-${theme}.png`),
              animations: 'disabled',
              caret: 'hide'
            });
          }
        }
      } finally {
        await page.theme.setLightTheme();
      }
    });
  }

  test('looks as before: the shut-down confirmation of a detached kernel, light and dark', async ({
    page
  }) => {
    const panel = await showState(page, 'kernels');
    const detached = panel.locator('.jp-GpuOutlet-kernel[data-state="detached"]');
    const dialog = page.locator('.jp-Dialog-content');
    try {
      for (const theme of ['light', 'dark'] as const) {
        if (theme === 'dark') {
          await page.theme.setDarkTheme();
        }
        await detached.getByRole('button', { name: 'Shut down' }).click();
        await expect(dialog).toContainText('with its variables');
        await expect(dialog).toHaveScreenshot(`shutdown-dialog-${theme}.png`);
        await dialog.getByRole('button', { name: 'Keep it' }).click();
        await expect(dialog).toHaveCount(0);
      }
    } finally {
      await page.theme.setLightTheme();
    }
  });

  test('looks as before: the code step of signing in, light and dark', async ({ page }) => {
    const panel = await showState(page, 'signin');
    await panel.getByRole('button', { name: 'Send code' }).click();
    const code = panel.locator('input[name="code"]');
    await code.fill('12345');
    // Unfocused: a theme switch may or may not take the focus away, so both pictures start so.
    await code.blur();
    const signIn = panel.locator('.jp-GpuOutlet-signIn');
    await expect(signIn).toContainText('Send a new code (30 s)');
    try {
      for (const theme of ['light', 'dark'] as const) {
        if (theme === 'dark') {
          await page.theme.setDarkTheme();
        }
        await expect(signIn).toHaveScreenshot(`signin-code-${theme}.png`);
      }
    } finally {
      await page.theme.setLightTheme();
    }
  });

  test('looks as before: a running card expanded (GPUs and ports), light and dark', async ({
    page
  }) => {
    const panel = await showState(page, 'running', POD_REPLIES);
    const card = panel.locator('.jp-GpuOutlet-rental[data-status="running"]');
    await card.locator('.jp-GpuOutlet-expand').click();
    await expect(card.locator('.jp-GpuOutlet-chart polyline')).toHaveCount(8);
    await expect(card.locator('.jp-GpuOutlet-port')).toHaveCount(2);
    await expect(card.locator('.jp-GpuOutlet-gpuModel')).toContainText(
      '2× NVIDIA GeForce RTX 4090'
    );
    try {
      for (const theme of ['light', 'dark'] as const) {
        if (theme === 'dark') {
          await page.theme.setDarkTheme();
        }
        await expect(card).toHaveScreenshot(`gpus-${theme}.png`);
      }
    } finally {
      await page.theme.setLightTheme();
    }
  });

  test('looks as before: the stop confirmation, light and dark', async ({ page }) => {
    const panel = await showState(page, 'running');
    const card = panel.locator('.jp-GpuOutlet-rental[data-status="running"]');
    const dialog = page.locator('.jp-Dialog-content');
    try {
      for (const theme of ['light', 'dark'] as const) {
        if (theme === 'dark') {
          await page.theme.setDarkTheme();
        }
        await card.getByRole('button', { name: 'Stop' }).click();
        await expect(dialog).toContainText('destroys the pod and wipes its disk');
        await expect(dialog).toHaveScreenshot(`stop-dialog-${theme}.png`);
        await dialog.getByRole('button', { name: 'Cancel' }).click();
        await expect(dialog).toHaveCount(0);
      }
    } finally {
      await page.theme.setLightTheme();
    }
  });
});
