/**
 * A rental's remote kernels in the sidebar, against a real JupyterLab, the server extension and
 * sandbox pods (start_servers.py): the card says so while a kernel reconnects (its local ssh
 * killed with `kill -9`, the pod's SSH server held still so the reconnect takes a while), and
 * the notice clears once the same kernel is back. After a restart of JupyterLab the kernels it
 * drove are listed detached: "Reattach" gives one back to its notebook with its variables,
 * "Shut down" (asked first) ends the other, and stopping the rental leaves no record.
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import { Locator } from '@playwright/test';

import {
  fillForm,
  kernelRecords,
  openPanel,
  rent,
  restartJupyter,
  serversInfo,
  stopFromCard
} from './helpers';

/** Rent one GPU from the sidebar; its card once it runs. */
async function runningCard(page: IJupyterLabPageFixture, name: string): Promise<Locator> {
  const panel = await openPanel(page);
  await fillForm(panel, { familyId: 'rtx-4090', gpuCount: 1, name });
  const card = await rent(panel);
  await expect(card).toHaveAttribute('data-status', 'running', { timeout: 30_000 });
  return card;
}

/** The current notebook's kernel, and its state ("<kernel name> idle"). */
function kernelOfCurrent(page: IJupyterLabPageFixture): Promise<string> {
  return page.evaluate(() => {
    const widget = window.jupyterapp.shell.currentWidget as any;
    const session = widget?.sessionContext;
    return `${session?.session?.kernel?.name} ${session?.kernelDisplayStatus}`;
  });
}

function pathOfCurrent(page: IJupyterLabPageFixture): Promise<string> {
  return page.evaluate(() => (window.jupyterapp.shell.currentWidget as any)?.context?.path ?? '');
}

/** "Open a notebook on this GPU", run `code` in it; the notebook's path. */
async function notebookOnGpu(
  page: IJupyterLabPageFixture,
  card: Locator,
  code: string
): Promise<string> {
  const kernel = await card.getAttribute('data-kernel');
  await card.getByRole('button', { name: 'Open a notebook on this GPU' }).click();
  await expect.poll(() => kernelOfCurrent(page), { timeout: 30_000 }).toBe(`${kernel} idle`);
  await page.notebook.setCell(0, 'code', code);
  await page.notebook.runCell(0);
  return pathOfCurrent(page);
}

/** Exactly a notebook path's file name, as a kernel's row shows it. */
function exactly(notebook: string): RegExp {
  const name = notebook.split('/').pop() ?? notebook;
  return new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
}

/** Run `code` in the current notebook's first cell; its text output. */
async function output(page: IJupyterLabPageFixture, code: string): Promise<string> {
  await page.notebook.setCell(0, 'code', code);
  await page.notebook.runCell(0);
  return ((await page.notebook.getCellTextOutput(0)) ?? []).join('');
}

