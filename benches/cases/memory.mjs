// Memory of a server holding many idle connections (each has echoed one 16-byte message, so every
// peer has set up its per-connection state): the server's RSS from /proc, and for servers that run
// JavaScript the V8 heap after a full GC, and what each connection added to the RSS. A fresh server
// per measurement.
import { LOADGEN } from '../lib/build.mjs';
import { holdIdle } from '../lib/proc.mjs';

const MiB = 1 << 20;

export default {
  name: 'memory',
  title: 'memory',
  describe: 'a fresh server holding idle connections: RSS, and JS heap after a full GC',
  metrics: [
    { key: 'rss', label: 'RSS MiB', higherIsBetter: false },
    { key: 'heap', label: 'JS heap MiB', higherIsBetter: false },
    { key: 'perConn', label: 'KiB RSS/conn', higherIsBetter: false },
  ],
  server: { mode: 'echo' },
  freshServer: true,
  warmup: false,
  rounds: (s) => s.memoryRounds,

  variants(s) {
    return [{ id: `idle-${s.idleConns}`, label: `${s.idleConns.toLocaleString('en-US')} idle connections` }];
  },

  goals: {
    '*': [
      { vs: 'node-net', atMost: 1, metric: 'rss' },
      { vs: 'node-net', atMost: 1, metric: 'heap' },
    ],
  },

  async measure({ s, server, peer }) {
    const before = server.rss();
    const hold = await holdIdle(LOADGEN, ['--addr', `127.0.0.1:${server.port}`, '--conns', String(s.idleConns)]);
    try {
      await new Promise((r) => setTimeout(r, 300));
      const js = peer.jsHeap ? await server.jsMemory() : null;
      const rss = server.rss();
      return {
        metrics: { rss: rss / MiB, heap: js ? js.heapUsed / MiB : null, perConn: (rss - before) / s.idleConns / 1024 },
        extra: {
          rssBeforeMiB: +(before / MiB).toFixed(1),
          bytesPerConn: Math.round((rss - before) / s.idleConns),
          connectSeconds: hold.ready.connect_seconds,
        },
      };
    } finally {
      await hold.release();
    }
  },
};
