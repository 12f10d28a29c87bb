// protoloop's peer: asyncio-style protocols on the built package (dist/cjs), written as a user would.
'use strict';
const { once } = require('node:events');
const path = require('node:path');
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
const { BufferedProtocol, Protocol, allocBuffer, createServer } = require(path.join(__dirname, '..', '..', 'dist', 'cjs', 'index.js'));
const { CHUNK, parseArgs, listening, control } = require('./common.cjs');
const { Echo, FlowEcho, Sink } = require('./protocols.cjs');

const { port, mode, total } = parseArgs();
const chunk = Buffer.alloc(CHUNK, 'x');

// Zero-copy receive: the engine reads straight into memory it allocated (allocBuffer).
class BufferedSink extends BufferedProtocol {
  buffer = allocBuffer(1 << 20);
  received = 0;
  getBuffer() {
    return this.buffer;
  }
  bufferUpdated(n) {
    this.received += n;
  }
  eofReceived() {}
}

class Source extends Protocol {
  left = total;
  paused = false;
  connectionMade(transport) {
    this.transport = transport;
    this.pump();
  }
  pauseWriting() {
    this.paused = true;
  }
  resumeWriting() {
    this.paused = false;
    this.pump();
  }
  pump() {
    while (!this.paused && this.left > 0) {
      const n = Math.min(this.left, CHUNK);
      this.left -= n;
      this.transport.write(n === CHUNK ? chunk : chunk.subarray(0, n));
    }
    if (this.left === 0) this.transport.close();
  }
}

const factory = {
  echo: () => new Echo(),
  'echo-flow': () => new FlowEcho(),
  sink: () => new Sink(),
  'sink-buffered': () => new BufferedSink(),
  source: () => new Source(),
}[mode];
if (!factory) throw new Error(`unknown mode ${mode}`);

// PROTOLOOP_BENCH_WORKERS=N: the same server in N worker threads instead, each with its engine and a
// listening socket of its own on one port (reusePort), the kernel spreading the connections (issue 17).
const workers = Number(process.env.PROTOLOOP_BENCH_WORKERS ?? 0);

(async () => {
  if (workers > 0 && isMainThread) {
    let shared = port;
    for (let i = 0; i < workers; i++) {
      const w = new Worker(__filename, { argv: process.argv.slice(2), workerData: { port: shared } });
      [shared] = await once(w, 'message');
    }
    listening(shared);
    control();
    return;
  }
  const server = await createServer(factory, '127.0.0.1', isMainThread ? port : workerData.port, { backlog: 1024, reusePort: !isMainThread });
  const bound = server.sockets[0].getsockname()[1];
  if (isMainThread) {
    listening(bound);
    control();
  } else {
    parentPort.postMessage(bound);
  }
})();
