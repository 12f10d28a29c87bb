// The proxy paths: examples/tcp-proxy.ts in its callbacks, BufferedProtocol and forwardTo variants,
// plain and TLS-terminating, and forwardTo itself, between plain, TLS and Unix transports.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Protocol, createConnection, createServer, createUnixServer, type Server, type Transport } from 'protoloop';
import { Recorder, portOf, sleep, splices, waitFor } from './helpers';
import { makePki, type Pki } from './tls-certs';

// The forwards of this process splice every read between plain sockets where the system can (Linux),
// not only bulk ones: so every forwardTo test below runs the splice(2) path, and the example proxies
// (child processes, given the environment as it was) the default, which switches between the two.
const spliceDefault = process.env.PROTOLOOP_SPLICE;
process.env.PROTOLOOP_SPLICE = 'always';

let pki: Pki;
beforeAll(() => {
  pki = makePki();
});
afterAll(() => pki?.cleanup());

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

async function startProxy(mode: string, targetPort: number, tlsOn = false, splice = spliceDefault): Promise<{ port: number; child: ChildProcess }> {
  const tlsArgs = tlsOn ? ['--tls', '--cert', join(pki.dir, 'server.crt'), '--key', join(pki.dir, 'server.key')] : [];
  const env = { ...process.env, PROTOLOOP_SPLICE: splice };
  if (splice === undefined) delete env.PROTOLOOP_SPLICE;
  const child = spawn(process.execPath, [proxyScript, mode, '0', '127.0.0.1', String(targetPort), ...tlsArgs], { stdio: ['ignore', 'pipe', 'inherit'], env });
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

/** The resident set of process `pid`: `/proc` on Linux, `ps` (KiB too) elsewhere. */
function rssMiB(pid: number): number {
  if (process.platform !== 'linux') return Number(execFileSync('ps', ['-o', 'rss=', '-p', String(pid)], { encoding: 'utf8' })) / 1024;
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) / 1024;
}

const chunk = Buffer.alloc(1 << 20);
for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 13 + (i >> 10)) & 255;

/** A client of the proxy at `port`: plain TCP, or TLS trusting the test CA. */
function connectClient(port: number, tlsOn: boolean): net.Socket {
  return tlsOn ? tlsClient(port) : net.connect(port, '127.0.0.1');
}

const rawSockets = new WeakMap<net.Socket, net.Socket>();

/** A TLS client of `port` over a TCP socket of its own, which `reset` can reset (a TLSSocket cannot). */
function tlsClient(port: number): tls.TLSSocket {
  const raw = net.connect(port, '127.0.0.1');
  raw.on('error', () => {});
  const sock = tls.connect({ socket: raw, servername: 'localhost', ca: pki.caCert });
  rawSockets.set(sock, raw);
  return sock;
}

/** Closes `sock`'s connection with a TCP reset (RST), under TLS too. */
function reset(sock: net.Socket): void {
  (rawSockets.get(sock) ?? sock).resetAndDestroy();
  sock.destroy();
}

/**
 * Sends `mib` MiB through `port` and back (the upstream echoes); resolves to whether the hash matched.
 * A plain client half-closes once it has sent everything; a TLS one (TLS cannot half-close: its
 * close_notify closes the proxy's side) once everything came back.
 */
