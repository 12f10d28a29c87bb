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
// With --tls the proxy terminates TLS: clients speak TLS to it, the upstream gets plaintext (forward mode:
// the engine decrypts and forwards without the bytes entering JavaScript). The certificate and key come
// from --cert and --key (PEM files); without them a throwaway self-signed pair for localhost is made with
// openssl, and its path printed for clients to trust. TLS cannot half-close: a client's close_notify
// half-closes the upstream, and the upstream's EOF closes the client's side with close_notify.
// Run: npm run example -- tcp-proxy [callbacks|buffered|forward] [listenPort] [targetHost] [targetPort]
//                                   [--tls [--cert file.pem --key key.pem]]
//      (defaults: callbacks 8889 127.0.0.1 8888, plain)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Protocol, allocBuffer, createConnection, createServer, type SslOptions, type Transport } from 'protoloop';

const MODES = ['callbacks', 'buffered', 'forward'];
const args = process.argv.slice(2);
/** Takes `--name value` (or the bare flag, when `value` is false) out of `args`. */
function option(name: string, value = true): string | boolean | null {
  const i = args.indexOf(name);
  if (i < 0) return null;
  const [, v] = args.splice(i, value ? 2 : 1);
  return value ? (v ?? null) : true;
}
const tls = option('--tls', false) === true;
const certFile = option('--cert') as string | null;
const keyFile = option('--key') as string | null;
const [mode = 'callbacks', listenPort = '8889', targetHost = '127.0.0.1', targetPort = '8888'] = args;
if (!MODES.includes(mode) || (certFile === null) !== (keyFile === null) || (certFile !== null && !tls)) {
  console.error(`usage: tcp-proxy [${MODES.join('|')}] [listenPort] [targetHost] [targetPort] [--tls [--cert file.pem --key key.pem]]`);
  process.exit(2);
}

/** The certificate and key to serve TLS with: the files given, or a throwaway self-signed pair. */
function serverTls(): SslOptions {
  if (certFile !== null && keyFile !== null) return { cert: readFileSync(certFile), key: readFileSync(keyFile) };
  const dir = join(tmpdir(), 'protoloop-tcp-proxy');
  if (!existsSync(join(dir, 'cert.pem'))) {
    mkdirSync(dir, { recursive: true });
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '30', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-addext', 'basicConstraints=critical,CA:FALSE'],
    { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  }
  console.log(`TLS with a throwaway certificate: ${join(dir, 'cert.pem')}`);
  return { cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) };
}

/** One side of a proxied connection; `peer` is the other side. */
class ProxySide extends Protocol {
  transport!: Transport;
  peer: ProxySide | null = null;
  gotEof = false;

  override connectionMade(transport: Transport): void {
    this.transport = transport;
    // Nothing to pass bytes on to until both sides are linked: bytes read now would reach this
    // protocol (and an EOF read now would refuse a forward), so reading waits for `link`.
    transport.pauseReading();
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
    // The callbacks variants pass the half-close on themselves; forwardTo already did. A TLS side
    // cannot half-close: it is closed instead (after what was written to it is sent).
    const other = this.peer?.transport;
    if (mode !== 'forward' && other) {
      if (other.canWriteEof()) other.writeEof();
      else other.close();
    }
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
        upstream.resumeReading();
      },
      (err: Error) => {
        console.error(`upstream ${targetHost}:${targetPort}: ${err.message}`);
        transport.abort();
      },
    );
  }
}

async function main(): Promise<void> {
  const ssl = tls ? serverTls() : null;
  const server = await createServer(() => new Downstream(), '127.0.0.1', Number(listenPort), { ssl });
  const [, port] = server.sockets[0].getsockname() as [string, number];
  console.log(`proxy (${mode}${tls ? ', TLS-terminating' : ''}) listening on 127.0.0.1:${port} -> ${targetHost}:${targetPort}`);
  await server.serveForever();
}

process.once('SIGINT', () => process.exit(0));
process.once('SIGTERM', () => process.exit(0));
void main();
