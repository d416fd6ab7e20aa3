/**
 * Never lose work to a stop, in the sidebar: Download results pulls the pod's work folder into
 * a folder under the Jupyter root; Stop asks "Save ~/work (…) first?" and [Save and stop]
 * copies it to the saves folder before the pod (and its disk) is destroyed. Real sandbox pods.
 */
import { expect, test } from '@jupyterlab/galata';
import * as fs from 'fs';
import * as path from 'path';

import { fillForm, openPanel, rent, sandboxControl, SAVE_AND_STOP, serversInfo } from './helpers';

test('Download results, then Stop → Save and stop keeps the pod’s work', async ({ page }) => {
  const panel = await openPanel(page);
  await fillForm(panel, { familyId: 'rtx-4090', gpuCount: 1, name: 'galata-saves' });
  const card = await rent(panel);
  await expect(card).toHaveAttribute('data-status', 'running', { timeout: 30_000 });
  const id = (await card.getAttribute('data-rental-id')) ?? '';
  // What a remote kernel would have written, on the pod's disk only.
  const pod = await sandboxControl<{ home: string }>('GET', `rentals/${id}/pod`);
  fs.writeFileSync(path.join(pod.home, 'work', 'results.csv'), 'epoch,loss\n1,0.5\n');

  await card.getByRole('button', { name: 'Download results' }).click();
  const dialog = page.locator('.jp-Dialog');
  await expect(dialog).toContainText("Download the pod's ~/work");
  await dialog.getByRole('button', { name: 'Download' }).click();
  await expect(card.locator('.jp-GpuOutlet-transferDone')).toHaveAttribute('data-state', 'done', {
    timeout: 30_000
  });
  const info = serversInfo();
  const downloaded = path.join(info.tmp, 'root', 'gpuoutlet-results', 'galata-saves');
  expect(fs.readFileSync(path.join(downloaded, 'results.csv'), 'utf-8')).toBe(
    'epoch,loss\n1,0.5\n'
  );

  await card.getByRole('button', { name: 'Stop' }).click();
  await expect(dialog.locator('.jp-GpuOutlet-saveQuestion')).toHaveText(
    /^Stopping destroys this pod and its disk\. Save ~\/work \(\d+(\.\d)? [KM]?B\) first\?$/
  );
  await expect(dialog.getByRole('button', { name: 'Stop without saving' })).toBeVisible();
  await expect(dialog.getByRole('button', { name: 'Cancel' })).toBeVisible();
  await dialog.getByRole('button', { name: SAVE_AND_STOP }).click();
  await expect(dialog).toHaveCount(0);

  const ended = panel.locator(`.jp-GpuOutlet-ended [data-rental-id="${id}"]`);
  await expect(ended).toHaveAttribute('data-status', 'stopped', { timeout: 30_000 });
  await expect(ended.locator('.jp-GpuOutlet-lastSave')).toHaveAttribute('data-reason', 'user');
  await expect(ended.locator('.jp-GpuOutlet-lastSave')).toContainText('~/work');
  const saved = path.join(info.savesDir, 'galata-saves', 'work', 'results.csv');
  expect(fs.readFileSync(saved, 'utf-8')).toBe('epoch,loss\n1,0.5\n');
  // Without the save, it would be gone: the pod's disk is.
  await expect
    .poll(
      async () =>
        (await sandboxControl<{ homeExists: boolean }>('GET', `rentals/${id}/pod`)).homeExists
    )
    .toBe(false);
});
