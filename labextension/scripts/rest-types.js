/**
 * The sidebar's REST types, generated: gpuoutlet_jupyter/rest/schema.json (written from the
 * server's pydantic reply models) → src/generated/rest.ts, with json-schema-to-typescript.
 *
 *     jlpm rest-types          # write src/generated/rest.ts
 *     jlpm rest-types --check  # exit 1 when the committed file differs from what it would be
 *
 * Every interface gets the project's `I` prefix (`RentalView` → `IRentalView`); the text is
 * formatted with this package's own prettier and settings, so `jlpm lint:check` agrees with it.
 * src/__tests__/rest-types.spec.ts runs `generate()` too, so a stale file fails `jlpm test`.
 */
const fs = require('fs');
const path = require('path');
const { compile } = require('json-schema-to-typescript');
const prettier = require('prettier');

const ROOT = path.resolve(__dirname, '..');
// GPUOUTLET_REST_SCHEMA: another schema file (the staleness test feeds it a changed one).
const SCHEMA =
  process.env.GPUOUTLET_REST_SCHEMA ||
  path.resolve(ROOT, '..', 'gpuoutlet_jupyter', 'rest', 'schema.json');
const OUTPUT = path.join(ROOT, 'src', 'generated', 'rest.ts');

const BANNER = `/**
 * The gpuoutlet server extension's REST replies (\`{base_url}gpuoutlet/api/...\`), generated
 * from gpuoutlet_jupyter/rest/schema.json by \`jlpm rest-types\` (json-schema-to-typescript).
 * Do not edit: change the pydantic models in gpuoutlet_jupyter/rest/models.py, run
 * \`python -m gpuoutlet_jupyter.rest.schema\`, then \`jlpm rest-types\`.
 */`;

/** The text src/generated/rest.ts should hold for the schema as it is now. */
async function generate() {
  const schema = JSON.parse(fs.readFileSync(SCHEMA, 'utf-8'));
  const text = await compile(schema, schema.title, {
    bannerComment: BANNER,
    additionalProperties: false,
    format: false,
    unknownAny: true,
    strictIndexSignatures: true,
    // Every named schema (the $defs, the root) gets the project's interface prefix.
    customName: (node, keyName) => {
      const name = keyName ?? node.title;
      return name ? `I${name}` : undefined;
    }
  });
  const options = (await prettier.resolveConfig(OUTPUT)) ?? {};
  return prettier.format(text, { ...options, filepath: OUTPUT });
}

async function main(argv) {
  const text = await generate();
  const current = fs.existsSync(OUTPUT) ? fs.readFileSync(OUTPUT, 'utf-8') : null;
  const relative = path.relative(process.cwd(), OUTPUT);
  if (argv.includes('--check')) {
    if (current !== text) {
      console.error(`${relative} is stale: run \`jlpm rest-types\` in labextension/.`);
      return 1;
    }
    console.log(`${relative} is up to date.`);
    return 0;
  }
  if (current !== text) {
    fs.mkdirSync(path.dirname(OUTPUT), { recursive: true });
    fs.writeFileSync(OUTPUT, text);
    console.log(`wrote ${relative}`);
  }
  return 0;
}

module.exports = { generate, OUTPUT, SCHEMA };

if (require.main === module) {
  main(process.argv.slice(2)).then(
    code => process.exit(code),
    error => {
      console.error(error);
      process.exit(2);
    }
  );
}
