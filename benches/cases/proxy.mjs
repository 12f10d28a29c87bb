// The proxy case (issue 9): load generator → proxy → upstream, the proxy being the process under test.
// The upstream is the C epoll server (one echo, one sink, shared by every proxy, started by the case)
// so that as much of the machine as possible is left to the proxy. Proxies: examples/tcp-proxy.ts as
// shipped, `callbacks` (every byte through JavaScript, the protoloop column), `buffered` (the same
// through a BufferedProtocol's reused buffer, its own column) and `forward` (transport.forwardTo, its
// own column); Node net with socket.pipe() both ways (the Node column);
// raw tokio with copy_bidirectional (loadgen/src/bin/tokio-proxy.rs); what an operator deploys instead,
// nginx's `stream` proxy and haproxy `mode tcp` (benches/nginx-proxy.conf, benches/haproxy-proxy.cfg; one
// worker or thread each, run by servers/proxy-peer.cjs), skipped with a note when not installed.
// The tls- variants terminate TLS in the proxy (the load generator's rustls client → proxy → plaintext
// upstream), TLS 1.3 with one certificate (P-256, made with openssl at the start) for everyone; raw
// tokio has no TLS and sits them out.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, LOADGEN, onPath } from '../lib/build.mjs';
import { SERVERS, casePeers, fromLoadgen } from '../lib/casepeers.mjs';
import { allPeers } from '../lib/peers.mjs';
import { ServerProcess, runLoadgen } from '../lib/proc.mjs';

const CONNS = 32;
const SIZE = 1024;
const CHUNK = 64 * 1024;
const proxy = ['--expose-gc', join(SERVERS, 'proxy.cjs')];
const bulkBytes = (s) => Math.min(s.bulkBytes, 512 << 20);
const tlsBulkBytes = (s) => Math.min(s.bulkBytes, 256 << 20);
let upstream = null;
let certDir = null;
/** The operators' proxies that are installed (nginx needs its stream module too). */
let operators = [];

const OPERATORS = [
  { name: 'nginx', label: 'nginx stream', installed: () => onPath('nginx') && existsSync('/usr/lib/nginx/modules/ngx_stream_module.so') },
  { name: 'haproxy', label: 'haproxy', installed: () => onPath('haproxy') },
];

