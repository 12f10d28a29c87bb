// The package as a user gets it: the root and linux-x64-gnu tarballs of `npm run pack:local`, installed
// with `npm install --offline` into an empty project whose PATH has no cargo or rustc, then used from
// ESM, CommonJS and strict TypeScript.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { accessSync, constants, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('..', import.meta.url));
const glibc = process.platform === 'linux' && !!(process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime;
const host = process.platform === 'linux' && process.arch === 'x64' && glibc;

function isExecutable(dir: string, name: string): boolean {
  try {
    accessSync(join(dir, name), constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const { version } = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string };
let tmp: string;
let project: string;
let env: NodeJS.ProcessEnv;

function run(cmd: string, args: string[], cwd = project): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 120_000 });
}

function ok(r: SpawnSyncReturns<string>): string {
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`exit ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const fixtures = join(repo, '__test__', 'fixtures');
const addon = (app: string) => join(app, 'node_modules/protoloop-linux-x64-gnu/protoloop.linux-x64-gnu.node');

describe.skipIf(!host)('the packed package, installed offline without a Rust toolchain', () => {
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'protoloop-consumer-'));
    const tarballs = join(tmp, 'tarballs');
    // The build is current (pretest); packing must not rebuild it under the other test files' feet.
    ok(spawnSync(process.execPath, [join(repo, 'scripts/pack-local.mjs'), '--no-build', `--out=${tarballs}`], { cwd: repo, encoding: 'utf8' }));
    const files = readdirSync(tarballs).sort();
    expect(files).toEqual([`protoloop-${version}.tgz`, `protoloop-linux-x64-gnu-${version}.tgz`]);

    // PATH: this node and npm, then every entry of the current PATH that has neither cargo nor rustc.
    const bin = join(tmp, 'bin');
    mkdirSync(bin);
    const path = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
    const npmDir = path.find((d) => isExecutable(d, 'npm'));
    if (!npmDir) throw new Error('npm is not on PATH');
    symlinkSync(process.execPath, join(bin, 'node'));
    symlinkSync(realpathSync(join(npmDir, 'npm')), join(bin, 'npm'));
    const kept = path.filter((d) => !isExecutable(d, 'cargo') && !isExecutable(d, 'rustc'));
    // npm's own variables (npm_config_local_prefix, ...) would point the inner npm at this repository.
    env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(npm_|CARGO|RUSTUP|RUSTC)/i.test(k)));
    env.PATH = [bin, ...kept].join(delimiter);
    project = join(tmp, 'app');
    mkdirSync(project);
    expect(run('cargo', ['--version']).error).toMatchObject({ code: 'ENOENT' });
    expect(run('rustc', ['--version']).error).toMatchObject({ code: 'ENOENT' });

    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
    ok(run('npm', ['install', '--offline', '--no-audit', '--no-fund', ...files.map((f) => join(tarballs, f))]));
  }, 120_000);

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('the root package carries no addon; the platform package does', () => {
    const inRoot = readdirSync(join(project, 'node_modules/protoloop/bindings/node'));
    expect(inRoot.filter((f) => f.endsWith('.node'))).toEqual([]);
    expect(readdirSync(join(project, 'node_modules/protoloop-linux-x64-gnu'))).toContain('protoloop.linux-x64-gnu.node');
  });

  it('echoes over TCP through import { createServer, createConnection } from "protoloop"', () => {
    copyFileSync(join(fixtures, 'package-echo.mjs'), join(project, 'echo.mjs'));
    const out = JSON.parse(ok(run('node', ['echo.mjs'])));
    expect(out.echoed).toBe(out.sent);
    expect(out.addons).toEqual([addon(project)]);
  });

  it('echoes over TCP through require("protoloop")', () => {
    copyFileSync(join(fixtures, 'package-echo.cjs'), join(project, 'echo.cjs'));
    const out = JSON.parse(ok(run('node', ['echo.cjs'])));
    expect(out.echoed).toBe(out.sent);
    expect(out.addons).toEqual([addon(project)]);
  });

  it('prefers an addon built next to the loader over the platform package', () => {
    const local = join(project, 'node_modules/protoloop/bindings/node/protoloop.linux-x64-gnu.node');
    copyFileSync(addon(project), local);
    copyFileSync(join(fixtures, 'package-echo.cjs'), join(project, 'echo.cjs'));
    try {
      const out = JSON.parse(ok(run('node', ['echo.cjs'])));
      expect(out.echoed).toBe(out.sent);
      expect(out.addons).toEqual([local]);
    } finally {
      rmSync(local);
    }
  });

  it('type-checks a consumer with tsc --noEmit in strict mode, for import and require', () => {
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          skipLibCheck: false, // the package's own .d.ts files must resolve, too
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          lib: ['es2022', 'esnext.disposable'],
          types: ['node'],
          typeRoots: [join(repo, 'node_modules/@types')],
        },
        files: ['consumer.mts', 'consumer.cts'],
      }),
    );
    copyFileSync(join(fixtures, 'package-consumer.mts'), join(project, 'consumer.mts'));
    copyFileSync(join(fixtures, 'package-consumer.cts'), join(project, 'consumer.cts'));
    ok(run('node', [join(repo, 'node_modules/typescript/bin/tsc'), '-p', '.']));
  });

  it('without the platform package, loading fails with an error naming the platform', () => {
    const pkg = join(project, 'node_modules/protoloop-linux-x64-gnu');
    renameSync(pkg, `${pkg}.away`);
    try {
      for (const args of [['-e', "require('protoloop')"], ['--input-type=module', '-e', "import 'protoloop'"]]) {
        const r = run('node', args);
        expect(r.status).not.toBe(0);
        expect(r.stderr).toContain('no native addon for this platform (linux-x64-gnu)');
        expect(r.stderr).toContain('the package protoloop-linux-x64-gnu');
      }
    } finally {
      renameSync(`${pkg}.away`, pkg);
    }
  });

  it('on a Node.js older than its engines field, loading throws an Error naming that version and the supported ones', () => {
    // This Node.js made to report 18.20.8 (scripts/node-versions.mjs does the same with a real Node 18).
    const old = "Object.defineProperty(process.versions, 'node', { value: '18.20.8' });";
    const engines = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    for (const args of [['-e', `${old} require('protoloop')`], ['--input-type=module', '-e', `${old} await import('protoloop')`]]) {
      const r = run('node', args);
      expect(r.signal).toBe(null);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`Error: protoloop: Node.js 18.20.8 is not supported: protoloop supports Node.js ${engines}`);
    }
    // The same package loads on this Node.js, which is in the range.
    expect(ok(run('node', ['-e', "require('protoloop'); console.log('loaded')"]))).toBe('loaded\n');
  });
});
