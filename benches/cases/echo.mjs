// vmbench's echo: every connection sends a message of N bytes, waits for all N back, and repeats; one
// request in flight per connection. The figure is completed requests per second.
import { LOADGEN } from '../lib/build.mjs';
import { countSyscalls, runLoadgen } from '../lib/proc.mjs';

const SIZES = [
  ['1KiB', 1024, '1 KiB'],
  ['10KiB', 10 * 1024, '10 KiB'],
  ['100KiB', 100 * 1024, '100 KiB'],
];
const CONNS = [1, 32, 256];

export default {
  name: 'echo',
  title: 'echo',
  describe: 'vmbench echo: each connection sends N bytes, waits for N bytes back, repeats',
  metrics: [{ key: 'rps', label: 'req/s', higherIsBetter: true }],
  server: { mode: 'echo' },

  variants(s) {
    const out = [];
    for (const [id, size, label] of SIZES) {
      for (const conns of CONNS) {
        if (s.sizes && !s.sizes.includes(size)) continue;
        if (s.conns && !s.conns.includes(conns)) continue;
        out.push({ id: `${id}-x${conns}`, label: `${label} × ${conns} conn${conns > 1 ? 's' : ''}`, size, conns });
      }
    }
    return out;
  },

  goals: {
    '1KiB-x32': [
      { vs: 'node-net', atLeast: 2 },
      { vs: 'uvloop', atLeast: 1 },
      { vs: 'c-epoll', atLeast: 0.9 },
    ],
  },

  async measure({ s, variant, server, warmup }) {
    // System calls per request, for one connection (issue 19: where a request's calls go).
    const counter = !warmup && s.syscalls && variant.conns === 1 ? await countSyscalls(server.pid) : null;
    const r = await runLoadgen(LOADGEN, [
      'echo',
      '--addr', `127.0.0.1:${server.port}`,
      '--size', String(variant.size),
      '--conns', String(variant.conns),
      '--duration', String(warmup ? s.warmupSeconds : s.seconds),
      '--threads', String(s.clientThreads),
      '--server-pid', String(server.pid),
    ]);
    const syscalls = counter ? await counter.stop() : null;
    return {
      metrics: { rps: r.rps },
      seconds: r.seconds,
      // Includes the few calls of accepting and closing the connection.
      syscallsPerUnit: syscalls != null && r.requests > 0 ? syscalls / r.requests : null,
      clientCpu: r.client_cpu.user + r.client_cpu.sys,
      serverCpu: r.server_cpu ? r.server_cpu.user + r.server_cpu.sys : null,
      extra: { p50us: r.lat_us.p50, p99us: r.lat_us.p99 },
    };
  },
};
