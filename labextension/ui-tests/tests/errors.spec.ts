/**
 * The errors that concern the whole sidebar, rendered inline by the real UI. The server's
 * answers are replaced in the browser (page.route) with the bodies the server extension sends,
 * so one JupyterLab serves every case: no server extension (404 on status), no sid configured,
 * the rentals API unreachable; then the real server again.
 */
import { expect, test } from '@jupyterlab/galata';
import { Route } from '@playwright/test';

import { PANEL } from './helpers';

const NO_SID =
  'No gpuoutlet session is configured for https://gpuoutlet.ai. Sign in on the website, copy ' +
  'the `sid` cookie, and either set GPUOUTLET_SID=<sid> in the environment the Jupyter ' +
  'server starts from, or write `sid=<sid>` to ~/.config/gpuoutlet/credentials.';

const UNREACHABLE = {
  code: 'upstream_unreachable',
  message: 'Could not reach the rentals API at http://127.0.0.1:9: connection refused.',
  apiUrl: 'http://127.0.0.1:9'
};

type Mode = 'missing' | 'no-sid' | 'unreachable' | 'real';

function answer(route: Route, mode: Mode): Promise<void> {
  const json = (status: number, body: unknown) =>
    route.fulfill({ status, contentType: 'application/json', body: JSON.stringify(body) });
  const isStatus = new URL(route.request().url()).pathname.endsWith('/gpuoutlet/api/status');
  switch (mode) {
    case 'missing': // Jupyter's own 404 page: no gpuoutlet handlers at all
      return route.fulfill({ status: 404, contentType: 'text/html', body: '<html>404</html>' });
    case 'no-sid':
      return isStatus
        ? json(200, {
            configured: false,
            state: 'not_configured',
            apiUrl: 'https://gpuoutlet.ai',
            sidConfigured: false,
            sidSource: null,
            problem: NO_SID,
            version: '0.1.0'
          })
        : json(503, { error: { code: 'not_configured', message: NO_SID } });
    case 'unreachable':
      return isStatus ? route.fallback() : json(502, { error: UNREACHABLE });
    default:
      return route.fallback();
  }
}

test('says what is wrong: extension missing, no sid, API unreachable', async ({ page }) => {
  let mode: Mode = 'missing';
  await page.route('**/gpuoutlet/api/**', route => answer(route, mode));
  const panel = page.locator(PANEL);
  const banner = panel.locator('.jp-GpuOutlet-error').first();
  const refresh = panel.getByRole('button', { name: 'Refresh now' });

  await page.locator('.jp-SideBar li[data-id="gpuoutlet-sidebar"]').click();
  await expect(banner).toHaveAttribute('data-kind', 'extension_missing');
  await expect(banner).toContainText('The gpuoutlet server extension is not running');
  await expect(banner).toContainText('jupyter server extension enable gpuoutlet_jupyter');
  await expect(panel.getByRole('button', { name: 'Rent GPU' })).toHaveCount(0);

  mode = 'no-sid';
  await refresh.click();
  await expect(banner).toHaveAttribute('data-kind', 'not_configured');
  await expect(banner).toContainText('No gpuoutlet session is configured');
  await expect(banner).toContainText('GPUOUTLET_SID=<sid>');
  await expect(panel.getByRole('button', { name: 'Rent GPU' })).toHaveCount(0);

  mode = 'unreachable';
  await refresh.click();
  const errors = panel.locator('.jp-GpuOutlet-error[data-kind="upstream_unreachable"]');
  await expect(errors.first()).toContainText(
    'The rentals API at http://127.0.0.1:9 cannot be reached'
  );
  await expect(errors.first()).toContainText('connection refused');
  // Said once, at the top: the wallet, the families, the keys and the list do not repeat it.
  await expect(errors).toHaveCount(1);
  await expect(panel.locator('.jp-GpuOutlet-error')).toHaveCount(1);

  // The real server again: everything comes back.
  mode = 'real';
  await refresh.click();
  await expect(panel.locator('.jp-GpuOutlet-walletAvailable')).toBeVisible();
  await expect(errors).toHaveCount(0);
});
