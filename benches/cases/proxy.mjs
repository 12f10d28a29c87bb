// The proxy case (issue 9): load generator → proxy → upstream, the proxy being the process under test.
// The upstream is the C epoll server (one echo, one sink, shared by every proxy, started by the case)
// so that as much of the machine as possible is left to the proxy. Proxies: examples/tcp-proxy.ts as
// shipped, `callbacks` (every byte through JavaScript, the protoloop column), `buffered` (the same
// through a BufferedProtocol's reused buffer, its own column) and `forward` (transport.forwardTo, its
// own column); Node net with socket.pipe() both ways (the Node column);
// raw tokio with copy_bidirectional (loadgen/src/bin/tokio-proxy.rs).
import { join } from 'node:path';
import { BIN, LOADGEN } from '../lib/build.mjs';
import { SERVERS, casePeers, fromLoadgen } from '../lib/casepeers.mjs';
import { allPeers } from '../lib/peers.mjs';
import { ServerProcess, runLoadgen } from '../lib/proc.mjs';

const CONNS = 32;
const SIZE = 1024;
const CHUNK = 64 * 1024;
const proxy = ['--expose-gc', join(SERVERS, 'proxy.cjs')];
const bulkBytes = (s) => Math.min(s.bulkBytes, 512 << 20);
let upstream = null;

export default {
  name: 'proxy',
  title: 'proxy',
  describe: 'load generator → proxy → C epoll upstream: echo req/s and bulk MiB/s through each proxy',
  metrics: [{ key: 'value', label: 'req/s', higherIsBetter: true }], // per variant, below

  async setup() {
    const c = allPeers().find((p) => p.name === 'c-epoll');
    const [echo, sink] = await Promise.all([new ServerProcess(c, 'echo', 0).ready(), new ServerProcess(c, 'sink', 0).ready()]);
    upstream = { echo, sink };
  },
  async teardown() {
    if (!upstream) return;
    await Promise.all([upstream.echo.stop(), upstream.sink.stop()]);
    upstream = null;
  },

  peers(selected) {
    const up = ['--upstream-echo', String(upstream.echo.port), '--upstream-sink', String(upstream.sink.port)];
    const out = casePeers(selected, {
      protoloop: { label: 'protoloop', args: [...proxy, '--impl', 'callbacks', ...up] },
      'node-net': { args: [...proxy, '--impl', 'node', ...up] },
      tokio: { cmd: join(BIN, 'release', 'tokio-proxy'), args: up },
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
    return out;
  },

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
    ];
  },

  goals: {
    [`echo-1KiB-x${CONNS}`]: [{ vs: 'node-net', atLeast: 1.5 }, { peer: 'protoloop-forward', vs: 'tokio', atLeast: 0.9 }],
    bulk: [{ vs: 'node-net', atLeast: 1.5 }, { peer: 'protoloop-forward', vs: 'tokio', atLeast: 0.9 }],
  },

  async measure({ s, variant, server, warmup }) {
    const addr = `127.0.0.1:${server.port}`;
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
