// `node benches/receive-gc.mjs [MiB] [rounds]`: what receiving costs the garbage collector. A Node `net`
// client writes MiB (default 256) in 1 MiB chunks to a sink in the same process; each round is a fresh
// process under this script's Node and its V8 flags, so `.cache/node/24.22.3/node benches/receive-gc.mjs`
// measures Node 24 (`npm run test:node-versions -- --fetch-only` fetches it). Printed per sink: the median
// process CPU (client and server), mark-compacts and scavenges. Sinks: protoloop `Protocol` (a fresh
// Buffer per batch), protoloop `BufferedProtocol` (one reused `allocBuffer`), Node's own `net`.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const entry = fileURLToPath(new URL('../dist/esm/index.mjs', import.meta.url));
const mib = Number(process.argv[2] ?? 256);
const rounds = Number(process.argv[3] ?? 5);

const sinks = {
  Protocol: `class Sink extends pl.Protocol {
      dataReceived(d) { received += d.length; }
      eofReceived() { finished(); }
    }
    const server = await pl.createServer(() => new Sink(), '127.0.0.1', 0);
    const port = server.sockets[0].getsockname()[1];`,
  BufferedProtocol: `class Sink extends pl.BufferedProtocol {
      buf = pl.allocBuffer(1 << 20);
      getBuffer() { return this.buf; }
      bufferUpdated(n) { received += n; }
      eofReceived() { finished(); }
    }
    const server = await pl.createServer(() => new Sink(), '127.0.0.1', 0);
    const port = server.sockets[0].getsockname()[1];`,
  'node net': `const server = net.createServer((s) => s.on('data', (d) => (received += d.length)).on('end', () => finished()));
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const port = server.address().port;`,
};

const script = (sink) => `import * as net from 'node:net';
  import { PerformanceObserver, constants } from 'node:perf_hooks';
  import * as pl from ${JSON.stringify(entry)};
  let majors = 0, minors = 0;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors++;
      else if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MINOR) minors++;
    }
  }).observe({ entryTypes: ['gc'] });
  let received = 0, finished;
  const done = new Promise((resolve) => (finished = resolve));
  ${sink}
  const chunk = Buffer.alloc(1 << 20, 7);
  const cpu = process.cpuUsage();
  const c = net.connect(port, '127.0.0.1', async () => {
    for (let i = 0; i < ${mib}; i++) if (!c.write(chunk)) await new Promise((r) => c.once('drain', r));
    c.end();
  });
  await done;
  const used = process.cpuUsage(cpu);
  await new Promise((r) => setTimeout(r, 50)); // gc entries are reported a moment later
  if (received !== ${mib} << 20) throw new Error('received ' + received);
  c.destroy();
  server.close();
  console.log(JSON.stringify({ cpuMs: (used.user + used.system) / 1000, majors, minors }));`;

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`Node ${process.version}, ${mib} MiB received, ${rounds} rounds (median CPU; mark-compacts and scavenges per round)`);
for (const [name, sink] of Object.entries(sinks)) {
  const runs = [];
  for (let i = 0; i < rounds; i++) {
    const out = execFileSync(process.execPath, [...process.execArgv, '--input-type=module', '-e', script(sink)], { encoding: 'utf8' });
    runs.push(JSON.parse(out));
  }
  const cpu = median(runs.map((r) => r.cpuMs));
  console.log(
    `  ${name.padEnd(17)} ${cpu.toFixed(0).padStart(5)} ms CPU   mark-compacts ${runs.map((r) => r.majors).join(' ')}   scavenges ${runs.map((r) => r.minors).join(' ')}`,
  );
}
