// The http case (issue 18): Node's http server answering `hello world\n`, its connections accepted by
// protoloop (DuplexProtocol handed to `emit('connection')`, the protoloop column) or by Node's net (the
// Node column). The load generator's echo client sends one keep-alive GET per round trip and reads the
// response, whose length it is told (measured once per server with a plain request). Reported, no goal.
import { connect } from 'node:net';
import { join } from 'node:path';
import { LOADGEN } from '../lib/build.mjs';
import { SERVERS, casePeers, fromLoadgen } from '../lib/casepeers.mjs';
import { runLoadgen } from '../lib/proc.mjs';

const CONNS = 32;
const REQUEST = Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
const node = ['--expose-gc', join(SERVERS, 'streams.cjs')];

/** The byte length of the server's whole response to REQUEST (headers and body). */
function responseLength(port) {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(REQUEST));
    let got = Buffer.alloc(0);
    s.on('data', (d) => {
      got = Buffer.concat([got, d]);
      const end = got.indexOf('\r\n\r\n');
      if (end < 0) return;
      const m = /content-length: *(\d+)/i.exec(got.subarray(0, end).toString());
      if (!m) return reject(new Error('the http server sent no content-length'));
      const total = end + 4 + Number(m[1]);
      if (got.length >= total) {
        s.destroy();
        resolve(total);
      }
    });
    s.on('error', reject);
  });
}

export default {
  name: 'http',
  title: 'http',
  describe: `Node's http server on protoloop connections vs on Node net: keep-alive GETs × ${CONNS} conns, req/s (no goal)`,
  metrics: [{ key: 'rps', label: 'req/s', higherIsBetter: true }],
  server: { mode: 'http' },

  peers: (selected) =>
    casePeers(selected, {
      protoloop: { label: 'protoloop', args: [...node, '--impl', 'protoloop'] },
      'node-net': { args: [...node, '--impl', 'node'] },
    }),

  variants() {
    return [{ id: `get-x${CONNS}`, label: `Node http, keep-alive GET × ${CONNS} conns (protoloop DuplexProtocol vs Node net)` }];
  },

  async measure({ s, server, warmup }) {
    const reply = await responseLength(server.port);
    const r = await runLoadgen(LOADGEN, [
      'echo', '--addr', `127.0.0.1:${server.port}`, '--message-hex', REQUEST.toString('hex'), '--reply-size', String(reply),
      '--conns', String(CONNS), '--duration', String(warmup ? s.warmupSeconds : s.seconds), '--server-pid', String(server.pid),
    ]);
    return fromLoadgen(r, { rps: r.rps }, { p50us: r.lat_us.p50, p99us: r.lat_us.p99 });
  },
};
