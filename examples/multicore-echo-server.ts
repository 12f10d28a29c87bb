// An echo server on every core: several JavaScript threads (worker_threads) or processes (cluster)
// each run a protoloop server on the same port with `reusePort: true`, and the kernel spreads the
// incoming connections over them. Each thread or process has an engine of its own.
// Run: npm run example -- multicore-echo-server [workers|cluster] [count]
//      (default: workers, one per core; PORT overrides 8888)
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { Worker, isMainThread, threadId } from 'node:worker_threads';
import { Protocol, createServer, type Transport } from 'protoloop';

const [mode = 'workers', count] = process.argv.slice(2);
const servers = Number(count ?? availableParallelism());
const port = Number(process.env.PORT ?? 8888);
if (!['workers', 'cluster'].includes(mode) || !(servers >= 1)) {
  console.error('usage: multicore-echo-server [workers|cluster] [count]');
  process.exit(2);
}

class EchoServerProtocol extends Protocol {
  transport!: Transport;

  constructor(private readonly name: string) {
    super();
  }

  override connectionMade(transport: Transport): void {
    console.log(`${this.name}: connection from ${JSON.stringify(transport.getExtraInfo('peername'))}`);
    this.transport = transport;
  }

  override dataReceived(data: Buffer): void {
    this.transport.write(data);
  }
}

/** One of the servers: a thread or process of its own, sharing the port with the others. */
async function serve(name: string): Promise<void> {
  const server = await createServer(() => new EchoServerProtocol(name), '127.0.0.1', port, { reusePort: true });
  console.log(`${name}: serving on port ${port}`);
  await server.serveForever();
}

if (mode === 'workers') {
  if (isMainThread) {
    // Exiting ends the workers; each closes what its engine owned as it goes.
    process.once('SIGINT', () => process.exit(0));
    process.once('SIGTERM', () => process.exit(0));
    for (let i = 0; i < servers; i++) new Worker(__filename, { argv: process.argv.slice(2) });
  } else {
    void serve(`worker ${threadId}`);
  }
} else if (cluster.isPrimary) {
  // protoloop's servers are not Node's: the primary does not share a listening socket with the
  // processes; each binds its own, and `reusePort` lets them.
  const stop = (): void => {
    for (const w of Object.values(cluster.workers ?? {})) w?.kill();
    process.exitCode = 0;
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  for (let i = 0; i < servers; i++) cluster.fork();
} else {
  void serve(`process ${process.pid}`);
}
