/**
 * Spend safety in the sidebar, against the real server extension and the sandbox: the header's
 * burn and how long the balance lasts; a rental with a short idle stop (24 s here; the galata
 * server warns 12 s before the stop, see start_servers.py) shows the warning, "Keep it"
 * restarts its timer, and left alone it is stopped for being idle.
 */
import { expect, test } from '@jupyterlab/galata';

import { cents, fillForm, openPanel, rent } from './helpers';

test.describe('idle auto-stop and the burn', () => {
  test('warns before an idle stop, keeps it on "Keep it", then stops it when left idle', async ({
    page
  }) => {
    test.setTimeout(150_000);
    const panel = await openPanel(page);
    const idleInput = panel.locator('input[name="idleStopMinutes"]');
    // The galata server has no default idle stop: the field says so.
    await expect(idleInput).toHaveAttribute('placeholder', 'default: off');
    await expect(panel.locator('#gpuoutlet-idle-hint')).toContainText('default (off); 0: off');

    // Live validation of the field.
    await idleInput.fill('-1');
    await expect(panel.locator('#gpuoutlet-idle-error')).toContainText('Minutes from 0');
    await expect(panel.getByRole('button', { name: 'Rent GPU' })).toBeDisabled();

    const burn = panel.locator('.jp-GpuOutlet-burn');
    await expect(burn).toHaveText(/^\$\d+\.\d\d\/h$/);
    const burnBefore = cents(await burn.textContent());

    await fillForm(panel, {
      familyId: 'rtx-3090',
      gpuCount: 1,
      name: 'galata/idle-stop',
      idleStopMinutes: '0.4'
    });
    await expect(panel.locator('#gpuoutlet-idle-error')).toHaveCount(0);
    const card = await rent(panel);
    const price = cents(await card.locator('.jp-GpuOutlet-rate').textContent());
    await expect(card).toHaveAttribute('data-status', 'running', { timeout: 30_000 });

    // The header's burn counts the new rental, and says how long the balance lasts.
    await expect.poll(async () => cents(await burn.textContent())).toBe(burnBefore + price);
    await expect(panel.locator('.jp-GpuOutlet-hoursLeft')).toHaveText(
      /^(\d+ min|\d+\.\d h|\d+\.\d days|>99 days) left$/
    );
    await expect(panel.locator('.jp-GpuOutlet-spent')).toHaveText(/^\$\d+\.\d\d$/);

    // First the quiet line (with its countdown: the stop is close), then the warning.
    const warning = card.locator('.jp-GpuOutlet-idleWarning');
    const quiet = card.locator('.jp-GpuOutlet-idle');
    await expect(quiet.or(warning).first()).toContainText(/Stops after 24 s idle|Idle: stopping/);
    await expect(warning).toBeVisible({ timeout: 30_000 });
    await expect(warning).toHaveAttribute('role', 'alert');
    await expect(warning.locator('.jp-GpuOutlet-idleText')).toHaveText(
      /^Idle: stopping in 0:\d\d unless something runs on it$/
    );

    // "Keep it" restarts the timer: the warning goes, the quiet line is back.
    await warning.getByRole('button', { name: 'Keep it' }).click();
    await expect(warning).toHaveCount(0);
    await expect(quiet).toContainText('Stops after 24 s idle');
    await expect(card).toHaveAttribute('data-status', 'running');

    // Left alone, it warns again and is stopped for being idle.
    const id = await card.getAttribute('data-rental-id');
    const ended = panel.locator(`.jp-GpuOutlet-ended [data-rental-id="${id}"]`);
    await expect(ended).toHaveAttribute('data-status', 'stopped', { timeout: 60_000 });
    await expect(ended.locator('.jp-GpuOutlet-idle')).toHaveText(
      'Stopped after 24 s idle: nothing ran on it.'
    );
    // Nothing burns for it any more.
    await expect.poll(async () => cents(await burn.textContent())).toBe(burnBefore);
  });

  test("shows the server's refusal of the idle stop against the field", async ({ page }) => {
    // The client checks the same rules; a server with other limits is faked in the browser.
    // (A predicate, not a glob: requests carry a cache-busting query.)
    const isRentals = (url: URL) => url.pathname.endsWith('/gpuoutlet/api/rentals');
    let sent: Record<string, unknown> | null = null;
    await page.route(isRentals, route => {
      if (route.request().method() !== 'POST') {
        return route.fallback();
      }
      sent = route.request().postDataJSON();
      return route.fulfill({
        status: 400,
        contentType: 'application/json',
        body: JSON.stringify({
          error: {
            code: 'validation_error',
            message: 'Invalid rental request: idleStopMinutes: at most 60 here',
            problems: [{ field: 'idleStopMinutes', problem: 'at most 60 minutes here' }]
          }
        })
      });
    });
    const panel = await openPanel(page);
    await fillForm(panel, { familyId: 'rtx-3090', idleStopMinutes: '90' });
    await panel.getByRole('button', { name: 'Rent GPU' }).click();
    await expect(panel.locator('#gpuoutlet-idle-error')).toHaveText('at most 60 minutes here');
    expect(sent).toMatchObject({ familyId: 'rtx-3090', idleStopMinutes: 90 });
    await expect(panel.locator('input[name="idleStopMinutes"]')).toHaveAttribute(
      'aria-invalid',
      'true'
    );
    // Editing the form clears it.
    await panel.locator('input[name="idleStopMinutes"]').fill('30');
    await expect(panel.locator('#gpuoutlet-idle-error')).toHaveCount(0);
  });
});
