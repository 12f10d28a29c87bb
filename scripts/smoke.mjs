// `npm run smoke`: what every platform must do, in one process, against the built package: TCP (protoloop
// at both ends, and Node's net as the peer), TLS (protoloop at both ends, the client verifying the
// server), STARTTLS against Node's tls (on Windows the plain stream's registered socket goes to the TLS session), UDP (an IPv6
// endpoint reaching an IPv4 peer), a child with stdin, stdout and stderr pipes, a shell command, exit codes, errno
// codes by this platform's numbers, a busy localAddr, sendfile; on Windows also
// that what cannot exist there (Unix sockets, sockets and pipes by descriptor, socketpair) throws an
// Error naming Windows. One line per check; the first failure exits non-zero.
//
// The release workflow runs it on windows-latest, the one place the Windows backend runs
// (crates/engine/src/sys/windows.rs); CI runs it here too, under both reactors, so that it stays true.
// Needs `openssl` on the PATH for the TLS certificates (Git for Windows has one).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getSystemErrorName } from 'node:util';
import {
  Protocol,
  SubprocessProtocol,
  connectReadPipe,
  createConnection,
  createDatagramEndpoint,
  createServer,
  createUnixConnection,
  createUnixServer,
  sendfile,
  socketpair,
  startTls,
  subprocessExec,
  subprocessShell,
} from '../dist/esm/index.mjs';

const dir = mkdtempSync(join(tmpdir(), 'protoloop-smoke-'));
const windows = process.platform === 'win32';
let failed = false;

async function check(name, fn) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    failed = true;
    console.log(`FAIL ${name}\n     ${e?.stack ?? e}`);
  }
}

/** Echoes every byte back; closes on EOF. */
class Echo extends Protocol {
  connectionMade(t) { this.t = t; }
  dataReceived(d) { this.t.write(d); }
  eofReceived() { return false; }
}

/** Sends `message`, resolves with the bytes that came back once there are as many. */
class Client extends Protocol {
  constructor(message) {
    super();
    this.message = message;
    this.chunks = [];
    this.done = new Promise((resolve, reject) => { this.resolve = resolve; this.reject = reject; });
  }
  connectionMade(t) { this.t = t; t.write(this.message); }
  dataReceived(d) {
    this.chunks.push(Buffer.from(d));
    const got = Buffer.concat(this.chunks);
    if (got.length >= this.message.length) this.resolve(got);
  }
  connectionLost(exc) { if (exc) this.reject(exc); }
}

const payload = Buffer.alloc(1 << 20, 0);
for (let i = 0; i < payload.length; i++) payload[i] = (i * 7 + (i >> 9)) & 0xff;

await check('TCP: a protoloop client and server echo 1 MiB', async () => {
  const server = await createServer(() => new Echo(), '127.0.0.1', 0);
  const port = server.sockets[0].getsockname()[1];
  const [t, client] = await createConnection(() => new Client(payload), '127.0.0.1', port);
  assert.deepEqual(await client.done, payload);
  assert.equal(t.getExtraInfo('peername')[1], port);
  t.close();
  server.close();
  await server.waitClosed();
});

await check("TCP: Node's net client against a protoloop server, and half-close", async () => {
  const server = await createServer(() => new Echo(), '127.0.0.1', 0);
  const port = server.sockets[0].getsockname()[1];
  const got = await new Promise((resolve, reject) => {
    const chunks = [];
    const c = net.connect(port, '127.0.0.1', () => c.end(payload));
    c.on('data', (d) => chunks.push(d));
    c.on('end', () => resolve(Buffer.concat(chunks)));
    c.on('error', reject);
  });
  assert.deepEqual(got, payload);
  server.close();
  await server.waitClosed();
});

