// The spec's "UDP Echo Server" example, in protoloop.
// Run: npm run example -- udp-echo-server   (PORT overrides 9999)
import { getRunningLoop, type Address, type DatagramTransport } from 'protoloop';

// Like the spec's, this protocol subclasses nothing: any object with the right methods will do.
class EchoServerProtocol {
  transport!: DatagramTransport;

  connectionMade(transport: DatagramTransport): void {
    this.transport = transport;
  }

  datagramReceived(data: Buffer, addr: Address): void {
    const message = data.toString();
    console.log(`Received ${JSON.stringify(message)} from ${JSON.stringify(addr)}`);
    console.log(`Send ${JSON.stringify(message)} to ${JSON.stringify(addr)}`);
    this.transport.sendto(data, addr);
  }
}

async function main(): Promise<void> {
  console.log('Starting UDP server');

  // Get a reference to the event loop as we plan to use low-level APIs.
  const loop = getRunningLoop();

  // One protocol instance will be created to serve all client requests.
  const [transport] = await loop.createDatagramEndpoint(() => new EchoServerProtocol(), {
    localAddr: ['127.0.0.1', Number(process.env.PORT ?? 9999)],
  });

  try {
    await new Promise((resolve) => setTimeout(resolve, 3600 * 1000)); // Serve for 1 hour.
  } finally {
    transport.close();
  }
}

process.once('SIGINT', () => process.exit(0));
process.once('SIGTERM', () => process.exit(0));
void main();
