// protoloop in several JavaScript threads of one process: each worker (and the main thread) has an
// engine of its own, and a worker that ends takes everything it owned with it. Each case runs in a
// fresh Node (so an abort or a leak shows as that process's exit status and output), under the reactor
// this suite runs with (`PROTOLOOP_REACTOR=threads` covers the I/O-thread engine).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { entry, freePort, nodeConnect, runScript, waitFor } from './helpers';

const cjs = entry.replace(/esm\/index\.mjs$/, 'cjs/index.js');

/** For the main thread and the workers: an echo protocol, and `ask(port, text)`, a protoloop client
 * that sends `text`, resolves with what comes back first and closes. */
const common = `
class Echo extends pl.Protocol { connectionMade(t) { this.t = t; } dataReceived(d) { this.t.write(d); } }
async function ask(port, text) {
  let answer;
  const answered = new Promise((r) => (answer = r));
  class Ask extends pl.Protocol {
    connectionMade(t) { this.t = t; t.write(Buffer.from(text)); }
    dataReceived(d) { answer(String(d)); this.t.close(); }
  }
  await pl.createConnection(() => new Ask(), '127.0.0.1', port);
  return answered;
}
`;

/**
 * Script prelude: `common`, and `worker(body)`, which starts a worker (CommonJS) that has `pl`
 * (protoloop), `parentPort`, `workerData`, `common` and `send(message)`, and runs `body` in an async
 * function; `message(w)` is the worker's next message, `w.exited` its exit code. `fds()` and
 * `engineThreads()` list this process's descriptors and engine threads (the timer thread, one per
 * process shared by every engine, is not one).
 */
const prelude = `
import { once } from 'node:events';
import { fstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
const workerPrelude = \`
  const pl = require(${JSON.stringify(cjs)});
  const { parentPort, workerData } = require('node:worker_threads');
  const send = (m) => parentPort.postMessage(m);
  ${common}
\`;
globalThis.worker = (body, options = {}) => {
  const w = new Worker(workerPrelude + '(async () => {' + body + '})().catch((e) => { console.error(e); process.exit(1); });', { eval: true, execArgv: [], ...options });
  w.on('error', (e) => console.error('worker error', e));
  w.exited = once(w, 'exit').then(([code]) => code); // listened for at once: it may come before the awaits
  return w;
};
globalThis.message = async (w) => (await once(w, 'message'))[0];
${common}
// Descriptors as "fd -> target" (Linux's links; macOS has none in /dev/fd, so its device and inode).
globalThis.fds = () => process.platform === 'linux'
  ? readdirSync('/proc/self/fd').flatMap((fd) => { try { return [fd + ' -> ' + readlinkSync('/proc/self/fd/' + fd)]; } catch { return []; } })
  : readdirSync('/dev/fd').flatMap((fd) => { try { const s = fstatSync(Number(fd)); return [fd + ' -> ' + s.dev + ':' + s.ino]; } catch { return []; } });
// Threads have readable names only on Linux: elsewhere none are counted and the other checks stand alone.
globalThis.engineThreads = () => process.platform !== 'linux' ? [] : readdirSync('/proc/self/task')
  .map((t) => { try { return readFileSync('/proc/self/task/' + t + '/comm', 'utf8').trim(); } catch { return ''; } })
  .filter((n) => /^(protoloop|tokio)/.test(n) && n !== 'protoloop-timer');
globalThis.until = async (cond, what) => {
  for (const end = Date.now() + 10_000; !cond(); await new Promise((r) => setTimeout(r, 10))) {
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
  }
};
`;

async function run(code: string, timeoutMs = 25_000) {
  const r = await runScript(prelude + code, timeoutMs);
  expect(r.err).toBe('');
  expect({ status: r.status, signal: r.signal }).toEqual({ status: 0, signal: null });
  return JSON.parse(r.out.trim().split('\n').pop() ?? 'null');
}

