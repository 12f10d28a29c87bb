import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { openSync, closeSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BufferedProtocol,
  allocBuffer,
  Protocol,
  createConnection,
  createServer,
  getRunningLoop,
  sendfile,
  SendfileNotAvailableError,
  startTls,
  type ExceptionContext,
  type Transport,
} from 'protoloop';
import { Echo, Recorder, expectNoNewFds, fdSnapshot, portOf, runScript, waitFor } from './helpers';
import { makePki, type Pki } from './tls-certs';

let pki: Pki;
beforeAll(() => {
  pki = makePki();
});
afterAll(() => pki?.cleanup());

async function nodeTlsServer(options: tls.TlsOptions, onSocket: (s: tls.TLSSocket) => void): Promise<[tls.Server, number]> {
  const server = tls.createServer({ key: pki.serverKey, cert: pki.serverCert, ...options }, onSocket);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return [server, (server.address() as net.AddressInfo).port];
}

function echoServerOptions() {
  return { cert: pki.serverCert, key: pki.serverKey };
}


/** Runs `openssl args...`, collecting its output. */
function openssl(args: string[]): { child: ChildProcess; out: () => string; exited: Promise<number | null> } {
  const child = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, out: () => out, exited };
}

describe('TLS client against Node tls', () => {
  it('echoes through a Node tls server, verifying it with ca, and reports the SSL extra info', async () => {
    const [server, port] = await nodeTlsServer({}, (s) => s.pipe(s));
    const rec = new Recorder();
    const ssl = { ca: pki.caCert };
    const [t] = await createConnection(() => rec, 'localhost', port, { ssl });
    t.write(Buffer.from('hello over tls'));
    await waitFor(() => rec.received.length === 14);
    expect(rec.received.toString()).toBe('hello over tls');
    expect(t.canWriteEof()).toBe(false);
    expect(() => t.writeEof()).toThrow(/half-close/);
    const [name, version, bits] = t.getExtraInfo('cipher');
    expect(version).toBe('TLSv1.3');
    expect(name).toMatch(/^TLS_/);
    expect([128, 256]).toContain(bits);
    expect(t.getExtraInfo('compression')).toBe(null);
    expect(t.getExtraInfo('sslcontext')).toBe(ssl);
    expect(t.getExtraInfo('ssl_object')).toMatchObject({ version: 'TLSv1.3', serverSide: false, serverName: 'localhost', alpnProtocol: null });
    const cert = t.getExtraInfo('peercert');
    const x = new X509Certificate(pki.serverCert);
    expect(cert.raw.equals(x.raw)).toBe(true);
    expect(cert.subject).toEqual({ CN: 'localhost', O: 'protoloop' });
    expect(cert.issuer).toEqual({ CN: 'protoloop test CA' });
    expect(cert.serialNumber).toBe(x.serialNumber);
    expect(cert.notAfter).toBe(x.validTo);
    expect(cert.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1');
    expect(t.getExtraInfo('peername')).toEqual(['127.0.0.1', port]);
    t.close();
    expect(await rec.lost).toBe(null);
    expect(rec.calls[0]).toBe('connectionMade');
    // Captured at the handshake: still there after the connection is gone.
    expect(t.getExtraInfo('cipher')[1]).toBe('TLSv1.3');
    server.close();
  });

  it('refuses a self-signed certificate by default and accepts it with ca or rejectUnauthorized false', async () => {
    const [server, port] = await nodeTlsServer({ key: pki.selfKey, cert: pki.selfCert }, (s) => s.pipe(s));
    const err = await createConnection(() => new Recorder(), '127.0.0.1', port, { ssl: true }).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    const [t1] = await createConnection(() => new Recorder(), '127.0.0.1', port, { ssl: { ca: pki.selfCert } });
    t1.close();
    const rec = new Recorder();
    const [t2] = await createConnection(() => rec, '127.0.0.1', port, { ssl: { rejectUnauthorized: false } });
    t2.write(Buffer.from('x'));
    await waitFor(() => rec.received.length === 1);
    t2.close();
    await rec.lost;
    server.close();
  });

  it('refuses a certificate for another name with ERR_TLS_CERT_ALTNAME_INVALID', async () => {
    const [server, port] = await nodeTlsServer({}, (s) => s.pipe(s));
    const err = await createConnection(() => new Recorder(), '127.0.0.1', port, {
      ssl: { ca: pki.caCert },
      serverHostname: 'wrong.example',
    }).catch((e) => e);
    expect(err.code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    server.close();
  });

  it('negotiates ALPN and TLS 1.2 with a Node server', async () => {
    const [server, port] = await nodeTlsServer({ ALPNProtocols: ['h2', 'http/1.1'], maxVersion: 'TLSv1.2' }, (s) => s.pipe(s));
    const [t] = await createConnection(() => new Recorder(), 'localhost', port, {
      ssl: { ca: pki.caCert, alpnProtocols: ['http/1.1'] },
    });
    expect(t.getExtraInfo('ssl_object').alpnProtocol).toBe('http/1.1');
    expect(t.getExtraInfo('cipher')[1]).toBe('TLSv1.2');
    t.close();
    server.close();
  });

  it('delivers what the peer sent before its close_notify, then eofReceived, and closes even when it returns true', async () => {
    const [server, port] = await nodeTlsServer({}, (s) => s.end(Buffer.alloc(100_000, 7)));
    const rec = new Recorder();
    rec.eofResult = true;
    await createConnection(() => rec, 'localhost', port, { ssl: { ca: pki.caCert } });
    expect(await rec.lost).toBe(null);
    expect(rec.received.equals(Buffer.alloc(100_000, 7))).toBe(true);
    expect(rec.calls.filter((c) => c === 'eofReceived')).toHaveLength(1);
    expect(rec.calls.at(-2)).toBe('eofReceived');
    server.close();
  });

  it('fails the handshake after sslHandshakeTimeoutMs against a peer that never answers', async () => {
    const sockets: net.Socket[] = [];
    const server = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const err = await createConnection(() => new Recorder(), 'localhost', port, {
      ssl: { ca: pki.caCert },
      sslHandshakeTimeoutMs: 200,
    }).catch((e) => e);
    expect(err.code).toBe('ETIMEDOUT');
    for (const s of sockets) s.destroy();
    server.close();
  });

  it('a peer vanishing mid-handshake gives ECONNRESET and leaves nothing open', async () => {
    let gone = 0;
    const server = net.createServer((s) => s.once('data', () => s.destroy()).once('close', () => gone++));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const fds = fdSnapshot();
    for (let i = 0; i < 5; i++) {
      const err = await createConnection(() => new Recorder(), 'localhost', port, { ssl: { ca: pki.caCert } }).catch((e) => e);
      expect(err).toBeInstanceOf(Error);
      expect(err.code).toBe('ECONNRESET');
      expect(err.syscall).toBe('handshake');
    }
    await waitFor(() => gone === 5);
    await expectNoNewFds(fds, 5000);
    server.close();
  });
});

describe('TLS server against Node tls', () => {
  it('serves a Node tls client with ALPN, and reports the server side extra info', async () => {
    let serverTransport: Transport | undefined;
    const server = await createServer(
      () => {
        const e = new Echo();
        const made = e.connectionMade.bind(e);
        e.connectionMade = (t: Transport) => {
          serverTransport = t;
          made(t);
        };
        return e;
      },
      '127.0.0.1',
      0,
      { ssl: { ...echoServerOptions(), alpnProtocols: ['h2', 'http/1.1'] } },
    );
    const port = portOf(server);
    const socket = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca: pki.caCert, ALPNProtocols: ['h2'] });
    await new Promise<void>((r, j) => socket.once('secureConnect', r).once('error', j));
    expect(socket.alpnProtocol).toBe('h2');
    expect(socket.getPeerCertificate().subject.CN).toBe('localhost');
    const got: Buffer[] = [];
    socket.on('data', (d) => got.push(d));
    socket.write('ping');
    await waitFor(() => Buffer.concat(got).toString() === 'ping');
    await waitFor(() => serverTransport !== undefined);
    expect(serverTransport!.getExtraInfo('ssl_object')).toMatchObject({ alpnProtocol: 'h2', serverName: 'localhost', serverSide: true });
    expect(serverTransport!.getExtraInfo('peercert')).toBe(null);
    socket.end();
    await new Promise((r) => socket.once('close', r));
    server.close();
    await server.waitClosed();
  });

  it('mutual TLS: a client certificate signed by ca is required and reported', async () => {
    const peercerts: unknown[] = [];
    const handler = getRunningLoop().getExceptionHandler();
    const failures: ExceptionContext[] = [];
    getRunningLoop().setExceptionHandler((ctx) => failures.push(ctx));
    const server = await createServer(
      () =>
        new (class extends Echo {
          override connectionMade(t: Transport): void {
            super.connectionMade(t);
            peercerts.push(t.getExtraInfo('peercert'));
          }
        })(),
      '127.0.0.1',
      0,
      { ssl: { ...echoServerOptions(), ca: pki.caCert, requestCert: true } },
    );
    const port = portOf(server);
    const good = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey });
    await new Promise<void>((r, j) => good.once('secureConnect', r).once('error', j));
    good.write('m');
    await new Promise((r) => good.once('data', r));
    expect((peercerts[0] as { subject: { CN: string } }).subject.CN).toBe('protoloop client');
    good.end();
    const bad = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca: pki.caCert });
    const badErr = await new Promise<Error>((r) => {
      bad.once('error', r);
      bad.once('data', () => r(new Error('served without a certificate')));
      bad.once('secureConnect', () => bad.write('x'));
    });
    expect((badErr as NodeJS.ErrnoException).code).toMatch(/CERTIFICATE_REQUIRED|ECONNRESET|HANDSHAKE/);
    await waitFor(() => failures.length > 0);
    expect(failures[0].message).toBe('SSL handshake failed');
    expect((failures[0].exception as NodeJS.ErrnoException).code).toBe('ERR_TLS_NO_PEER_CERTIFICATE');
    getRunningLoop().setExceptionHandler(handler);
    server.close();
    server.abortClients();
    await server.waitClosed();
  });

  it('a server drops a client that never finishes its handshake after sslHandshakeTimeoutMs, quietly', async () => {
    const handler = getRunningLoop().getExceptionHandler();
    const reports: ExceptionContext[] = [];
    getRunningLoop().setExceptionHandler((ctx) => reports.push(ctx));
    let made = 0;
    const server = await createServer(() => new (class extends Echo {
      override connectionMade(t: Transport) {
        made++;
        super.connectionMade(t);
      }
    })(), '127.0.0.1', 0, { ssl: echoServerOptions(), sslHandshakeTimeoutMs: 200 });
    const sock = net.connect(portOf(server), '127.0.0.1');
    sock.on('error', () => {});
    await new Promise((r) => sock.once('close', r));
    expect(made).toBe(0);
    expect(reports).toEqual([]);
    getRunningLoop().setExceptionHandler(handler);
    server.close();
    await server.waitClosed();
  });

  it('writes sent at once and writes queued behind a full socket keep their order', async () => {
    // Small writes go out on the JavaScript thread while nothing is queued; a 1 MiB one every so often
    // overflows the socket, and what follows queues behind it until the engine has sent it.
    const chunks = Array.from({ length: 3000 }, (_, i) => randomBytes(i % 500 === 499 ? 1 << 20 : 1 + (i % 700)));
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const parts: Buffer[] = [];
    let got = 0;
    const [server, port] = await nodeTlsServer({}, (s) =>
      s.on('data', (d) => {
        parts.push(d);
        got += d.length;
      }),
    );
    const [t] = await createConnection(() => new Recorder(), 'localhost', port, { ssl: { ca: pki.caCert } });
    let sentAtOnce = 0;
    for (const c of chunks) {
      const before = t.getWriteBufferSize();
      t.write(c);
      if (t.getWriteBufferSize() === before) sentAtOnce++;
    }
    await waitFor(() => got === total, 20_000, 'every byte');
    expect(Buffer.concat(parts).equals(Buffer.concat(chunks))).toBe(true);
    expect(sentAtOnce).toBeGreaterThan(0);
    expect(t.getWriteBufferSize()).toBe(0);
    expect((t.getExtraInfo('stats') as { bytesWritten: number }).bytesWritten).toBe(total);
    t.close();
    server.close();
  });

  it('64 MiB hashed each way between a protoloop client and a Node tls server', async () => {
    const SIZE = 64 << 20;
    const toServer = createHash('sha256');
    let serverGot = 0;
    const fromServer = randomBytes(1 << 20);
    const expectedDown = createHash('sha256');
    for (let i = 0; i < SIZE >> 20; i++) expectedDown.update(fromServer);
    const [server, port] = await nodeTlsServer({}, (s) => {
      s.on('data', (d) => {
        serverGot += d.length;
        toServer.update(d);
      });
      let i = 0;
      const pump = () => {
        while (i < SIZE >> 20) {
          i++;
          if (!s.write(fromServer)) return void s.once('drain', pump);
        }
      };
      pump();
    });
    class Bulk extends Protocol {
      t!: Transport;
      hash = createHash('sha256');
      got = 0;
      paused = false;
      resumed: (() => void) | null = null;
      override connectionMade(t: Transport) {
        this.t = t;
      }
      override dataReceived(d: Buffer) {
        this.got += d.length;
        this.hash.update(d);
      }
      override pauseWriting() {
        this.paused = true;
      }
      override resumeWriting() {
        this.paused = false;
        this.resumed?.();
      }
    }
    const p = new Bulk();
    const [t] = await createConnection(() => p, 'localhost', port, { ssl: { ca: pki.caCert } });
    const up = createHash('sha256');
    const chunk = randomBytes(256 << 10);
    for (let sent = 0; sent < SIZE; sent += chunk.length) {
      t.write(chunk);
      up.update(chunk);
      if (p.paused) await new Promise<void>((r) => (p.resumed = r));
    }
    await waitFor(() => serverGot === SIZE && p.got === SIZE, 60_000, 'both directions');
    expect(toServer.digest('hex')).toBe(up.digest('hex'));
    expect(p.hash.digest('hex')).toBe(expectedDown.digest('hex'));
    expect(t.getExtraInfo('stats')).toMatchObject({ bytesRead: SIZE, bytesWritten: SIZE });
    expect(t.getWriteBufferSize()).toBe(0);
    t.close();
    server.close();
  }, 120_000);
});

