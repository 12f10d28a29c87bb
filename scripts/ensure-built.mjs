// Builds the addon and the TypeScript when their outputs are missing or older than their sources, so
// `npm test`, `npm run demo` and the examples work straight after `npm ci`.
import { execSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// A path, not the URL's pathname: on Windows that would be `/D:/...`.
const root = fileURLToPath(new URL('..', import.meta.url));

function newest(dir, exts) {
  let t = 0;
  for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(p, exts));
    else if (exts.some((x) => e.name.endsWith(x))) t = Math.max(t, statSync(join(root, p)).mtimeMs);
  }
  return t;
}

function oldest(files) {
  return Math.min(...files.map((f) => (existsSync(join(root, f)) ? statSync(join(root, f)).mtimeMs : 0)));
}

const addon = existsSync(join(root, 'bindings/node'))
  ? readdirSync(join(root, 'bindings/node')).filter((f) => f.endsWith('.node')).map((f) => `bindings/node/${f}`)
  : [];
const nativeSrc = Math.max(newest('crates', ['.rs', '.toml']), newest('bindings/node/src', ['.rs']), statSync(join(root, 'Cargo.lock')).mtimeMs);
const run = (cmd) => execSync(cmd, { cwd: root, stdio: 'inherit' });

if (addon.length === 0 || oldest([...addon, 'bindings/node/index.js']) < nativeSrc) run('npm run build:native');
const tsOut = ['dist/cjs/index.js', 'dist/esm/index.mjs', 'dist/examples/tcp-echo-server.js'];
if (oldest(tsOut) < Math.max(newest('ts', ['.ts']), newest('examples', ['.ts']), oldest(['bindings/node/index.d.ts']))) run('npm run build:ts');
