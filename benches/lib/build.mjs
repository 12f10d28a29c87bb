// Builds what the harness runs: the protoloop package (when stale), the Rust load generator and raw
// tokio peer (cargo, release), and the C epoll peer (gcc). Everything lands in target/bench.
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH = dirname(dirname(fileURLToPath(import.meta.url)));
export const ROOT = dirname(BENCH);
export const BIN = join(ROOT, 'target', 'bench');
export const LOADGEN = join(BIN, 'release', 'loadgen');

const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'], ...opts });

/** Whether `cmd` is an executable on PATH (or in /usr/sbin, where Debian puts nginx and haproxy). */
export function onPath(cmd) {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin'];
  return dirs.some((d) => d && existsSync(join(d, cmd)));
}

export function buildAll({ log, installPeers }) {
  log('building: protoloop (if stale), loadgen and raw tokio (cargo --release), C epoll (gcc -O2)');
  run(process.execPath, [join(ROOT, 'scripts', 'ensure-built.mjs')]);
  run('cargo', ['build', '--quiet', '--locked', '--release', '--manifest-path', join(BENCH, 'loadgen', 'Cargo.toml'), '--target-dir', BIN]);
  const csrc = join(BENCH, 'servers', 'c-epoll.c');
  const cbin = join(BIN, 'c-epoll');
  if (!existsSync(cbin) || statSync(cbin).mtimeMs < statSync(csrc).mtimeMs) {
    run('gcc', ['-O2', '-Wall', '-o', cbin, csrc]);
  }
  if (installPeers) {
    // The proxy case's nginx (with its stream module) and haproxy, from the distribution (Debian names).
    const missing = [['nginx', ['nginx', 'libnginx-mod-stream']], ['haproxy', ['haproxy']]].filter(([cmd]) => !onPath(cmd)).flatMap(([, pkgs]) => pkgs);
    if (missing.length) {
      log(`installing ${missing.join(' ')} with apt-get (--install-peers)`);
      try {
        run('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
      } catch {
        log(`apt-get install ${missing.join(' ')} failed (it needs root); the proxy case skips what is missing`);
      }
    }
    try {
      execFileSync('python3', ['-c', 'import uvloop'], { stdio: 'ignore' });
    } catch {
      log('installing uvloop with pip (--install-peers)');
      try {
        run('python3', ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', 'uvloop==0.23.0']);
      } catch {
        log('pip install uvloop failed; the uvloop peer is skipped');
      }
    }
  }
}
