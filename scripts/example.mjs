// `npm run example -- <name>`: runs examples/<name>.ts (compiled to dist/examples).
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';

const dir = new URL('../dist/examples/', import.meta.url);
const name = (process.argv[2] ?? '').replace(/\.(ts|js)$/, '');
const file = new URL(`${name}.js`, dir);
if (!name || !existsSync(file)) {
  const all = readdirSync(dir).filter((f) => f.endsWith('.js')).map((f) => f.slice(0, -3));
  console.error(`usage: npm run example -- <name>\nexamples: ${all.join(', ')}`);
  process.exit(2);
}
const child = spawn(process.execPath, [file.pathname, ...process.argv.slice(3)], { stdio: 'inherit' });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(signal ? 1 : code ?? 0));
