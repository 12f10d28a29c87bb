// tsc copies the specifier of `typeof import('../bindings/node/index')` in ts/native.ts verbatim into
// dist/cjs/native.d.ts, where it points one level short (dist/bindings/...). A consumer type-checking
// with `skipLibCheck: false` then fails with "Cannot find module". Point it at the shipped loader types.
import { readFileSync, writeFileSync } from 'node:fs';

const file = new URL('../dist/cjs/native.d.ts', import.meta.url);
const from = `'../bindings/node/index'`;
const text = readFileSync(file, 'utf8');
if (!text.includes(from)) throw new Error(`fix-dts: ${from} is no longer in dist/cjs/native.d.ts: update scripts/fix-dts.mjs`);
writeFileSync(file, text.replaceAll(from, `'../../bindings/node/index'`));
