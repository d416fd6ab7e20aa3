/**
 * A rental made in a notebook with the `%gpu_rent` magic shows up in the sidebar (both talk to
 * the same server extension); the palette's "Rent a GPU…" opens the sidebar and its "Stop a GPU
 * rental…" stops the rental.
 */
import { expect, test } from '@jupyterlab/galata';

import { confirmStop, newCard, openPanel, rentalIds } from './helpers';

test('a rental made with %gpu_rent in a notebook appears in the panel', async ({ page }) => {
  // "Rent a GPU…" from the palette opens the sidebar.
  await page.evaluate(() =>
    window.jupyterapp.commands.execute('apputils:activate-command-palette')
  );
  const palette = page.locator('#command-palette');
  await palette.locator('input').fill('GPU');
  await expect(
    palette.locator('.lm-CommandPalette-item', { hasText: 'Stop a GPU rental…' })
  ).toBeVisible();
  await palette.locator('.lm-CommandPalette-item', { hasText: 'Rent a GPU…' }).click();
  let panel = await openPanel(page);
  const before = await rentalIds(panel);

  await page.notebook.createNew('gpu-rent.ipynb');
  await page.notebook.setCell(
    0,
    'code',
    '%load_ext gpuoutlet_jupyter\n%gpu_rent rtx-4090 --no-wait'
  );
  await page.notebook.runCell(0);
  const output = await page.notebook.getCellTextOutput(0);
  expect(output?.join('\n') ?? '').not.toMatch(/Error|Traceback/);

  panel = await openPanel(page);
  const card = await newCard(panel, before);
  await expect(card.locator('.jp-GpuOutlet-rentalTitle')).toHaveText('rtx-4090 × 1');
  const id = (await card.getAttribute('data-rental-id')) ?? '';
  expect((output ?? []).join('\n')).toContain(id);
  await expect(card).toHaveAttribute('data-status', 'running', { timeout: 30_000 });

  // "Stop a GPU rental…" from the palette: pick it (if there is a choice), confirm.
  await page.evaluate(() =>
    window.jupyterapp.commands.execute('apputils:activate-command-palette')
  );
  await palette.locator('input').fill('Stop a GPU rental');
  await palette.locator('.lm-CommandPalette-item', { hasText: 'Stop a GPU rental…' }).click();
  const dialog = page.locator('.jp-Dialog');
  await expect(dialog).toBeVisible();
  if (await dialog.locator('select').count()) {
    const label = await dialog.locator('select option', { hasText: id }).textContent();
    await dialog.locator('select').selectOption({ label: label ?? '' });
    await dialog.getByRole('button', { name: 'Next' }).click();
  }
  await expect(page.locator('.jp-Dialog')).toContainText('Stop this GPU rental for good?');
  await expect(page.locator('.jp-Dialog')).toContainText(id);
  await expect(page.locator('.jp-Dialog')).toContainText('destroys the pod and wipes its disk');
  await confirmStop(page.locator('.jp-Dialog'));
  await expect(panel.locator(`[data-rental-id="${id}"]`)).toHaveAttribute(
    'data-status',
    'stopped',
    {
      timeout: 30_000
    }
  );
});
