/**
 * The sidebar in the light and the dark theme, with the header's burn, a running rental showing
 * its idle warning, and a provisioning rental. The images land in test-results/ on every run,
 * and in the repository's docs/ (for the README) when GPUOUTLET_UPDATE_SCREENSHOTS=1.
 */
import { expect, test } from '@jupyterlab/galata';
import * as path from 'path';

import { fillForm, openPanel, rent, setSandboxFaults, stopFromCard } from './helpers';

const DOCS = path.resolve(__dirname, '..', '..', '..', 'docs');

test('screenshots of the sidebar in the light and the dark theme', async ({ page }, testInfo) => {
  await page.setViewportSize({ width: 1280, height: 1180 });
  const panel = await openPanel(page);
  // A wider sidebar than the default, as people use it.
  const box = await panel.boundingBox();
  const handle = page.locator('#jp-main-split-panel > .lm-SplitPanel-handle').first();
  const grip = await handle.boundingBox();
  if (box && grip && box.width < 360) {
    await page.mouse.move(grip.x + grip.width / 2, grip.y + 200);
    await page.mouse.down();
    await page.mouse.move(grip.x + grip.width / 2 + 360 - box.width, grip.y + 200, { steps: 5 });
    await page.mouse.up();
  }

  // A short idle stop (24 s; the galata server warns 12 s before), to picture the warning.
  await fillForm(panel, {
    familyId: 'rtx-4090',
    gpuCount: 2,
    name: 'alice/exp-42',
    idleStopMinutes: '0.4'
  });
  const running = await rent(panel);
  await expect(running).toHaveAttribute('data-status', 'running', { timeout: 30_000 });
  const warning = running.locator('.jp-GpuOutlet-idleWarning');
  const keep = warning.getByRole('button', { name: 'Keep it' });
  /** A fresh warning (12 s before the stop), whatever the time the last step took. */
  const freshWarning = async () => {
    if (await keep.isVisible()) {
      await keep.click();
      await expect(warning).toHaveCount(0);
    }
    await expect(warning).toBeVisible({ timeout: 30_000 });
  };

  // A second one that stays provisioning while the pictures are taken.
  await setSandboxFaults({ neverReady: true });
  let provisioning;
  try {
    await fillForm(panel, { familyId: 'l40s', gpuCount: 1, name: 'alice/sweep-7' });
    provisioning = await rent(panel);
    await expect(provisioning).toHaveAttribute('data-status', 'provisioning');
    await fillForm(panel, { familyId: 'a6000', gpuCount: 1, name: 'alice/exp-43' });
    await panel.locator('.jp-GpuOutlet-body').click({ position: { x: 2, y: 2 } });

    const shots: Array<[string, () => Promise<void>]> = [
      ['sidebar-light.png', async () => undefined],
      ['sidebar-dark.png', () => page.theme.setDarkTheme()]
    ];
    for (const [name, prepare] of shots) {
      await prepare();
      await freshWarning();
      await expect(panel.locator('.jp-GpuOutlet-burn')).not.toHaveText('$0.00/h');
      await page.waitForTimeout(500);
      const file = testInfo.outputPath(name);
      await panel.screenshot({ path: file });
      if (process.env.GPUOUTLET_UPDATE_SCREENSHOTS === '1') {
        await panel.screenshot({ path: path.join(DOCS, name) });
      }
    }
  } finally {
    await page.theme.setLightTheme();
    await setSandboxFaults({});
  }
  await keep.click(); // another 24 s: time enough to stop it by hand
  await stopFromCard(page, running);
  if (provisioning) {
    await stopFromCard(page, provisioning);
  }
});
