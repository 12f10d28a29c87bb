// Subprocesses (issue 6): spawn-and-wait rate (`true`, 8 at a time) and pipe throughput through one
// `cat` (64 KiB writes into its stdin with flow control, everything read back from its stdout).
// protoloop's subprocessExec against Node's child_process.spawn (the Node column). The process under
// test is a runner (servers/subprocess.cjs) that does the work when asked on stdin and reports its
// own wall time and CPU time (children excluded); there is no load generator.
import { join } from 'node:path';
import { SERVERS, casePeers } from '../lib/casepeers.mjs';

const CONCURRENCY = 8;
const runner = ['--expose-gc', join(SERVERS, 'subprocess.cjs')];
const spawns = (s) => (s.quick ? 100 : 1000);
const pipeBytes = (s) => Math.min(s.bulkBytes, 256 << 20);

export default {
  name: 'subprocess',
  title: 'subprocess',
  describe: 'spawn-and-wait `true` 8 at a time, and bytes through `cat`; the Node column is child_process',
  metrics: [{ key: 'value', label: 'spawns/s', higherIsBetter: true }], // per variant, below
  server: { mode: 'runner' },

  peers: (selected) =>
    casePeers(selected, {
      protoloop: { args: [...runner, '--impl', 'protoloop'] },
      'node-net': { args: [...runner, '--impl', 'node'] },
    }),

  variants(s) {
    return [
      {
        id: 'spawn',
        label: `spawn and wait \`true\` × ${spawns(s).toLocaleString('en-US')}, ${CONCURRENCY} at a time (vs child_process)`,
        metrics: [{ key: 'value', label: 'spawns/s', higherIsBetter: true }],
        command: (warmup) => `spawn ${warmup ? 50 : spawns(s)} ${CONCURRENCY}`,
        figure: (r) => r.spawns / r.seconds,
      },
      {
        id: 'pipe',
        label: `${pipeBytes(s) >> 20} MiB through \`cat\` (vs child_process)`,
        metrics: [{ key: 'value', label: 'MiB/s', higherIsBetter: true }],
        command: (warmup) => `pipe ${warmup ? 16 << 20 : pipeBytes(s)}`,
        figure: (r) => r.bytes / (1 << 20) / r.seconds,
      },
    ];
  },

  goals: {}, // the issue sets none: it asks for the figures

  async measure({ variant, server, warmup }) {
    server.child.stdin.write(`${variant.command(warmup)}\n`);
    const r = JSON.parse((await server.out.next((l) => l.startsWith('RESULT '), 120_000)).slice(7));
    if (r.error) throw new Error(r.error);
    return { metrics: { value: variant.figure(r) }, seconds: r.seconds, clientCpu: null, serverCpu: r.cpu.user + r.cpu.sys };
  },
};
