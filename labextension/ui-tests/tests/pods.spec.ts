/**
 * A running rental's pod in the sidebar, against the real server extension and the sandbox's
 * pods (real SSH servers whose nvidia-smi follows the CPU load of the pod's processes): the
 * expanded card shows the GPU's model and its utilisation, which rises while a busy loop runs on
 * the pod (in a notebook on its remote kernel); a web server started there opens through
 * "Open" (a forward over the shared SSH connection, shown through jupyter-server-proxy).
 */
import { expect, test } from '@jupyterlab/galata';

import { fillForm, openPanel, rent, stopFromCard } from './helpers';

test.describe('GPUs and ports of a running rental', () => {
  test('shows the GPU busy while a loop runs on the pod, and opens its web server', async ({
    page
  }) => {
    test.setTimeout(180_000);
    const panel = await openPanel(page);
    await fillForm(panel, { familyId: 'rtx-4090', name: 'galata/gpus' });
    const card = await rent(panel);
    await expect(card).toHaveAttribute('data-status', 'running', { timeout: 30_000 });

    // Collapsed, nothing is sampled; expanded, the GPU's model, count and charts.
    const expand = card.locator('.jp-GpuOutlet-expand');
    await expect(expand).toHaveAttribute('aria-expanded', 'false');
    await expect(card.locator('.jp-GpuOutlet-pod')).toHaveCount(0);
    await expand.click();
    await expect(expand).toHaveAttribute('aria-expanded', 'true');
    await expect(card.locator('.jp-GpuOutlet-gpuModel')).toContainText(
      '1× NVIDIA GeForce RTX 4090'
    );
    const util = card.locator('.jp-GpuOutlet-chart[data-metric="utilization"]');
    await expect(util.locator('polyline')).toHaveCount(1);
    for (const metric of ['memory', 'temperature', 'power']) {
      await expect(card.locator(`.jp-GpuOutlet-chart[data-metric="${metric}"]`)).toBeVisible();
    }
    const latest = async () => Number((await util.getAttribute('data-latest')) || '0');

    // A busy loop on the rented machine (its remote kernel) makes its GPU busy.
    await card.getByRole('button', { name: 'Open a notebook on this GPU' }).click();
    const kernel = await card.getAttribute('data-kernel');
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
    // A web server on the pod's loopback, and a busy loop (a thread, for 90 s).
    await page.notebook.setCell(
      0,
      'code',
      [
        'import os, socket, subprocess, sys, threading, time',
        "os.makedirs('site', exist_ok=True)",
        "open('site/hello.txt', 'w').write('hello from the pod')",
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); PORT = s.getsockname()[1]; s.close()",
        "server = subprocess.Popen([sys.executable, '-m', 'http.server', str(PORT), '--bind', '127.0.0.1'], cwd='site')",
        // One line each (the editor indents after a colon): spins until the end, 90 s on.
        'busy = lambda end: any(time.time() > end for _ in iter(int, 1))',
        'threading.Thread(target=busy, args=(time.time() + 90,), daemon=True).start()',
        "print('PORT', PORT)"
      ].join('\n')
    );
    await page.notebook.runCell(0);
    const output = (await page.notebook.getCellTextOutput(0))?.join('') ?? '';
    const port = Number(/PORT (\d+)/.exec(output)?.[1]);
    expect(port).toBeGreaterThan(0);
    await expect.poll(latest, { timeout: 60_000 }).toBeGreaterThanOrEqual(30);

    // Its ports: the one the web server listens on, with "Open".
    await card.locator('.jp-GpuOutlet-refreshPorts').click();
    const row = card.locator(`.jp-GpuOutlet-port[data-port="${port}"]`);
    await expect(row).toHaveAttribute('data-listening', 'true', { timeout: 20_000 });
    const popup = page.waitForEvent('popup');
    await row.getByRole('button', { name: 'Open' }).click();
    const tab = await popup;
    await expect.poll(() => tab.url(), { timeout: 20_000 }).toMatch(/\/proxy\/\d+\/$/);
    await expect(tab.locator('body')).toContainText('hello.txt');
    const proxied = await tab.request.get(`${tab.url()}hello.txt`);
    expect(await proxied.text()).toBe('hello from the pod');
    await tab.close();

    await page.kernel.shutdownAll();
    await page.notebook.close(true);
    await stopFromCard(page, card);
    const id = await card.getAttribute('data-rental-id');
    await expect(panel.locator(`.jp-GpuOutlet-ended [data-rental-id="${id}"]`)).toHaveAttribute(
      'data-status',
      'stopped',
      { timeout: 30_000 }
    );
  });
});
