// Node's own HTTP server, its connections accepted by protoloop: each connection's DuplexProtocol
// hands a Node Duplex to `http.Server` with `emit('connection', duplex)`, and Node's HTTP parser,
// keep-alive and back-pressure run on top of protoloop's transports. Then Node's HTTP client asks it
// something over a protoloop connection too (`createConnection`).
// Run: npm run example -- http-over-protoloop   (PORT overrides 8080; --serve keeps serving)
import * as http from 'node:http';
import { DuplexProtocol, createConnection, createServer } from 'protoloop';

const port = Number(process.env.PORT ?? 8080);

const httpServer = http.createServer((req, res) => {
  res.setHeader('content-type', 'text/plain');
  res.end(`Hello from Node's http on protoloop: ${req.method} ${req.url} from ${req.socket.remoteAddress}:${req.socket.remotePort}\n`);
});

/** An http client's `createConnection` that opens a protoloop connection. */
function protoloopConnection(options: http.ClientRequestArgs, callback: (err: Error | null, socket?: any) => void): undefined {
  createConnection(() => new DuplexProtocol(), options.host ?? '127.0.0.1', Number(options.port)).then(
    ([, protocol]) => callback(null, protocol.stream),
    (err) => callback(err),
  );
  return undefined;
}

async function main(): Promise<void> {
  const server = await createServer(() => new DuplexProtocol((duplex) => httpServer.emit('connection', duplex)), '127.0.0.1', port);
  console.log(`HTTP on protoloop at http://127.0.0.1:${port}/`);
  if (process.argv.includes('--serve')) {
    await server.serveForever();
    return;
  }

  const body = await new Promise<string>((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/hello', createConnection: protoloopConnection as any }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => resolve(text));
      })
      .on('error', reject);
  });
  process.stdout.write(body);

  httpServer.close();
  server.close();
  server.closeClients();
  await server.waitClosed();
}

process.once('SIGINT', () => process.exit(0));
process.once('SIGTERM', () => process.exit(0));
main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
