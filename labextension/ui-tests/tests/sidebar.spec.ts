/**
 * The sidebar against a real JupyterLab, the real server extension and a sandbox of the
 * rentals API (started by start_servers.py): rent on gpuoutlet's quote, watch it run, copy the SSH
 * command, open a notebook on it, stop it; live validation of the name.
 */
import { expect, test } from '@jupyterlab/galata';

import { fillForm, openPanel, rent, sandboxControl, stopFromCard } from './helpers';

test.describe('GPU rentals sidebar', () => {
  test('rents a GPU, watches it reach running, copies the SSH command and stops it', async ({
    page
  }) => {
    const panel = await openPanel(page);
    await fillForm(panel, { familyId: 'rtx-4090', gpuCount: 1, name: 'galata/rent-and-stop' });
    // gpuoutlet's quote before the click: the price, the confirmation line, what is left.
    const quote = panel.locator('.jp-GpuOutlet-quote:not(.jp-mod-pending)');
    await expect(quote.locator('.jp-GpuOutlet-price')).toHaveText('$0.65/h');
    await expect(quote.locator('.jp-GpuOutlet-confirmation')).toHaveText(
      /^1× rtx-4090 \(ubuntu-24-04\) at \$0\.65\/h from vast, US-East, ready in about 2 s\. Its first hour, \$0\.65, is reserved from the wallet \(\$\d+\.\d\d available\); it is billed per second while it runs\.$/
    );
    await expect(quote.locator('.jp-GpuOutlet-after')).toContainText('left once its first hour');

    const card = await rent(panel);
    await expect(card.locator('.jp-GpuOutlet-rentalTitle')).toHaveText('rtx-4090 × 1');
    await expect(card.locator('.jp-GpuOutlet-rentalName')).toContainText('galata/rent-and-stop');
    await expect(card.locator('.jp-GpuOutlet-rate')).toHaveText('$0.65/h');

    // Provisioning (with its progress bar) comes first, then running with the SSH command.
    await expect(card).toHaveAttribute('data-status', /provisioning|running/);
    await expect(card).toHaveAttribute('data-status', 'running', { timeout: 30_000 });
    await expect(card.getByRole('progressbar')).toHaveCount(0);
    const id = await card.getAttribute('data-rental-id');
    // The SSH command is the view's (`ssh [-F <the managed config>] gpuoutlet-<id>`).
    const command = card.locator('.jp-GpuOutlet-sshCommand');
    await expect(command).toHaveText(new RegExp(`^ssh (-F \\S+ )?gpuoutlet-${id}$`));
    const commandText = await command.textContent();
    await expect(card.locator('.jp-GpuOutlet-elapsed')).toHaveText(/\d+s/);
    await expect(card.locator('.jp-GpuOutlet-costSoFar')).toHaveText(/\$\d+\.\d\d/);

    await card.getByRole('button', { name: 'Copy' }).click();
    await expect(card.getByRole('button', { name: 'Copied' })).toBeVisible();
    const clipboard = await page.evaluate(() => navigator.clipboard.readText());
    expect(clipboard).toBe(commandText);

    // The rental's kernel: a new notebook on it runs code on the rented machine.
    const kernel = await card.getAttribute('data-kernel');
    expect(kernel).toBeTruthy();
    await card.getByRole('button', { name: 'Open a notebook on this GPU' }).click();
    await expect
      .poll(
        () =>
          page.evaluate(() => {
            const widget = window.jupyterapp.shell.currentWidget as any;
            const session = widget?.sessionContext;
            return `${session?.session?.kernel?.name} ${session?.kernelDisplayStatus}`;
          }),
        { timeout: 30_000 }
      )
      .toBe(`${kernel} idle`);
    await page.notebook.setCell(0, 'code', 'print("on the GPU", 6 * 7)');
    await page.notebook.runCell(0);
    expect((await page.notebook.getCellTextOutput(0))?.join('')).toContain('on the GPU 42');
    await page.kernel.shutdownAll();
    await page.notebook.close(true);

    await stopFromCard(page, card);
    await expect(card).toHaveAttribute('data-status', /stopping|stopped/);
    await expect(panel.locator(`.jp-GpuOutlet-ended [data-rental-id="${id}"]`)).toHaveAttribute(
      'data-status',
      'stopped',
      { timeout: 30_000 }
    );
    await expect(panel.locator(`.jp-GpuOutlet-ended [data-rental-id="${id}"]`)).toHaveCount(1);
  });

  test('a create whose answer is lost is found by its name: one rental, and the note says so', async ({
    page
  }) => {
    const panel = await openPanel(page);
    await fillForm(panel, { familyId: 'rtx-4090', gpuCount: 1, name: 'galata/lost-answer' });
    await expect(panel.locator('.jp-GpuOutlet-quote:not(.jp-mod-pending)')).toBeVisible();
    // gpuoutlet commits the create, then the connection closes unanswered.
    await sandboxControl('PUT', 'faults', { dropCreateAnswerCount: 1 });
    let card;
    try {
      card = await rent(panel);
    } finally {
      await sandboxControl('PUT', 'faults', {});
    }
    await expect(panel.locator('.jp-GpuOutlet-launchNote')).toContainText(
      'The answer to this create was lost'
    );
    await expect(panel.locator('.jp-GpuOutlet-launchError')).toHaveCount(0);
    await expect(card.locator('.jp-GpuOutlet-rentalName')).toContainText('galata/lost-answer');
    const named = panel.locator('.jp-GpuOutlet-rental', { hasText: 'galata/lost-answer' });
    await expect(named).toHaveCount(1); // sent once: exactly one rental
    await stopFromCard(page, card);
    await expect(card).toHaveAttribute('data-status', /stopping|stopped/);
  });

  test('validates the name live, counted in characters', async ({ page }) => {
    const panel = await openPanel(page);
    const name = panel.locator('input[name="name"]');
    await name.fill('x'.repeat(64));
    await expect(panel.locator('.jp-GpuOutlet-counter')).toHaveText('64/64');
    await expect(panel.locator('#gpuoutlet-name-error')).toHaveCount(0);
    await expect(panel.getByRole('button', { name: 'Rent GPU' })).toBeEnabled();
    await name.type('y');
    await expect(panel.locator('.jp-GpuOutlet-counter')).toHaveText('65/64');
    await expect(panel.locator('#gpuoutlet-name-error')).toHaveText(
      'At most 64 characters (65 now).'
    );
    await expect(panel.getByRole('button', { name: 'Rent GPU' })).toBeDisabled();
    await name.fill('');
    await expect(panel.locator('#gpuoutlet-name-error')).toHaveCount(0);
  });
});
