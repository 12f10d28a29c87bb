// Writes the ESM entry (dist/esm/index.mjs + .d.mts) as a re-export of the CommonJS build, so that
// both module systems share one instance of the library (one engine, one loop).
import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
const names = Object.keys(require('../dist/cjs/index.js')).filter((n) => n !== 'default' && n !== '__esModule');
mkdirSync(new URL('../dist/esm/', import.meta.url), { recursive: true });
writeFileSync(
  new URL('../dist/esm/index.mjs', import.meta.url),
  `import cjs from '../cjs/index.js';\nexport const { ${names.join(', ')} } = cjs;\nexport default cjs;\n`,
);
writeFileSync(new URL('../dist/esm/index.d.mts', import.meta.url), `export * from '../cjs/index.js';\n`);
