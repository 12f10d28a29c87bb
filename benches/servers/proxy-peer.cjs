// nginx and haproxy as proxy peers (the proxy case): renders benches/nginx-proxy.conf or
// benches/haproxy-proxy.cfg for a free port and the upstream of `--mode` (`proxy-echo` and `proxy-sink`
// plain, `proxy-tls-echo` and `proxy-tls-sink` terminating TLS with the certificate in
// $PROTOLOOP_BENCH_TLS), runs the server in the foreground, prints `LISTENING <port>` and `PID <its pid>`
// (the process the harness measures), and stops it when stdin ends, as every bench server does.
'use strict';
const { spawn } = require('node:child_process');
const { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } = require('node:fs');
const net = require('node:net');
const { tmpdir } = require('node:os');
const path = require('node:path');
const { parseArgs, listening } = require('./common.cjs');

/** TLS 1.3's cipher suite for every TLS peer (rustls's and OpenSSL's first choice on x86-64 with AES-NI). */
const CIPHERSUITE = 'TLS_AES_256_GCM_SHA384';
const STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';

const arg = (k) => process.argv[process.argv.indexOf(k) + 1];
const impl = arg('--impl');
const { mode } = parseArgs();
const tls = mode.startsWith('proxy-tls-');
const upstream = arg(`--upstream-${mode.replace(/^proxy-(tls-)?/, '')}`);
const certDir = process.env.PROTOLOOP_BENCH_TLS;
if (tls && !certDir) throw new Error('PROTOLOOP_BENCH_TLS must name the directory of cert.pem and key.pem');

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer().on('error', reject).listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function render(file, values) {
  return readFileSync(path.join(__dirname, '..', file), 'utf8').replace(/\{\{(\w+)\}\}/g, (_, k) => {
    if (!(k in values)) throw new Error(`${file}: no value for {{${k}}}`);
    return values[k];
  });
}

/** Resolves once `port` accepts a connection. */
async function accepting(port, child) {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`${impl} exited with ${child.exitCode}`);
    const ok = await new Promise((r) => {
      const s = net.connect(port, '127.0.0.1', () => (s.destroy(), r(true))).on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${impl} did not listen on ${port}`);
}

async function main() {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), `protoloop-bench-${impl}-`));
  let cmd;
  let args;
  if (impl === 'nginx') {
    const conf = path.join(dir, 'nginx.conf');
    const cert = tls ? `ssl_certificate ${certDir}/cert.pem; ssl_certificate_key ${certDir}/key.pem; ssl_protocols TLSv1.3; ssl_conf_command Ciphersuites ${CIPHERSUITE};` : '';
    writeFileSync(conf, render('nginx-proxy.conf', { STREAM_MODULE, DIR: dir, PORT: port, UPSTREAM: upstream, SSL: tls ? ' ssl' : '', TLS: cert }));
    [cmd, args] = ['nginx', ['-c', conf, '-p', dir, '-e', 'stderr']];
  } else if (impl === 'haproxy') {
    const conf = path.join(dir, 'haproxy.cfg');
    let ssl = '';
    if (tls) {
      // haproxy takes the certificate and its key from one file.
      writeFileSync(path.join(dir, 'both.pem'), readFileSync(`${certDir}/cert.pem`, 'utf8') + readFileSync(`${certDir}/key.pem`, 'utf8'));
      ssl = ` ssl crt ${dir}/both.pem`;
    }
    writeFileSync(conf, render('haproxy-proxy.cfg', { CIPHERSUITE, PORT: port, UPSTREAM: upstream, SSL: ssl }));
    [cmd, args] = ['haproxy', ['-f', conf, '-db']];
  } else {
    throw new Error(`unknown --impl ${impl}`);
  }
  // Debian puts both in /usr/sbin, which a user's PATH may not hold.
  const bin = [`/usr/sbin/${cmd}`, `/usr/local/sbin/${cmd}`].find((f) => existsSync(f)) ?? cmd;
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  let stopping = false;
  // The directory (config, nginx's pid file) goes once the server is gone, not under its feet.
  const stop = () => {
    if (stopping) return;
    stopping = true;
    child.once('exit', () => {
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    });
    child.kill('SIGTERM');
  };
  process.on('exit', () => child.kill('SIGKILL')); // a last resort: no server outlives this process
  await accepting(port, child);
  listening(port);
  process.stdout.write(`PID ${child.pid}\n`);
  // The end of stdin (or SIGTERM) stops the server, then this process.
  process.stdin.on('end', stop).resume();
  process.on('SIGTERM', stop);
  child.on('exit', (code) => {
    if (stopping) return;
    console.error(`${impl} exited (${code})`);
    process.exit(1);
  });
}

main().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
