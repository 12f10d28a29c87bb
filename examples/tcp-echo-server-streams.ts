// The spec's TCP echo server, ported to streams as asyncio's own docs show it ("TCP echo server using
// streams"): start_server with a handler that reads, writes back, drains and closes.
// Run: npm run example -- tcp-echo-server-streams   (PORT overrides 8888)
import { startServer, type StreamReader, type StreamWriter } from 'protoloop';

async function handleEcho(reader: StreamReader, writer: StreamWriter): Promise<void> {
  const data = await reader.read(100);
  const message = data.toString();
  const addr = writer.getExtraInfo('peername');

  console.log(`Received ${JSON.stringify(message)} from ${JSON.stringify(addr)}`);

  console.log(`Send: ${JSON.stringify(message)}`);
  writer.write(data);
  await writer.drain();

  console.log('Close the connection');
  writer.close();
  await writer.waitClosed();
}

async function main(): Promise<void> {
  const server = await startServer(handleEcho, '127.0.0.1', Number(process.env.PORT ?? 8888));

  const addrs = server.sockets.map((sock) => JSON.stringify(sock.getsockname())).join(', ');
  console.log(`Serving on ${addrs}`);

  // `await using server = ...` is the twin of `async with server:`.
  try {
    await server.serveForever();
  } finally {
    await server[Symbol.asyncDispose]();
  }
}

process.once('SIGINT', () => process.exit(0));
process.once('SIGTERM', () => process.exit(0));
void main();
