// sendfile (issue 9): a server sends a file (1 GiB by default, `--bulk-mib`) to each connection, the
// load generator reads it to the end. protoloop's `sendfile(transport, fd)` (sendfile(2)) against Node's
// `fs.createReadStream(file).pipe(socket)` (the Node column). The file is written once by the case and
// read from the page cache by every run.
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOADGEN } from '../lib/build.mjs';
import { SERVERS, casePeers, fromLoadgen } from '../lib/casepeers.mjs';
import { runLoadgen } from '../lib/proc.mjs';

const server = ['--expose-gc', join(SERVERS, 'sendfile.cjs')];
let dir = null;
let file = null;

export default {
  name: 'sendfile',
  title: 'sendfile',
  describe: 'a server sends a file to each connection: protoloop sendfile() vs Node createReadStream().pipe(socket)',
  metrics: [{ key: 'mibps', label: 'MiB/s', higherIsBetter: true }],
  server: { mode: 'sendfile' },

  setup(s) {
    dir = mkdtempSync(join(tmpdir(), 'protoloop-bench-sendfile-'));
    file = join(dir, 'file');
    const fd = openSync(file, 'w');
    const chunk = Buffer.alloc(1 << 20, 'x');
    for (let i = 0; i < s.bulkBytes; i += chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, s.bulkBytes - i));
    closeSync(fd);
  },
  teardown() {
    if (dir) rmSync(dir, { recursive: true, force: true });
  },

  peers: (selected) =>
    casePeers(selected, {
      protoloop: { args: [...server, '--impl', 'protoloop'], env: { PROTOLOOP_BENCH_FILE: file } },
      'node-net': { args: [...server, '--impl', 'node'], env: { PROTOLOOP_BENCH_FILE: file } },
    }),

  variants(s) {
    const size = s.bulkBytes >= 1 << 30 ? `${s.bulkBytes / (1 << 30)} GiB` : `${s.bulkBytes >> 20} MiB`;
    return [{ id: 'file', label: `sends a ${size} file (vs Node createReadStream().pipe())` }];
  },

  goals: {}, // the issue sets none: it asks for the figures

  async measure({ s, server: srv }) {
    const r = await runLoadgen(LOADGEN, [
      'bulk-down', '--addr', `127.0.0.1:${srv.port}`, '--total', String(s.bulkBytes), '--server-pid', String(srv.pid),
    ]);
    return fromLoadgen(r, { mibps: r.bytes_per_s / (1 << 20) });
  },
};
