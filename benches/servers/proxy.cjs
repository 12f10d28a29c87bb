// The proxy case's proxies, each in front of the upstream at `--target HOST:PORT`, or as the harness
// starts them, 127.0.0.1 at `--upstream-echo PORT` for `--mode proxy-echo` (`--upstream-sink` for
// `proxy-sink`). The `proxy-tls-echo` and `proxy-tls-sink` modes terminate TLS (clients speak TLS to the
// proxy, the upstream gets plaintext) with cert.pem and key.pem of the directory $PROTOLOOP_BENCH_TLS:
//   --impl callbacks|buffered|forward   examples/tcp-proxy.ts as shipped (dist/examples/tcp-proxy.js),
//                                       run in this process with its own argv; its `listening on
//                                       127.0.0.1:<port>` line becomes the harness's `LISTENING <port>`;
//   --impl node                         Node's net (tls for TLS), the idiom: a fresh upstream socket and
//                                       `pipe()` both ways.
'use strict';
const path = require('node:path');
const { parseArgs, listening, control } = require('./common.cjs');

const arg = (k) => process.argv[process.argv.indexOf(k) + 1];
const impl = arg('--impl');
const { port, mode } = parseArgs();
const tls = mode.startsWith('proxy-tls-');
const [targetHost, targetPort] = process.argv.includes('--target')
  ? arg('--target').split(':')
  : ['127.0.0.1', arg(`--upstream-${mode.replace(/^proxy-(tls-)?/, '')}`)];
const certDir = process.env.PROTOLOOP_BENCH_TLS;

if (impl === 'callbacks' || impl === 'buffered' || impl === 'forward') {
  const log = console.log;
  console.log = (...a) => {
    const m = /listening on 127\.0\.0\.1:(\d+)/.exec(String(a[0]));
    if (m) {
      console.log = log;
      listening(Number(m[1]));
      control();
    } else log(...a);
  };
  const tlsArgs = tls ? ['--tls', '--cert', path.join(certDir, 'cert.pem'), '--key', path.join(certDir, 'key.pem')] : [];
  process.argv = [process.argv[0], 'tcp-proxy.js', impl, String(port), targetHost, targetPort, ...tlsArgs];
  require(path.join(__dirname, '..', '..', 'dist', 'examples', 'tcp-proxy.js'));
} else if (impl === 'node') {
  const net = require('node:net');
  const fs = require('node:fs');
  // allowHalfOpen on both sockets, so that a half-close passes through as it does in the other proxies.
  // TLS: TLS 1.3 only, the cipher suite nginx and haproxy are given (benches/servers/proxy-peer.cjs).
  const opts = tls
    ? { allowHalfOpen: true, cert: fs.readFileSync(path.join(certDir, 'cert.pem')), key: fs.readFileSync(path.join(certDir, 'key.pem')), minVersion: 'TLSv1.3', ciphers: 'TLS_AES_256_GCM_SHA384' }
    : { allowHalfOpen: true };
  const server = (tls ? require('node:tls') : net).createServer(opts, (down) => {
    down.setNoDelay(true);
    const up = net.connect({ host: targetHost, port: Number(targetPort), noDelay: true, allowHalfOpen: true });
    down.on('error', () => up.destroy());
    up.on('error', () => down.destroy());
    down.pipe(up);
    up.pipe(down);
  });
  server.listen({ host: '127.0.0.1', port, backlog: 1024 }, () => {
    listening(server.address().port);
    control();
  });
} else {
  throw new Error(`unknown --impl ${impl}`);
}
