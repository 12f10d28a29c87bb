// The soak case's flow-controlled echo, counting what it holds: the sum of its transports' write buffers
// (sampled every 200 ms, the largest kept) and the size of what dataReceived got. Run by soak-memory.mjs.
'use strict';
const path = require('node:path').join(__dirname, '..', '..', 'dist', 'cjs', 'index.js');
const { Protocol, createServer } = require(path);
const { ReadHalf, StreamTransport } = require(path.replace(/index\.js$/, 'stream.js'));
const all = new Set();
// Bytes of Data events held by paused transports (FIFO: while any is held, every event goes through
// the held queue, so delivery takes from the front), and the largest sum seen.
let held = 0, maxHeld = 0;
const heldOf = new WeakMap();
const push = ReadHalf.prototype.push;
ReadHalf.prototype.push = function (kind, a, data) {
  const t = this.owner;
  if (data !== null && kind === 1 && (!this.isReading() || this.holding()) && !t.isClosing()) {
    heldOf.set(t, (heldOf.get(t) ?? 0) + data.length);
    held += data.length;
    if (held > maxHeld) maxHeld = held;
  }
  return push.call(this, kind, a, data);
};
const deliver = StreamTransport.prototype._deliverRead;
StreamTransport.prototype._deliverRead = function (kind, n, data) {
  const h = heldOf.get(this) ?? 0;
  if (h > 0 && data !== null && kind === 1) {
    heldOf.set(this, h - data.length);
    held -= data.length;
  }
  return deliver.call(this, kind, n, data);
};
let maxSum = 0, maxRecv = 0, recvCalls = 0, recvBytes = 0;
class FlowEcho extends Protocol {
  connectionMade(t) { this.transport = t; all.add(this); }
  connectionLost() { all.delete(this); held -= heldOf.get(this.transport) ?? 0; heldOf.delete(this.transport); }
  dataReceived(d) { recvCalls++; recvBytes += d.length; if (d.length > maxRecv) maxRecv = d.length; this.transport.write(d); }
  pauseWriting() { this.transport.pauseReading(); }
  resumeWriting() { this.transport.resumeReading(); }
}
setInterval(() => { let s = 0; for (const p of all) s += p.transport.getWriteBufferSize(); if (s > maxSum) maxSum = s; }, 200).unref();
(async () => {
  const server = await createServer(() => new FlowEcho(), '127.0.0.1', 0, { backlog: 1024 });
  process.stdout.write(`LISTENING ${server.sockets[0].getsockname()[1]}\n`);
  let pending = '';
  process.stdin.on('data', (s) => { pending += s; if (pending.includes('mem')) { pending = ''; if (process.env.GC && global.gc) global.gc(); const m = process.memoryUsage();
    process.stdout.write(`MEM ${JSON.stringify({ rss: m.rss, external: m.external, maxQueuedSum: maxSum, open: all.size * 1048576, held, maxHeld, maxRecv, avgRecv: recvBytes / recvCalls, recvCalls })}\n`); } });
  process.stdin.on('end', () => process.exit(0));
})();
