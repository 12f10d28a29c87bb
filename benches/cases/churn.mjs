// Connection churn: connect, one 16-byte request and its echo, close; as fast as possible from a
// number of concurrent clients. The figure is completed connections per second.
import { LOADGEN } from '../lib/build.mjs';
import { runLoadgen } from '../lib/proc.mjs';

const CLIENTS = 32;

export default {
  name: 'churn',
  title: 'churn',
  describe: 'connect, one request, close, repeated by 32 concurrent clients',
  metrics: [{ key: 'cps', label: 'conn/s', higherIsBetter: true }],
  server: { mode: 'echo' },

  variants() {
    return [{ id: `x${CLIENTS}`, label: `connect, 1 request, close × ${CLIENTS}` }];
  },

  goals: { [`x${CLIENTS}`]: [{ vs: 'node-net', atLeast: 1 }] },

  async measure({ s, server, warmup }) {
    const r = await runLoadgen(LOADGEN, [
      'churn',
      '--addr', `127.0.0.1:${server.port}`,
      '--conns', String(CLIENTS),
      '--size', '16',
      '--duration', String(warmup ? s.warmupSeconds : s.seconds),
      '--server-pid', String(server.pid),
    ]);
    return {
      metrics: { cps: r.cps },
      seconds: r.seconds,
      clientCpu: r.client_cpu.user + r.client_cpu.sys,
      serverCpu: r.server_cpu ? r.server_cpu.user + r.server_cpu.sys : null,
      extra: r.errors ? { errors: r.errors } : undefined,
    };
  },
};
