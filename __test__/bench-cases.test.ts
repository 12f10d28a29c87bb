// The servers of the benchmark's udp, tls, subprocess, proxy and sendfile cases do what the table says
// they do (a benchmark of a wrong server proves nothing), checked with Node's own clients; and the
// report's per-variant units and goals of other columns.
import { execFileSync, spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import * as tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

// @ts-ignore plain ESM modules of the harness, without types
import { evaluateGoals, summarize } from '../benches/lib/report.mjs';

const servers = join(__dirname, '..', 'benches', 'servers');
const hasPython = spawnSync('python3', ['-c', 'import asyncio'], { stdio: 'ignore' }).status === 0;
const hasOpenssl = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;
const node = process.execPath;

const children: ChildProcessWithoutNullStreams[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.stdin.end();
});

function start(cmd: string, args: string[], mode: string, env: Record<string, string> = {}) {
  const child = spawn(cmd, [...args, '--port', '0', '--mode', mode, '--total', '0'], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  children.push(child);
  const lines = createInterface({ input: child.stdout });
  const next = () =>
    new Promise<string>((resolve, reject) => {
      lines.once('line', resolve);
      child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    });
  return { child, next };
}

async function listening(cmd: string, args: string[], mode: string, env: Record<string, string> = {}) {
  const s = start(cmd, args, mode, env);
  const first = await s.next();
  expect(first).toMatch(/^LISTENING \d+$/);
  return { ...s, port: Number(first.split(' ')[1]) };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const pattern = (n: number) => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 8)) & 0xff;
  return b;
};

/** Sends `send` (half-closing after it) and collects everything until the far end closes. */
function exchange(connect: () => net.Socket | tls.TLSSocket, send: Buffer, echoLen = 0): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const sock = connect();
    sock.once(sock instanceof tls.TLSSocket ? 'secureConnect' : 'connect', () => {
      sock.write(send);
      if (!echoLen) sock.end();
    });
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (echoLen && got >= echoLen) sock.end();
    });
    sock.on('close', () => resolve(Buffer.concat(chunks)));
    sock.on('error', reject);
  });
}

describe.each([
  ['protoloop', node, [join(servers, 'udp.cjs'), '--impl', 'protoloop'], true],
  ['node dgram', node, [join(servers, 'udp.cjs'), '--impl', 'node'], true],
  ['asyncio', 'python3', [join(servers, 'asyncio_more.py')], hasPython],
] as const)('udp case server %s', (_name, cmd, args, available) => {
  it.skipIf(!available)('echoes 64-byte and 1 KiB datagrams byte for byte', async () => {
    const { port } = await listening(cmd, [...args], 'udp-echo');
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.connect(port, '127.0.0.1', r));
    const back = new Promise<Buffer[]>((resolve) => {
      const got: Buffer[] = [];
      sock.on('message', (m) => got.push(m) === 2 && resolve(got));
    });
    const [a, b] = [pattern(64), pattern(1024)];
    sock.send(a);
    sock.send(b);
    const got = await back;
    sock.close();
    expect(got.map(sha).sort()).toEqual([sha(a), sha(b)].sort());
  });
});

describe.skipIf(!hasOpenssl)('tls case servers', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bench-cases-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'key.pem',
      '-out', 'cert.pem', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], { cwd: dir, stdio: 'ignore' });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['protoloop', node, [join(servers, 'tls.cjs'), '--impl', 'protoloop'], true],
    ['node tls', node, [join(servers, 'tls.cjs'), '--impl', 'node'], true],
    ['asyncio', 'python3', [join(servers, 'asyncio_more.py')], hasPython],
  ] as const)('%s echoes 100 KiB over TLS and sinks 5 MiB, closing at the end of it', async (_n, cmd, args, available) => {
    if (!available) return;
    const env = { PROTOLOOP_BENCH_TLS: dir };
    const ca = readFileSync(join(dir, 'cert.pem'));
    const connect = (port: number) => () => tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca });
    const echo = await listening(cmd, [...args], 'tls-echo', env);
    const msg = pattern(100 * 1024);
    expect(sha(await exchange(connect(echo.port), msg, msg.length))).toBe(sha(msg));
    const sink = await listening(cmd, [...args], 'tls-sink', env);
    expect((await exchange(connect(sink.port), pattern(5 << 20))).length).toBe(0);
  });
});

