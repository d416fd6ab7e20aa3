/**
 * What the magics show in a notebook, read back from the page (issue 15): amounts stay amounts.
 * JupyterLab typesets `$…$` in HTML outputs with MathJax, which would turn the text between two
 * prices into italic math ("Wallet: 99.99𝑎𝑣𝑎𝑖𝑙𝑎𝑏𝑙𝑒"); every output of the extension is marked
 * so MathJax leaves it alone. A plain HTML output with the same text, typeset, shows the test
 * would notice.
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import { Locator } from '@playwright/test';

const MATH = 'mjx-container, .MathJax';

/** Run cell `index` and wait for its HTML output; returns it. */
async function run(page: IJupyterLabPageFixture, index: number, code: string): Promise<Locator> {
  await page.notebook.setCell(index, 'code', code);
  await page.notebook.runCell(index);
  const output = (await page.notebook.getCellLocator(index))!.locator(
    '.jp-OutputArea-output[data-mime-type="text/html"]'
  );
  await expect(output).toBeVisible();
  return output;
}

test('the wallet, the rentals table and a rental read back as written: no math', async ({
  page
}) => {
  await page.notebook.createNew('money.ipynb');
  await page.notebook.setCell(
    0,
    'code',
    '%load_ext gpuoutlet_jupyter\nfrom IPython.display import HTML'
  );
  await page.notebook.runCell(0);

  // The control: the same words in a plain HTML output are typeset by MathJax.
  await page.notebook.addCell('code', '');
  const control = await run(page, 1, "HTML('<p>Wallet: $20.00 available, $0.00 reserved</p>')");
  await expect(control.locator(MATH).first()).toBeAttached({ timeout: 30_000 });

  await page.notebook.addCell('code', '');
  const wallet = await run(page, 2, '%gpu_wallet');
  await expect(wallet).toContainText(/Wallet: \$[\d,]+\.\d\d available, \$[\d,]+\.\d\d reserved/);

  await page.notebook.addCell('code', '');
  const rental = await run(page, 3, 'r = %gpu_rent rtx-4090 --name "no math" --no-wait\nr');
  await expect(rental).toContainText('$0.65/h ($0.65 reserved for the first hour)');
  await expect(rental).toContainText('no math'); // quoted as a shell would, quotes gone
  await expect(rental).not.toContainText('"no math"');

  await page.notebook.addCell('code', '');
  const table = await run(page, 4, '%gpu_rentals');
  await expect(table.locator('table')).toContainText('$0.65');
  await expect(table).toContainText(
    /Burning \$0\.65\/h across 1 active rental\(s\); cost so far \$/
  );

  // None of it typeset: the amounts and the words between them are text.
  for (const output of [wallet, rental, table]) {
    await expect(output.locator('.mathjax_ignore.tex2jax_ignore')).toHaveCount(1);
    await expect(output.locator(MATH)).toHaveCount(0);
  }

  await page.notebook.addCell('code', '');
  const stopped = await run(page, 5, '%gpu_stop {r.id}');
  await expect(stopped).toContainText(/status\s*stopped/, { timeout: 30_000 });
  await expect(stopped.locator(MATH)).toHaveCount(0);
});