describe('TLS against openssl', () => {
  it('a protoloop client talks TLS 1.2 to openssl s_server', async () => {
    // Port 0: the kernel picks a free one and s_server names it (`ACCEPT 127.0.0.1:<port>`). A random
    // port of our choosing could be some other test's ephemeral port: s_server then exited at once and
    // this test waited for nothing.
    const s = openssl(['s_server', '-accept', '127.0.0.1:0', '-cert', `${pki.dir}/server.crt`, '-key', `${pki.dir}/server.key`, '-tls1_2', '-rev']);
    try {
      const rec = new Recorder();
      await waitFor(() => /ACCEPT [\d.]+:\d+/.test(s.out()), 20_000, 's_server to listen');
      const port = Number(/ACCEPT [\d.]+:(\d+)/.exec(s.out())![1]);
      const [t] = await createConnection(() => rec, 'localhost', port, { ssl: { ca: pki.caCert } });
      expect(t.getExtraInfo('cipher')[1]).toBe('TLSv1.2');
      t.write(Buffer.from('hello\n'));
      await waitFor(() => rec.received.toString().includes('olleh'));
      t.close();
      await rec.lost;
    } finally {
      s.child.kill();
    }
  });

  it('openssl s_client talks TLS 1.3 with ALPN to a protoloop server', async () => {
    const server = await createServer(() => new Echo(), '127.0.0.1', 0, { ssl: { ...echoServerOptions(), alpnProtocols: ['h2'] } });
    const port = portOf(server);
    const c = openssl(['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-CAfile', `${pki.dir}/ca.crt`, '-tls1_3', '-alpn', 'h2', '-verify_return_error']);
    c.child.stdin!.write('ping-from-openssl\n');
    await waitFor(() => (c.out().match(/ping-from-openssl/g) ?? []).length >= 1 && /ALPN protocol: h2/.test(c.out()), 10_000, 's_client output');
    expect(c.out()).toMatch(/Verify return code: 0 \(ok\)/);
    expect(c.out()).toMatch(/TLSv1\.3/);
    c.child.stdin!.end();
    await c.exited;
    server.close();
    server.abortClients();
    await server.waitClosed();
  });
});

