// TLS benchmarks: bulk throughput and echo round trips, protoloop's TLS client against Node's `tls`
// client, each talking to the same peer: a Node `tls` server in a child process (so the side measured
// has this process to itself). Medians of RUNS runs. Prints a table; writes benches/results/tls.json.
//   node benches/tls.mjs            (MIB=256 RUNS=5 ROUNDS=20000 override the sizes)
import { execFileSync, fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { Protocol, createConnection } from '../dist/esm/index.mjs';

const MIB = Number(process.env.MIB ?? 256);
const RUNS = Number(process.env.RUNS ?? 5);
const ROUNDS = Number(process.env.ROUNDS ?? 20000);
const CHUNK = 256 << 10;

function certificates() {
  const dir = mkdtempSync(join(tmpdir(), 'protoloop-bench-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'key.pem',
    '-out', 'cert.pem', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost',
    '-addext', 'basicConstraints=critical,CA:FALSE'], { cwd: dir, stdio: 'ignore' });
  return dir;
}

async function peer(mode, certDir) {
  const child = fork(new URL(import.meta.url).pathname, ['peer', mode, certDir], { env: { ...process.env } });
  const port = await new Promise((r) => child.once('message', r));
  return { port, stop: () => child.kill() };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** protoloop: send MIB MiB honouring flow control, resolve when the peer acknowledges all. */
async function bulkProtoloop(port, ca) {
  const chunk = Buffer.alloc(CHUNK, 1);
  let resume = null;
  let acked;
  const done = new Promise((r) => (acked = r));
  class P extends Protocol {
    paused = false;
    pauseWriting() { this.paused = true; }
    resumeWriting() { this.paused = false; resume?.(); }
    dataReceived() { acked(); }
  }
  const p = new P();
  const start = performance.now();
  const [t] = await createConnection(() => p, 'localhost', port, { ssl: { ca } });
  for (let sent = 0; sent < MIB << 20; sent += CHUNK) {
    t.write(chunk);
    if (p.paused) await new Promise((r) => (resume = r));
  }
  await done;
  const s = (performance.now() - start) / 1000;
  t.close();
  return MIB / s;
}

async function bulkNode(port, ca) {
  const chunk = Buffer.alloc(CHUNK, 1);
  const start = performance.now();
  const s = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca });
  await new Promise((r) => s.once('secureConnect', r));
  const done = new Promise((r) => s.once('data', r));
  for (let sent = 0; sent < MIB << 20; sent += CHUNK) {
    if (!s.write(chunk)) await new Promise((r) => s.once('drain', r));
  }
  await done;
  const secs = (performance.now() - start) / 1000;
  s.destroy();
  return MIB / secs;
}

async function echoProtoloop(port, ca) {
  const msg = Buffer.alloc(64, 2);
  let left = ROUNDS;
  let got = 0;
  let finished;
  const done = new Promise((r) => (finished = r));
  class P extends Protocol {
    connectionMade(t) { this.t = t; }
    dataReceived(d) {
      got += d.length;
      if (got < msg.length) return;
      got = 0;
      if (--left === 0) return finished();
      this.t.write(msg);
    }
  }
  const [t] = await createConnection(() => new P(), 'localhost', port, { ssl: { ca } });
  const start = performance.now();
  t.write(msg);
  await done;
  const rps = ROUNDS / ((performance.now() - start) / 1000);
  t.close();
  return rps;
}

async function echoNode(port, ca) {
  const msg = Buffer.alloc(64, 2);
  const s = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca });
  await new Promise((r) => s.once('secureConnect', r));
  s.setNoDelay(true);
  let left = ROUNDS;
  let got = 0;
  const start = performance.now();
  await new Promise((resolve) => {
    s.on('data', (d) => {
      got += d.length;
      if (got < msg.length) return;
      got = 0;
      if (--left === 0) return resolve();
      s.write(msg);
    });
    s.write(msg);
  });
  const rps = ROUNDS / ((performance.now() - start) / 1000);
  s.destroy();
  return rps;
}

async function main() {
  const certDir = certificates();
  const ca = readFileSync(join(certDir, 'cert.pem'), 'utf8');
  const sink = await peer('sink', certDir);
  const echo = await peer('echo', certDir);
  const rows = [];
  for (const [name, unit, fns, port] of [
    [`TLS bulk, ${MIB} MiB client → server`, 'MiB/s', [bulkProtoloop, bulkNode], sink.port],
    [`TLS echo, 64 B round trips × ${ROUNDS}`, 'req/s', [echoProtoloop, echoNode], echo.port],
  ]) {
    const results = [];
    for (const fn of fns) {
      const xs = [];
      for (let i = 0; i < RUNS; i++) xs.push(await fn(port, ca));
      results.push(median(xs));
    }
    rows.push({ name, unit, protoloop: results[0], node: results[1], ratio: results[0] / results[1] });
  }
  sink.stop();
  echo.stop();
  console.log(`medians of ${RUNS}; peer: Node tls server in a child process`);
  for (const r of rows) {
    console.log(`${r.name.padEnd(40)} protoloop ${r.protoloop.toFixed(0).padStart(8)} ${r.unit}   node tls ${r.node.toFixed(0).padStart(8)} ${r.unit}   ratio ${r.ratio.toFixed(2)}`);
  }
  const out = new URL('./results/', import.meta.url);
  mkdirSync(out, { recursive: true });
  writeFileSync(new URL('tls.json', out), JSON.stringify({ runs: RUNS, mib: MIB, rounds: ROUNDS, rows }, null, 2) + '\n');
}

if (process.argv[2] === 'peer') {
  // The peer: mode 'sink' counts bytes and answers the total as 8 bytes once it has MIB MiB;
  // mode 'echo' sends back what it gets.
  const [, , , mode, certDir] = process.argv;
  const server = tls.createServer({ key: readFileSync(join(certDir, 'key.pem')), cert: readFileSync(join(certDir, 'cert.pem')) }, (s) => {
    s.setNoDelay(true);
    if (mode === 'echo') return void s.pipe(s);
    let n = 0;
    s.on('data', (d) => {
      n += d.length;
      if (n === MIB << 20) s.write(Buffer.alloc(8));
    });
  });
  server.listen(0, '127.0.0.1', () => process.send(server.address().port));
} else {
  await main();
}
