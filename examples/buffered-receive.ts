// Zero-copy receive: a BufferedProtocol client takes a large stream into one reusable allocBuffer.
// The bytes go from the socket straight into that memory; `bytesCopiedOnReceive` stays 0.
// Run: npm run example -- buffered-receive   (MIB sets the size, default 1024)
import {
  BufferedProtocol,
  Protocol,
  allocBuffer,
  createConnection,
  createServer,
  getRunningLoop,
  type Future,
  type Transport,
} from 'protoloop';

const TOTAL = Number(process.env.MIB ?? 1024) * 1024 * 1024;

/** The sending side: writes 1 MiB chunks, pausing when the transport says its buffer is full. */
class Sender extends Protocol {
  transport!: Transport;
  sent = 0;
  paused = false;
  chunk = Buffer.alloc(1024 * 1024, 'x');

  override connectionMade(transport: Transport): void {
    this.transport = transport;
    this.pump();
  }
  override pauseWriting(): void {
    this.paused = true;
  }
  override resumeWriting(): void {
    this.paused = false;
    this.pump();
  }
  pump(): void {
    while (!this.paused && this.sent < TOTAL) {
      this.transport.write(this.chunk);
      this.sent += this.chunk.length;
    }
    if (this.sent >= TOTAL) this.transport.close();
  }
}

/** The receiving side: one engine-owned buffer, handed out again and again. */
class Receiver extends BufferedProtocol {
  buffer = allocBuffer(1024 * 1024);
  received = 0;
  constructor(private readonly done: Future<number>) {
    super();
  }
  override getBuffer(_sizehint: number): Uint8Array {
    return this.buffer;
  }
  override bufferUpdated(nbytes: number): void {
    // The first nbytes of this.buffer are new; a real protocol would parse them here.
    this.received += nbytes;
  }
  override eofReceived(): boolean {
    return false; // close our side too
  }
  override connectionLost(exc: Error | null): void {
    if (exc) this.done.setException(exc);
    else this.done.setResult(this.received);
  }
}

async function main(): Promise<void> {
  const loop = getRunningLoop();
  const server = await createServer(() => new Sender(), '127.0.0.1', 0);
  const [, port] = server.sockets[0].getsockname() as [string, number];

  const done = loop.createFuture<number>();
  const started = performance.now();
  const [transport] = await createConnection(() => new Receiver(done), '127.0.0.1', port);
  const received = await done;
  const seconds = (performance.now() - started) / 1000;

  const stats = transport.getExtraInfo('stats');
  console.log(`received ${(received / 1048576).toFixed(0)} MiB in ${seconds.toFixed(2)} s: ${(received / 1048576 / seconds).toFixed(0)} MiB/s`);
  console.log(`bytesRead ${stats.bytesRead}, bytesCopiedOnReceive ${stats.bytesCopiedOnReceive}`);
  server.close();
  await server.waitClosed();
}

void main();
