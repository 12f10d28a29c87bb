// The spec's "Connecting Existing Sockets" example, in protoloop: a transport over one end of a
// socketpair receives what is sent on the other end.
// Run: npm run example -- existing-socket
import { closeSync, writeSync } from 'node:fs';
import { Protocol, getRunningLoop, socketpair, type Future, type Transport } from 'protoloop';

class MyProtocol extends Protocol {
  transport: Transport | null = null;

  constructor(private readonly onConLost: Future<boolean>) {
    super();
  }

  override connectionMade(transport: Transport): void {
    this.transport = transport;
  }

  override dataReceived(data: Buffer): void {
    console.log('Received:', data.toString());
    // We are done: close the transport; connectionLost() will be called automatically.
    this.transport?.close();
  }

  override connectionLost(_exc: Error | null): void {
    // The socket has been closed
    this.onConLost.setResult(true);
  }
}

async function main(): Promise<void> {
  const loop = getRunningLoop();
  const onConLost = loop.createFuture<boolean>();

  // Create a pair of connected sockets (descriptors).
  const [rsock, wsock] = socketpair();

  // Register the socket to wait for data.
  const [transport] = await loop.createConnection(() => new MyProtocol(onConLost), null, null, { sock: rsock });

  // Simulate the reception of data from the network.
  loop.callSoon(() => writeSync(wsock, Buffer.from('abc')));

  try {
    await onConLost;
  } finally {
    transport.close();
    closeSync(wsock);
  }
}

void main();
