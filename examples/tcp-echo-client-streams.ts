// The spec's TCP echo client, ported to streams as asyncio's own docs show it ("TCP echo client using
// streams"): open_connection, write, drain, read, close, wait_closed.
// Run: npm run example -- tcp-echo-client-streams   (PORT overrides 8888)
import { openConnection } from 'protoloop';

async function tcpEchoClient(message: string): Promise<void> {
  const [reader, writer] = await openConnection('127.0.0.1', Number(process.env.PORT ?? 8888));

  console.log(`Send: ${JSON.stringify(message)}`);
  writer.write(Buffer.from(message));
  await writer.drain();

  const data = await reader.read(100);
  console.log(`Received: ${JSON.stringify(data.toString())}`);

  console.log('Close the connection');
  writer.close();
  await writer.waitClosed();
}

tcpEchoClient('Hello World!').catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
