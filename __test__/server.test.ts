// asyncio's Server on TCP: listening, the serving switch, closing, clients, options.
import * as net from 'node:net';
import { describe, expect, it } from 'vitest';
import { constants, createConnection, createServer, getRunningLoop, Server } from 'protoloop';
import { Echo, Recorder, fdTarget, nodeConnect, nodeServer, portOf, readAll, sleep, waitFor } from './helpers';


/** Sends `msg` on a Node socket and waits for the same bytes back. */
async function roundTrip(s: net.Socket, msg: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (d: Buffer) => {
      got += d.toString();
      if (got.length >= msg.length) {
        s.off('data', onData);
        resolve(got);
      }
    };
    s.on('data', onData);
    s.once('error', reject);
    s.write(msg);
  });
}

function connectFails(port: number, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, host, () => {
      s.destroy();
      resolve('connected');
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
}

describe('createServer', () => {
  it('listens on an ephemeral port and makes one protocol per connection', async () => {
    const [recording, recs] = recorders();
    const server = await createServer(recording, '127.0.0.1', 0);
    expect(server).toBeInstanceOf(Server);
    expect(server.isServing()).toBe(true);
    expect(server.sockets).toHaveLength(1);
    const port = portOf(server);
    expect(port).toBeGreaterThan(0);
    const a = await nodeConnect(port);
    const b = await nodeConnect(port);
    await waitFor(() => recs.length === 2);
    await Promise.all(recs.map((r) => r.made));
    const peers = recs.map((r) => (r.transport.getExtraInfo('peername') as [string, number])[1]).sort();
    expect(peers).toEqual([a.localPort, b.localPort].sort());
    a.end();
    b.end();
    await Promise.all(recs.map((r) => r.lost));
    await server[Symbol.asyncDispose]();
  });

  it('a list of hosts binds each; null binds every interface', async () => {
    const server = await createServer(() => new Echo(), ['127.0.0.1', '::1'], 0);
    expect(server.sockets).toHaveLength(2);
    const families = server.sockets.map((s) => s.family).sort();
    expect(families).toEqual([constants.AF_INET, constants.AF_INET6].sort());
    for (const sock of server.sockets) {
      const [host, port] = sock.getsockname() as [string, number];
      const s = await nodeConnect(port, host);
      expect(await roundTrip(s, `hi ${host}`)).toBe(`hi ${host}`);
      s.destroy();
    }
    server.close();
    await server.waitClosed();
    const any = await createServer(() => new Echo(), null, 0);
    expect(any.sockets.length).toBeGreaterThanOrEqual(1);
    const s = await nodeConnect(portOf(any), '127.0.0.1');
    expect(await roundTrip(s, 'any')).toBe('any');
    s.destroy();
    await any[Symbol.asyncDispose]();
  });

  it('host "localhost" and a protoloop client against it', async () => {
    const server = await createServer(() => new Echo(), 'localhost', 0);
    const port = portOf(server);
    const [host] = server.sockets[0].getsockname() as [string];
    const rec = new Recorder();
    const [t] = await createConnection(() => rec, host, port);
    t.write(Buffer.from('loc'));
    await waitFor(() => rec.received.length === 3);
    t.close();
    await rec.lost;
    await server[Symbol.asyncDispose]();
  });

  it('close() stops listening but accepted connections stay open; waitClosed waits for them', async () => {
    const server = await createServer(() => new Echo(), '127.0.0.1', 0);
    const port = portOf(server);
    const s = await nodeConnect(port);
    expect(await roundTrip(s, 'before')).toBe('before');
    server.close();
    expect(server.isServing()).toBe(false);
    expect(server.sockets).toEqual([]);
    server.close(); // idempotent
    expect(await connectFails(port)).toBe('ECONNREFUSED');
    // The accepted connection still works.
    expect(await roundTrip(s, 'after')).toBe('after');
    let closed = false;
    const waiting = server.waitClosed().then(() => (closed = true));
    await sleep(100);
    expect(closed).toBe(false);
    s.end();
    await waiting;
    expect(closed).toBe(true);
    await server.waitClosed(); // resolves at once now
  });

  it('waitClosed on a server without clients resolves after close', async () => {
    const server = await createServer(() => new Echo(), '127.0.0.1', 0);
    let done = false;
    const w = server.waitClosed().then(() => (done = true));
    await sleep(20);
    expect(done).toBe(false);
    server.close();
    await w;
  });

  it('startServing: false accepts nothing until startServing()', async () => {
    const [recording, recs] = recorders();
    const server = await createServer(recording, '127.0.0.1', 0, { startServing: false });
    expect(server.isServing()).toBe(false);
    // The socket listens (the kernel completes the handshake), but no protocol is made.
    const s = await nodeConnect(portOf(server));
    s.write('queued');
    await sleep(100);
    expect(recs).toHaveLength(0);
    await server.startServing();
    expect(server.isServing()).toBe(true);
    await server.startServing(); // idempotent
    await waitFor(() => recs.length === 1);
    await waitFor(() => recs[0].received.toString() === 'queued');
    s.end();
    await recs[0].lost;
    await server[Symbol.asyncDispose]();
  });

  it('serveForever starts serving and resolves once the server closes', async () => {
    const server = await createServer(() => new Echo(), '127.0.0.1', 0, { startServing: false });
    let resolved = false;
    const forever = server.serveForever().then(() => (resolved = true));
    await waitFor(() => server.isServing());
    const s = await nodeConnect(portOf(server));
    expect(await roundTrip(s, 'x')).toBe('x');
    expect(resolved).toBe(false);
    server.close();
    await forever;
    s.destroy();
    await server.waitClosed();
    await server.serveForever(); // on a closed server: resolves at once
  });

  it('closeClients flushes and closes every accepted connection; abortClients aborts', async () => {
    const [recording, recs] = recorders();
    const server = await createServer(recording, '127.0.0.1', 0);
    const port = portOf(server);
    const a = await nodeConnect(port);
    const b = await nodeConnect(port);
    const aData = readAll(a);
    const bData = readAll(b);
    await waitFor(() => recs.length === 2);
    await Promise.all(recs.map((r) => r.made));
    for (const r of recs) r.transport.write(Buffer.alloc(1 << 20, 1));
    server.close();
    server.closeClients();
    expect((await aData).length).toBe(1 << 20);
    expect((await bData).length).toBe(1 << 20);
    await Promise.all(recs.map((r) => r.lost));
    await server.waitClosed();

    const recs2: Recorder[] = [];
    const server2 = await createServer(() => {
      const r = new Recorder();
      recs2.push(r);
      return r;
    }, '127.0.0.1', 0);
    const c = await nodeConnect(portOf(server2));
    const cClosed = new Promise((r) => c.on('close', r));
    c.on('error', () => {});
    await waitFor(() => recs2.length === 1);
    server2.abortClients();
    expect(recs2[0].calls).not.toContain('connectionLost');
    expect(await recs2[0].lost).toBe(null);
    await cClosed;
    await server2[Symbol.asyncDispose]();
  });

  it('Symbol.asyncDispose closes and waits for the clients', async () => {
    const rec = new Recorder();
    let disposed = false;
    {
      const server = await createServer(() => rec, '127.0.0.1', 0);
      const s = await nodeConnect(portOf(server));
      await rec.made;
      const d = server[Symbol.asyncDispose]().then(() => (disposed = true));
      await sleep(50);
      expect(disposed).toBe(false);
      expect(server.isServing()).toBe(false);
      s.end();
      await d;
    }
    expect(disposed).toBe(true);
    expect(rec.calls.at(-1)).toBe('connectionLost');
  });

  it('reuseAddress (default on), reusePort, keepAlive on accepted transports, backlog', async () => {
    const rec = new Recorder();
    const server = await createServer(() => rec, '127.0.0.1', 0, { keepAlive: true, backlog: 5 });
    const ls = server.sockets[0];
    expect(ls.getsockopt(constants.SOL_SOCKET, constants.SO_REUSEADDR)).toBe(1);
    expect(ls.getsockopt(constants.SOL_SOCKET, constants.SO_REUSEPORT)).toBe(0);
    const s = await nodeConnect(portOf(server));
    await rec.made;
    const sock = rec.transport.getExtraInfo('socket');
    expect(sock.getsockopt(constants.SOL_SOCKET, constants.SO_KEEPALIVE)).toBe(1);
    expect(sock.getsockopt(constants.IPPROTO_TCP, constants.TCP_NODELAY)).toBe(1);
    s.destroy();
    await rec.lost;
    await server[Symbol.asyncDispose]();

    const plain = await createServer(() => rec, '127.0.0.1', 0, { reuseAddress: false });
    expect(plain.sockets[0].getsockopt(constants.SOL_SOCKET, constants.SO_REUSEADDR)).toBe(0);
    const rec2 = new Recorder();
    const plain2 = await createServer(() => rec2, '127.0.0.1', 0);
    const s2 = await nodeConnect(portOf(plain2));
    await rec2.made;
    expect(rec2.transport.getExtraInfo('socket').getsockopt(constants.SOL_SOCKET, constants.SO_KEEPALIVE)).toBe(0);
    s2.destroy();
    await rec2.lost;
    plain.close();
    await plain2[Symbol.asyncDispose]();

    const r1 = await createServer(() => new Echo(), '127.0.0.1', 0, { reusePort: true });
    expect(r1.sockets[0].getsockopt(constants.SOL_SOCKET, constants.SO_REUSEPORT)).toBe(1);
    // A second server can bind the same port with reusePort; without it, EADDRINUSE.
    const r2 = await createServer(() => new Echo(), '127.0.0.1', portOf(r1), { reusePort: true });
    expect(portOf(r2)).toBe(portOf(r1));
    await expect(createServer(() => new Echo(), '127.0.0.1', portOf(r1))).rejects.toMatchObject({ code: 'EADDRINUSE', syscall: 'listen' });
    r1.close();
    r2.close();
  });

  it('a busy port rejects with EADDRINUSE and leaves nothing open', async () => {
    const node = net.createServer();
    await new Promise<void>((r) => node.listen(0, '127.0.0.1', r));
    const port = (node.address() as net.AddressInfo).port;
    await expect(createServer(() => new Echo(), '127.0.0.1', port, { reuseAddress: false })).rejects.toMatchObject({
      code: 'EADDRINUSE',
      errno: -98,
    });
    node.close();
  });

  it('a protocol factory that returns no protocol: the connection closes and the handler hears a TypeError', async () => {
    await withExceptions(async (seen) => {
      const server = await createServer((() => undefined) as any, '127.0.0.1', 0);
      const a = net.connect(portOf(server), '127.0.0.1');
      a.on('error', () => {});
      await new Promise((r) => a.on('close', r));
      expect(seen).toHaveLength(1);
      expect(seen[0]).toBeInstanceOf(TypeError);
      expect((seen[0] as Error).message).toMatch(/"protocolFactory".*returned undefined/);
      await server[Symbol.asyncDispose]();
    });
    // The client side rejects the same way and keeps no connection: the peer sees it close.
    const node = await nodeServer();
    const peer = node.next();
    await expect(createConnection((() => 42) as any, '127.0.0.1', node.port)).rejects.toThrow(/returned number/);
    await new Promise((r) => peer.then((s) => (s.destroyed ? r(null) : s.once('close', r))));
    await node.close();
  });

  it('an exception in the protocol factory goes to the exception handler; the server keeps serving', async () => {
    await withExceptions(async (seen) => {
      let n = 0;
      const server = await createServer(() => {
        if (n++ === 0) throw new Error('factory boom');
        return new Echo();
      }, '127.0.0.1', 0);
      const a = net.connect(portOf(server), '127.0.0.1');
      a.on('error', () => {});
      await new Promise((r) => a.on('close', r));
      expect(seen).toHaveLength(1);
      expect((seen[0] as Error).message).toBe('factory boom');
      const b = await nodeConnect(portOf(server));
      expect(await roundTrip(b, 'still')).toBe('still');
      b.destroy();
      await server[Symbol.asyncDispose]();
    });
  });

  it('sock: refuses a listening socket another server owns with EEXIST, and leaves it to that server', async () => {
    const server = await createServer(() => new Echo(), '127.0.0.1', 0);
    const fd = server.sockets[0].fd;
    const file = fdTarget(fd);
    const err = await createServer(() => new Echo(), null, null, { sock: fd }).catch((e) => e);
    expect(err).toMatchObject({ code: 'EEXIST', errno: -17 });
    expect(fdTarget(fd)).toBe(file); // refused, not closed
    // The first server still serves on it.
    const s = await nodeConnect(portOf(server));
    const back = readAll(s);
    s.end('still serving');
    expect((await back).toString()).toBe('still serving');
    await server[Symbol.asyncDispose]();
  });

  it('sock: serves on a listening socket made by python3 in a child process', async () => {
    const { execFile } = await import('node:child_process');
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'protoloop-lsock-'));
    const script = join(dir, 'child.mjs');
    const entry = new URL('../dist/esm/index.mjs', import.meta.url).pathname;
    writeFileSync(
      script,
      `import { createServer, Protocol } from ${JSON.stringify(entry)};
      const server = await createServer(() => new (class extends Protocol {
        connectionMade(t) { this.t = t; }
        dataReceived(d) { this.t.write(d); this.t.close(); server.close(); }
      })(), null, null, { sock: Number(process.argv[2]) });
      console.log(JSON.stringify(server.sockets[0].getsockname()));
      `,
    );
    const py = `import os, socket, sys
s = socket.socket()
s.bind(('127.0.0.1', 0))
s.listen()
os.set_inheritable(s.fileno(), True)
os.execv(sys.argv[1], [sys.argv[1], sys.argv[2], str(s.fileno())])`;
    const { spawn } = await import('node:child_process');
    void execFile;
    const child = spawn('python3', ['-c', py, process.execPath, script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    await new Promise<void>((r) => child.stdout.on('data', (d) => ((out += d), out.includes('\n') && r())));
    const [, port] = JSON.parse(out) as [string, number];
    const s = await nodeConnect(port);
    const back = readAll(s);
    s.write('over sock');
    expect((await back).toString()).toBe('over sock');
    expect(await exited).toBe(0);
    expect(err).toBe('');
  });
});

/** Runs `fn` while the loop's exception handler collects what it is given into `seen`. */
async function withExceptions(fn: (seen: unknown[]) => Promise<void>): Promise<void> {
  const loop = getRunningLoop();
  const seen: unknown[] = [];
  loop.setExceptionHandler((ctx) => seen.push(ctx.exception));
  try {
    await fn(seen);
  } finally {
    loop.setExceptionHandler(null);
  }
}

/** A protocol factory making Recorders, and the list of every one it made. */
function recorders(): [() => Recorder, Recorder[]] {
  const made: Recorder[] = [];
  return [() => {
    const r = new Recorder();
    made.push(r);
    return r;
  }, made];
}
