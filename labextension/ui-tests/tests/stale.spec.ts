/**
 * The rentals API does not answer (issue 15): the sidebar says so once, with since when and why,
 * and shows the running rental as gpuoutlet last reported it, with how long ago. The server's
 * replies are the ones it sends then (sidebar-states.ts `error`: its list and status carry
 * `apiProblem`, the wallet, families and keys fail), on a frozen clock.
 */
import { expect, test } from '@jupyterlab/galata';

import { PANEL, serveSidebarState } from './helpers';
import { NOW, STATES } from './sidebar-states';

test('one banner says the rentals API is not answering, and the list says how old it is', async ({
  page
}) => {
  await page.clock.setFixedTime(NOW);
  await serveSidebarState(page, STATES.error);
  await page.reload();
  await page.locator('.jp-SideBar li[data-id="gpuoutlet-sidebar"]').click();
  const panel = page.locator(PANEL);
  const banner = panel.locator('.jp-GpuOutlet-apiProblem');
  await expect(banner).toBeVisible();
  await expect(banner).toContainText('The rentals API at https://gpuoutlet.ai cannot be reached');
  await expect(banner).toContainText('Could not reach the rentals API');
  await expect(banner).toContainText('Not answering since 7 Jun 2026, 09:11 UTC');
  await expect(banner).toContainText('What is shown below is what it said last');
  // One banner: the wallet, the families, the quote and the list do not repeat it.
  await expect(panel.locator('.jp-GpuOutlet-error')).toHaveCount(1);
  await expect(panel.locator('[role="alert"]', { hasText: 'cannot be reached' })).toHaveCount(1);
  // A family typed in (the catalog could not be read): the quote fails the same way, and
  // says so in a word, pointing at the banner instead of repeating it.
  await page.evaluate(() =>
    window.jupyterapp.commands.execute('gpuoutlet:rent', { familyId: 'RTX-4090' })
  );
  await expect(panel.locator('.jp-GpuOutlet-quote')).toContainText(
    'No price while the rentals API does not answer (see above).'
  );
  await expect(panel.locator('.jp-GpuOutlet-error')).toHaveCount(1);
  // The running rental: still listed (it may cost money), said to be old.
  const card = panel.locator('.jp-GpuOutlet-rental[data-status="running"]');
  await expect(card.locator('[data-stale="true"]')).toHaveText(
    'As gpuoutlet last reported it, 4 min ago: it has not answered since.'
  );
  await expect(card).not.toContainText('Could not reach'); // the banner says it, once
});
