/**
 * Playwright (galata) configuration: Debian's Chromium, never a downloaded browser, and a
 * webServer (start_servers.py) that runs a sandbox of the rentals API and JupyterLab on a free
 * port, and stops both when the run ends.
 */
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

const repo = path.resolve(__dirname, '..', '..');
const venvPython = path.join(repo, '.venv', 'bin', 'python');
const python = process.env.GPUOUTLET_PYTHON || (fs.existsSync(venvPython) ? venvPython : 'python3');

// One free port for the whole run (the workers inherit it through the environment).
if (!process.env.GPUOUTLET_LAB_PORT) {
  process.env.GPUOUTLET_LAB_PORT = execFileSync(python, [
    '-c',
    'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
  ])
    .toString()
    .trim();
}
const port = process.env.GPUOUTLET_LAB_PORT;
const baseURL = `http://127.0.0.1:${port}`;

module.exports = {
  ...baseConfig,
  testDir: './tests',
  outputDir: './test-results',
  // One JupyterLab and one sandbox wallet for every test: one at a time.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  timeout: 90_000,
  expect: {
    timeout: 15_000,
    // The baselines of screenshots.spec.ts: still pictures (no animation, no caret, CSS pixels).
    toHaveScreenshot: { animations: 'disabled', caret: 'hide', scale: 'css' }
  },
  // Committed next to the spec; refresh with `scripts/test-js --update-snapshots screenshots`.
  snapshotPathTemplate: '{testDir}/{testFilePath}-snapshots/{arg}-{platform}{ext}',
  reporter: [['list'], ['html', { open: 'never', outputFolder: 'playwright-report' }]],
  use: {
    ...baseConfig.use,
    baseURL,
    viewport: { width: 1280, height: 860 },
    video: 'off',
    trace: 'retain-on-failure',
    permissions: ['clipboard-read', 'clipboard-write'],
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run'
      ]
    }
  },
  webServer: {
    command: `"${python}" start_servers.py --port ${port}`,
    url: `${baseURL}/lab`,
    timeout: 120_000,
    reuseExistingServer: false,
    stdout: 'pipe',
    stderr: 'pipe',
    gracefulShutdown: { signal: 'SIGTERM', timeout: 30_000 }
  }
};
