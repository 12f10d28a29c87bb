// The spec's "TCP Echo Server" example, in protoloop.
// Run: npm run example -- tcp-echo-server   (PORT overrides 8888)
import { Protocol, getRunningLoop, type Transport } from 'protoloop';

class EchoServerProtocol extends Protocol {
  transport!: Transport;

  override connectionMade(transport: Transport): void {
    const peername = transport.getExtraInfo('peername');
    console.log(`Connection from ${JSON.stringify(peername)}`);
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

async function main(): Promise<void> {
  // Get a reference to the event loop as we plan to use low-level APIs.
  const loop = getRunningLoop();

  const server = await loop.createServer(() => new EchoServerProtocol(), '127.0.0.1', Number(process.env.PORT ?? 8888));

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
