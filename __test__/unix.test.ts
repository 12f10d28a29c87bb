// Unix domain sockets against Node's net on the same paths, Python, and existing descriptors.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, lstatSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  Protocol,
  connectAcceptedSocket,
  createConnection,
  createServer,
  createUnixConnection,
  createUnixServer,
  socketpair,
} from 'protoloop';
import { Echo, Recorder, abstractUnixNames, addon, expectNoNewFds, fdSnapshot, waitFor } from './helpers';
import { makePki } from './tls-certs';

const dir = mkdtempSync(join(tmpdir(), 'protoloop-unix-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const sockPath = () => join(dir, `s${n++}.sock`);
const abstractName = () => `\0protoloop-test-${process.pid}-${n++}`;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');


/** Sends `data` through a Node net client to `path` and collects the echo until `data.length` bytes. */
function nodeEcho(path: string, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const c = net.createConnection(path, () => c.write(data));
    c.on('data', (d) => {
      chunks.push(d);
      got += d.length;
      if (got >= data.length) {
        c.end();
        resolve(Buffer.concat(chunks));
      }
    });
    c.on('error', reject);
  });
}

describe('what only some platforms have', () => {
  it('every feature requireFeature knows is here on Unix; an unknown name is refused, not taken as present', () => {
    // On Windows each of these throws the engine's "... are not available on Windows" (the TypeScript
    // layer asks before its own descriptor checks); on Unix the calls must pass, or every Unix socket,
    // sock= and pipe path would throw.
    for (const f of ['unix', 'sock', 'pipes', 'socketpair', 'reusePort']) expect(() => addon.requireFeature(f)).not.toThrow();
    expect(() => addon.requireFeature('kqueue')).toThrow(/no feature named "kqueue"/);
  });
});