describe.each(['protoloop', 'node'])('subprocess case runner %s', (impl) => {
  it('spawns and waits for N children, and pipes every byte through cat', async () => {
    const r = start(node, [join(servers, 'subprocess.cjs'), '--impl', impl], 'runner');
    expect(await r.next()).toBe('LISTENING 0');
    r.child.stdin.write('spawn 20 8\n');
    const spawned = JSON.parse((await r.next()).slice('RESULT '.length));
    expect(spawned).toMatchObject({ spawns: 20 });
    expect(spawned.seconds).toBeGreaterThan(0);
    r.child.stdin.write(`pipe ${(3 << 20) + 5}\n`);
    expect(JSON.parse((await r.next()).slice('RESULT '.length))).toMatchObject({ bytes: (3 << 20) + 5 });
  });
});

describe('proxy case proxies', () => {
  it.each(['callbacks', 'buffered', 'forward', 'node'])('%s passes an echo through and a half-close on to the sink', async (impl) => {
    const c = [join(servers, 'node-net.cjs')];
    const [echo, sink] = await Promise.all([listening(node, c, 'echo'), listening(node, c, 'sink')]);
    const up = ['--upstream-echo', String(echo.port), '--upstream-sink', String(sink.port)];
    const connect = (port: number) => () => net.connect(port, '127.0.0.1');
    const pe = await listening(node, [join(servers, 'proxy.cjs'), '--impl', impl, ...up], 'proxy-echo');
    const msg = pattern(100 * 1024);
    expect(sha(await exchange(connect(pe.port), msg, msg.length))).toBe(sha(msg));
    // The sink closes only at the client's EOF: a close seen here means the half-close went through.
    const ps = await listening(node, [join(servers, 'proxy.cjs'), '--impl', impl, ...up], 'proxy-sink');
    expect((await exchange(connect(ps.port), pattern(5 << 20))).length).toBe(0);
  });
});

const hasNginx = spawnSync('/usr/sbin/nginx', ['-v'], { stdio: 'ignore' }).status === 0;
const hasHaproxy = spawnSync('/usr/sbin/haproxy', ['-v'], { stdio: 'ignore' }).status === 0;

describe.skipIf(!hasOpenssl)('proxy case proxies: TLS-terminating, and the operators\' proxies', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bench-cases-proxy-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost', '-addext', 'basicConstraints=critical,CA:FALSE'], { cwd: dir, stdio: 'ignore' });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A proxy of the case, at its port: proxy.cjs's, or nginx or haproxy run by proxy-peer.cjs. */
  async function proxyOn(impl: string, mode: string, up: string[]): Promise<number> {
    const script = impl === 'nginx' || impl === 'haproxy' ? 'proxy-peer.cjs' : 'proxy.cjs';
    return (await listening(node, [join(servers, script), '--impl', impl, ...up], mode, { PROTOLOOP_BENCH_TLS: dir })).port;
  }

  it.each([
    ['callbacks', true],
    ['forward', true],
    ['node', true],
    ['nginx', hasNginx],
    ['haproxy', hasHaproxy],
  ] as const)('%s passes an echo and a sink through, plain and TLS 1.3 with the one cipher suite', async (impl, available) => {
    if (!available) return; // not installed: the harness skips it with a note
    const c = [join(servers, 'node-net.cjs')];
    const [echo, sink] = await Promise.all([listening(node, c, 'echo'), listening(node, c, 'sink')]);
    const up = ['--upstream-echo', String(echo.port), '--upstream-sink', String(sink.port)];
    const ca = readFileSync(join(dir, 'cert.pem'));
    let version = '';
    let cipher = '';
    for (const useTls of [false, true]) {
      const connect = (port: number) => () => {
        if (!useTls) return net.connect(port, '127.0.0.1');
        const t = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca });
        t.once('secureConnect', () => ((version = t.getProtocol() ?? ''), (cipher = t.getCipher().name)));
        return t;
      };
      const msg = pattern(100 * 1024);
      const pe = await proxyOn(impl, useTls ? 'proxy-tls-echo' : 'proxy-echo', up);
      expect(sha(await exchange(connect(pe), msg, msg.length))).toBe(sha(msg));
      // The sink closes only at the client's EOF (close_notify under TLS): a close seen here means it went through.
      const ps = await proxyOn(impl, useTls ? 'proxy-tls-sink' : 'proxy-sink', up);
      expect((await exchange(connect(ps), pattern(5 << 20))).length).toBe(0);
    }
    expect([version, cipher]).toEqual(['TLSv1.3', 'TLS_AES_256_GCM_SHA384']);
  });
});

