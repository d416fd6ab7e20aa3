/**
 * The kernel of a rental that is stopped (issue 15): a notebook runs on the rental's kernel,
 * the rental is stopped from the sidebar; the notebook says "rental X was stopped: pick another
 * kernel", no "Kernel Restarting" and no "Error Starting Kernel" ever shows, and a reload does
 * not bring the dead session back. And a kernel that cannot start for a reason of its own (a
 * pod without python3) says why in a dialog that shows the whole message, hint included.
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';

import { fillForm, openPanel, rent, sandboxControl, stopFromCard } from './helpers';

/** Every dialog title JupyterLab shows while the test runs. */
function dialogTitles(page: IJupyterLabPageFixture): string[] {
  const seen: string[] = [];
  void page.exposeFunction('gpuoutletDialogSeen', (title: string) => seen.push(title));
  void page.addInitScript(() => {
    new MutationObserver(() => {
      for (const header of document.querySelectorAll('.jp-Dialog-header')) {
        const text = header.textContent ?? '';
        if (!(header as HTMLElement).dataset.gpuoutletSeen) {
          (header as HTMLElement).dataset.gpuoutletSeen = '1';
          (window as unknown as { gpuoutletDialogSeen: (t: string) => void }).gpuoutletDialogSeen(
            text
          );
        }
      }
    }).observe(document, { childList: true, subtree: true });
  });
  return seen;
}

test('the notebook of a stopped rental is told to pick another kernel, nothing restarts', async ({
  page
}) => {
  const dialogs = dialogTitles(page);
  await page.reload(); // so that the dialog watcher runs in the page
  let panel = await openPanel(page);
  await fillForm(panel, { familyId: 'rtx-4090', name: 'kernel-ends' });
  const card = await rent(panel);
  await expect(card).toHaveAttribute('data-status', 'running', { timeout: 60_000 });
  const id = (await card.getAttribute('data-rental-id')) ?? '';

  // A notebook on the rental's kernel, a cell run on the machine.
  await card.getByRole('button', { name: 'Open a notebook on this GPU' }).click();
  await expect(page.locator('.jp-NotebookPanel')).toBeVisible();
  await page.notebook.setCell(
    0,
    'code',
    'import os\nprint("on", os.environ["GPUOUTLET_RENTAL_ID"])'
  );
  await page.notebook.runCell(0);
  expect((await page.notebook.getCellTextOutput(0))?.join('')).toContain(`on ${id}`);
  await page.notebook.save(); // its kernel is in the file: a reopened notebook asks for it
  const path = await page.evaluate(
    () =>
      (window.jupyterapp.shell.currentWidget as unknown as { context: { path: string } }).context
        .path
  );

  panel = await openPanel(page);
  await stopFromCard(page, panel.locator(`[data-rental-id="${id}"]`));
  await expect(panel.locator(`[data-rental-id="${id}"]`)).toHaveAttribute(
    'data-status',
    'stopped',
    { timeout: 30_000 }
  );

  // The notebook says why its kernel is gone, with a way to pick another.
  const toast = page.locator('.Toastify__toast', { hasText: `Rental ${id} was stopped` });
  await expect(toast).toContainText(
    `Rental ${id} was stopped: pick another kernel for ${path.split('/').pop()}.`,
    { timeout: 45_000 }
  );
  await expect(toast.getByRole('button', { name: 'Pick another kernel…' })).toBeVisible();
  // Its kernel is gone, and no restart was tried.
  await expect(page.locator('.jp-NotebookPanel .jp-Toolbar-kernelName')).toHaveText('No Kernel', {
    timeout: 30_000
  });
  const sessions = await page.evaluate(async () => {
    const response = await fetch('/api/sessions');
    return (await response.json()) as { path: string }[];
  });
  expect(sessions.map(s => s.path)).not.toContain(path);
  expect(dialogs.filter(t => /Restarting|Error Starting Kernel|Kernel Restarting/.test(t))).toEqual(
    []
  );

  // "Pick another kernel…" opens the kernel picker for that notebook.
  await toast.getByRole('button', { name: 'Pick another kernel…' }).click();
  const picker = page.locator('.jp-Dialog');
  await expect(picker).toContainText('Select Kernel');
  await picker
    .getByRole('button', { name: /Cancel|No Kernel/ })
    .first()
    .click();

  // A reload brings no dead session back: no error dialog, the same words instead. (Reloaded
  // by hand: galata's reload waits for a Launcher, and the notebook is what comes back.)
  await page.evaluate(() => setTimeout(() => window.location.reload(), 0));
  await page.waitForURL(/\/lab/);
  await expect(page.locator('.jp-NotebookPanel')).toBeVisible({ timeout: 60_000 });
  await expect(
    page.locator('.Toastify__toast', { hasText: `Rental ${id} was stopped` })
  ).toBeVisible({
    timeout: 45_000
  });
  expect(dialogs.filter(t => /Restarting|Error Starting Kernel/.test(t))).toEqual([]);
});

test('a kernel that cannot start says why in a dialog that shows all of it', async ({ page }) => {
  // A pod without python3: the kernel's start fails over ssh, and the server says what to do.
  await sandboxControl('PUT', 'faults', { podHiddenCommands: ['python3'] });
  let id = '';
  try {
    const panel = await openPanel(page);
    await fillForm(panel, { familyId: 'rtx-4090', name: 'no-python' });
    const card = await rent(panel);
    await expect(card).toHaveAttribute('data-status', 'running', { timeout: 60_000 });
    id = (await card.getAttribute('data-rental-id')) ?? '';
  } finally {
    await sandboxControl('PUT', 'faults', {});
  }
  const card = page.locator(`[data-rental-id="${id}"]`);
  await card.getByRole('button', { name: 'Open a notebook on this GPU' }).click();
  const dialog = page.locator('.jp-Dialog', { hasText: 'Error Starting Kernel' });
  await expect(dialog).toBeVisible({ timeout: 60_000 });
  const message = dialog.locator('.jp-Dialog-body pre').first();
  await expect(message).toContainText("the Python interpreter 'python3' could not run on");
  await expect(message).toContainText('Set "python" in the kernelspec');
  // The whole hint is in view: no line runs past the dialog's edge (a <pre> does not wrap).
  const fits = await message.evaluate(node => {
    const body = node.closest('.jp-Dialog-body') as HTMLElement;
    return {
      pre: node.scrollWidth <= node.clientWidth + 1,
      body: body.scrollWidth <= body.clientWidth + 1
    };
  });
  expect(fits).toEqual({ pre: true, body: true });
  await dialog.getByRole('button', { name: 'Ok' }).click();
  // JupyterLab then asks for another kernel.
  const picker = page.locator('.jp-Dialog', { hasText: 'Select Kernel' });
  await picker.getByRole('button', { name: 'No Kernel' }).click();
  await expect(page.locator('.jp-Dialog')).toHaveCount(0);
  await stopFromCard(page, card);
  await expect(card).toHaveAttribute('data-status', 'stopped', { timeout: 30_000 });
});