describe('createUnixServer / createUnixConnection', () => {
  it('a protoloop Unix echo server serves a Node net client, 1 MiB hashed', async () => {
    const path = sockPath();
    const server = await createUnixServer(() => new Echo(), path);
    expect(lstatSync(path).isSocket()).toBe(true);
    expect(server.sockets[0].getsockname()).toBe(path);
    const data = randomBytes(1 << 20);
    expect(sha(await nodeEcho(path, data))).toBe(sha(data));
    server.close();
    await server.waitClosed();
  });

  it('a protoloop client talks to a Node net echo server on a path; peername/sockname are paths', async () => {
    const path = sockPath();
    const nodeServer = net.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => nodeServer.listen(path, r));
    const rec = new Recorder();
    const [t] = await createUnixConnection(() => rec, path);
    expect(t.getExtraInfo('peername')).toBe(path);
    expect(t.getExtraInfo('sockname')).toBe('');
    const data = randomBytes(1 << 20);
    t.write(data);
    await waitFor(() => rec.received.length === data.length);
    expect(sha(rec.received)).toBe(sha(data));
    t.close();
    expect(await rec.lost).toBe(null);
    expect(rec.calls[0]).toBe('connectionMade');
    expect(rec.calls.at(-1)).toBe('connectionLost');
    await new Promise((r) => nodeServer.close(r));
  });

  it('half-close: the server sees EOF, may answer, then closes', async () => {
    const path = sockPath();
    let serverRec!: Recorder;
    const server = await createUnixServer(() => {
      serverRec = new Recorder();
      serverRec.eofReceived = () => {
        serverRec.calls.push('eofReceived');
        serverRec.transport.write(Buffer.from(`got ${serverRec.received.length}`));
        serverRec.transport.close();
        return true;
      };
      return serverRec;
    }, path);
    const reply = await new Promise<string>((resolve) => {
      let out = '';
      const c = net.createConnection(path, () => c.end('hello'));
      c.on('data', (d) => (out += d));
      c.on('close', () => resolve(out));
    });
    expect(reply).toBe('got 5');
    await serverRec.lost;
    expect(serverRec.calls).toEqual(['connectionMade', 'dataReceived', 'eofReceived', 'connectionLost']);
    expect(serverRec.transport.getExtraInfo('sockname')).toBe(path);
    server.close();
  });

  // Node 20's libuv pads abstract names to the whole sun_path (108 bytes), so Node net reaches only
  // other Node processes there; Python, like protoloop, uses the name's own length. So Python is the peer.
  it.runIf(abstractUnixNames)('abstract names (leading \\0) work both ways with python3 and leave no file', async () => {
    const name = abstractName();
    const server = await createUnixServer(() => new Echo(), name);
    expect(server.sockets[0].getsockname()).toBe(name);
    const client = `import socket,sys
c=socket.socket(socket.AF_UNIX); c.connect('\\0' + sys.argv[1]); c.sendall(b'abstract echo'); c.shutdown(socket.SHUT_WR)
print(c.recv(100).decode())`;
    // Not execFileSync: the server's protocol runs on this thread, which must stay free.
    const echoed = await new Promise<string>((resolve) => {
      const c = spawn('python3', ['-c', client, name.slice(1)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let got = '';
      c.stdout.on('data', (d: Buffer) => (got += d));
      c.on('close', () => resolve(got));
    });
    expect(echoed).toBe('abstract echo\n');
    server.close();
    await server.waitClosed();
    expect(readdirSync(dir).some((f) => f.includes('protoloop-test'))).toBe(false);

    const name2 = abstractName();
    const listener = `import socket,sys
l=socket.socket(socket.AF_UNIX); l.bind('\\0' + sys.argv[1]); l.listen(1); print('ready', flush=True)
c,_=l.accept(); c.sendall(c.recv(100).upper()); c.close()`;
    const child = spawn('python3', ['-c', listener, name2.slice(1)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    const childClosed = new Promise((r) => child.on('close', r));
    await waitFor(() => out.includes('ready'));
    const rec = new Recorder();
    const [t] = await createUnixConnection(() => rec, name2);
    expect(t.getExtraInfo('peername')).toBe(name2);
    t.write(Buffer.from('abstract'));
    expect(await rec.lost).toBe(null);
    expect(rec.received.toString()).toBe('ABSTRACT');
    await childClosed;
  });

  // macOS has no abstract names (the portable build stands in for it here): a clear Error naming the
  // platform, not a socket file with a NUL in its name or an errno from a path the user never meant.
  it.skipIf(abstractUnixNames)('abstract names are refused with an Error naming the platform where there are none', async () => {
    const name = abstractName();
    const before = readdirSync(dir);
    for (const attempt of [() => createUnixServer(() => new Echo(), name), () => createUnixConnection(() => new Recorder(), name)]) {
      const err = await attempt().then(() => null, (e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect(err).not.toBeInstanceOf(TypeError);
      expect(err!.message).toMatch(/abstract Unix socket name .* only on Linux, not on \w+/);
      if (process.platform === 'linux') expect(err!.message).toContain('portable backend');
    }
    expect(readdirSync(dir)).toEqual(before);
  });

  it('python asyncio connects to a protoloop Unix server', async () => {
    const path = sockPath();
    const server = await createUnixServer(() => new Echo(), path);
    const code = `import asyncio,sys
async def main():
    r, w = await asyncio.open_unix_connection(sys.argv[1])
    w.write(b'from python'); await w.drain(); w.write_eof()
    print((await r.read()).decode()); w.close()
asyncio.run(main())`;
    const out = await new Promise<string>((resolve) => {
      const child = spawn('python3', ['-c', code, path]);
      let s = '';
      child.stdout.on('data', (d: Buffer) => (s += d));
      child.on('close', () => resolve(s.trim()));
    });
    expect(out).toBe('from python');
    server.close();
  });

  it('closing the server removes its socket file; cleanupSocket: false keeps it', async () => {
    const path = sockPath();
    const server = await createUnixServer(() => new Echo(), path);
    server.close();
    expect(existsSync(path)).toBe(false);
    const kept = sockPath();
    const server2 = await createUnixServer(() => new Echo(), kept, { cleanupSocket: false });
    server2.close();
    expect(lstatSync(kept).isSocket()).toBe(true);
  });

  it('does not remove a socket file that another server replaced meanwhile', async () => {
    const path = sockPath();
    const first = await createUnixServer(() => new Echo(), path);
    const second = await createUnixServer(() => new Echo(), path); // asyncio replaces the socket file
    first.close();
    expect(lstatSync(path).isSocket()).toBe(true);
    const data = Buffer.from('still served');
    expect((await nodeEcho(path, data)).toString()).toBe('still served');
    second.close();
    expect(existsSync(path)).toBe(false);
  });

  it('replaces a stale socket file, refuses a path that is not a socket, and connect failures reject', async () => {
    const stale = sockPath();
    spawnSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', stale]);
    expect(lstatSync(stale).isSocket()).toBe(true);
    await expect(createUnixConnection(() => new Protocol(), stale)).rejects.toMatchObject({ code: 'ECONNREFUSED', syscall: 'connect' });
    const server = await createUnixServer(() => new Echo(), stale);
    expect((await nodeEcho(stale, Buffer.from('x'))).toString()).toBe('x');
    server.close();

    const file = join(dir, 'regular');
    writeFileSync(file, 'keep me');
    await expect(createUnixServer(() => new Echo(), file)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect(readFileSync(file, 'utf8')).toBe('keep me');

    const rec = new Recorder();
    await expect(createUnixConnection(() => rec, join(dir, 'nobody'))).rejects.toMatchObject({ code: 'ENOENT', syscall: 'connect' });
    expect(rec.calls).toEqual([]);
    await expect(createUnixConnection(() => rec, join(dir, 'x'.repeat(200)))).rejects.toMatchObject({ code: 'ENAMETOOLONG' });
  });

  it('refuses bad arguments', async () => {
    const pf = () => new Protocol();
    await expect(createUnixConnection(pf, 42 as any)).rejects.toThrow(/"path"/);
    await expect(createUnixConnection(pf, '')).rejects.toThrow(TypeError);
    await expect(createUnixConnection(pf, 'a\0b')).rejects.toThrow(/NUL/);
    await expect(createUnixConnection(pf)).rejects.toThrow(/path must be given/);
    await expect(createUnixConnection('x' as any, '/tmp/x')).rejects.toThrow(/protocolFactory/);
    await expect(createUnixServer(pf, null)).rejects.toThrow(TypeError);
    await expect(createUnixServer(pf, sockPath(), { cleanupSocket: 'yes' as any })).rejects.toThrow(/cleanupSocket/);
    await expect(createUnixServer(pf, sockPath(), { backlog: -1 })).rejects.toThrow(RangeError);
    const [a, b] = socketpair();
    await expect(createUnixConnection(pf, '/tmp/x', { sock: a })).rejects.toThrow(/at the same time/);
    closeSync(a);
    closeSync(b);
  });
});

describe('TLS over Unix sockets', () => {
  it('a protoloop TLS client and server talk to Node tls on Unix paths', async () => {
    const pki = makePki();
    try {
      // protoloop client -> Node tls server
      const path = sockPath();
      const nodeServer = tls.createServer({ key: pki.serverKey, cert: pki.serverCert }, (s) => s.pipe(s));
      await new Promise<void>((r) => nodeServer.listen(path, r));
      const rec = new Recorder();
      const [t] = await createUnixConnection(() => rec, path, { ssl: { ca: pki.caCert }, serverHostname: 'localhost' });
      expect(t.getExtraInfo('peercert').subject.CN).toBe('localhost');
      t.write(Buffer.from('secret'));
      await waitFor(() => rec.received.toString() === 'secret');
      t.close();
      await rec.lost;
      await new Promise((r) => nodeServer.close(r));

      // Node tls client -> protoloop server
      const path2 = sockPath();
      const server = await createUnixServer(() => new Echo(), path2, { ssl: { cert: pki.serverCert, key: pki.serverKey } });
      const reply = await new Promise<string>((resolve, reject) => {
        let got = '';
        const c = tls.connect({ path: path2, ca: pki.caCert, servername: 'localhost' }, () => c.write('over tls'));
        c.on('data', (d) => {
          got += d;
          if (got.length >= 8) c.end();
        });
        c.on('close', () => resolve(got));
        c.on('error', reject);
      });
      expect(reply).toBe('over tls');
      server.close();
      expect(existsSync(path2)).toBe(false);

      // A path names no host: TLS needs serverHostname.
      await expect(createUnixConnection(() => new Protocol(), path2, { ssl: true })).rejects.toThrow(/serverHostname/);
      await expect(createUnixServer(() => new Protocol(), sockPath(), { ssl: true as any })).rejects.toThrow(/cert and key/);
    } finally {
      pki.cleanup();
    }
  });
});

describe('existing sockets', () => {
  it("runs the spec's example (examples/existing-socket.ts)", () => {
    const out = execFileSync(process.execPath, [join(__dirname, '..', 'dist', 'examples', 'existing-socket.js')], { encoding: 'utf8' });
    expect(out).toBe('Received: abc\n');
  });

  it('socketpair ends work with createConnection(sock), createUnixConnection(sock) and connectAcceptedSocket', async () => {
    for (const open of [
      (pf: () => Recorder, fd: number) => createConnection(pf, null, null, { sock: fd }),
      (pf: () => Recorder, fd: number) => createUnixConnection(pf, null, { sock: fd }),
      (pf: () => Recorder, fd: number) => connectAcceptedSocket(pf, fd),
    ]) {
      const [a, b] = socketpair();
      const rec = new Recorder();
      const [t] = await open(() => rec, a);
      expect(t.getExtraInfo('socket').fd).toBe(a);
      writeSync(b, Buffer.from('ping'));
      await waitFor(() => rec.received.toString() === 'ping');
      t.write(Buffer.from('pong')); // nothing queued: it reaches the kernel inside write()
      const buf = Buffer.alloc(4);
      expect(readSync(b, buf)).toBe(4);
      expect(buf.toString()).toBe('pong');
      closeSync(b); // the peer goes away: EOF, then the transport closes
      expect(await rec.lost).toBe(null);
      expect(rec.calls).toEqual(['connectionMade', 'dataReceived', 'eofReceived', 'connectionLost']);
    }
  });

  it('connectAcceptedSocket serves a connection that another listener (python3) accepted and handed down', async () => {
    // python3 listens and accepts; the accepted socket becomes fd 3 of a Node child running protoloop.
    const path = sockPath();
    const script = `
      const { connectAcceptedSocket, Protocol } = require(${JSON.stringify(join(__dirname, '..', 'dist', 'cjs', 'index.js'))});
      class Upper extends Protocol {
        connectionMade(t) { this.t = t; }
        dataReceived(d) { this.t.write(Buffer.from(d.toString().toUpperCase())); }
        eofReceived() { this.t.write(Buffer.from('|' + JSON.stringify(this.t.getExtraInfo('sockname')))); }
      }
      connectAcceptedSocket(() => new Upper(), 3);`;
    const code = `import os,socket,subprocess,sys
l=socket.socket(socket.AF_UNIX); l.bind(sys.argv[1]); l.listen(1); print('ready', flush=True)
c,_=l.accept(); l.close(); os.dup2(c.fileno(), 3, inheritable=True); c.close()
subprocess.run([sys.argv[2], '-e', sys.argv[3]], pass_fds=(3,))`;
    const child = spawn('python3', ['-c', code, path, process.execPath, script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    const childClosed = new Promise((r) => child.on('close', r));
    await waitFor(() => out.includes('ready'));
    const reply = await new Promise<string>((resolve) => {
      let got = '';
      const c = net.createConnection(path, () => c.end('hello'));
      c.on('data', (d) => (got += d));
      c.on('close', () => resolve(got));
    });
    expect(reply).toBe(`HELLO|${JSON.stringify(path)}`);
    await childClosed;
  });

  it('refuses descriptors that are not sockets of the right type', async () => {
    const file = join(dir, 'notsock');
    writeFileSync(file, '');
    const fd = openSync(file, 'r');
    await expect(connectAcceptedSocket(() => new Protocol(), fd)).rejects.toMatchObject({ code: 'ENOTSOCK' });
    await expect(createUnixConnection(() => new Protocol(), null, { sock: fd })).rejects.toThrow(TypeError);
    await expect(createUnixServer(() => new Protocol(), null, { sock: fd })).rejects.toThrow(TypeError);
    closeSync(fd);
    // A listening socket is no connection: refused before the engine takes it, so its server lives on.
    const path = sockPath();
    const server = await createUnixServer(() => new Echo(), path);
    await expect(connectAcceptedSocket(() => new Protocol(), server.sockets[0].fd)).rejects.toThrow(/listening/);
    await expect(createConnection(() => new Protocol(), null, null, { sock: server.sockets[0].fd })).rejects.toThrow(TypeError);
    expect((await nodeEcho(path, Buffer.from('alive'))).toString()).toBe('alive');
    server.close();
    // And a connected socket is no listener.
    const [a, b] = socketpair();
    await expect(createUnixServer(() => new Protocol(), null, { sock: a })).rejects.toThrow(/listening/);
    await expect(createServer(() => new Protocol(), null, null, { sock: a })).rejects.toThrow(/listening/);
    closeSync(a);
    closeSync(b);
  });

  it('do not leak descriptors over 1,000 open/close cycles of each kind', async () => {
    const path = sockPath();
    const server = await createUnixServer(() => new Echo(), path);
    const pairCycle = async () => {
      const [a, b] = socketpair();
      const rec = new Recorder();
      const [t] = await connectAcceptedSocket(() => rec, a);
      t.close();
      await rec.lost;
      closeSync(b);
    };
    const connectCycle = async () => {
      const rec = new Recorder();
      const [t] = await createUnixConnection(() => rec, path);
      t.close();
      await rec.lost;
    };
    const serverCycle = async () => {
      const s = await createUnixServer(() => new Echo(), sockPath());
      s.close();
      await s.waitClosed();
    };
    await pairCycle();
    await connectCycle();
    await serverCycle();
    const before = fdSnapshot();
    for (let i = 0; i < 1000; i++) await pairCycle();
    for (let i = 0; i < 1000; i++) await connectCycle();
    for (let i = 0; i < 1000; i++) await serverCycle();
    server.close();
    await server.waitClosed();
    // Descriptors close as their engine tasks end, just after the close is reported.
    await expectNoNewFds(before, 5000);
  });
});
