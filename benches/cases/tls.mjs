// TLS (issue 7): the echo and bulk cases over TLS, with one rustls client (the load generator) for
// every server: protoloop's `ssl` option against Node's tls (the Node column) and asyncio/uvloop with
// an SSLContext. A self-signed P-256 certificate for localhost is made with openssl at the start.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOADGEN } from '../lib/build.mjs';
import { SERVERS, casePeers, fromLoadgen } from '../lib/casepeers.mjs';
import { runLoadgen } from '../lib/proc.mjs';

const CONNS = 32;
const SIZE = 1024;
const CHUNK = 64 * 1024;
const node = ['--expose-gc', join(SERVERS, 'tls.cjs')];
const py = join(SERVERS, 'asyncio_more.py');
let dir = null;

const RPS = { key: 'value', label: 'req/s', higherIsBetter: true };
const MIBPS = { key: 'value', label: 'MiB/s', higherIsBetter: true };
const bulkBytes = (s) => Math.min(s.bulkBytes, 256 << 20);

export default {
  name: 'tls',
  title: 'tls',
  describe: 'echo and bulk over TLS (rustls client, self-signed P-256 certificate); the Node column is Node tls',
  metrics: [{ key: 'value', label: 'req/s', higherIsBetter: true }], // per variant, below

  setup() {
    dir = mkdtempSync(join(tmpdir(), 'protoloop-bench-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost', '-addext', 'basicConstraints=critical,CA:FALSE'], { cwd: dir, stdio: 'ignore' });
  },
  teardown() {
    if (dir) rmSync(dir, { recursive: true, force: true });
  },

  peers: (selected) => {
    const env = { PROTOLOOP_BENCH_TLS: dir };
    return casePeers(selected, {
      protoloop: { args: [...node, '--impl', 'protoloop'], env },
      'node-net': { args: [...node, '--impl', 'node'], env },
      asyncio: { args: [py], env },
      uvloop: { args: [py, '--uvloop'], env },
    });
  },

  variants(s) {
    return [
      { id: `echo-1KiB-x${CONNS}`, label: `echo 1 KiB × ${CONNS} conns (vs Node tls)`, server: { mode: 'tls-echo' }, metrics: [RPS] },
      { id: 'receive', label: `receives ${bulkBytes(s) >> 20} MiB (vs Node tls)`, server: { mode: 'tls-sink' }, metrics: [MIBPS] },
    ];
  },

  goals: {}, // the issue sets none: it asks for the figures

  async measure({ s, variant, server, warmup }) {
    const addr = `127.0.0.1:${server.port}`;
    const ca = join(dir, 'cert.pem');
    if (variant.metrics[0] === RPS) {
      const r = await runLoadgen(LOADGEN, [
        'tls-echo', '--addr', addr, '--ca', ca, '--size', String(SIZE), '--conns', String(CONNS),
        '--duration', String(warmup ? s.warmupSeconds : s.seconds / 2), '--server-pid', String(server.pid),
      ]);
      return fromLoadgen(r, { value: r.rps });
    }
    const r = await runLoadgen(LOADGEN, [
      'tls-bulk-up', '--addr', addr, '--ca', ca, '--total', String(warmup ? Math.min(bulkBytes(s), 32 << 20) : bulkBytes(s)),
      '--chunk', String(CHUNK), '--server-pid', String(server.pid),
    ]);
    return fromLoadgen(r, { value: r.bytes_per_s / (1 << 20) });
  },
};
