// Node streams interop (issue 18): DuplexProtocol's Duplex under Node's own http server and client,
// stream.pipeline with back-pressure both ways, half-close, reset, destroy and the socket-like extras.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import * as http from 'node:http';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { Readable, Writable, pipeline } from 'node:stream';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DuplexProtocol,
  TransportDuplex,
  constants,
  createConnection,
  createServer,
  getRunningLoop,
  type ExceptionContext,
  type Server,
} from 'protoloop';
import { nodeServer, portOf, readAll, sleep, waitFor } from './helpers';
import { makePki } from './tls-certs';

const MiB = 1 << 20;
const pipelineAsync = promisify(pipeline);

let servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.close();
    s.abortClients();
    await s.waitClosed();
  }
  getRunningLoop().setExceptionHandler(null);
});

/** A protoloop server whose connections are Duplexes handed to `onStream`. */
async function duplexServer(onStream: (d: TransportDuplex) => void): Promise<{ server: Server; port: number; made: () => number }> {
  let made = 0;
  const server = await createServer(
    () =>
      new DuplexProtocol((d) => {
        made++;
        onStream(d);
      }),
    '127.0.0.1',
    0,
  );
  servers.push(server);
  return { server, port: portOf(server), made: () => made };
}

/** A protoloop client connection's Duplex. */
async function duplexClient(port: number): Promise<TransportDuplex> {
  const [, p] = await createConnection(() => new DuplexProtocol(), '127.0.0.1', port);
  return p.stream;
}

