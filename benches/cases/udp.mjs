// UDP echo (issue 4): the load generator keeps a window of datagrams in flight on one connected UDP
// socket, each echo sending the next; the figure is echoed datagrams per second. protoloop's
// createDatagramEndpoint against Node's dgram (the Node column) and asyncio/uvloop datagram endpoints.
import { LOADGEN } from '../lib/build.mjs';
import { SERVERS, casePeers, fromLoadgen } from '../lib/casepeers.mjs';
import { runLoadgen } from '../lib/proc.mjs';
import { join } from 'node:path';

const WINDOW = 64;
const node = ['--expose-gc', join(SERVERS, 'udp.cjs')];
const py = join(SERVERS, 'asyncio_more.py');

export default {
  name: 'udp',
  title: 'udp',
  describe: `UDP echo, ${WINDOW} datagrams in flight: datagrams/s (the Node column is Node dgram)`,
  metrics: [{ key: 'pps', label: 'datagrams/s', higherIsBetter: true }],
  server: { mode: 'udp-echo' },

  peers: (selected) =>
    casePeers(selected, {
      protoloop: { args: [...node, '--impl', 'protoloop'] },
      'node-net': { args: [...node, '--impl', 'node'] },
      asyncio: { args: [py] },
      uvloop: { args: [py, '--uvloop'] },
    }),

  variants() {
    return [
      { id: '64B', label: `64-byte datagrams, ${WINDOW} in flight (vs Node dgram)`, size: 64 },
      { id: '1KiB', label: `1 KiB datagrams, ${WINDOW} in flight (vs Node dgram)`, size: 1024 },
    ];
  },

  goals: {
    '64B': [{ vs: 'node-net', atLeast: 1.2 }],
    '1KiB': [{ vs: 'node-net', atLeast: 1.2 }],
  },

  async measure({ s, variant, server, warmup }) {
    const r = await runLoadgen(LOADGEN, [
      'udp',
      '--addr', `127.0.0.1:${server.port}`,
      '--size', String(variant.size),
      '--window', String(WINDOW),
      '--duration', String(warmup ? s.warmupSeconds : s.seconds / 2),
      '--server-pid', String(server.pid),
    ]);
    return fromLoadgen(r, { pps: r.pps }, r.refills || r.lost ? { refills: r.refills, lost: r.lost } : undefined);
  },
};
