// Issue 19's memory figure: an echo server (flow-controlled: it stops reading while its writes back
// are over the high-water mark) under 1,000 connections that each write 16 KiB chunks as
// fast as it takes them and read back at most 16 KiB every 100 ms (slow readers), for 20 s. The
// server's writes pile up, its flow control has to stop reading, and its memory shows how much it
// held meanwhile (peak RSS, the kernel's VmHWM) and whether it gives it back once the load ends (RSS
// 2 s after the last connection closed, against RSS before the load). A fresh server per measurement.
import { readFileSync } from 'node:fs';
import { LOADGEN } from '../lib/build.mjs';
import { runLoadgen } from '../lib/proc.mjs';

const MiB = 1 << 20;
const CONNS = 1000;
const SIZE = 16 * 1024;

/** VmRSS and VmHWM of `pid`, in bytes. */
function memory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

export default {
  name: 'soak',
  title: 'soak',
  describe: 'echo under 1,000 slow readers (16 KiB writes): peak RSS, and RSS once the load ended',
  metrics: [
    { key: 'peak', label: 'peak RSS MiB', higherIsBetter: false },
    { key: 'retained', label: 'MiB kept after', higherIsBetter: false },
  ],
  server: { mode: 'echo-flow' },
  // The servers with a flow-controlled echo: protoloop's and Node's.
  peers: (selected) => selected.filter((p) => p.name.startsWith('protoloop') || p.name === 'node-net'),
  freshServer: true,
  warmup: false,
  rounds: (s) => s.soakRounds,

  variants(s) {
    return [{ id: `slow-${CONNS}`, label: `${CONNS.toLocaleString('en-US')} slow readers, 16 KiB writes, ${s.soakSeconds} s` }];
  },

  goals: {
    '*': [{ vs: 'node-net', atMost: 1.3, metric: 'peak' }],
  },

  async measure({ s, server }) {
    const before = memory(server.pid).rss;
    const r = await runLoadgen(
      LOADGEN,
      ['soak', '--addr', `127.0.0.1:${server.port}`, '--conns', String(CONNS), '--size', String(SIZE), '--duration', String(s.soakSeconds)],
      (s.soakSeconds + 120) * 1000,
    );
    // Every connection is closed; give the server a moment to see it (no GC or trim is asked for).
    await new Promise((res) => setTimeout(res, 2000));
    const m = memory(server.pid);
    return {
      metrics: { peak: m.peak / MiB, retained: (m.rss - before) / MiB },
      seconds: r.seconds,
      extra: { beforeMiB: +(before / MiB).toFixed(1), afterMiB: +(m.rss / MiB).toFixed(1), writtenMiB: Math.round(r.written / MiB), readMiB: Math.round(r.read / MiB) },
    };
  },
};
