// A TCP proxy in three variants:
//   callbacks  every byte passes through JavaScript: dataReceived → write, with the textbook
//              back-pressure loop (pauseWriting/resumeWriting of one side drive pauseReading/
//              resumeReading of the other);
//   buffered   the same loop as a BufferedProtocol: each side receives into one allocBuffer it reuses
//              (bufferUpdated → write), so bytes land in memory that is still in cache, as in a native
//              proxy's read/write loop; write() copies whatever the kernel does not take at once;
//   forward    transport.forwardTo(): the engine copies bytes between the sockets; JavaScript only
//              sets the pair up and sees EOF and connectionLost.
// All pass half-closes through and close the other side when one side is lost.
// Run: npm run example -- tcp-proxy [callbacks|buffered|forward] [listenPort] [targetHost] [targetPort]
//      (defaults: callbacks 8889 127.0.0.1 8888)
import { Protocol, allocBuffer, createConnection, createServer, type Transport } from 'protoloop';

const MODES = ['callbacks', 'buffered', 'forward'];
const [mode = 'callbacks', listenPort = '8889', targetHost = '127.0.0.1', targetPort = '8888'] = process.argv.slice(2);
if (!MODES.includes(mode)) {
  console.error(`usage: tcp-proxy [${MODES.join('|')}] [listenPort] [targetHost] [targetPort]`);
  process.exit(2);
}

/** One side of a proxied connection; `peer` is the other side. */
class ProxySide extends Protocol {
  transport!: Transport;
  peer: ProxySide | null = null;
  gotEof = false;

  override connectionMade(transport: Transport): void {
    this.transport = transport;
  }

  // Used by the callbacks variant only: with forwardTo bytes never reach JavaScript, and a buffered
  // side gets bufferUpdated instead.
  override dataReceived(data: Buffer): void {
    this.peer?.transport.write(data);
  }
  override pauseWriting(): void {
    this.peer?.transport.pauseReading();
  }
  override resumeWriting(): void {
    this.peer?.transport.resumeReading();
  }

  override eofReceived(): boolean {
    this.gotEof = true;
    // The callbacks variants pass the half-close on themselves; forwardTo already did.
    if (mode !== 'forward') this.peer?.transport.writeEof();
    // Stay half-open until both directions are done.
    if (this.peer?.gotEof) {
      this.peer.transport.close();
      return false;
    }
    return true;
  }

  override connectionLost(exc: Error | null): void {
    const other = this.peer?.transport;
    if (!other) return;
    if (exc) other.abort();
    else other.close();
  }
}

/**
 * A side that receives into its own buffer (a BufferedProtocol: the transport asks `getBuffer`, fills
 * it, reports `bufferUpdated`). The buffer can be reused at once because `write()` copies what it cannot
 * send on the spot.
 */
class BufferedSide extends ProxySide {
  readonly buf = allocBuffer(64 * 1024);
  getBuffer(): Uint8Array {
    return this.buf;
  }
  bufferUpdated(nbytes: number): void {
    this.peer?.transport.write(this.buf.subarray(0, nbytes));
  }
}

const Side = mode === 'buffered' ? BufferedSide : ProxySide;

/** The client-facing side: connects upstream, then links the two. */
class Downstream extends Side {
  override connectionMade(transport: Transport): void {
    super.connectionMade(transport);
    transport.pauseReading(); // nothing to send bytes to until upstream is connected
    createConnection(() => new Side(), targetHost, Number(targetPort)).then(
      ([upstream, up]) => {
        if (transport.isClosing()) {
          upstream.close();
          return;
        }
        this.peer = up;
        up.peer = this;
        if (mode === 'forward') {
          // A forward fails when one side refuses bytes the other read (it is gone): the pair goes too.
          transport.forwardTo(upstream).catch(() => transport.abort());
          upstream.forwardTo(transport).catch(() => upstream.abort());
        }
        transport.resumeReading();
      },
      (err: Error) => {
        console.error(`upstream ${targetHost}:${targetPort}: ${err.message}`);
        transport.abort();
      },
    );
  }
}

async function main(): Promise<void> {
  const server = await createServer(() => new Downstream(), '127.0.0.1', Number(listenPort));
  const [, port] = server.sockets[0].getsockname() as [string, number];
  console.log(`proxy (${mode}) listening on 127.0.0.1:${port} -> ${targetHost}:${targetPort}`);
  await server.serveForever();
}

process.once('SIGINT', () => process.exit(0));
process.once('SIGTERM', () => process.exit(0));
void main();