describe('sendfile case servers', () => {
  let dir = '';
  let file = '';
  const content = pattern((4 << 20) + 3);
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bench-cases-sendfile-'));
    file = join(dir, 'file');
    writeFileSync(file, content);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each(['protoloop', 'node'])('%s sends the whole file byte-exact, then closes', async (impl) => {
    const s = await listening(node, [join(servers, 'sendfile.cjs'), '--impl', impl], 'sendfile', { PROTOLOOP_BENCH_FILE: file });
    const got = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const sock = net.connect(s.port, '127.0.0.1');
      sock.on('data', (d) => chunks.push(d));
      sock.on('close', () => resolve(Buffer.concat(chunks)));
      sock.on('error', reject);
    });
    expect(sha(got)).toBe(sha(content));
  });
});

describe.each([
  ['protoloop streams', node, [join(servers, 'streams.cjs'), '--impl', 'protoloop'], true],
  ['node net + readline', node, [join(servers, 'streams.cjs'), '--impl', 'node'], true],
  ['asyncio streams', 'python3', [join(servers, 'asyncio_streams.py')], hasPython],
] as const)('streams case server %s', (_name, cmd, args, available) => {
  it.skipIf(!available)('echoes each line (1 KiB lines one at a time, then 300 lines in one write), then closes at EOF', async () => {
    const { port } = await listening(cmd, [...args], 'line-echo');
    const line = Buffer.concat([Buffer.alloc(1023, 'x'), Buffer.from('\n')]);
    const sock = net.connect(port, '127.0.0.1');
    sock.setNoDelay(true);
    const chunks: Buffer[] = [];
    let got = 0;
    const waitBytes = (n: number) => new Promise<void>((resolve) => {
      const check = () => (got >= n ? resolve() : sock.once('data', check));
      check();
    });
    sock.on('data', (d) => {
      chunks.push(d);
      got += d.length;
    });
    for (let i = 1; i <= 3; i++) {
      sock.write(line);
      await waitBytes(i * line.length);
    }
    const many = Buffer.concat(Array.from({ length: 300 }, (_, i) => Buffer.from(`line ${i}\n`)));
    sock.end(many);
    await new Promise((r) => sock.on('close', r));
    expect(sha(Buffer.concat(chunks))).toBe(sha(Buffer.concat([line, line, line, many])));
  });
});

describe.each(['protoloop', 'node'])('http case server %s', (impl) => {
  it('answers keep-alive GETs with a response of one fixed length, several on one connection', async () => {
    const { port } = await listening(node, [join(servers, 'streams.cjs'), '--impl', impl], 'http');
    const request = Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    const sock = net.connect(port, '127.0.0.1');
    let text = '';
    sock.on('data', (d) => (text += d));
    for (let i = 1; i <= 3; i++) {
      sock.write(request);
      await new Promise<void>((resolve) => {
        const check = () => (text.split('hello world\n').length > i ? resolve() : sock.once('data', check));
        check();
      });
    }
    sock.destroy();
    const responses = text.split(/(?<=hello world\n)/);
    expect(responses).toHaveLength(3);
    expect(new Set(responses.map((r) => r.length)).size).toBe(1);
    expect(responses[0]).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(responses[0]).toMatch(/content-length: 12\r\n/i);
  });
});

describe('benchmark report, for cases with several units and extra columns', () => {
  const c = {
    name: 'proxy',
    metrics: [{ key: 'value', label: 'req/s', higherIsBetter: true }],
    goals: { bulk: [{ peer: 'protoloop-forward', vs: 'tokio', atLeast: 0.9 }] },
  };
  const peerList = [
    { name: 'protoloop', label: 'protoloop' },
    { name: 'protoloop-forward', label: 'protoloop forwardTo' },
    { name: 'node-net', label: 'Node net', baseline: true },
    { name: 'tokio', label: 'raw tokio' },
  ];
  const run = (value: number) => ({ metrics: { value }, seconds: 1, clientCpu: 0.1, serverCpu: 0.5 });
  const variant = { id: 'bulk', label: 'bulk', metrics: [{ key: 'value', label: 'MiB/s', higherIsBetter: true }] };
  const rows = summarize(c, variant, peerList, { protoloop: [run(1)], 'protoloop-forward': [run(95)], 'node-net': [run(2)], tokio: [run(100)] }, { clientThreads: 1 });

  it("takes a variant's own unit over the case's", () => {
    expect(rows.map((r: { unit: string }) => r.unit)).toEqual(['MiB/s']);
  });

  it('checks a goal of another column than protoloop', () => {
    const [g] = evaluateGoals([c], rows);
    expect(g).toMatchObject({ peer: 'protoloop-forward', vs: 'tokio', want: '>= 0.9x', met: true });
    expect(g.ratio).toBeCloseTo(0.95);
  });
});