function get(options: http.RequestOptions, body?: Buffer): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe("Node's http on protoloop connections", () => {
  it('http.Server via emit("connection"): keep-alive, several requests on one protoloop connection, request bodies', async () => {
    const httpServer = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (d) => chunks.push(d));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        res.setHeader('x-remote', `${req.socket.remoteAddress}:${req.socket.remotePort}`);
        res.end(`${req.method} ${req.url} ${body.length} ${sha(body).slice(0, 8)}`);
      });
    });
    const { port, made } = await duplexServer((d) => httpServer.emit('connection', d));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const remotes = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const r = await get({ host: '127.0.0.1', port, path: `/r${i}`, agent });
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe(`GET /r${i} 0 e3b0c442`);
      remotes.add(r.headers['x-remote'] as string);
    }
    const big = Buffer.alloc(3 * MiB, 7);
    const post = await get({ host: '127.0.0.1', port, path: '/upload', method: 'POST', agent }, big);
    expect(post.body.toString()).toBe(`POST /upload ${big.length} ${sha(big).slice(0, 8)}`);
    // Every request went over the one connection, and the server saw the client's real address.
    expect(made()).toBe(1);
    expect(remotes.size).toBe(1);
    expect([...remotes][0]).toMatch(/^127\.0\.0\.1:\d+$/);
    agent.destroy();
    httpServer.close();
  });

  it("http.Server's keep-alive timeout closes an idle protoloop connection (setTimeout's 'timeout', then destroy)", async () => {
    const httpServer = http.createServer((_req, res) => res.end('ok'));
    httpServer.keepAliveTimeout = 100;
    const duplexes: TransportDuplex[] = [];
    const { port } = await duplexServer((d) => {
      duplexes.push(d);
      httpServer.emit('connection', d);
    });
    // A raw client that asks once and then idles (an http.Agent would act on the Keep-Alive hint itself).
    const client = net.connect(port, '127.0.0.1', () => client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    const [first] = await once(client, 'data');
    expect(first.toString()).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nok$/);
    let timeouts = 0;
    duplexes[0].on('timeout', () => timeouts++);
    const closed = new Promise((r) => duplexes[0].once('close', r));
    await Promise.all([closed, once(client, 'end')]);
    expect(timeouts).toBe(1);
    expect(duplexes[0].transport!.isClosing()).toBe(true);
    client.destroy();
    httpServer.close();
  });

  it('http.Server sends a large response with back-pressure to a slow client', async () => {
    const payload = Buffer.alloc(16 * MiB);
    for (let i = 0; i < payload.length; i += 4) payload.writeUInt32LE(i, i);
    const httpServer = http.createServer((_req, res) => {
      // res.write's return value and 'drain' come from the Duplex's (and so the transport's) flow control.
      let off = 0;
      const pump = () => {
        while (off < payload.length) {
          const c = payload.subarray(off, off + 256 * 1024);
          off += c.length;
          if (!res.write(c)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    const { port } = await duplexServer((d) => httpServer.emit('connection', d));
    const h = createHash('sha256');
    let n = 0;
    await new Promise<void>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: '/' }, (res) => {
          res.on('data', (d: Buffer) => {
            h.update(d);
            n += d.length;
            // A slow reader: pause now and then.
            if (n % (4 * MiB) < d.length) {
              res.pause();
              setTimeout(() => res.resume(), 20);
            }
          });
          res.on('end', resolve);
        })
        .on('error', reject);
    });
    expect(n).toBe(payload.length);
    expect(h.digest('hex')).toBe(sha(payload));
    httpServer.close();
  });

  it("Node's http client over a protoloop connection (createConnection) against a plain Node server", async () => {
    const nodeHttp = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (d) => chunks.push(d));
      req.on('end', () => res.end(`${req.method} ${Buffer.concat(chunks).length} from ${req.socket.remotePort}`));
    });
    await new Promise<void>((r) => nodeHttp.listen(0, '127.0.0.1', r));
    const port = (nodeHttp.address() as net.AddressInfo).port;
    const streams: TransportDuplex[] = [];
    const createConn = (opts: any, cb: (err: Error | null, s?: any) => void) => {
      createConnection(() => new DuplexProtocol(), opts.host, opts.port).then(
        ([, p]) => {
          streams.push(p.stream);
          cb(null, p.stream);
        },
        (err) => cb(err),
      );
    };
    const a = await get({ host: '127.0.0.1', port, path: '/', createConnection: createConn as any });
    expect(a.body.toString()).toBe(`GET 0 from ${streams[0].localPort}`);
    const body = Buffer.alloc(2 * MiB, 1);
    const b = await get({ host: '127.0.0.1', port, path: '/', method: 'PUT', createConnection: createConn as any }, body);
    expect(b.body.toString()).toBe(`PUT ${body.length} from ${streams[1].localPort}`);
    // A Duplex returned at once, before protoloop's connection is up: writes wait for it.
    const c = await get({
      host: '127.0.0.1',
      port,
      path: '/',
      method: 'POST',
      createConnection: ((opts: any) => {
        const p = new DuplexProtocol();
        createConnection(() => p, opts.host, opts.port).catch((e) => p.stream.destroy(e));
        return p.stream;
      }) as any,
    }, Buffer.from('early'));
    expect(c.body.toString()).toMatch(/^POST 5 from \d+$/);
    // A refused connection reaches the request as its error.
    const refused = await get({
      host: '127.0.0.1',
      port: 1,
      path: '/',
      createConnection: createConn as any,
    }).catch((e) => e);
    expect(refused.code).toBe('ECONNREFUSED');
    await new Promise((r) => nodeHttp.close(r));
    await waitFor(() => streams.every((s) => s.destroyed));
  });
});