describe('startTls', () => {
  it('upgrades a client connection after a 100 KiB plaintext exchange (Node tls on the other end)', async () => {
    const before = randomBytes(100 << 10);
    const after = randomBytes(100 << 10);
    let nodeGotPlain = Buffer.alloc(0);
    let nodeGotTls = Buffer.alloc(0);
    const server = net.createServer((sock) => {
      const onData = (d: Buffer) => {
        nodeGotPlain = Buffer.concat([nodeGotPlain, d]);
        if (nodeGotPlain.length < before.length) return;
        sock.off('data', onData);
        // Plain reply, then the marker; then the client starts TLS and we answer as a TLS server.
        sock.write(before);
        sock.write('STARTTLS\n');
        const secure = new tls.TLSSocket(sock, { isServer: true, key: pki.serverKey, cert: pki.serverCert });
        secure.on('data', (d2: Buffer) => {
          nodeGotTls = Buffer.concat([nodeGotTls, d2]);
          if (nodeGotTls.length === after.length) secure.write(after);
        });
      };
      sock.on('data', onData);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const rec = new Recorder();
    const [t] = await createConnection(() => rec, '127.0.0.1', port);
    t.write(before);
    await waitFor(() => rec.received.length >= before.length + 9);
    expect(rec.received.subarray(0, before.length).equals(before)).toBe(true);
    expect(rec.received.subarray(before.length).toString()).toBe('STARTTLS\n');
    rec.chunks = [];
    const tt = await startTls(t, rec, { ca: pki.caCert }, { serverHostname: 'localhost' });
    expect(tt).not.toBe(t);
    expect(tt.getExtraInfo('cipher')[1]).toBe('TLSv1.3');
    tt.write(after);
    await waitFor(() => rec.received.length === after.length);
    expect(nodeGotTls.equals(after)).toBe(true);
    expect(rec.received.equals(after)).toBe(true);
    expect(rec.calls.filter((c) => c === 'connectionMade')).toHaveLength(1);
    tt.close();
    expect(await rec.lost).toBe(null);
    expect(rec.calls.filter((c) => c === 'connectionLost')).toHaveLength(1);
    server.close();
  });

  it('upgrades the server end: a protoloop server answers STARTTLS from a Node tls client', async () => {
    const rec = new Recorder();
    let upgraded: Promise<Transport> | undefined;
    class Starttls extends Protocol {
      t!: Transport;
      override connectionMade(t: Transport) {
        this.t = t;
      }
      override dataReceived(d: Buffer) {
        if (d.toString() === 'STARTTLS\n') {
          this.t.write(Buffer.from('GO\n'));
          upgraded = startTls(this.t, rec, echoServerOptions(), { serverSide: true });
          void upgraded.then((tt) => rec.connectionMade(tt));
        }
      }
    }
    const server = await createServer(() => new Starttls(), '127.0.0.1', 0);
    const port = portOf(server);
    const sock = net.connect(port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.write('STARTTLS\n');
    await new Promise((r) => sock.once('data', r));
    const secure = tls.connect({ socket: sock, servername: 'localhost', ca: pki.caCert });
    await new Promise<void>((r, j) => secure.once('secureConnect', r).once('error', j));
    secure.write('over tls');
    await waitFor(() => rec.received.toString() === 'over tls');
    const tt = await upgraded!;
    expect(tt.getExtraInfo('ssl_object').serverSide).toBe(true);
    secure.end();
    expect(await rec.lost).toBe(null);
    server.close();
    await server.waitClosed();
  });
});

describe('startTls with a zero-copy BufferedProtocol', () => {
  it('upgrades a connection that was receiving into allocBuffer memory; every byte arrives, in order', async () => {
    const before = randomBytes(100 << 10);
    const after = randomBytes(100 << 10);
    const server = net.createServer((sock) => {
      sock.write(before);
      sock.once('data', () => {
        sock.write('GO');
        const secure = new tls.TLSSocket(sock, { isServer: true, key: pki.serverKey, cert: pki.serverCert });
        secure.once('secure', () => secure.end(after));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const got: Buffer[] = [];
    let lost: (e: Error | null) => void;
    const lostP = new Promise<Error | null>((r) => (lost = r));
    class Zero extends BufferedProtocol {
      buf = allocBuffer(16 << 10);
      override getBuffer(): Uint8Array {
        return this.buf;
      }
      override bufferUpdated(n: number) {
        got.push(Buffer.from(this.buf.subarray(0, n)));
      }
      override connectionLost(e: Error | null) {
        lost(e);
      }
    }
    const p = new Zero();
    const [t] = await createConnection(() => p, '127.0.0.1', port);
    const total = () => got.reduce((n, b) => n + b.length, 0);
    await waitFor(() => total() === before.length);
    expect(t.getExtraInfo('stats').bytesCopiedOnReceive).toBe(0);
    t.write(Buffer.from('STARTTLS\n'));
    await waitFor(() => total() === before.length + 2);
    const tt = await startTls(t, p, { ca: pki.caCert }, { serverHostname: 'localhost' });
    expect(await lostP).toBe(null);
    const all = Buffer.concat(got);
    expect(all.subarray(0, before.length).equals(before)).toBe(true);
    expect(all.subarray(before.length, before.length + 2).toString()).toBe('GO');
    expect(all.subarray(before.length + 2).equals(after)).toBe(true);
    expect(tt.getExtraInfo('stats').bytesRead).toBe(after.length);
    server.close();
  });
});

describe('startTls failures', () => {
  it('a refused certificate rejects startTls with its code and closes the connection', async () => {
    let nodeClosed = false;
    const server = net.createServer((sock) => {
      sock.once('data', () => {
        sock.write('GO\n');
        const secure = new tls.TLSSocket(sock, { isServer: true, key: pki.selfKey, cert: pki.selfCert });
        secure.on('error', () => {});
        sock.once('close', () => (nodeClosed = true));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const rec = new Recorder();
    const [t] = await createConnection(() => rec, '127.0.0.1', port);
    t.write(Buffer.from('STARTTLS\n'));
    await waitFor(() => rec.received.toString() === 'GO\n');
    const err = await startTls(t, rec, { ca: pki.caCert }, { serverHostname: 'localhost' }).catch((e) => e);
    expect(err.code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    await waitFor(() => nodeClosed);
    expect(rec.calls).toEqual(['connectionMade', 'dataReceived']);
    expect(t.isClosing()).toBe(true);
    server.close();
  });

  it('refuses what cannot be upgraded', async () => {
    const [server, port] = await nodeTlsServer({}, (s) => s.pipe(s));
    const [t] = await createConnection(() => new Recorder(), 'localhost', port, { ssl: { ca: pki.caCert } });
    await expect(startTls(t, new Recorder(), { ca: pki.caCert })).rejects.toThrow(/already a TLS transport/);
    await expect(startTls({} as Transport, new Recorder(), true)).rejects.toThrow(TypeError);
    t.close();
    server.close();
  });

  it('sends ssl.servername as SNI when serverHostname is not given', async () => {
    let sni: string | false | undefined;
    const [server, port] = await nodeTlsServer({}, (s) => {
      sni = s.servername;
      s.end();
    });
    const rec = new Recorder();
    await createConnection(() => rec, '127.0.0.1', port, { ssl: { ca: pki.caCert, servername: 'localhost' } });
    await rec.lost;
    expect(sni).toBe('localhost');
    server.close();
  });
});

describe('TLS read flow control and BufferedProtocol', () => {
  it('pauseReading holds decrypted data back; a BufferedProtocol receives over TLS', async () => {
    const payload = randomBytes(300_000);
    const [server, port] = await nodeTlsServer({}, (s) => s.end(payload));
    const bufs: Buffer[] = [];
    let lost = false;
    let transport!: Transport;
    class Buffered extends BufferedProtocol {
      buf = Buffer.alloc(10_000);
      override connectionMade(t: Transport) {
        transport = t;
        t.pauseReading();
      }
      override getBuffer(): Uint8Array {
        return this.buf;
      }
      override bufferUpdated(n: number) {
        bufs.push(Buffer.from(this.buf.subarray(0, n)));
      }
      override connectionLost() {
        lost = true;
      }
    }
    await createConnection(() => new Buffered(), 'localhost', port, { ssl: { ca: pki.caCert } });
    await new Promise((r) => setTimeout(r, 100));
    expect(bufs).toHaveLength(0);
    expect(transport.isReading()).toBe(false);
    transport.resumeReading();
    await waitFor(() => lost);
    expect(Buffer.concat(bufs).equals(payload)).toBe(true);
    server.close();
  });
});

describe('TLS argument checks', () => {
  it('names the bad argument', async () => {
    const pf = () => new Recorder();
    await expect(createConnection(pf, 'localhost', 1, { ssl: 'yes' as never })).rejects.toThrow(TypeError);
    await expect(createConnection(pf, 'localhost', 1, { ssl: true, sslHandshakeTimeoutMs: 0 })).rejects.toThrow(RangeError);
    await expect(createConnection(pf, 'localhost', 1, { ssl: true, sslShutdownTimeoutMs: -1 })).rejects.toThrow(RangeError);
    await expect(createConnection(pf, 'localhost', 1, { serverHostname: 'x' })).rejects.toThrow(/only meaningful with ssl/);
    await expect(createConnection(pf, 'localhost', 1, { ssl: { ca: 'not a pem' } })).rejects.toThrow(/options\.ssl.*ca/);
    await expect(createConnection(pf, 'localhost', 1, { ssl: { minVersion: 'TLSv1.1' as never } })).rejects.toThrow(RangeError);
    // 200 characters but 400 bytes: more than a protocol name can carry (255 bytes).
    await expect(createConnection(pf, 'localhost', 1, { ssl: { alpnProtocols: ['é'.repeat(200)] } })).rejects.toThrow(/alpnProtocols/);
    await expect(createServer(pf, '127.0.0.1', 0, { ssl: {} })).rejects.toThrow(/cert and key/);
    await expect(createServer(pf, '127.0.0.1', 0, { ssl: { cert: pki.serverCert, key: pki.clientKey } })).rejects.toThrow(TypeError);
  });

  it('a timeout too large for a duration is a RangeError naming it, and the process lives on', async () => {
    // Finite but beyond any duration: these once reached the engine's option check and aborted the process.
    const r = await runScript(`
      for (const o of [{ sslHandshakeTimeoutMs: 1e23 }, { sslShutdownTimeoutMs: 1e308 }, { sslHandshakeTimeoutMs: 2 ** 53 }]) {
        await pl.createConnection(() => new pl.Protocol(), 'localhost', 1, { ssl: true, ...o })
          .then(() => console.log('connected?'), (e) => console.log(e.constructor.name, e.message));
      }
    `);
    expect(r.signal).toBe(null);
    expect(r.status).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^RangeError The value of "options.sslHandshakeTimeoutMs" is out of range/);
    expect(lines[1]).toMatch(/^RangeError The value of "options.sslShutdownTimeoutMs" is out of range/);
    expect(lines[2]).toMatch(/^RangeError The value of "options.sslHandshakeTimeoutMs" is out of range/);
  });
});

describe('TLS failures after the handshake', () => {
  it('a corrupted record reaches connectionLost with a TLS code', async () => {
    const [server, tlsPort] = await nodeTlsServer({}, (s) => s.on('data', () => {}));
    // A proxy between us and the Node server that forges one record towards the client on demand.
    let toClient: net.Socket | undefined;
    const proxy = net.createServer((c) => {
      toClient = c;
      const up = net.connect(tlsPort, '127.0.0.1');
      c.pipe(up).pipe(c);
      c.on('error', () => up.destroy());
      up.on('error', () => c.destroy());
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const rec = new Recorder();
    await createConnection(() => rec, 'localhost', (proxy.address() as net.AddressInfo).port, { ssl: { ca: pki.caCert } });
    toClient!.write(Buffer.concat([Buffer.from([0x17, 0x03, 0x03, 0x00, 0x40]), randomBytes(0x40)]));
    const exc = (await rec.lost) as NodeJS.ErrnoException;
    expect(exc).toBeInstanceOf(Error);
    expect(exc.code).toBe('ERR_SSL_DECRYPTION_FAILED_OR_BAD_RECORD_MAC');
    proxy.close();
    server.close();
  });
});

describe('TLS close, shutdown timeout, sendfile', () => {
  it('close() flushes a large buffer, then sends close_notify; the peer gets every byte then its end', async () => {
    // More than the kernel's buffers hold while the peer reads nothing, so some of it waits in ours.
    const data = randomBytes(32 << 20);
    let got = Buffer.alloc(0);
    let ended = false;
    const peers: tls.TLSSocket[] = [];
    const [server, port] = await nodeTlsServer({}, (s) => {
      const parts: Buffer[] = [];
      s.pause();
      peers.push(s);
      s.on('data', (d) => parts.push(d));
      s.on('end', () => {
        got = Buffer.concat(parts);
        ended = true;
      });
    });
    const rec = new Recorder();
    const [t] = await createConnection(() => rec, 'localhost', port, { ssl: { ca: pki.caCert } });
    t.write(data);
    expect(t.getWriteBufferSize()).toBeGreaterThan(0);
    expect(rec.calls).toContain('pauseWriting');
    t.close();
    await waitFor(() => peers.length === 1);
    peers[0].resume();
    expect(await rec.lost).toBe(null);
    await waitFor(() => ended);
    expect(got.equals(data)).toBe(true);
    server.close();
  });

  it('close() gives up waiting for the peer close_notify after sslShutdownTimeoutMs', async () => {
    const sockets: tls.TLSSocket[] = [];
    // allowHalfOpen: the Node end answers our close_notify with nothing and stays open.
    const [server, port] = await nodeTlsServer({ allowHalfOpen: true } as tls.TlsOptions, (s) => sockets.push(s));
    const rec = new Recorder();
    const [t] = await createConnection(() => rec, 'localhost', port, { ssl: { ca: pki.caCert }, sslShutdownTimeoutMs: 300 });
    await waitFor(() => sockets.length === 1);
    const ended = new Promise((r) => sockets[0].once('end', r));
    t.close();
    await ended;
    expect(await rec.lost).toBe(null);
    for (const s of sockets) s.destroy();
    server.close();
  });

  it('sendfile over TLS reads and writes the file (no sendfile(2) under TLS)', async () => {
    const file = join(pki.dir, 'payload.bin');
    const content = randomBytes(1 << 20);
    writeFileSync(file, content);
    const parts: Buffer[] = [];
    const [server, port] = await nodeTlsServer({}, (s) => s.on('data', (d) => parts.push(d)));
    const [t] = await createConnection(() => new Recorder(), 'localhost', port, { ssl: { ca: pki.caCert } });
    const fd = openSync(file, 'r');
    try {
      // Without the fallback there is no way to send a file over TLS: asyncio's SendfileNotAvailableError.
      const refused = sendfile(t, fd, 0, null, { fallback: false });
      await expect(refused).rejects.toBeInstanceOf(SendfileNotAvailableError);
      await expect(refused).rejects.toMatchObject({ code: 'ERR_SENDFILE_NOT_AVAILABLE' });
      expect(await sendfile(t, fd)).toBe(content.length);
    } finally {
      closeSync(fd);
    }
    await waitFor(() => Buffer.concat(parts).length === content.length);
    expect(Buffer.concat(parts).equals(content)).toBe(true);
    t.close();
    server.close();
  });
});

describe('examples/tls-echo', () => {
  it('runs the echo pair over TLS with a certificate it makes', async () => {
    const script = fileURLToPath(new URL('../dist/examples/tls-echo.js', import.meta.url));
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8', env: { ...process.env, PORT: '0' }, timeout: 30_000 });
    const out = r.stdout;
    expect(r.status, `exit ${r.status}\n${r.stdout}\n${r.stderr}`).toBe(0);
    expect(out).toContain('Verified localhost, issued by protoloop example CA; TLSv1.3');
    expect(out).toContain('Data received: "Hello World!"\nSend: "Hello World!"');
    expect(out).toMatch(/Data received: "Hello World!"\nThe server closed the connection/);
  });
});
