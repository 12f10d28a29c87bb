// Bulk transfer on one connection, 64 KiB writes: the client sends (the server only reads, with a
// plain Protocol, or with a BufferedProtocol where the peer has one: protoloop into allocBuffer memory,
// asyncio/uvloop into a bytearray; the others read into their own buffer anyway), or the server sends
// (with its transport's flow control: pauseWriting/resumeWriting, write()/'drain').
import { LOADGEN } from '../lib/build.mjs';
import { runLoadgen } from '../lib/proc.mjs';

const CHUNK = 64 * 1024;

export default {
  name: 'bulk',
  title: 'bulk',
  describe: 'one connection, 64 KiB writes, time until every byte has arrived',
  metrics: [{ key: 'mibps', label: 'MiB/s', higherIsBetter: true }],

  variants(s) {
    const size = s.bulkBytes >= 1 << 30 ? `${s.bulkBytes / (1 << 30)} GiB` : `${s.bulkBytes / (1 << 20)} MiB`;
    return [
      { id: 'receive', label: `receives ${size}`, server: { mode: 'sink', total: 0 }, cmd: 'bulk-up' },
      {
        id: 'receive-buffered',
        label: `receives ${size}, BufferedProtocol`,
        server: { mode: 'sink-buffered', total: 0 },
        cmd: 'bulk-up',
      },
      { id: 'send', label: `sends ${size}`, server: { mode: 'source', total: s.bulkBytes }, cmd: 'bulk-down' },
    ];
  },

  goals: {
    receive: [{ vs: 'node-net', atLeast: 1.7 }, { vs: 'tokio', atLeast: 0.8 }],
    'receive-buffered': [{ vs: 'node-net', atLeast: 1.7 }, { vs: 'tokio', atLeast: 0.8 }],
    send: [{ vs: 'node-net', atLeast: 1.7 }, { vs: 'tokio', atLeast: 0.8 }],
  },

  async measure({ s, variant, server }) {
    const r = await runLoadgen(LOADGEN, [
      variant.cmd,
      '--addr', `127.0.0.1:${server.port}`,
      '--total', String(s.bulkBytes),
      '--chunk', String(CHUNK),
      '--server-pid', String(server.pid),
    ]);
    return {
      metrics: { mibps: r.bytes_per_s / (1 << 20) },
      seconds: r.seconds,
      clientCpu: r.client_cpu.user + r.client_cpu.sys,
      serverCpu: r.server_cpu ? r.server_cpu.user + r.server_cpu.sys : null,
    };
  },
};
