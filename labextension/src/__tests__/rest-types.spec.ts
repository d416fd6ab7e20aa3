/**
 * src/generated/rest.ts must be what `jlpm rest-types` makes of the server's schema now
 * (gpuoutlet_jupyter/rest/schema.json): a model changed without regenerating fails here.
 *
 * The generator runs as its own node process, as `jlpm rest-types --check` (prettier 3 loads
 * itself with a dynamic import, which jest's module sandbox does not run).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '..', '..');
const SCRIPT = path.join(ROOT, 'scripts', 'rest-types.js');
const OUTPUT = path.join(ROOT, 'src', 'generated', 'rest.ts');
const SCHEMA = path.resolve(ROOT, '..', 'gpuoutlet_jupyter', 'rest', 'schema.json');

function check(env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [SCRIPT, '--check'], {
    cwd: ROOT,
    encoding: 'utf-8',
    env: { ...process.env, ...env }
  });
}

describe('generated REST types', () => {
  it('are up to date with the server schema (run `jlpm rest-types` if not)', () => {
    const result = check();
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  }, 60_000);

  it('are found stale when the schema changes', () => {
    const schema = JSON.parse(fs.readFileSync(SCHEMA, 'utf-8'));
    schema.$defs.WalletView.properties.newMember = { type: 'integer' };
    schema.$defs.WalletView.required.push('newMember');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpuoutlet-rest-types-'));
    try {
      const changed = path.join(dir, 'schema.json');
      fs.writeFileSync(changed, JSON.stringify(schema));
      const result = check({ GPUOUTLET_REST_SCHEMA: changed });
      expect(result.status).toBe(1);
      expect(result.stderr).toContain('is stale: run `jlpm rest-types`');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('name every reply of the schema with the I prefix', () => {
    const schema = JSON.parse(fs.readFileSync(SCHEMA, 'utf-8')) as {
      $defs: Record<string, unknown>;
    };
    const text = fs.readFileSync(OUTPUT, 'utf-8');
    for (const name of Object.keys(schema.$defs)) {
      expect(text).toContain(`export interface I${name} {`);
    }
  });
});
