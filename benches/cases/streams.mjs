// The streams case (issue 18): a line-based echo over 32 connections, each sending a 1 KiB line (1023
// bytes and `\n`) and waiting for it back. protoloop's asyncio streams (`for await` over lines, write,
// drain) against CPython's asyncio streams and uvloop's, the same program; Node's net with readline
// (the Node column). Same load generator as echo, its message a line.
import { join } from 'node:path';
import { LOADGEN } from '../lib/build.mjs';
import { SERVERS, casePeers, fromLoadgen } from '../lib/casepeers.mjs';
import { runLoadgen } from '../lib/proc.mjs';

const CONNS = 32;
const LINE = Buffer.concat([Buffer.alloc(1023, 'x'), Buffer.from('\n')]);
const node = ['--expose-gc', join(SERVERS, 'streams.cjs')];
const py = join(SERVERS, 'asyncio_streams.py');

export default {
  name: 'streams',
  title: 'streams',
  describe: `line echo (readline → write → drain), 1 KiB lines × ${CONNS} conns: req/s (Node column: net + readline)`,
  metrics: [{ key: 'rps', label: 'req/s', higherIsBetter: true }],
  server: { mode: 'line-echo' },

  peers: (selected) =>
    casePeers(selected, {
      protoloop: { label: 'protoloop', args: [...node, '--impl', 'protoloop'] },
      'node-net': { args: [...node, '--impl', 'node'] },
      asyncio: { args: [py] },
      uvloop: { args: [py, '--uvloop'] },
    }),

  variants() {
    return [{ id: `lines-1KiB-x${CONNS}`, label: `line echo 1 KiB × ${CONNS} conns (streams; Node: net + readline)` }];
  },

  goals: { [`lines-1KiB-x${CONNS}`]: [{ vs: 'asyncio', atLeast: 1.5 }] },

  async measure({ s, server, warmup }) {
    const r = await runLoadgen(LOADGEN, [
      'echo', '--addr', `127.0.0.1:${server.port}`, '--message-hex', LINE.toString('hex'), '--conns', String(CONNS),
      '--duration', String(warmup ? s.warmupSeconds : s.seconds), '--server-pid', String(server.pid),
    ]);
    return fromLoadgen(r, { rps: r.rps }, { p50us: r.lat_us.p50, p99us: r.lat_us.p99 });
  },
};
