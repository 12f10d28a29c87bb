// The portable build's suite: builds the addon with the engine's `portable` feature (the POSIX calls
// macOS makes, crates/engine/src/sys/portable.rs, instead of Linux's accept4, pipe2, recvmmsg,
// sendmmsg, sendfile and pidfds) into target/portable, then runs the engine's tests and the TypeScript
// suite over it. That is how this Linux machine shows the macOS code paths behave, not only compile.
//
//   npm run test:portable [-- VITEST_ARGS ...]
//
// The addon is loaded through PROTOLOOP_NATIVE_LIBRARY_PATH (ts/native.ts), so the regular build in bindings/node stays
// as it is; PROTOLOOP_PORTABLE=1 tells the tests what they run over (no abstract Unix names, as on macOS).
// Not a release build: no LTO, many codegen units, to keep CI short.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const out = join(root, 'target/portable');
const run = (cmd, args, env = {}) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
const quick = { CARGO_PROFILE_RELEASE_LTO: 'false', CARGO_PROFILE_RELEASE_CODEGEN_UNITS: '16' };

run('node', ['scripts/ensure-built.mjs']);
run('cargo', ['test', '-p', 'protoloop-engine', '--features', 'portable', '--target-dir', out]);
run('npx', ['napi', 'build', '--platform', '--release', '--features', 'portable', '--manifest-path', 'bindings/node/Cargo.toml',
  '--package-json-path', 'package.json', '--target-dir', out, '--output-dir', out, '--no-js', '--dts', 'portable.d.ts'], quick);
const addon = readdirSync(out).filter((f) => f.endsWith('.node'));
if (addon.length !== 1) throw new Error(`expected one .node in ${out}, found ${addon.join(', ') || 'none'}`);
// package.test.ts is left out: it installs the packed addon and checks where it was loaded from, which
// PROTOLOOP_NATIVE_LIBRARY_PATH would override; it tests packaging, not system calls.
run('npx', ['vitest', 'run', '--exclude', '**/package.test.ts', ...process.argv.slice(2)],
  { PROTOLOOP_NATIVE_LIBRARY_PATH: join(out, addon[0]), PROTOLOOP_PORTABLE: '1' });
