// The spec's TCP echo server and client, over TLS. The example makes a throwaway certificate authority
// and a certificate for localhost with the openssl command line, serves with it, and connects with the
// CA as the only trusted root, so the client really verifies the server (name included).
// Run: npm run example -- tls-echo            server and client in one process
//      npm run example -- tls-echo server     only the server (PORT overrides 8443; Ctrl-C stops it)
//      npm run example -- tls-echo client     only the client, against a server started before
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Protocol, getRunningLoop, type Future, type Transport } from 'protoloop';

const PORT = Number(process.env.PORT ?? 8443);

/** A CA and a localhost certificate signed by it, kept in the temp directory between runs. */
function certificates(): { ca: string; cert: string; key: string } {
  const dir = join(tmpdir(), 'protoloop-tls-echo');
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  if (!existsSync(join(dir, 'server.crt'))) {
    mkdirSync(dir, { recursive: true });
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    run('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '30', '-subj', '/CN=protoloop example CA');
    run('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
    writeFileSync(join(dir, 'server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n');
    run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '30', '-out', 'server.crt', '-extfile', 'server.ext');
  }
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  return { ca: read('ca.crt'), cert: read('server.crt'), key: read('server.key') };
}

class EchoServerProtocol extends Protocol {
  transport!: Transport;

  override connectionMade(transport: Transport): void {
    const [cipher, version] = transport.getExtraInfo('cipher');
    console.log(`Connection from ${JSON.stringify(transport.getExtraInfo('peername'))} (${version}, ${cipher})`);
    this.transport = transport;
  }

  override dataReceived(data: Buffer): void {
    const message = data.toString();
    console.log(`Data received: ${JSON.stringify(message)}`);
    console.log(`Send: ${JSON.stringify(message)}`);
    this.transport.write(data);
    console.log('Close the client socket');
    this.transport.close();
  }
}

class EchoClientProtocol extends Protocol {
  constructor(
    private readonly message: string,
    private readonly onConLost: Future<boolean>,
  ) {
    super();
  }

  override connectionMade(transport: Transport): void {
    const cert = transport.getExtraInfo('peercert');
    console.log(`Verified ${cert.subject.CN}, issued by ${cert.issuer.CN}; ${transport.getExtraInfo('ssl_object').version}`);
    transport.write(Buffer.from(this.message));
    console.log(`Data sent: ${JSON.stringify(this.message)}`);
  }

  override dataReceived(data: Buffer): void {
    console.log(`Data received: ${JSON.stringify(data.toString())}`);
  }

  override eofReceived(): void {
    // TLS cannot half-close: the transport closes after this whatever it returns.
  }

  override connectionLost(_exc: Error | null): void {
    console.log('The server closed the connection');
    this.onConLost.setResult(true);
  }
}

async function client(ca: string, port = PORT): Promise<void> {
  const loop = getRunningLoop();
  const onConLost = loop.createFuture<boolean>();
  const [transport] = await loop.createConnection(() => new EchoClientProtocol('Hello World!', onConLost), 'localhost', port, {
    ssl: { ca },
  });
  try {
    await onConLost;
  } finally {
    transport.close();
  }
}

async function main(): Promise<void> {
  const mode = process.argv[2] ?? 'both';
  const { ca, cert, key } = certificates();
  if (mode === 'client') return client(ca);
  const server = await getRunningLoop().createServer(() => new EchoServerProtocol(), '127.0.0.1', PORT, { ssl: { cert, key } });
  console.log(`Serving TLS on 127.0.0.1:${(server.sockets[0].getsockname() as [string, number])[1]}`);
  if (mode === 'server') {
    await server.serveForever();
    return;
  }
  await client(ca, (server.sockets[0].getsockname() as [string, number])[1]);
  server.close();
  await server.waitClosed();
}

process.once('SIGINT', () => process.exit(0));
process.once('SIGTERM', () => process.exit(0));
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