async function roundTrip(port: number, mib: number, tlsOn = false): Promise<boolean> {
  const sock = connectClient(port, tlsOn);
  const got = createHash('sha256');
  let received = 0;
  sock.on('data', (d) => {
    got.update(d);
    received += d.length;
    if (tlsOn && received === mib << 20) sock.end();
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
    if (!tlsOn) sock.end();
  };
  sock.on(tlsOn ? 'secureConnect' : 'connect', pump);
  await new Promise((r) => sock.on('end', r));
  sock.destroy();
  const want = createHash('sha256');
  for (let i = 0; i < mib; i++) want.update(chunk);
  return received === mib << 20 && got.digest('hex') === want.digest('hex');
}

for (const [mode, tlsOn] of [['callbacks', false], ['buffered', false], ['forward', false], ['callbacks', true], ['forward', true]] as const) {
  describe(`examples/tcp-proxy ${mode}${tlsOn ? ' --tls (TLS-terminating)' : ''}`, () => {
    // TLS costs the client and the proxy a decryption and an encryption per byte: 32 MiB is enough.
    const mib = tlsOn ? 32 : 1024;
    it(`carries ${mib} MiB each way byte-exact`, async () => {
      const echo = await listen((s) => s.pipe(s));
      const { port } = await startProxy(mode, echo, tlsOn);
      expect(await roundTrip(port, mib, tlsOn)).toBe(true);
    }, 300_000);

    it('keeps its memory bounded behind a slow reader', async () => {
      let upstream!: net.Socket;
      const target = await listen((s) => {
        upstream = s;
        s.pause(); // reads nothing until told
      });
      const { port, child } = await startProxy(mode, target, tlsOn);
      const sock = connectClient(port, tlsOn);
      sock.on('error', () => {});
      await new Promise((r) => sock.on(tlsOn ? 'secureConnect' : 'connect', r));
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

    it.skipIf(tlsOn)('passes a half-close through in both directions', async () => {
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

    it.runIf(tlsOn)("passes the client's close_notify on as EOF, and the upstream's EOF back as close_notify", async () => {
      // First connection: the upstream answers and half-closes at once. Second: it collects until EOF.
      let conns = 0;
      let upstreamGot = '';
      let upstreamEnded = false;
      const target = await listen((s) => {
        if (conns++ === 0) {
          s.end('answer');
          s.resume();
          return;
        }
        s.on('data', (d) => (upstreamGot += d));
        s.on('end', () => {
          upstreamEnded = true;
          s.end();
        });
      });
      const { port } = await startProxy(mode, target, true);
      const first = connectClient(port, true);
      let answer = '';
      first.on('data', (d) => (answer += d));
      const firstClosed = new Promise((r) => first.on('close', r));
      // The upstream's EOF flushes the answer, then closes the client's side with close_notify ('end').
      await new Promise((r) => first.on('end', r));
      expect(answer).toBe('answer');
      await firstClosed;

      const second = connectClient(port, true);
      const secondClosed = new Promise((r) => second.on('close', r));
      await new Promise((r) => second.on('secureConnect', r));
      second.resume();
      second.end('question'); // the data, then close_notify
      await waitFor(() => upstreamEnded, 10_000, 'the upstream to get EOF');
      expect(upstreamGot).toBe('question');
      await secondClosed;
    });

    it('closes one side when the other is reset', async () => {
      let upstream!: net.Socket;
      let upstreamClosed = false;
      const target = await listen((s) => {
        upstream = s;
        s.on('close', () => (upstreamClosed = true));
        s.resume(); // a socket that never reads never sees the end, nor closes
      });
      const { port } = await startProxy(mode, target, tlsOn);
      const sock = connectClient(port, tlsOn);
      sock.on('error', () => {});
      await new Promise((r) => sock.on(tlsOn ? 'secureConnect' : 'connect', r));
      sock.write('hello');
      await waitFor(() => upstream !== undefined);
      reset(sock);
      await waitFor(() => upstreamClosed, 10_000, 'the upstream side to close');

      // And the other way round.
      upstream = undefined as unknown as net.Socket;
      const sock2 = connectClient(port, tlsOn);
      let clientClosed = false;
      sock2.on('error', () => {});
      sock2.on('close', () => (clientClosed = true));
      sock2.resume();
      await new Promise((r) => sock2.on(tlsOn ? 'secureConnect' : 'connect', r));
      sock2.write('hello');
      await waitFor(() => upstream !== undefined);
      upstream.resetAndDestroy();
      await waitFor(() => clientClosed, 10_000, 'the client side to close');
    });
  });
}

/** Bytes the process `pid` moved through read/write-like system calls so far (`/proc/PID/io`). */
function copiedThroughUserSpace(pid: number): number {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  return Number(/rchar: (\d+)/.exec(io)![1]) + Number(/wchar: (\d+)/.exec(io)![1]);
}

describe.skipIf(!splices)('examples/tcp-proxy forward between plain sockets (Linux: splice(2))', () => {
  // `PROTOLOOP_SPLICE=0` is the control: the same proxy copying through its memory must show the bytes.
  for (const [how, splice, expectCopied] of [
    ['with PROTOLOOP_SPLICE=always moves the bytes without copying them through its memory', 'always', false],
    ['with PROTOLOOP_SPLICE=0 copies them through its memory', '0', true],
  ] as const) {
    it(how, async () => {
      const echo = await listen((s) => s.pipe(s));
      const { port, child } = await startProxy('forward', echo, false, splice);
      const before = copiedThroughUserSpace(child.pid!);
      expect(await roundTrip(port, 64)).toBe(true);
      const copied = copiedThroughUserSpace(child.pid!) - before;
      // 64 MiB each way: 256 MiB read and written by a copying proxy. A splicing one copies only what
      // its upstream or client could not take at once (out of the pipe into the sink's queue): 15-23
      // MiB in runs here, with the client and upstream in this busy process.
      if (expectCopied) expect(copied).toBeGreaterThanOrEqual(256 << 20);
      else expect(copied).toBeLessThan(128 << 20);
    }, 120_000);
  }
});

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

describe('forwardTo across TLS and Unix transports', () => {
  const TOTAL = 32 << 20;
  let payload: Buffer;
  beforeAll(() => {
    payload = randomBytes(TOTAL);
  });
  const sha = (b: Buffer | Buffer[]): string => {
    const h = createHash('sha256');
    for (const x of Array.isArray(b) ? b : [b]) h.update(x);
    return h.digest('hex');
  };

  /** One side of an in-process forwarding proxy: records its connectionLost calls, ends the other side. */
  class Side extends Protocol {
    transport!: Transport;
    peer: Side | null = null;
    gotEof = false;
    lostCalls: Array<Error | null> = [];
    forwarded: Promise<{ bytes: number } | Error> | null = null;
    override connectionMade(t: Transport): void {
      this.transport = t;
    }
    override eofReceived(): boolean {
      this.gotEof = true;
      if (this.peer?.gotEof) {
        this.peer.transport.close();
        return false;
      }
      return true;
    }
    override connectionLost(exc: Error | null): void {
      this.lostCalls.push(exc);
      const other = this.peer?.transport;
      if (exc) other?.abort();
      else other?.close();
    }
  }

  /**
   * A proxy in this process: `listen` serves with a factory of client-facing sides, each connecting
   * upstream with `connect` and forwarding both ways. Resolves the pairs as they are linked.
   */
  async function proxy(
    listen: (factory: () => Side) => Promise<Server>,
    connect: (factory: () => Side) => Promise<[Transport, Side]>,
  ): Promise<{ server: Server; pairs: Array<[Side, Side]> }> {
    const pairs: Array<[Side, Side]> = [];
    const server = await listen(() => {
      const down = new Side();
      down.connectionMade = (t: Transport) => {
        down.transport = t;
        t.pauseReading(); // nothing to forward to until upstream is connected
        connect(() => new Side()).then(([upstream, up]) => {
          down.peer = up;
          up.peer = down;
          down.forwarded = t.forwardTo(upstream).catch((e: Error) => e);
          up.forwarded = upstream.forwardTo(t).catch((e: Error) => e);
          t.resumeReading();
          pairs.push([down, up]);
        }, () => t.abort());
      };
      return down;
    });
    cleanup.push(() => server.close());
    return { server, pairs };
  }

  const tlsServe = (f: () => Side) => createServer(f, '127.0.0.1', 0, { ssl: { cert: pki.serverCert, key: pki.serverKey } });
  const plainServe = (f: () => Side) => createServer(f, '127.0.0.1', 0);
  const plainUp = (port: number) => (f: () => Side) => createConnection(f, '127.0.0.1', port) as Promise<[Transport, Side]>;
  const tlsUp = (port: number) => (f: () => Side) =>
    createConnection(f, 'localhost', port, { ssl: { ca: pki.caCert } }) as Promise<[Transport, Side]>;

  async function nodeTlsListen(onSocket: (s: tls.TLSSocket) => void): Promise<number> {
    const server = tls.createServer({ key: pki.serverKey, cert: pki.serverCert }, (s) => {
      s.on('error', () => {});
      onSocket(s);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanup.push(() => server.close());
    return (server.address() as net.AddressInfo).port;
  }

  /**
   * Sends the payload through `sock` (connected to a proxy in front of an echo server), reads it all
   * back, then ends: resolves to the received bytes' hash once the socket closed.
   */
  async function echoThrough(sock: net.Socket, ready: string): Promise<string> {
    const parts: Buffer[] = [];
    let received = 0;
    sock.on('data', (d: Buffer) => {
      parts.push(d);
      received += d.length;
      if (received === TOTAL) sock.end();
    });
    await new Promise((r) => sock.once(ready, r));
    for (let off = 0; off < TOTAL; off += 1 << 20) {
      if (!sock.write(payload.subarray(off, off + (1 << 20)))) await new Promise((r) => sock.once('drain', r));
    }
    await new Promise((r) => sock.on('close', r));
    expect(received).toBe(TOTAL);
    return sha(parts);
  }

  /** Both sides of the one pair lost their connection exactly once, and each forward counted `bytes`. */
  async function expectClosedOnce(pairs: Array<[Side, Side]>, bytes: number | null): Promise<void> {
    expect(pairs.length).toBe(1);
    const [down, up] = pairs[0];
    await waitFor(() => down.lostCalls.length > 0 && up.lostCalls.length > 0, 20_000, 'both sides to be lost');
    await sleep(100); // a second connectionLost would come now
    expect(down.lostCalls.length).toBe(1);
    expect(up.lostCalls.length).toBe(1);
    if (bytes !== null) {
      expect(await down.forwarded).toEqual({ bytes });
      expect(await up.forwarded).toEqual({ bytes });
    }
  }

  const echoUpstream = () => listen((s) => s.pipe(s));
  const tlsEchoUpstream = () => nodeTlsListen((s) => s.pipe(s));

  it('TLS → plain (termination) carries 32 MiB each way hash-exact', async () => {
    const { server, pairs } = await proxy(tlsServe, plainUp(await echoUpstream()));
    expect(await echoThrough(tlsClient(portOf(server)), 'secureConnect')).toBe(sha(payload));
    await expectClosedOnce(pairs, TOTAL);
  }, 120_000);

  it('plain → TLS (origination) carries 32 MiB each way hash-exact', async () => {
    const { server, pairs } = await proxy(plainServe, tlsUp(await tlsEchoUpstream()));
    expect(await echoThrough(net.connect(portOf(server), '127.0.0.1'), 'connect')).toBe(sha(payload));
    await expectClosedOnce(pairs, TOTAL);
  }, 120_000);

  it('TLS → TLS carries 32 MiB each way hash-exact', async () => {
    const { server, pairs } = await proxy(tlsServe, tlsUp(await tlsEchoUpstream()));
    expect(await echoThrough(tlsClient(portOf(server)), 'secureConnect')).toBe(sha(payload));
    await expectClosedOnce(pairs, TOTAL);
  }, 120_000);

  it('Unix → TCP carries 32 MiB each way hash-exact', async () => {
    const path = join(tmpdir(), `protoloop-forward-${process.pid}-${Date.now()}.sock`);
    const { pairs } = await proxy((f) => createUnixServer(f, path), plainUp(await echoUpstream()));
    expect(await echoThrough(net.connect(path), 'connect')).toBe(sha(payload));
    await expectClosedOnce(pairs, TOTAL);
  }, 120_000);

  // Between plain sockets on Linux the engine splices here (socket → pipe → socket; PROTOLOOP_SPLICE=always
  // above); what the sink cannot take at once is copied out of the pipe into its queue. A slow upstream
  // makes both happen, many times.
  it('TCP → TCP carries 32 MiB each way hash-exact through a slow upstream, counting every byte (splice(2) on Linux)', async () => {
    const slowEcho = await listen((s) => {
      let sinceBreak = 0;
      s.on('data', (d: Buffer) => {
        s.write(d);
        sinceBreak += d.length;
        if (sinceBreak >= 1 << 20) {
          sinceBreak = 0;
          s.pause();
          setTimeout(() => s.resume(), 5);
        }
      });
      s.on('end', () => s.end());
    });
    const { server, pairs } = await proxy(plainServe, plainUp(slowEcho));
    expect(await echoThrough(net.connect(portOf(server), '127.0.0.1'), 'connect')).toBe(sha(payload));
    await expectClosedOnce(pairs, TOTAL);
  }, 120_000);

  it("a TLS client's close_notify becomes EOF upstream after the data; the TLS side closes; each side is lost once", async () => {
    let got = '';
    let upstreamEnded = false;
    const port = await listen((s) => {
      s.on('data', (d) => (got += d));
      s.on('end', () => (upstreamEnded = true)); // stays half-open: the proxy closes it
    });
    const { server, pairs } = await proxy(tlsServe, plainUp(port));
    const sock = tlsClient(portOf(server));
    sock.on('error', () => {});
    await new Promise((r) => sock.once('secureConnect', r));
    sock.resume();
    await waitFor(() => pairs.length === 1);
    const closed = new Promise((r) => sock.on('close', r));
    sock.end('question');
    await waitFor(() => upstreamEnded, 10_000, 'EOF upstream');
    expect(got).toBe('question');
    await closed;
    await expectClosedOnce(pairs, null);
    expect(await pairs[0][0].forwarded).toEqual({ bytes: 8 });
    expect(pairs[0][0].lostCalls[0]).toBe(null);
  }, 30_000);

  it("a plain side's EOF flushes what was forwarded, then closes the TLS side with close_notify; each side is lost once", async () => {
    let got = 0;
    let tlsEnded = false;
    const port = await nodeTlsListen((s) => {
      s.on('data', (d) => (got += d.length));
      s.on('end', () => (tlsEnded = true)); // Node answers our close_notify with its own
    });
    const { server, pairs } = await proxy(plainServe, tlsUp(port));
    const sock = net.connect(portOf(server), '127.0.0.1');
    sock.on('error', () => {});
    sock.resume();
    await new Promise((r) => sock.once('connect', r));
    await waitFor(() => pairs.length === 1);
    const big = payload.subarray(0, 4 << 20);
    const closed = new Promise((r) => sock.on('close', r));
    sock.end(big); // 4 MiB, then EOF: all of it must reach the TLS peer before close_notify
    await waitFor(() => tlsEnded, 20_000, 'close_notify at the TLS peer');
    expect(got).toBe(big.length);
    await closed;
    await expectClosedOnce(pairs, null);
    expect(await pairs[0][0].forwarded).toEqual({ bytes: big.length });
  }, 30_000);

  it('a reset on either side of a TLS → plain forward closes the other; each side is lost once', async () => {
    const upstreams: net.Socket[] = [];
    let upstreamClosed = 0;
    const port = await listen((s) => {
      upstreams.push(s);
      s.on('close', () => upstreamClosed++);
      s.resume();
    });
    const { server, pairs } = await proxy(tlsServe, plainUp(port));
    // The TLS client resets: the upstream is closed.
    const a = tlsClient(portOf(server));
    a.on('error', () => {});
    await new Promise((r) => a.once('secureConnect', r));
    await waitFor(() => pairs.length === 1);
    a.write('hello');
    reset(a);
    await waitFor(() => upstreamClosed === 1, 10_000, 'the upstream to close');
    await expectClosedOnce(pairs, null);
    expect(pairs[0][0].lostCalls[0]).toMatchObject({ code: 'ECONNRESET' });

    // The upstream resets: the TLS client is closed.
    pairs.length = 0;
    const b = tlsClient(portOf(server));
    let clientClosed = false;
    b.on('error', () => {});
    b.on('close', () => (clientClosed = true));
    b.resume();
    await new Promise((r) => b.once('secureConnect', r));
    await waitFor(() => pairs.length === 1 && upstreams.length === 2);
    upstreams[1].resetAndDestroy();
    await waitFor(() => clientClosed, 10_000, 'the TLS client to close');
    await expectClosedOnce(pairs, null);
    expect(pairs[0][1].lostCalls[0]).toMatchObject({ code: 'ECONNRESET' });
  }, 30_000);
});