/** How a child process ended, with its output (killed after 20 s). */
async function exited(child: ChildProcess) {
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const [status, signal] = await new Promise<[number | null, string | null]>((r) => child.on('exit', (s, g) => r([s, g])));
  clearTimeout(timer);
  return { status, signal, out, err };
}

describe('a worker that used protoloop ends without taking the process down (reproducer 15)', () => {
  // The reproducer as filed: the main thread never imports protoloop; a worker does, opens a connection
  // to a Node server of its own and is terminated (with `flow`, while the server floods the connection).
  // Before: the process aborted ("uv_loop_close() while having open handles") or segfaulted.
  const repro = (flow: boolean) => `
    import { Worker } from 'node:worker_threads';
    const w = new Worker(\`
    const pl = require(${JSON.stringify(cjs)});
    const net = require('net');
    const srv = net.createServer((s) => { s.on('error', () => {}); if (${flow}) { const b = Buffer.alloc(1 << 20); const f = () => { while (s.write(b)); }; s.on('drain', f); f(); } }).listen(0, '127.0.0.1', async () => {
      await pl.createConnection(() => new pl.Protocol(), '127.0.0.1', srv.address().port);
      require('worker_threads').parentPort.postMessage('ready');
    });\`, { eval: true, execArgv: [] });
    await new Promise((r) => w.on('message', r));
    await new Promise((r) => setTimeout(r, 100));
    await w.terminate();
    console.log('terminated');
  `;
  it.each([
    ['terminated while idle', false],
    ['terminated while a connection is receiving', true],
  ])('%s', async (_title, flow) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', repro(flow)], { stdio: ['ignore', 'pipe', 'pipe'] });
    expect(await exited(child)).toEqual({ status: 0, signal: null, out: 'terminated\n', err: '' });
  });

  it('the main thread imports protoloop after a worker that used it was terminated, and serves', async () => {
    // With the I/O-thread reactor the one engine of the process belonged to the worker: the main
    // thread's import then failed.
    const child = spawn(process.execPath, ['--input-type=module', '-e', repro(false) + `
      const pl = await import(${JSON.stringify(entry)});
      ${common}
      const server = await pl.createServer(() => new Echo(), '127.0.0.1', 0);
      console.log(await ask(server.sockets[0].getsockname()[1], 'main'));
      server.close();
    `], { stdio: ['ignore', 'pipe', 'pipe'] });
    expect(await exited(child)).toEqual({ status: 0, signal: null, out: 'terminated\nmain\n', err: '' });
  });
});

