/**
 * The small things a first-time user met (issue 15): the sidebar lists the rentals before the
 * form to rent more, shows a family's price in its dropdown, and suggests the next name after
 * renting; the notebook panel (`%gpu_panel`) starts on a family and has no Stop for a rental
 * that is over.
 */
import { expect, test } from '@jupyterlab/galata';

import { fillForm, openPanel, rent, stopFromCard } from './helpers';

test('the sidebar: rentals first, the family’s price in view, the next name suggested', async ({
  page
}) => {
  const panel = await openPanel(page);
  // What runs (and costs) comes before the form to rent more.
  const rentalsFirst = await panel.evaluate(node => {
    const rentals = node.querySelector('[aria-label="Your rentals"]');
    const form = node.querySelector('[aria-label="Rent a GPU"]');
    return !!rentals && !!form && !!(rentals.compareDocumentPosition(form) & 4); // FOLLOWING
  });
  expect(rentalsFirst).toBe(true);

  // At the sidebar's default width, the chosen family's price is not cut off.
  await fillForm(panel, { familyId: 'rtx-4090', name: 'alice/exp-42' });
  const fit = await panel.locator('select[name="familyId"]').evaluate(node => {
    const select = node as HTMLSelectElement;
    const text = select.options[select.selectedIndex].text;
    const context = document.createElement('canvas').getContext('2d')!;
    const style = getComputedStyle(select);
    context.font = style.font;
    const shown = text.slice(0, text.indexOf('/h') + 2);
    const room =
      select.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) - 16;
    return { text, shown, width: context.measureText(shown).width, room };
  });
  expect(fit.shown).toMatch(/^rtx-4090 · \$\d+\.\d\d\/h$/);
  expect(fit.width).toBeLessThan(fit.room);
  await expect(panel.locator('.jp-GpuOutlet-familyHint')).toContainText('a GPU');

  // After renting, the next name is suggested, not the same one again.
  const card = await rent(panel);
  await expect(card.locator('.jp-GpuOutlet-rentalName')).toContainText('alice/exp-42');
  await expect(panel.locator('input[name="name"]')).toHaveValue('alice/exp-43');
  await expect(card).toHaveAttribute('data-status', 'running', { timeout: 60_000 });
  await stopFromCard(page, card);
  await expect(card).toHaveAttribute('data-status', 'stopped', { timeout: 30_000 });
});

test('the notebook panel: a family chosen, and no Stop once the rental is over', async ({
  page
}) => {
  await page.notebook.createNew('panel.ipynb');
  await page.notebook.setCell(0, 'code', '%load_ext gpuoutlet_jupyter\n%gpu_panel');
  await page.notebook.runCell(0);
  const widget = page.locator('.jp-OutputArea-output .widget-vbox').first();
  await expect(widget).toBeVisible({ timeout: 30_000 });
  // The Family dropdown starts on a family (the cheapest GPU hour), never empty.
  const family = widget.locator('.widget-dropdown', { hasText: 'Family' }).locator('select');
  await expect(family).not.toHaveValue('');
  expect(
    await family.evaluate(node => (node as HTMLSelectElement).selectedIndex)
  ).toBeGreaterThanOrEqual(0);
  // Rent from the panel, then stop it there: two clicks, then no Stop button at all.
  await widget.getByRole('button', { name: 'Launch' }).click();
  await expect(widget).toContainText('Launched', { timeout: 30_000 });
  const stop = widget.getByRole('button', { name: 'Stop', exact: true });
  await expect(stop).toBeVisible({ timeout: 30_000 });
  await expect(widget).toContainText('running', { timeout: 60_000 });
  await stop.click();
  await widget.getByRole('button', { name: 'Confirm stop' }).click();
  await expect(widget).toContainText('stopped', { timeout: 60_000 });
  await expect(widget.getByRole('button', { name: /^(Stop|Confirm stop|Stopping…)$/ })).toHaveCount(
    0
  );
});