/** A CA and a certificate for localhost signed by it (openssl's command line), made once. */
let pki;
function certificates() {
  if (pki) return pki;
  const openssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=protoloop smoke CA');
  openssl('req', ...ec, '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=localhost');
  writeFileSync(join(dir, 'srv.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n');
  openssl('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-out', 'srv.crt', '-extfile', 'srv.ext');
  const read = (f) => readFileSync(join(dir, f), 'utf8');
  pki = { ca: read('ca.crt'), cert: read('srv.crt'), key: read('srv.key') };
  return pki;
}

await check('TLS: a protoloop client verifies a protoloop server and they echo 1 MiB', async () => {
  const { ca, cert, key } = certificates();
  const server = await createServer(() => new Echo(), '127.0.0.1', 0, { ssl: { cert, key } });
  const port = server.sockets[0].getsockname()[1];
  const [t, client] = await createConnection(() => new Client(payload), '127.0.0.1', port, { ssl: { ca }, serverHostname: 'localhost' });
  assert.deepEqual(await client.done, payload);
  assert.equal(t.getExtraInfo('peercert').subject.CN, 'localhost');
  t.close();
  server.close();
  await server.waitClosed();
});

await check("STARTTLS: a plain protoloop connection upgraded against Node's tls, then 1 MiB echoed", async () => {
  const { ca, cert, key } = certificates();
  // Node's side: a line in plain text, "GO", then TLS on the same socket, echoing.
  const node = net.createServer((plain) => {
    plain.once('data', () => {
      plain.write('GO\n', () => {
        const secure = new tls.TLSSocket(plain, { isServer: true, cert, key });
        secure.on('data', (d) => secure.write(d));
        secure.on('error', () => {});
      });
    });
  });
  await new Promise((r) => node.listen(0, '127.0.0.1', r));
  let go;
  const answered = new Promise((r) => (go = r));
  class Plain extends Protocol {
    connectionMade(t) { t.write(Buffer.from('STARTTLS\n')); }
    dataReceived(d) { if (d.toString() === 'GO\n') go(); }
  }
  const [t] = await createConnection(() => new Plain(), '127.0.0.1', node.address().port);
  await answered;
  const client = new Client(payload);
  const tt = await startTls(t, client, { ca }, { serverHostname: 'localhost' });
  client.connectionMade(tt);
  assert.deepEqual(await client.done, payload);
  tt.close();
  node.close();
});

await check('UDP: datagrams go out and come back with their sender', async () => {
  class Reflect {
    connectionMade(t) { this.t = t; }
    datagramReceived(d, addr) { this.t.sendto(d, addr); }
  }
  const [server] = await createDatagramEndpoint(() => new Reflect(), { localAddr: ['127.0.0.1', 0] });
  const port = server.getExtraInfo('sockname')[1];
  const got = [];
  let done;
  const all = new Promise((r) => (done = r));
  class Sender {
    connectionMade(t) { for (let i = 0; i < 20; i++) t.sendto(Buffer.from(`datagram ${i}`)); }
    datagramReceived(d, addr) {
      assert.equal(addr[1], port);
      got.push(d.toString());
      if (got.length === 20) done();
    }
  }
  const [client] = await createDatagramEndpoint(() => new Sender(), { remoteAddr: ['127.0.0.1', port] });
  await all;
  assert.deepEqual(got.sort(), Array.from({ length: 20 }, (_, i) => `datagram ${i}`).sort());
  client.close();
  server.close();
});

/** Collects a child's stdout and stderr; resolves once it exited and its pipes closed. */
class Child extends SubprocessProtocol {
  constructor() {
    super();
    this.out = { 1: [], 2: [] };
    this.done = new Promise((r) => (this.finish = r));
  }
  connectionMade(t) { this.t = t; }
  pipeDataReceived(fd, d) { this.out[fd].push(Buffer.from(d)); }
  connectionLost() { this.finish(); }
  text(fd) { return Buffer.concat(this.out[fd]).toString(); }
}

await check('a child process: stdin, stdout and stderr pipes, and its exit code', async () => {
  const script = 'process.stdin.pipe(process.stdout); process.stdin.on("end", () => { process.stderr.write("bye"); process.exitCode = 3; })';
  const [t, child] = await subprocessExec(() => new Child(), process.execPath, ['-e', script]);
  const stdin = t.getPipeTransport(0);
  stdin.write(payload);
  stdin.writeEof();
  await child.done;
  assert.deepEqual(Buffer.concat(child.out[1]), payload);
  assert.equal(child.text(2), 'bye');
  assert.equal(t.getReturncode(), 3);
});

await check('a shell command (/bin/sh -c, or cmd.exe /d /s /c on Windows)', async () => {
  const [t, child] = await subprocessShell(() => new Child(), 'echo "one two" && exit 4', { stdin: null });
  await child.done;
  assert.equal(child.text(1).trim(), windows ? '"one two"' : 'one two');
  assert.equal(t.getReturncode(), 4);
});

await check('a child that is killed reports it', async () => {
  const [t, child] = await subprocessExec(() => new Child(), process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdin: null });
  t.kill();
  await child.done;
  assert.equal(t.getReturncode(), windows ? 1 : -9);
});

