// The proxy paths: examples/tcp-proxy.ts in its callbacks, BufferedProtocol and forwardTo variants,
// and forwardTo itself.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Protocol, createConnection, createServer, type Transport } from 'protoloop';
import { Recorder, portOf, waitFor } from './helpers';

const proxyScript = fileURLToPath(new URL('../dist/examples/tcp-proxy.js', import.meta.url));
const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

async function listen(onConnection: (s: net.Socket) => void): Promise<number> {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    onConnection(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.push(() => server.close());
  return (server.address() as net.AddressInfo).port;
}

async function startProxy(mode: string, targetPort: number): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(process.execPath, [proxyScript, mode, '0', '127.0.0.1', String(targetPort)], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanup.push(() => child.kill());
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`proxy exited with ${code}`)));
  });
  return { port, child };
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) / 1024;
}

const chunk = Buffer.alloc(1 << 20);
for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 13 + (i >> 10)) & 255;

/** Sends `mib` MiB through `port` and back (the upstream echoes); resolves to whether the hash matched. */
async function roundTrip(port: number, mib: number): Promise<boolean> {
  const sock = net.connect(port, '127.0.0.1');
  const got = createHash('sha256');
  let received = 0;
  sock.on('data', (d) => {
    got.update(d);
    received += d.length;
  });
  let sent = 0;
  const pump = (): void => {
    while (sent < mib) {
      sent++;
      if (!sock.write(chunk)) {
        sock.once('drain', pump);
        return;
      }
    }
    sock.end();
  };
  sock.on('connect', pump);
  await new Promise((r) => sock.on('end', r));
  sock.destroy();
  const want = createHash('sha256');
  for (let i = 0; i < mib; i++) want.update(chunk);
  return received === mib << 20 && got.digest('hex') === want.digest('hex');
}

for (const mode of ['callbacks', 'buffered', 'forward']) {
  describe(`examples/tcp-proxy ${mode}`, () => {
    it('carries 1 GiB each way byte-exact', async () => {
      const echo = await listen((s) => s.pipe(s));
      const { port } = await startProxy(mode, echo);
      expect(await roundTrip(port, 1024)).toBe(true);
    }, 300_000);

    it('keeps its memory bounded behind a slow reader', async () => {
      let upstream!: net.Socket;
      const target = await listen((s) => {
        upstream = s;
        s.pause(); // reads nothing until told
      });
      const { port, child } = await startProxy(mode, target);
      const sock = net.connect(port, '127.0.0.1');
      sock.on('error', () => {});
      await new Promise((r) => sock.on('connect', r));
      await waitFor(() => upstream !== undefined);
      const before = rssMiB(child.pid!);
      // Offer 256 MiB; the proxy must stop reading instead of buffering it.
      let offered = 0;
      const pump = (): void => {
        while (offered < 256 && sock.write(chunk)) offered++;
        if (offered < 256) sock.once('drain', () => (offered++, pump()));
      };
      pump();
      await new Promise((r) => setTimeout(r, 1500));
      const growth = rssMiB(child.pid!) - before;
      expect(growth).toBeLessThan(64);
      // Back-pressure reached the client: it could not hand over everything.
      expect(offered).toBeLessThan(256);
      // Draining the slow reader lets the rest through.
      let drained = 0;
      upstream.on('data', (d) => (drained += d.length));
      upstream.resume();
      await waitFor(() => drained === 256 << 20, 60_000, 'all bytes through the proxy');
      sock.destroy();
    }, 120_000);

    it('passes a half-close through in both directions', async () => {
      const target = await listen((s) => {
        const parts: Buffer[] = [];
        s.on('data', (d) => parts.push(d));
        // Answer only after the client's EOF arrived: the proxy must keep the other direction open.
        s.on('end', () => s.end(Buffer.concat([Buffer.from('got: '), ...parts])));
      });
      const { port } = await startProxy(mode, target);
      const sock = net.connect(port, '127.0.0.1');
      const replies: Buffer[] = [];
      sock.on('data', (d) => replies.push(d));
      await new Promise((r) => sock.on('connect', r));
      sock.end('question');
      await new Promise((r) => sock.on('end', r));
      expect(Buffer.concat(replies).toString()).toBe('got: question');
      sock.destroy();
    });

    it('closes one side when the other is reset', async () => {
      let upstream!: net.Socket;
      let upstreamClosed = false;
      const target = await listen((s) => {
        upstream = s;
        s.on('close', () => (upstreamClosed = true));
        s.resume(); // a socket that never reads never sees the end, nor closes
      });
      const { port } = await startProxy(mode, target);
      const sock = net.connect(port, '127.0.0.1');
      sock.on('error', () => {});
      await new Promise((r) => sock.on('connect', r));
      sock.write('hello');
      await waitFor(() => upstream !== undefined);
      sock.resetAndDestroy();
      await waitFor(() => upstreamClosed, 10_000, 'the upstream side to close');

      // And the other way round.
      upstream = undefined as unknown as net.Socket;
      const sock2 = net.connect(port, '127.0.0.1');
      let clientClosed = false;
      sock2.on('error', () => {});
      sock2.on('close', () => (clientClosed = true));
      sock2.resume();
      await new Promise((r) => sock2.on('connect', r));
      sock2.write('hello');
      await waitFor(() => upstream !== undefined);
      upstream.resetAndDestroy();
      await waitFor(() => clientClosed, 10_000, 'the client side to close');
    });
  });
}

