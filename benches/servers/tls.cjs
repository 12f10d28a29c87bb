// The tls case's servers: the echo and sink of protoloop.cjs and node-net.cjs over TLS, protoloop's
// `ssl` option (`--impl protoloop`) or Node's tls (`--impl node`). The certificate and key are
// `cert.pem` and `key.pem` in $PROTOLOOP_BENCH_TLS (made with openssl by the case).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs, listening, control } = require('./common.cjs');

const impl = process.argv[process.argv.indexOf('--impl') + 1];
const { port, mode } = parseArgs();
const dir = process.env.PROTOLOOP_BENCH_TLS;
const cert = fs.readFileSync(path.join(dir, 'cert.pem'));
const key = fs.readFileSync(path.join(dir, 'key.pem'));

if (impl === 'protoloop') {
  const { createServer } = require(path.join(__dirname, '..', '..', 'dist', 'cjs', 'index.js'));
  const { Echo, Sink } = require('./protocols.cjs');
  const factory = { 'tls-echo': () => new Echo(), 'tls-sink': () => new Sink() }[mode];
  if (!factory) throw new Error(`unknown mode ${mode}`);
  createServer(factory, '127.0.0.1', port, { backlog: 1024, ssl: { cert, key } }).then((server) => {
    listening(server.sockets[0].getsockname()[1]);
    control();
  });
} else if (impl === 'node') {
  const tls = require('node:tls');
  const handle = {
    'tls-echo': (sock) => sock.on('data', (data) => sock.write(data)),
    'tls-sink': (sock) => {
      let received = 0;
      sock.on('data', (data) => {
        received += data.length;
      });
    },
  }[mode];
  if (!handle) throw new Error(`unknown mode ${mode}`);
  const server = tls.createServer({ cert, key }, (sock) => {
    sock.setNoDelay(true);
    sock.on('error', () => {});
    handle(sock);
  });
  server.listen({ host: '127.0.0.1', port, backlog: 1024 }, () => {
    listening(server.address().port);
    control();
  });
} else {
  throw new Error(`unknown --impl ${impl}`);
}
