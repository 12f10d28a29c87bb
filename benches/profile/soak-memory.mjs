// Issue 19's soak, counted: 1,000 slow readers (the bench's load generator, built by `npm run bench`)
// against benches/profile/soak-memory-server.cjs for S seconds; prints RSS before, peak, and WAIT ms
// (default 2000) after, RSS each second, and the server's process.memoryUsage (in MiB: external is the
// batch payloads V8 has not collected yet; maxQueuedSum the largest sum of write buffers; open the
// connections not yet lost) at the end of the load and after. Environment passes to the server
// (NAPI_RS_NATIVE_LIBRARY_PATH=<other .node> for another build).
// usage: node benches/profile/soak-memory.mjs [S]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
const secs = process.argv[2] ?? '5';
const server = new URL('./soak-memory-server.cjs', import.meta.url).pathname;
const LOADGEN = new URL('../../target/bench/release/loadgen', import.meta.url).pathname;
const srv = spawn(process.execPath, ['--expose-gc', server, '--port', '0', '--mode', 'echo-flow'], { stdio: ['pipe', 'pipe', 'inherit'] });
let buf = '';
const port = await new Promise((res) => srv.stdout.on('data', (d) => { buf += d; const m = /LISTENING (\d+)/.exec(buf); if (m) res(m[1]); }));
const mem = () => { const s = readFileSync(`/proc/${srv.pid}/status`, 'utf8'); const kb = (k) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)[1]) / 1024; return { rss: kb('VmRSS'), hwm: kb('VmHWM') }; };
const memUsage = () => new Promise((res) => { buf = ''; const on = (d) => { buf += d; const m = /MEM (.*)\n/.exec(buf); if (m) { srv.stdout.off('data', on); res(JSON.parse(m[1])); } }; srv.stdout.on('data', on); srv.stdin.write('mem\n'); });
const MiB = (x) => (x / 1048576).toFixed(1);
const before = mem().rss;
const samples = [];
const t = setInterval(() => samples.push(mem().rss.toFixed(0)), 1000);
const lg = spawn(LOADGEN, ['soak', '--addr', `127.0.0.1:${port}`, '--conns', '1000', '--size', '16384', '--duration', secs], { stdio: ['ignore', 'pipe', 'inherit'] });
let out = ''; lg.stdout.on('data', (d) => (out += d));
await new Promise((r) => lg.on('exit', r));
const during = await memUsage();
clearInterval(t);
await new Promise((r) => setTimeout(r, Number(process.env.WAIT ?? 2000)));
const m = mem();
const after = await memUsage();
const roll = readFileSync(`/proc/${srv.pid}/smaps_rollup`, 'utf8').split('\n').filter((l) => /^(Rss|Anonymous|Private_Dirty)/.test(l)).join(' | ');
console.log(JSON.stringify({ before: before.toFixed(1), peak: m.hwm.toFixed(1), after: m.rss.toFixed(1), retained: (m.rss - before).toFixed(1), samples: samples.join(' '), loadgen: out.trim() }));
console.log('endOfLoad memoryUsage', Object.fromEntries(Object.entries(during).map(([k, v]) => [k, MiB(v)])));
console.log('after2s memoryUsage', Object.fromEntries(Object.entries(after).map(([k, v]) => [k, MiB(v)])));
console.log(roll);
srv.stdin.end(); srv.kill();