describe('threads', () => {
  it('a worker serves a main-thread client, and a worker is the client of a main-thread server', async () => {
    const r = await run(`
      const server = worker(\`
        const s = await pl.createServer(() => new Echo(), '127.0.0.1', 0);
        send(s.sockets[0].getsockname()[1]);
        parentPort.once('message', () => s.close());
      \`);
      const port = await message(server);
      const fromWorker = await ask(port, 'served by a worker');
      server.postMessage('close');
      const mainServer = await pl.createServer(() => new Echo(), '127.0.0.1', 0);
      const client = worker(\`
        send(await ask(workerData, 'served by the main thread'));
      \`, { workerData: mainServer.sockets[0].getsockname()[1] });
      const fromMain = await message(client);
      await Promise.all([server.exited, client.exited]);
      mainServer.close();
      console.log(JSON.stringify({ fromWorker, fromMain }));
    `);
    expect(r).toEqual({ fromWorker: 'served by a worker', fromMain: 'served by the main thread' });
  });

  it('two workers serve one port with reusePort, each taking some of the connections', async () => {
    const r = await run(`
      import * as net from 'node:net';
      const serve = (port) => worker(\`
        class Tell extends pl.Protocol { connectionMade(t) { t.write(Buffer.from(String(workerData.n))); t.close(); } }
        const s = await pl.createServer(() => new Tell(), '127.0.0.1', workerData.port, { reusePort: true });
        send(s.sockets[0].getsockname()[1]);
        parentPort.once('message', () => s.close());
      \`, { workerData: { port, n: port === 0 ? 1 : 2 } });
      const a = serve(0);
      const port = await message(a);
      const b = serve(port);
      await message(b);
      const seen = new Set();
      // The kernel spreads connections over the two sockets by a hash of their addresses: 200 tries
      // that all land on one worker would be a chance of 2^-199.
      for (let i = 0; i < 200 && seen.size < 2; i++) {
        const c = net.connect(port, '127.0.0.1');
        let got = '';
        c.on('data', (d) => (got += d));
        await once(c, 'end');
        c.destroy();
        seen.add(got);
      }
      a.postMessage('close');
      b.postMessage('close');
      await Promise.all([a.exited, b.exited]);
      console.log(JSON.stringify([...seen].sort()));
    `);
    expect(r).toEqual(['1', '2']);
  });

  it.each([
    ['terminated', 'await w.terminate();'],
    ['calling process.exit()', "w.postMessage('exit'); await w.exited;"],
  ])('a worker %s closes its connections, servers (the Unix socket file too) and kills its child', async (_how, end) => {
    const r = await run(`
      import * as net from 'node:net';
      import { existsSync } from 'node:fs';
      import { tmpdir } from 'node:os';
      const unixPath = tmpdir() + '/protoloop-threads-' + process.pid + '.sock';
      // The worker's client connects to this Node server; the main thread's Node client connects to
      // the worker's server. Both are made before the baseline, and their sockets destroyed after.
      const peers = [];
      const nodeServer = net.createServer((s) => { s.on('error', () => {}); peers.push(s); });
      await once(nodeServer.listen(0, '127.0.0.1'), 'listening');
      const warm = worker('');
      await warm.exited; // Node's own first-worker set-up is not the engine's
      const before = new Set(fds());
      const threadsBefore = engineThreads().length;
      const w = worker(\`
        const server = await pl.createServer(() => new Echo(), '127.0.0.1', 0);
        await pl.createUnixServer(() => new Echo(), workerData.unixPath);
        await pl.createConnection(() => new pl.Protocol(), '127.0.0.1', workerData.nodePort);
        const [child] = await pl.subprocessExec(() => new pl.SubprocessProtocol(), 'sleep', ['30']);
        parentPort.on('message', () => process.exit(0));
        send({ port: server.sockets[0].getsockname()[1], pid: child.getPid() });
      \`, { workerData: { unixPath, nodePort: nodeServer.address().port } });
      const { port, pid } = await message(w);
      const client = net.connect(port, '127.0.0.1');
      client.on('error', () => {});
      client.write('ping');
      await once(client, 'data');
      await until(() => peers.length === 1, 'the worker connecting');
      const during = { unixFile: existsSync(unixPath), threads: engineThreads().length - threadsBefore };
      ${end}
      // Both ends that the worker held see their connection end.
      const closed = (s) => s.destroyed ? null : once(s, 'close');
      await Promise.all([closed(client), closed(peers[0])]);
      client.destroy();
      peers[0].destroy();
      let childAlive = true;
      try { process.kill(pid, 0); } catch (e) { childAlive = e.code !== 'ESRCH'; }
      const leftover = () => fds().filter((f) => !before.has(f));
      await until(() => leftover().length === 0, 'the descriptors to close').catch(() => {});
      nodeServer.close();
      console.log(JSON.stringify({ during, unixFile: existsSync(unixPath), childAlive, leftover: leftover(), threads: engineThreads().length - threadsBefore }));
    `);
    expect(r.during.unixFile).toBe(true);
    if (process.env.PROTOLOOP_REACTOR === 'threads' && process.platform === 'linux') expect(r.during.threads).toBeGreaterThan(0);
    expect(r).toMatchObject({ unixFile: false, childAlive: false, leftover: [], threads: 0 });
  });

  it('a worker whose last transport closes exits by itself', async () => {
    const r = await run(`
      const w = worker(\`
        const s = await pl.createServer(() => new Echo(), '127.0.0.1', 0);
        send(await ask(s.sockets[0].getsockname()[1], 'bye'));
        s.close();
      \`);
      const said = await message(w);
      const code = await w.exited;
      console.log(JSON.stringify({ said, code }));
    `);
    expect(r).toEqual({ said: 'bye', code: 0 });
  });

  it('four workers import protoloop at once, each with an engine of its own', async () => {
    const r = await run(`
      const ws = Array.from({ length: 4 }, (_, i) => worker(\`
        const s = await pl.createServer(() => new Echo(), '127.0.0.1', 0);
        send(await ask(s.sockets[0].getsockname()[1], 'worker ' + workerData));
        s.close();
      \`, { workerData: i }));
      const said = await Promise.all(ws.map(message));
      const codes = await Promise.all(ws.map((w) => w.exited));
      console.log(JSON.stringify({ said, codes }));
    `);
    expect(r).toEqual({ said: ['worker 0', 'worker 1', 'worker 2', 'worker 3'], codes: [0, 0, 0, 0] });
  });

  it("the main thread's transports go on when a worker dies, and it can start new ones", async () => {
    const r = await run(`
      const server = await pl.createServer(() => new Echo(), '127.0.0.1', 0);
      const port = server.sockets[0].getsockname()[1];
      let got = [];
      let more;
      class Keep extends pl.Protocol {
        connectionMade(t) { this.t = t; }
        dataReceived(d) { got.push(String(d)); more?.(); }
      }
      const [t] = await pl.createConnection(() => new Keep(), '127.0.0.1', port);
      const next = (text) => new Promise((r) => { more = r; t.write(Buffer.from(text)); });
      await next('before');
      const w = worker(\`
        const s = await pl.createServer(() => new Echo(), '127.0.0.1', 0);
        await pl.createConnection(() => new Echo(), '127.0.0.1', s.sockets[0].getsockname()[1]);
        await pl.createConnection(() => new Echo(), '127.0.0.1', workerData);
        send('ready');
      \`, { workerData: port });
      await message(w);
      await w.terminate();
      await next('after');
      const fresh = await ask(port, 'a new connection');
      t.close();
      server.close();
      console.log(JSON.stringify({ got, fresh }));
    `);
    expect(r).toEqual({ got: ['before', 'after'], fresh: 'a new connection' });
  });
});

