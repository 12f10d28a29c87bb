// Child processes against real programs, compared with Node's child_process where it applies.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DEVNULL,
  PIPE,
  ReadTransport,
  STDOUT,
  SubprocessProtocol,
  SubprocessTransport,
  WriteTransport,
  getRunningLoop,
  subprocessExec,
  subprocessShell,
} from 'protoloop';
import { expectNoNewFds, fdSnapshot, waitFor } from './helpers';

const dir = mkdtempSync(join(tmpdir(), 'protoloop-subprocess-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Records every callback in order, with each pipe's bytes. */
class Rec extends SubprocessProtocol {
  transport!: SubprocessTransport;
  calls: string[] = [];
  out: Record<number, Buffer[]> = { 1: [], 2: [] };
  pipeExc: Record<number, Error | null> = {};
  lostExc: Error | null | undefined;
  readonly done: Promise<Error | null>;
  #done!: (e: Error | null) => void;
  constructor() {
    super();
    this.done = new Promise((r) => (this.#done = r));
  }
  override connectionMade(t: SubprocessTransport): void {
    this.transport = t;
    this.calls.push('connectionMade');
  }
  override pipeDataReceived(fd: number, data: Buffer): void {
    this.out[fd].push(Buffer.from(data));
  }
  override pipeConnectionLost(fd: number, exc: Error | null): void {
    this.calls.push(`pipeConnectionLost(${fd})`);
    this.pipeExc[fd] = exc;
  }
  override processExited(): void {
    this.calls.push('processExited');
  }
  override pauseWriting(): void {
    this.calls.push('pauseWriting');
  }
  override resumeWriting(): void {
    this.calls.push('resumeWriting');
  }
  override connectionLost(exc: Error | null): void {
    this.calls.push('connectionLost');
    this.lostExc = exc;
    this.#done(exc);
  }
  text(fd: number): string {
    return Buffer.concat(this.out[fd]).toString();
  }
}

async function run(cmd: string, options = {}): Promise<Rec> {
  const [, rec] = await subprocessShell(() => new Rec(), cmd, options);
  await rec.done;
  return rec;
}

/** Children of this process that are zombies (exited, not reaped): from `/proc` on Linux, `ps` elsewhere. */
function zombies(): number[] {
  if (process.platform !== 'linux') return psZombies(process.pid);
  const out: number[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z' && Number(fields[1]) === process.pid) out.push(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** `ps`'s list of the zombie children of `parent` (macOS has no `/proc`). */
function psZombies(parent: number): number[] {
  return execFileSync('ps', ['-A', '-o', 'pid=,ppid=,stat='], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(([, ppid, stat]) => Number(ppid) === parent && stat?.startsWith('Z'))
    .map(([pid]) => Number(pid));
}

describe('subprocessExec and subprocessShell', () => {
  it("runs the spec's example (examples/subprocess-date.ts)", () => {
    const out = execFileSync(process.execPath, [join(__dirname, '..', 'dist', 'examples', 'subprocess-date.js')], { encoding: 'utf8' });
    expect(out).toMatch(/^Current date: \w{3} \w{3} \d\d \d{4} /);
  });

  it('follows the state machine: connectionMade, pipes and exit in either order, connectionLost last', async () => {
    const rec = await run('echo out; echo err >&2');
    const t = rec.transport;
    expect(t).toBeInstanceOf(SubprocessTransport);
    expect(rec.calls[0]).toBe('connectionMade');
    expect(rec.calls.at(-1)).toBe('connectionLost');
    expect(rec.calls.filter((c) => c === 'processExited')).toHaveLength(1);
    for (const fd of [0, 1, 2]) expect(rec.calls.filter((c) => c === `pipeConnectionLost(${fd})`)).toHaveLength(1);
    expect(rec.lostExc).toBe(null);
    expect(rec.text(1)).toBe('out\n');
    expect(rec.text(2)).toBe('err\n');
    expect(t.getReturncode()).toBe(0);
    expect(t.getPid()).toBeGreaterThan(0);
    expect(t.getExtraInfo('subprocess').pid).toBe(t.getPid());
  });

  it('exit codes are those child_process sees', async () => {
    for (const code of [0, 3, 255]) {
      const rec = await run(`exit ${code}`);
      expect(rec.transport.getReturncode()).toBe(code);
      expect(spawnSync('sh', ['-c', `exit ${code}`]).status).toBe(code);
    }
  });

  it('round-trips 64 MiB through cat, hashed, with stdin flow control', async () => {
    const [t, rec] = await subprocessExec(() => new Rec(), 'cat');
    const stdin = t.getPipeTransport(0) as WriteTransport;
    expect(stdin).toBeInstanceOf(WriteTransport);
    expect(t.getPipeTransport(1)).toBeInstanceOf(ReadTransport);
    expect(t.getPipeTransport(2)).toBeInstanceOf(ReadTransport);
    const sent = createHash('sha256');
    const received = createHash('sha256');
    let size = 0;
    rec.pipeDataReceived = (_fd, d) => {
      size += d.length;
      received.update(d);
    };
    const chunk = randomBytes(1 << 20);
    let left = 64;
    let paused = false;
    await new Promise<void>((done) => {
      const pump = () => {
        while (left > 0 && !paused) {
          stdin.write(chunk);
          sent.update(chunk);
          left--;
        }
        if (left === 0) done();
      };
      rec.pauseWriting = () => {
        rec.calls.push('pauseWriting');
        paused = true;
      };
      rec.resumeWriting = () => {
        rec.calls.push('resumeWriting');
        paused = false;
        pump();
      };
      pump();
    });
    stdin.writeEof();
    await rec.done;
    expect(rec.calls).toContain('pauseWriting');
    expect(size).toBe(64 << 20);
    expect(received.digest('hex')).toBe(sent.digest('hex'));
    expect(t.getReturncode()).toBe(0);
  });

  it('keeps stderr separate, or merges it into stdout with STDOUT', async () => {
    const sep = await run('echo a; echo b >&2', { stdin: DEVNULL });
    expect([sep.text(1), sep.text(2)]).toEqual(['a\n', 'b\n']);
    expect(sep.transport.getPipeTransport(0)).toBe(null);
    const merged = await run('echo a; echo b >&2', { stdin: DEVNULL, stderr: STDOUT });
    expect(merged.text(1)).toBe('a\nb\n');
    expect(merged.transport.getPipeTransport(2)).toBe(null);
    expect(merged.calls).not.toContain('pipeConnectionLost(2)');
  });

  it("the shell's command line is /bin/sh -c here and Node's cmd.exe line on Windows", () => {
    const { shellCommand } = createRequire(import.meta.url)('../dist/cjs/subprocess.js');
    expect(shellCommand('echo "a b" & exit 3', 'linux', {})).toEqual({ program: '/bin/sh', args: ['-c', 'echo "a b" & exit 3'], verbatim: false });
    // What Node's child_process runs for `spawn(cmd, { shell: true })` on Windows: the whole command in
    // one pair of quotes that `/s` strips, passed without quoting of its own (windowsVerbatimArguments).
    const win = shellCommand('echo "a b" & exit 3', 'win32', { ComSpec: 'C:\\Windows\\system32\\cmd.exe' });
    expect(win).toEqual({ program: 'C:\\Windows\\system32\\cmd.exe', args: ['/d', '/s', '/c', '"echo "a b" & exit 3"'], verbatim: true });
    expect(shellCommand('dir', 'win32', {}).program).toBe('cmd.exe');
  });

  it('DEVNULL and inherit (null) behave as child_process "ignore" and "inherit"', async () => {
    const rec = await run('cat; echo done', { stdin: DEVNULL, stderr: DEVNULL });
    expect(rec.text(1)).toBe('done\n');
    // Inherit: a grandchild writes straight to the stdout of the Node process that spawned it.
    const script = `
      const { subprocessShell, SubprocessProtocol } = require(${JSON.stringify(join(__dirname, '..', 'dist', 'cjs', 'index.js'))});
      subprocessShell(() => new SubprocessProtocol(), 'echo inherited; echo err >&2', { stdin: null, stdout: null, stderr: null });`;
    const ours = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    const node = spawnSync(process.execPath, ['-e', `require('child_process').spawn('sh', ['-c', 'echo inherited; echo err >&2'], { stdio: 'inherit' })`], { encoding: 'utf8' });
    expect([ours.stdout, ours.stderr]).toEqual(['inherited\n', 'err\n']);
    expect([ours.stdout, ours.stderr]).toEqual([node.stdout, node.stderr]);
  });

  it('takes a descriptor for stdout and leaves it open for its owner', async () => {
    const file = join(dir, 'out.txt');
    const fd = openSync(file, 'w');
    const rec = await run('echo to-file', { stdout: fd, stdin: DEVNULL });
    expect(rec.transport.getPipeTransport(1)).toBe(null);
    closeSync(fd); // still open, so this succeeds
    expect(readFileSync(file, 'utf8')).toBe('to-file\n');
  });

  it('cwd and env', async () => {
    const rec = await run('pwd; echo "$FOO:$HOME"', { cwd: dir, env: { FOO: 'bar', PATH: process.env.PATH ?? '' } });
    expect(rec.text(1)).toBe(`${dir}\nbar:\n`);
  });

  it('kill gives -9, terminate -15, sendSignal takes names; ESRCH after exit', async () => {
    const [t1, r1] = await subprocessExec(() => new Rec(), 'sleep', ['30']);
    t1.kill();
    await r1.done;
    expect(t1.getReturncode()).toBe(-9);
    const [t2, r2] = await subprocessExec(() => new Rec(), 'sleep', ['30']);
    t2.terminate();
    await r2.done;
    expect(t2.getReturncode()).toBe(-15);
    const [t3, r3] = await subprocessExec(() => new Rec(), 'sleep', ['30']);
    t3.sendSignal('SIGUSR1');
    await r3.done;
    expect(t3.getReturncode()).toBe(-10);
    // Node sees the same signal for the same command.
    const node = spawnSync('sh', ['-c', 'kill -USR1 $$']);
    expect(node.signal).toBe('SIGUSR1');
    for (const t of [t1, t2, t3]) {
      expect(() => t.sendSignal('SIGTERM')).toThrow(expect.objectContaining({ code: 'ESRCH' }));
      expect(() => t.kill()).toThrow(expect.objectContaining({ code: 'ESRCH' }));
    }
    expect(() => t1.sendSignal('SIGNOPE')).toThrow(TypeError);
    expect(() => t1.sendSignal(-1)).toThrow(RangeError);
  });

  it('processExited may come before the pipes close (a grandchild holds stdout) and still comes once', async () => {
    const [t, rec] = await subprocessShell(() => new Rec(), '(sleep 0.3; echo late) & exit 0', { stdin: DEVNULL, stderr: DEVNULL });
    await waitFor(() => rec.calls.includes('processExited'));
    expect(t.getReturncode()).toBe(0);
    expect(rec.calls).not.toContain('connectionLost');
    await rec.done;
    expect(rec.text(1)).toBe('late\n');
    expect(rec.calls).toEqual(['connectionMade', 'processExited', 'pipeConnectionLost(1)', 'connectionLost']);
  });

  it('pipes may close before processExited', async () => {
    const rec = await run('exec 1>&- 2>&- 0<&-; sleep 0.2');
    const exited = rec.calls.indexOf('processExited');
    for (const fd of [1, 2]) expect(rec.calls.indexOf(`pipeConnectionLost(${fd})`)).toBeLessThan(exited);
    expect(rec.calls.at(-1)).toBe('connectionLost');
  });

  it('close() kills a running child and closes its pipes', async () => {
    const [t, rec] = await subprocessExec(() => new Rec(), 'sleep', ['30']);
    t.close();
    expect(t.isClosing()).toBe(true);
    await rec.done;
    expect(t.getReturncode()).toBe(-9);
    expect(rec.calls.at(-1)).toBe('connectionLost');
  });

  it('an exception in pipeDataReceived goes to the exception handler and kills the child', async () => {
    const loop = getRunningLoop();
    const seen: unknown[] = [];
    loop.setExceptionHandler((ctx) => seen.push(ctx.exception));
    try {
      const [t, rec] = await subprocessShell(() => new Rec(), 'echo x; sleep 30');
      const boom = new Error('boom');
      rec.pipeDataReceived = () => {
        throw boom;
      };
      expect(await rec.done).toBe(boom);
      expect(seen).toContain(boom);
      expect(t.getReturncode()).toBe(-9);
    } finally {
      loop.setExceptionHandler(null);
    }
  });

  it('rejects with ENOENT before any protocol callback', async () => {
    const rec = new Rec();
    await expect(subprocessExec(() => rec, '/no/such/program')).rejects.toMatchObject({ code: 'ENOENT', syscall: 'spawn' });
    await expect(subprocessExec(() => new Rec(), 'ls', [], { cwd: '/no/such/dir' })).rejects.toMatchObject({ code: 'ENOENT' });
    expect(rec.calls).toEqual([]);
  });

  it('refuses bad arguments with TypeError/RangeError naming them', async () => {
    const pf = () => new Rec();
    await expect(subprocessExec('x' as any, 'ls')).rejects.toThrow(/protocolFactory/);
    await expect(subprocessExec(pf, 42 as any)).rejects.toThrow(/"program"/);
    await expect(subprocessExec(pf, '')).rejects.toThrow(TypeError);
    await expect(subprocessExec(pf, 'ls', 'x' as any)).rejects.toThrow(/"args"/);
    await expect(subprocessExec(pf, 'ls', [1 as any])).rejects.toThrow(/args\[0\]/);
    await expect(subprocessExec(pf, 'ls', ['a\0b'])).rejects.toThrow(/null bytes/);
    await expect(subprocessShell(pf, null as any)).rejects.toThrow(/"cmd"/);
    await expect(subprocessExec(pf, 'ls', [], { stdin: 'pipe' as any })).rejects.toThrow(/options.stdin/);
    await expect(subprocessExec(pf, 'ls', [], { stdout: STDOUT })).rejects.toThrow(RangeError);
    await expect(subprocessExec(pf, 'ls', [], { stderr: -7 })).rejects.toThrow(RangeError);
    await expect(subprocessExec(pf, 'ls', [], { env: { A: 1 as any } })).rejects.toThrow(/options.env.A/);
    await expect(subprocessExec(pf, 'ls', [], { env: { 'A=B': 'x' } })).rejects.toThrow(TypeError);
    await expect(subprocessExec(pf, 'ls', [], { startNewSession: 1 as any })).rejects.toThrow(/startNewSession/);
    await expect(subprocessExec(pf, 'ls', [], 5 as any)).rejects.toThrow(/options/);
    const [t, rec] = await subprocessExec(pf, 'true');
    expect(() => t.getPipeTransport(-1)).toThrow(RangeError);
    expect(t.getPipeTransport(3)).toBe(null);
    await rec.done;
  });

  it('startNewSession runs the child in a session of its own', async () => {
    // python3 (exec'd: the child itself) asks for its session, on Linux and macOS alike.
    const rec = await run(`exec python3 -c 'import os; print(os.getsid(0), os.getpid())'`, { startNewSession: true });
    const [sid, pid] = rec.text(1).trim().split(/\s+/);
    expect(sid).toBe(pid);
    expect(PIPE).toBe(-1);
  });

  it('processGroup and, where permitted, uid/gid', async () => {
    const rec = await run(`exec python3 -c 'import os; print(os.getpgrp(), os.getpid())'`, { processGroup: 0 });
    const [pgrp, pid] = rec.text(1).trim().split(/\s+/);
    expect(pgrp).toBe(pid);
    if (process.getuid?.() === 0) {
      const ids = await run('id -u; id -g', { uid: 65534, gid: 65534 });
      expect(ids.text(1)).toBe('65534\n65534\n');
    } else {
      await expect(subprocessExec(() => new Rec(), 'true', [], { uid: 0 })).rejects.toMatchObject({ code: 'EPERM' });
    }
  });

  it('reaps 200 concurrent short children: no zombies, no descriptor leaks', async () => {
    await run('true'); // warm up whatever the first spawn allocates
    const before = fdSnapshot();
    const all = await Promise.all(
      Array.from({ length: 200 }, (_, i) => subprocessShell(() => new Rec(), `exit ${i % 7}`).then(([, r]) => r.done.then(() => r))),
    );
    all.forEach((r, i) => expect(r.transport.getReturncode()).toBe(i % 7));
    expect(zombies()).toEqual([]);
    // A pipe's descriptor closes as its engine task ends, just after its close is reported.
    await expectNoNewFds(before);
  });

  it('a child that is never waited for is still reaped', async () => {
    const script = `
      const { subprocessExec, SubprocessProtocol } = require(${JSON.stringify(join(__dirname, '..', 'dist', 'cjs', 'index.js'))});
      subprocessExec(() => new SubprocessProtocol(), 'true', [], { stdin: null, stdout: null, stderr: null }).then(([t]) =>
        setTimeout(() => {
          const fs = require('fs');
          const z = process.platform !== 'linux'
            ? require('child_process').execFileSync('ps', ['-A', '-o', 'ppid=,stat='], { encoding: 'utf8' }) // no /proc on macOS
                .split('\\n').map((l) => l.trim().split(/\\s+/)).filter(([ppid, stat]) => +ppid === process.pid && String(stat).startsWith('Z'))
            : fs.readdirSync('/proc').filter((p) => /^\\d+$/.test(p)).filter((p) => {
                try { const s = fs.readFileSync('/proc/' + p + '/stat', 'utf8'); const f = s.slice(s.lastIndexOf(')') + 2).split(' '); return f[0] === 'Z' && +f[1] === process.pid; } catch { return false; }
              });
          console.log(JSON.stringify({ zombies: z.length, rc: t.getReturncode() }));
        }, 300));`;
    const out = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(JSON.parse(out.stdout)).toEqual({ zombies: 0, rc: 0 });
  });

  it('compares with child_process on the same command', async () => {
    const rec = await run('printf "%s" hello; printf oops >&2; exit 4');
    const node = await new Promise<{ out: string; err: string; code: number | null }>((resolve) => {
      const c = spawn('sh', ['-c', 'printf "%s" hello; printf oops >&2; exit 4']);
      let out = '';
      let err = '';
      c.stdout.on('data', (d) => (out += d));
      c.stderr.on('data', (d) => (err += d));
      c.on('close', (code) => resolve({ out, err, code }));
    });
    expect({ out: rec.text(1), err: rec.text(2), code: rec.transport.getReturncode() }).toEqual(node);
  });
});
