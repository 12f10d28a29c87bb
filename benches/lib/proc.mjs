// Child processes of the harness: servers under test (started, asked for memory, stopped) and the
// load generator (run to completion, its JSON line parsed).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

const live = new Set();
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    for (const c of live) c.kill('SIGKILL');
    process.exit(130);
  });
}
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/**
 * Spawns `cmd args`, under a shell that first raises the soft descriptor limit to the hard one (10,000
 * idle connections need that). `exec` keeps the pid: the harness reads the server's /proc entry.
 */
export function spawnRaised(cmd, args, opts = {}) {
  const child = spawn('/bin/sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', cmd, ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
    ...opts,
  });
  live.add(child);
  child.on('exit', () => live.delete(child));
  return child;
}

/** Reads `child`'s stdout line by line; `next(pred)` resolves to the first line that matches. */
function lines(child) {
  const rl = createInterface({ input: child.stdout });
  const queue = [];
  const waiters = [];
  let ended = false;
  rl.on('line', (l) => {
    const i = waiters.findIndex((w) => w.pred(l));
    if (i >= 0) waiters.splice(i, 1)[0].resolve(l);
    else queue.push(l);
  });
  child.on('exit', (code, sig) => {
    ended = true;
    for (const w of waiters.splice(0)) w.reject(new Error(`exited (${code ?? sig}) before printing the expected line`));
  });
  return {
    next(pred, timeoutMs = 60_000) {
      const i = queue.findIndex(pred);
      if (i >= 0) return Promise.resolve(queue.splice(i, 1)[0]);
      if (ended) return Promise.reject(new Error('exited before printing the expected line'));
      return new Promise((resolve, reject) => {
        const w = { pred, resolve, reject };
        const t = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`no expected line within ${timeoutMs / 1000} s`));
        }, timeoutMs);
        w.resolve = (l) => (clearTimeout(t), resolve(l));
        w.reject = (e) => (clearTimeout(t), reject(e));
        waiters.push(w);
      });
    },
  };
}

/** A server under test, running until `stop()`. */
export class ServerProcess {
  constructor(peer, mode, total) {
    this.peer = peer;
    this.child = spawnRaised(peer.cmd, [...peer.args, '--port', '0', '--mode', mode, '--total', String(total)], {
      env: { ...process.env, ...(peer.env ?? {}) },
    });
    this.pid = this.child.pid;
    this.out = lines(this.child);
  }

  async ready() {
    const l = await this.out.next((l) => l.startsWith('LISTENING '), 30_000).catch((e) => {
      throw new Error(`${this.peer.name} server did not start: ${e.message}`);
    });
    this.port = Number(l.split(' ')[1]);
    // A wrapper that runs the server as its child (nginx, haproxy) names the process to measure.
    if (this.peer.reportsPid) this.pid = Number((await this.out.next((l) => l.startsWith('PID '), 5000)).split(' ')[1]);
    return this;
  }

  /** VmRSS in bytes, from /proc. */
  rss() {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  }

  /** Node's `process.memoryUsage()` after a full GC, for servers that run JavaScript. */
  async jsMemory() {
    this.child.stdin.write('mem\n');
    const l = await this.out.next((l) => l.startsWith('MEM '), 30_000);
    return JSON.parse(l.slice(4));
  }

  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = new Promise((r) => this.child.once('exit', r));
    this.child.stdin.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await gone;
    clearTimeout(t);
  }
}

/** Runs the load generator to completion and parses the JSON line it prints. */
export function runLoadgen(bin, args, timeoutMs = 120_000) {
  return new Promise((resolve, reject) => {
    const child = spawnRaised(bin, args);
    child.stdin.end();
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, sig) => {
      clearTimeout(t);
      if (code !== 0) return reject(new Error(`loadgen ${args[0]} failed (${code ?? sig})`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()));
      } catch (e) {
        reject(new Error(`loadgen printed no JSON: ${out}`));
      }
    });
  });
}

/** Starts `loadgen idle`, resolves once every connection is up; `release()` lets it close them. */
export async function holdIdle(bin, args) {
  const child = spawnRaised(bin, ['idle', ...args]);
  const out = lines(child);
  const ready = JSON.parse((await out.next((l) => l.startsWith('READY '), 120_000)).slice(6));
  return {
    ready,
    async release() {
      const gone = new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      child.stdin.end();
      await gone;
    },
  };
}

/**
 * Counts the system calls of process `pid`, every thread, from now until `stop()` (which resolves to
 * the count, or null when perf cannot count here). perf's `raw_syscalls:sys_enter` tracepoint is a
 * counter in the kernel: the server runs at full speed, where strace stops it at every call and so
 * changes the timing that decides how many calls a request takes (whether the next request is already
 * there when a turn ends). Start it before the load and stop it after; an idle server makes no calls.
 */
export async function countSyscalls(pid) {
  const child = spawn('perf', ['stat', '-x', ',', '-e', 'raw_syscalls:sys_enter', '-p', String(pid)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const gone = new Promise((r) => child.once('close', r));
  child.once('error', () => {});
  // perf prints nothing once it is attached; it attaches in a few milliseconds.
  await new Promise((r) => setTimeout(r, 250));
  return {
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      await gone;
      const m = /^(\d+),[^,]*,raw_syscalls:sys_enter/m.exec(err);
      return m ? Number(m[1]) : null;
    },
  };
}