await check('UDP: an IPv6 endpoint reaches an IPv4 peer (dual-stack, as on Linux); its socket names errors by this platform\'s numbers', async () => {
  const peer = dgram.createSocket('udp4');
  await new Promise((r) => peer.bind(0, '127.0.0.1', r));
  const got = new Promise((r) => peer.once('message', (m) => r(m.toString())));
  let t;
  try {
    [t] = await createDatagramEndpoint(() => ({}), { localAddr: ['::', 0] });
  } catch (e) {
    peer.close();
    if (['EAFNOSUPPORT', 'EADDRNOTAVAIL'].includes(e.code)) return console.log('     (no IPv6 here: skipped)');
    throw e;
  }
  t.sendto(Buffer.from('mapped'), ['127.0.0.1', peer.address().port]);
  assert.equal(await got, 'mapped');
  const e = (() => { try { t.getExtraInfo('socket').getpeername(); } catch (e) { return e; } })();
  assert.equal(e?.code, 'ENOTCONN');
  assert.equal(getSystemErrorName(e.errno), 'ENOTCONN');
  t.close();
  peer.close();
});

await check('TCP: a localAddr whose port a server listens on fails at bind with EADDRINUSE', async () => {
  const node = net.createServer();
  await new Promise((r) => node.listen(0, '127.0.0.1', r));
  const other = net.createServer();
  await new Promise((r) => other.listen(0, '127.0.0.1', r));
  const err = await createConnection(() => new Protocol(), '127.0.0.1', other.address().port, { localAddr: ['127.0.0.1', node.address().port] }).then(
    (r) => (r[0].close(), null),
    (e) => e,
  );
  node.close();
  other.close();
  assert.equal(err?.code, 'EADDRINUSE');
  assert.equal(err.syscall, 'bind');
});

await check('a child exit code is as the system gives it (unsigned on Windows); a signal after exit is ESRCH', async () => {
  const [t, child] = await subprocessExec(() => new Child(), process.execPath, ['-e', 'process.exit(-1)'], { stdin: null });
  await child.done;
  // exit(-1): 255 on Unix; 0xFFFFFFFF on Windows, which asyncio and Node report unsigned.
  assert.equal(t.getReturncode(), windows ? 0xffffffff : 255);
  assert.throws(() => t.sendSignal('SIGTERM'), (e) => e.code === 'ESRCH' && getSystemErrorName(e.errno) === 'ESRCH');
});

await check('stderr=STDOUT with an inherited stdout: the child\'s stderr goes to this process\'s stdout', async () => {
  // A process of its own, whose stdout and stderr are captured apart.
  const lib = new URL('../dist/esm/index.mjs', import.meta.url).href;
  const inner = `
    import { SubprocessProtocol, STDOUT, subprocessExec } from ${JSON.stringify(lib)};
    let done; const lost = new Promise((r) => (done = r));
    class P extends SubprocessProtocol { connectionLost() { done(); } }
    await subprocessExec(() => new P(), process.execPath, ['-e', 'process.stderr.write("to-stderr")'], { stdin: null, stdout: null, stderr: STDOUT });
    await lost;
    process.exit(0);`;
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', inner], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'to-stderr');
  assert.equal(r.stderr, '');
});

await check('sendfile: a file goes out over TCP whole (the read/write fallback on Windows)', async () => {
  const file = join(dir, 'file.bin');
  writeFileSync(file, payload);
  const received = [];
  let done;
  const all = new Promise((r) => (done = r));
  const node = net.createServer((s) => {
    s.on('data', (d) => received.push(d));
    s.on('end', () => { done(); s.end(); });
  });
  await new Promise((r) => node.listen(0, '127.0.0.1', r));
  const [t] = await createConnection(() => new Protocol(), '127.0.0.1', node.address().port);
  const fd = openSync(file, 'r');
  try {
    assert.equal(await sendfile(t, fd, 1000), payload.length - 1000);
  } finally {
    closeSync(fd);
  }
  t.writeEof();
  await all;
  assert.deepEqual(Buffer.concat(received), payload.subarray(1000));
  t.close();
  node.close();
});

if (windows) {
  await check('Windows: what it cannot have throws an Error naming Windows', async () => {
    const names = /are not available on Windows/;
    await assert.rejects(createUnixConnection(() => new Protocol(), join(dir, 'x.sock')), names);
    await assert.rejects(createUnixServer(() => new Protocol(), join(dir, 'y.sock')), names);
    assert.throws(() => socketpair(), names);
    await assert.rejects(createConnection(() => new Protocol(), null, null, { sock: 3 }), names);
    await assert.rejects(connectReadPipe(() => new Protocol(), 0), names);
  });
}

rmSync(dir, { recursive: true, force: true });
process.exitCode = failed ? 1 : 0;
