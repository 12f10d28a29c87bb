// A TCP proxy in two variants:
//   callbacks  every byte passes through JavaScript: dataReceived → write, with the textbook
//              back-pressure loop (pauseWriting/resumeWriting of one side drive pauseReading/
//              resumeReading of the other);
//   forward    transport.forwardTo(): the engine copies bytes between the sockets; JavaScript only
//              sets the pair up and sees EOF and connectionLost.
// Both pass half-closes through and close the other side when one side is lost.
// Run: npm run example -- tcp-proxy [callbacks|forward] [listenPort] [targetHost] [targetPort]
//      (defaults: callbacks 8889 127.0.0.1 8888)
import { Protocol, createConnection, createServer, type Transport } from 'protoloop';

const [mode = 'callbacks', listenPort = '8889', targetHost = '127.0.0.1', targetPort = '8888'] = process.argv.slice(2);
if (mode !== 'callbacks' && mode !== 'forward') {
  console.error('usage: tcp-proxy [callbacks|forward] [listenPort] [targetHost] [targetPort]');
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

  // Used by the callbacks variant only: with forwardTo, bytes never reach JavaScript.
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
    // The callbacks variant passes the half-close on itself; forwardTo already did.
    if (mode === 'callbacks') this.peer?.transport.writeEof();
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

/** The client-facing side: connects upstream, then links the two. */
class Downstream extends ProxySide {
  override connectionMade(transport: Transport): void {
    super.connectionMade(transport);
    transport.pauseReading(); // nothing to send bytes to until upstream is connected
    createConnection(() => new ProxySide(), targetHost, Number(targetPort)).then(
      ([upstream, up]) => {
        if (transport.isClosing()) {
          upstream.close();
          return;
        }
        this.peer = up;
        up.peer = this;
        if (mode === 'forward') {
          void transport.forwardTo(upstream);
          void upstream.forwardTo(transport);
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
