// The spec's "UDP Echo Client" example, in protoloop.
// Run: npm run example -- udp-echo-client   (PORT overrides 9999)
import { getRunningLoop, type DatagramTransport, type Future } from 'protoloop';

// Like the spec's, this protocol subclasses nothing: any object with the right methods will do.
class EchoClientProtocol {
  transport: DatagramTransport | null = null;

  constructor(
    private readonly message: string,
    private readonly onConLost: Future<boolean>,
  ) {}

  connectionMade(transport: DatagramTransport): void {
    this.transport = transport;
    console.log(`Send: ${JSON.stringify(this.message)}`);
    this.transport.sendto(Buffer.from(this.message));
  }

  datagramReceived(data: Buffer): void {
    console.log(`Received: ${JSON.stringify(data.toString())}`);

    console.log('Close the socket');
    this.transport!.close();
  }

  errorReceived(exc: Error): void {
    console.log(`Error received: ${exc.message}`);
  }

  connectionLost(_exc: Error | null): void {
    console.log('Connection closed');
    this.onConLost.setResult(true);
  }
}

async function main(): Promise<void> {
  const loop = getRunningLoop();

  const onConLost = loop.createFuture<boolean>();
  const message = 'Hello World!';

  const [transport] = await loop.createDatagramEndpoint(() => new EchoClientProtocol(message, onConLost), {
    remoteAddr: ['127.0.0.1', Number(process.env.PORT ?? 9999)],
  });

  try {
    await onConLost;
  } finally {
    transport.close();
  }
}

void main();