describe('the multi-core echo server example', () => {
  const example = new URL('../dist/examples/multicore-echo-server.js', import.meta.url).pathname;
  it.each(['workers', 'cluster'])('%s: both servers of one port take connections, and a SIGTERM ends them', async (mode) => {
    let out = '';
    const names = (what: string) => new Set([...out.matchAll(new RegExp(`^(.*): ${what}`, 'gm'))].map((m) => m[1]));
    let port = 0;
    let child!: ChildProcess;
    let ended!: ReturnType<typeof exited>;
    // A port freePort() found free may be taken by a test running beside this one before the servers
    // bind it (the example then dies of EADDRINUSE): another port then.
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      out = '';
      child = spawn(process.execPath, [example, mode, '2'], { env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
      ended = exited(child);
      child.stdout!.on('data', (d) => (out += d));
      await waitFor(() => names('serving').size === 2 || child.exitCode !== null, 20_000, 'two servers');
      if (names('serving').size === 2) break;
      const { err } = await ended;
      if (attempt === 5 || !err.includes('EADDRINUSE')) throw new Error(`the example ended before serving: ${err}`);
    }
    for (let i = 0; i < 200 && names('connection from').size < 2; i++) {
      const c = await nodeConnect(port);
      c.write(`hello ${i}`);
      const [echo] = await once(c, 'data');
      expect(String(echo)).toBe(`hello ${i}`);
      c.destroy();
      await waitFor(() => out.split('connection from').length - 1 === i + 1, 20_000, 'the connection logged');
    }
    expect(names('connection from')).toEqual(names('serving'));
    child.kill('SIGTERM');
    const { status, signal, err } = await ended;
    expect({ status, signal, err }).toEqual({ status: 0, signal: null, err: '' });
  });
});