describe('DuplexProtocol as a Node stream', () => {
  it('stream.pipeline of 64 MiB through the duplex and an echo peer: hash-exact, memory bounded', async () => {
    const echo = await nodeServer((s) => s.pipe(s));
    const duplex = await duplexClient(echo.port);
    const total = 64 * MiB;
    const sent = createHash('sha256');
    const got = createHash('sha256');
    let produced = 0;
    let received = 0;
    let maxHeld = 0;
    const t = duplex.transport!;
    // Observed, not replaced: how often the Duplex paused its transport's reading.
    let readPauses = 0;
    const pauseReading = t.pauseReading;
    t.pauseReading = function (this: typeof t) {
      readPauses++;
      pauseReading.call(this);
    };
    const sample = () => {
      maxHeld = Math.max(maxHeld, duplex.writableLength + t.getWriteBufferSize() + duplex.readableLength);
    };
    const source = Readable.from(
      (function* () {
        for (let i = 0; produced < total; i++) {
          const c = Buffer.alloc(256 * 1024, i & 0xff);
          c.writeUInt32LE(i, 0);
          sent.update(c);
          produced += c.length;
          yield c;
        }
      })(),
    );
    let n = 0;
    const sink = new Writable({
      highWaterMark: 64 * 1024,
      write(chunk: Buffer, _enc, cb) {
        got.update(chunk);
        received += chunk.length;
        sample();
        // Slower than the network now and then, so that reading has to pause.
        if (++n % 64 === 0) setTimeout(cb, 5);
        else cb();
      },
    });
    await pipelineAsync(source, duplex, sink);
    expect(received).toBe(total);
    expect(got.digest('hex')).toBe(sent.digest('hex'));
    expect(readPauses).toBeGreaterThan(0);
    // Bounded by the stream and transport marks plus an engine batch, far below the 64 MiB moved.
    expect(maxHeld).toBeLessThan(4 * MiB);
    await waitFor(() => duplex.destroyed);
    await echo.close();
  });

  it('half-close both ways: our end() is the peer\'s end and it still answers; the peer\'s end is our "end" while we still write', async () => {
    // Ours first.
    const peer = await nodeServer((s) => {
      let got = '';
      s.on('data', (d) => (got += d));
      s.on('end', () => s.end(`answer to ${got}`));
    }, { allowHalfOpen: true });
    const d = await duplexClient(peer.port);
    const closed = once(d, 'close');
    d.end('question');
    const answer = await new Promise<string>((resolve, reject) => {
      let b = '';
      d.on('data', (x) => (b += x));
      d.on('end', () => resolve(b));
      d.on('error', reject);
    });
    expect(answer).toBe('answer to question');
    await closed;
    await peer.close();

    // Theirs first: a protoloop server's duplex gets 'end' and answers afterwards.
    const { port } = await duplexServer((sd) => {
      let got = '';
      sd.on('data', (x) => (got += x));
      sd.on('end', () => setTimeout(() => sd.end(`late answer to ${got}`), 10));
    });
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    s.end('hello');
    expect((await readAll(s)).toString()).toBe('late answer to hello');
  });

  it('over TLS: Node tls peer, data both ways; end() closes (TLS cannot half-close) without an error', async () => {
    const pki = makePki();
    try {
      const server = tls.createServer({ cert: pki.serverCert, key: pki.serverKey }, (s) => {
        s.on('data', (d) => s.write(d.toString().toUpperCase()));
        s.on('error', () => {});
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const [t, p] = await createConnection(() => new DuplexProtocol(), 'localhost', (server.address() as net.AddressInfo).port, {
        ssl: { ca: pki.caCert },
      });
      expect(t.canWriteEof()).toBe(false);
      const d = p.stream;
      const closed = new Promise((r) => d.once('close', r));
      let errors = 0;
      d.on('error', () => errors++);
      d.write('over tls');
      const [got] = await once(d, 'data');
      expect(got.toString()).toBe('OVER TLS');
      d.end();
      d.resume();
      await closed;
      expect(errors).toBe(0);
      expect(t.isClosing()).toBe(true);
      server.close();
    } finally {
      pki.cleanup();
    }
  });

  it('a reset reaches the stream as an ECONNRESET error, then close', async () => {
    const peer = await nodeServer((s) => setTimeout(() => s.resetAndDestroy(), 10));
    const d = await duplexClient(peer.port);
    const closed = new Promise((r) => d.once('close', r));
    const [err] = await once(d, 'error');
    expect(err.code).toBe('ECONNRESET');
    await closed;
    expect(d.destroyed).toBe(true);
    expect(d.transport!.isClosing()).toBe(true);
    await peer.close();
  });

  it('destroy() closes with a flush; destroy(err) aborts: the peer sees the difference', async () => {
    const peer = await nodeServer();
    const d1 = await duplexClient(peer.port);
    const s1 = await peer.next();
    const all1 = readAll(s1);
    d1.write(Buffer.alloc(4 * MiB, 3));
    d1.destroy();
    expect((await all1).length).toBe(4 * MiB);

    const d2 = await duplexClient(peer.port);
    const s2 = await peer.next();
    const all2 = readAll(s2).then(
      () => 'ended',
      (e) => e.code,
    );
    d2.write(Buffer.alloc(4 * MiB, 3));
    const boom = new Error('boom');
    d2.destroy(boom);
    const [err] = await once(d2, 'error');
    expect(err).toBe(boom);
    // The abort drops what was queued: the peer never gets all 4 MiB and a clean end.
    const how = await all2;
    expect(['ECONNRESET', 'ended']).toContain(how);
    expect(d2.transport!.isClosing()).toBe(true);
    await peer.close();
  });

  it('a push() that returns false pauses reading; read() resumes it', async () => {
    const peer = await nodeServer((s) => s.end(Buffer.alloc(8 * MiB, 9)));
    const d = await duplexClient(peer.port);
    d.pause();
    await waitFor(() => !d.transport!.isReading(), 10_000, 'reading to pause');
    expect(d.readableLength).toBeLessThan(2 * MiB);
    let n = 0;
    d.on('data', (c) => (n += c.length));
    d.resume();
    await once(d, 'end');
    expect(n).toBe(8 * MiB);
    d.end();
    await peer.close();
  });

  it('socket-like members: addresses, setNoDelay/setKeepAlive on the socket, setTimeout emits "timeout" only', async () => {
    const peer = await nodeServer();
    const d = await duplexClient(peer.port);
    const s = await peer.next();
    expect(d.remoteAddress).toBe('127.0.0.1');
    expect(d.remotePort).toBe(peer.port);
    expect(d.remoteFamily).toBe('IPv4');
    expect(d.localAddress).toBe('127.0.0.1');
    expect(d.localPort).toBe(s.remotePort);
    expect(d.address()).toEqual({ address: '127.0.0.1', family: 'IPv4', port: s.remotePort });
    expect(d.connecting).toBe(false);
    expect(d.readyState).toBe('open');
    const sock = d.transport!.getExtraInfo('socket');
    expect(d.setNoDelay(false)).toBe(d);
    expect(sock.getsockopt(constants.IPPROTO_TCP, constants.TCP_NODELAY)).toBe(0);
    d.setNoDelay();
    expect(sock.getsockopt(constants.IPPROTO_TCP, constants.TCP_NODELAY)).not.toBe(0);
    expect(d.setKeepAlive(true, 30_000)).toBe(d);
    expect(sock.getsockopt(constants.SOL_SOCKET, constants.SO_KEEPALIVE)).toBe(1);
    expect(sock.getsockopt(constants.IPPROTO_TCP, constants.TCP_KEEPIDLE)).toBe(30);
    expect(d.ref()).toBe(d);
    let timeouts = 0;
    d.setTimeout(30, () => timeouts++);
    await once(d, 'timeout');
    expect(timeouts).toBe(1);
    expect(d.destroyed).toBe(false);
    // Still usable after the timeout: nothing was closed.
    d.write('still here');
    await waitFor(() => d.bytesWritten === 10);
    d.setTimeout(0);
    expect(() => d.setTimeout(-1)).toThrow(RangeError);
    // The peer closes with our bytes unread (a reset): that error is the stream's, as a net.Socket's.
    const closed = new Promise((r) => d.on('error', () => {}).once('close', r));
    d.end();
    await peer.close();
    await closed;
  });

  it('an exception in onStream goes to the exception handler and aborts the connection; bad arguments', async () => {
    const contexts: ExceptionContext[] = [];
    getRunningLoop().setExceptionHandler((c) => contexts.push(c));
    const boom = new Error('onStream failed');
    const server = await createServer(() => new DuplexProtocol(() => { throw boom; }), '127.0.0.1', 0);
    servers.push(server);
    const s = net.connect(portOf(server), '127.0.0.1');
    s.on('error', () => {});
    await once(s, 'close');
    expect(contexts[0].exception).toBe(boom);
    expect(() => new DuplexProtocol('x' as any)).toThrow(/"onStream"/);
    expect(new DuplexProtocol().stream.connecting).toBe(true);
    expect(new DuplexProtocol().transport).toBeNull();
    await sleep(1);
  });
});