test.describe('remote kernels under their rental', () => {
  test('a kernel that lost its connection is said on its card until it is back', async ({
    page
  }) => {
    test.setTimeout(180_000);
    const card = await runningCard(page, 'galata/reconnect');
    const id = (await card.getAttribute('data-rental-id')) ?? '';
    await notebookOnGpu(page, card, 'x = 6 * 7');
    const row = card.locator('.jp-GpuOutlet-kernel');
    await expect(row).toHaveAttribute('data-state', 'connected');
    await expect(card.locator('.jp-GpuOutlet-kernelNotice')).toHaveCount(0);

    // The kernel's local ssh, from its record (the provisioner writes its pid there).
    let sshPid = 0;
    await expect
      .poll(() => {
        const record = kernelRecords().find(r => r.rental_id === id && r.state === 'connected');
        sshPid = record?.ssh_pid ?? 0;
        return sshPid;
      })
      .toBeGreaterThan(0);
    // Hold the pod's SSH server still (it lives in the sandbox's process) so the reconnect
    // takes long enough to be seen; then kill -9 the ssh.
    const sandbox = serversInfo().sandboxPid;
    process.kill(sandbox, 'SIGSTOP');
    try {
      process.kill(sshPid, 'SIGKILL');
      await expect(card.locator('.jp-GpuOutlet-kernelNotice')).toHaveText(
        new RegExp(`^kernel on ${id} lost its connection, reconnecting, attempt \\d+$`),
        { timeout: 30_000 }
      );
      await expect(row).toHaveAttribute('data-state', 'reconnecting');
    } finally {
      process.kill(sandbox, 'SIGCONT');
    }
    await expect(card.locator('.jp-GpuOutlet-kernelNotice')).toHaveCount(0, { timeout: 60_000 });
    await expect(row).toHaveAttribute('data-state', 'connected');
    // The same kernel, reached again: what it held is still there.
    expect(await output(page, 'print(x)')).toContain('42');

    await page.kernel.shutdownAll();
    await page.notebook.close(true);
    await stopFromCard(page, card);
  });

  test('after a restart of JupyterLab: Reattach one detached kernel, Shut down the other', async ({
    page
  }) => {
    test.setTimeout(300_000);
    let card = await runningCard(page, 'galata/reattach');
    const id = (await card.getAttribute('data-rental-id')) ?? '';
    const first = await notebookOnGpu(page, card, "x = 'from before the restart'");
    await page.notebook.save();
    await page.notebook.close(true);
    const second = await notebookOnGpu(page, card, 'y = 2');
    await page.notebook.save();
    await page.notebook.close(true);
    await expect(card.locator('.jp-GpuOutlet-kernel[data-state="connected"]')).toHaveCount(2);

    // Jupyter stops (its kernels stay on the pod, detached) and starts again.
    await restartJupyter(page);
    const panel = await openPanel(page);
    card = panel.locator(`.jp-GpuOutlet-rental[data-rental-id="${id}"]`);
    const detached = card.locator('.jp-GpuOutlet-kernel[data-state="detached"]');
    await expect(detached).toHaveCount(2, { timeout: 30_000 });
    // A row shows its notebook's file name (the whole path is in its title).
    const row = (notebook: string) =>
      detached.filter({
        has: page.locator('.jp-GpuOutlet-kernelName', { hasText: exactly(notebook) })
      });
    const one = row(first);
    const other = row(second);
    await expect(one.locator('.jp-GpuOutlet-kernelSub')).toContainText(
      'it runs on with its variables until the rental stops'
    );

    // Reattach: its notebook opens on the adopted kernel, variables and all.
    await one.getByRole('button', { name: 'Reattach' }).click();
    await expect.poll(() => pathOfCurrent(page), { timeout: 30_000 }).toBe(first);
    const kernel = await card.getAttribute('data-kernel');
    await expect.poll(() => kernelOfCurrent(page), { timeout: 30_000 }).toBe(`${kernel} idle`);
    expect(await output(page, 'print(x)')).toContain('from before the restart');
    await expect(card.locator('.jp-GpuOutlet-kernel[data-state="connected"]')).toHaveCount(1);

    // Shut down: asked first, then it is gone (and its record with it).
    await other.getByRole('button', { name: 'Shut down' }).click();
    const dialog = page.locator('.jp-Dialog');
    await expect(dialog).toContainText('Shut down this detached kernel?');
    await expect(dialog).toContainText('with its variables');
    await dialog.getByRole('button', { name: 'Shut down the kernel' }).click();
    await expect(dialog).toHaveCount(0);
    await expect(detached).toHaveCount(0, { timeout: 30_000 });
    expect(kernelRecords().filter(r => r.rental_id === id)).toHaveLength(1);

    // Stopping the rental leaves no kernel record behind.
    await page.kernel.shutdownAll();
    await page.notebook.close(true);
    await stopFromCard(page, card);
    await expect(card).toHaveAttribute('data-status', 'stopped', { timeout: 30_000 });
    await expect.poll(() => kernelRecords().filter(r => r.rental_id === id).length).toBe(0);
  });
});
