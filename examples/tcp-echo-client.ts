// The spec's "TCP Echo Client" example, in protoloop.
// Run: npm run example -- tcp-echo-client   (PORT overrides 8888)
import { Protocol, getRunningLoop, type Future, type Transport } from 'protoloop';

class EchoClientProtocol extends Protocol {
  constructor(
    private readonly message: string,
    private readonly onConLost: Future<boolean>,
  ) {
    super();
  }

  override connectionMade(transport: Transport): void {
    transport.write(Buffer.from(this.message));
    console.log(`Data sent: ${JSON.stringify(this.message)}`);
  }

  override dataReceived(data: Buffer): void {
    console.log(`Data received: ${JSON.stringify(data.toString())}`);
  }

  override connectionLost(_exc: Error | null): void {
    console.log('The server closed the connection');
    this.onConLost.setResult(true);
  }
}

async function main(): Promise<void> {
  // Get a reference to the event loop as we plan to use low-level APIs.
  const loop = getRunningLoop();

  const onConLost = loop.createFuture<boolean>();
  const message = 'Hello World!';

  const [transport] = await loop.createConnection(
    () => new EchoClientProtocol(message, onConLost),
    '127.0.0.1',
    Number(process.env.PORT ?? 8888),
  );

  // Wait until the protocol signals that the connection is lost and close the transport.
  try {
    await onConLost;
  } finally {
    transport.close();
  }
}

void main();
