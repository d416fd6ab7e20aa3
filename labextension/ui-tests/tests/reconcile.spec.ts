/**
 * Nothing billed unseen: a rental made elsewhere (straight through the rentals API, as another
 * machine or the website would) shows up in the sidebar within one reconcile period (5 s in
 * start_servers.py), marked as made elsewhere and with its cost; once the API stops reporting
 * it, its card says it is gone.
 */
import { expect, test } from '@jupyterlab/galata';

import { deleteUpstream, openPanel, rentElsewhere } from './helpers';

test.describe('Rentals made elsewhere', () => {
  test('appear within a reconcile period, marked, and go when the API forgets them', async ({
    page
  }) => {
    const panel = await openPanel(page);
    const id = await rentElsewhere({ familyId: 'rtx-4090', gpuCount: 1, name: 'other/machine' });

    const card = panel.locator(`.jp-GpuOutlet-rental[data-rental-id="${id}"]`);
    await expect(card).toHaveCount(1, { timeout: 20_000 });
    await expect(card.locator('.jp-GpuOutlet-elsewhere')).toHaveText('made elsewhere');
    await expect(card.locator('.jp-GpuOutlet-rentalName')).toContainText('other/machine');
    await expect(card.locator('.jp-GpuOutlet-rate')).toHaveText('$0.65/h');
    await expect(card.locator('.jp-GpuOutlet-costSoFar')).toHaveText(/\$\d+\.\d\d/);
    // Made here, a rental has no such mark.
    await expect(panel.locator('.jp-GpuOutlet-elsewhere')).toHaveCount(1);

    await deleteUpstream(id);
    const ended = panel.locator(`.jp-GpuOutlet-ended [data-rental-id="${id}"]`);
    await expect(ended).toHaveAttribute('data-status', 'gone', { timeout: 20_000 });
    await expect(ended.locator('.jp-GpuOutlet-phase')).toContainText('no longer reports');
  });
});
