// The sendfile case's servers: every connection gets the whole file $PROTOLOOP_BENCH_FILE, then a
// close. protoloop: `sendfile(transport, fd)` (sendfile(2), no byte in user space); Node: the idiom,
// `fs.createReadStream(file).pipe(socket)`.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs, listening, control } = require('./common.cjs');

const impl = process.argv[process.argv.indexOf('--impl') + 1];
const { port } = parseArgs();
const file = process.env.PROTOLOOP_BENCH_FILE;

if (impl === 'protoloop') {
  const { Protocol, createServer, sendfile } = require(path.join(__dirname, '..', '..', 'dist', 'cjs', 'index.js'));
  class Send extends Protocol {
    async connectionMade(transport) {
      const fh = await fs.promises.open(file, 'r');
      try {
        await sendfile(transport, fh);
      } catch {
        transport.abort();
      } finally {
        await fh.close();
      }
      transport.close();
    }
  }
  createServer(() => new Send(), '127.0.0.1', port, { backlog: 1024 }).then((server) => {
    listening(server.sockets[0].getsockname()[1]);
    control();
  });
} else if (impl === 'node') {
  const net = require('node:net');
  const server = net.createServer((sock) => {
    sock.setNoDelay(true);
    sock.on('error', () => {});
    fs.createReadStream(file).pipe(sock);
  });
  server.listen({ host: '127.0.0.1', port, backlog: 1024 }, () => {
    listening(server.address().port);
    control();
  });
} else {
  throw new Error(`unknown --impl ${impl}`);
}