describe('forwardTo', () => {
  it('resolves with the byte count, gives EOF to the protocol and writeEof to the other side', async () => {
    const payload = Buffer.alloc(3 << 20, 7);
    let sinkBytes = 0;
    let sinkEnded = false;
    const sinkPort = await listen((s) => {
      s.on('data', (d) => (sinkBytes += d.length));
      s.on('end', () => {
        sinkEnded = true;
        s.end();
      });
    });
    const source = new Recorder();
    source.eofResult = true;
    let forwarded!: Promise<{ bytes: number }>;
    const server = await createServer(() => source, '127.0.0.1', 0);
    cleanup.push(() => server.close());
    const [out, outProtocol] = await createConnection(() => new Recorder(), '127.0.0.1', sinkPort);
    const client = net.connect(portOf(server), '127.0.0.1');
    await source.made;
    forwarded = source.transport.forwardTo(out);
    client.end(payload);
    expect(await forwarded).toEqual({ bytes: payload.length });
    await waitFor(() => sinkEnded && sinkBytes === payload.length, 10_000, 'the sink to get everything and EOF');
    // The source's protocol saw no data, only the EOF.
    expect(source.calls).toEqual(['connectionMade', 'eofReceived']);
    expect(out.getWriteBufferSize()).toBe(0);
    source.transport.close();
    await outProtocol.lost;
    client.destroy();
  });

  it('rejects what cannot be forwarded, naming the argument', async () => {
    const port = await listen(() => {});
    const [t] = await createConnection(() => new Protocol(), '127.0.0.1', port);
    expect(() => t.forwardTo({} as Transport)).toThrow(TypeError);
    expect(() => t.forwardTo(t)).toThrow(/"other"/);
    const [u] = await createConnection(() => new Protocol(), '127.0.0.1', port);
    expect(() => t.forwardTo(u, { highWater: -1 })).toThrow(RangeError);
    u.close();
    expect(() => t.forwardTo(u)).toThrow(/closing/);
    t.close();
  });

  /** Two protoloop clients of one Node server, each half-open after EOF; `peers` are the server's ends. */
  async function pair(): Promise<{ a: Transport; b: Transport; ra: Recorder; peers: net.Socket[] }> {
    const peers: net.Socket[] = [];
    const port = await listen((s) => peers.push(s));
    const ra = new Recorder();
    ra.eofResult = true;
    const rb = new Recorder();
    rb.eofResult = true;
    const [a] = await createConnection(() => ra, '127.0.0.1', port);
    await waitFor(() => peers.length === 1);
    const [b] = await createConnection(() => rb, '127.0.0.1', port);
    await waitFor(() => peers.length === 2);
    cleanup.push(() => (a.close(), b.close()));
    return { a, b, ra, peers };
  }

  it('is refused at once on a transport that already received EOF (it would wait for an EOF already read)', async () => {
    const { a, b, ra, peers } = await pair();
    peers[0].end();
    await ra.eof;
    expect(() => a.forwardTo(b)).toThrow(/already received EOF/);
    // Nothing was started: the other side still takes bytes from its own protocol.
    b.write(Buffer.from('ok'));
    await new Promise<void>((r) => peers[1].once('data', () => r()));
  });

  it('is refused into a transport after its writeEof(), whose bytes would all be dropped', async () => {
    const { a, b } = await pair();
    b.writeEof();
    expect(() => a.forwardTo(b)).toThrow(/after its writeEof\(\)/);
  });

  it('rejects with EPIPE and the count forwarded when the other side stops taking bytes midway', async () => {
    const { a, b, peers } = await pair();
    const forwarded = a.forwardTo(b);
    let sunk = 0;
    peers[1].on('data', (d) => (sunk += d.length));
    peers[0].write(Buffer.alloc(1000, 1));
    await waitFor(() => sunk === 1000);
    b.writeEof();
    peers[0].write(Buffer.alloc(500, 2)); // read by a, refused by b: lost, so the forward must say so
    const err = await forwarded.catch((e) => e);
    expect(err).toMatchObject({ code: 'EPIPE', syscall: 'write', bytesForwarded: 1000 });
    expect(err.message).toMatch(/refused bytes/);
  }, 10_000);
});