export default {
  name: 'proxy',
  title: 'proxy',
  describe: 'load generator → proxy → C epoll upstream: echo req/s and bulk MiB/s through each proxy',
  metrics: [{ key: 'value', label: 'req/s', higherIsBetter: true }], // per variant, below

  async setup(s, { note } = {}) {
    operators = OPERATORS.filter((o) => o.installed());
    for (const o of OPERATORS.filter((o) => !operators.includes(o))) {
      note?.(`proxy: ${o.label} skipped: not installed (pass --install-peers to apt-get install it)`);
    }
    certDir = mkdtempSync(join(tmpdir(), 'protoloop-bench-proxy-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost', '-addext', 'basicConstraints=critical,CA:FALSE'], { cwd: certDir, stdio: 'ignore' });
    const c = allPeers().find((p) => p.name === 'c-epoll');
    const [echo, sink] = await Promise.all([new ServerProcess(c, 'echo', 0).ready(), new ServerProcess(c, 'sink', 0).ready()]);
    upstream = { echo, sink };
  },
  async teardown() {
    if (certDir) rmSync(certDir, { recursive: true, force: true });
    certDir = null;
    if (!upstream) return;
    await Promise.all([upstream.echo.stop(), upstream.sink.stop()]);
    upstream = null;
  },

  peers(selected) {
    const up = ['--upstream-echo', String(upstream.echo.port), '--upstream-sink', String(upstream.sink.port)];
    const env = { PROTOLOOP_BENCH_TLS: certDir };
    const out = casePeers(selected, {
      protoloop: { label: 'protoloop', args: [...proxy, '--impl', 'callbacks', ...up], env },
      'node-net': { args: [...proxy, '--impl', 'node', ...up], env },
      tokio: { cmd: join(BIN, 'release', 'tokio-proxy'), args: up, noTls: true },
    });
    // Each protoloop peer (the default, and variants such as protoloop-io2) also runs as the example's
    // other two proxies: a BufferedProtocol one and a forwardTo one.
    for (const mine of out.filter((p) => p.name.startsWith('protoloop'))) {
      const more = [['buffered', 'BufferedProtocol'], ['forward', 'forwardTo']].map(([impl, what]) => ({
        ...mine,
        name: `${mine.name}-${impl}`,
        label: mine.name === 'protoloop' ? `protoloop ${what}` : `protoloop ${what} (${mine.name.replace(/^protoloop-/, '')})`,
        args: [...proxy, '--impl', impl, ...up],
        baseline: false,
      }));
      out.splice(out.indexOf(mine) + 1, 0, ...more);
    }
    // nginx and haproxy: whenever installed (they are the bar, not a choice of --peers).
    for (const o of operators) {
      out.push({ name: o.name, label: o.label, cmd: process.execPath, args: [join(SERVERS, 'proxy-peer.cjs'), '--impl', o.name, ...up], env, reportsPid: true });
    }
    return out;
  },

  skip: (peer, variant) => Boolean(peer.noTls && variant.tls),

  variants(s) {
    return [
      {
        id: `echo-1KiB-x${CONNS}`,
        label: `echo 1 KiB × ${CONNS} conns through the proxy (protoloop: callbacks; vs Node pipe proxy)`,
        server: { mode: 'proxy-echo' },
        metrics: [{ key: 'value', label: 'req/s', higherIsBetter: true }],
      },
      {
        id: 'bulk',
        label: `${bulkBytes(s) >> 20} MiB client → upstream through the proxy (vs Node pipe proxy)`,
        server: { mode: 'proxy-sink' },
        metrics: [{ key: 'value', label: 'MiB/s', higherIsBetter: true }],
      },
      {
        id: `tls-echo-1KiB-x${CONNS}`,
        label: `TLS-terminating: echo 1 KiB × ${CONNS} conns, TLS client → proxy → plain upstream (vs Node tls pipe proxy)`,
        server: { mode: 'proxy-tls-echo' },
        metrics: [{ key: 'value', label: 'req/s', higherIsBetter: true }],
        tls: true,
      },
      {
        id: 'tls-bulk',
        label: `TLS-terminating: ${tlsBulkBytes(s) >> 20} MiB TLS client → plain upstream (vs Node tls pipe proxy)`,
        server: { mode: 'proxy-tls-sink' },
        metrics: [{ key: 'value', label: 'MiB/s', higherIsBetter: true }],
        tls: true,
      },
    ];
  },

  // Issue 21: forwardTo at least nginx's stream proxy, plain and TLS-terminating; callbacks 0.9x nginx.
  goals: {
    [`echo-1KiB-x${CONNS}`]: [
      { vs: 'node-net', atLeast: 1.5 },
      { peer: 'protoloop-forward', vs: 'tokio', atLeast: 0.9 },
      { peer: 'protoloop-forward', vs: 'nginx', atLeast: 1.0 },
      { vs: 'nginx', atLeast: 0.9 },
    ],
    bulk: [
      { vs: 'node-net', atLeast: 1.5 },
      { peer: 'protoloop-forward', vs: 'tokio', atLeast: 0.9 },
      { peer: 'protoloop-forward', vs: 'nginx', atLeast: 1.0 },
      { vs: 'nginx', atLeast: 0.9 },
    ],
    [`tls-echo-1KiB-x${CONNS}`]: [{ peer: 'protoloop-forward', vs: 'nginx', atLeast: 1.0 }],
    'tls-bulk': [{ peer: 'protoloop-forward', vs: 'nginx', atLeast: 1.0 }],
  },

  async measure({ s, variant, server, warmup }) {
    const addr = `127.0.0.1:${server.port}`;
    if (variant.tls) {
      const ca = join(certDir, 'cert.pem');
      if (variant.server.mode === 'proxy-tls-echo') {
        const r = await runLoadgen(LOADGEN, [
          'tls-echo', '--addr', addr, '--ca', ca, '--size', String(SIZE), '--conns', String(CONNS),
          '--duration', String(warmup ? s.warmupSeconds : s.seconds / 2), '--server-pid', String(server.pid),
        ]);
        return fromLoadgen(r, { value: r.rps }, { p50us: r.lat_us?.p50, p99us: r.lat_us?.p99 });
      }
      const r = await runLoadgen(LOADGEN, [
        'tls-bulk-up', '--addr', addr, '--ca', ca, '--total', String(warmup ? Math.min(tlsBulkBytes(s), 32 << 20) : tlsBulkBytes(s)),
        '--chunk', String(CHUNK), '--server-pid', String(server.pid),
      ]);
      return fromLoadgen(r, { value: r.bytes_per_s / (1 << 20) });
    }
    if (variant.server.mode === 'proxy-echo') {
      const r = await runLoadgen(LOADGEN, [
        'echo', '--addr', addr, '--size', String(SIZE), '--conns', String(CONNS),
        '--duration', String(warmup ? s.warmupSeconds : s.seconds / 2), '--server-pid', String(server.pid),
      ]);
      return fromLoadgen(r, { value: r.rps }, { p50us: r.lat_us.p50, p99us: r.lat_us.p99 });
    }
    const r = await runLoadgen(LOADGEN, [
      'bulk-up', '--addr', addr, '--total', String(warmup ? Math.min(bulkBytes(s), 64 << 20) : bulkBytes(s)),
      '--chunk', String(CHUNK), '--server-pid', String(server.pid),
    ]);
    return fromLoadgen(r, { value: r.bytes_per_s / (1 << 20) });
  },
};
