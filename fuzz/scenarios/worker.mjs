// A worker thread that uses protoloop (connections, a server, a child process, a datagram endpoint,
// bytes flowing or not) and then ends: it is terminated, returns, or calls process.exit(), at a
// generated moment. Checked: the process survives (no abort, no segfault), the main thread can still
// use protoloop afterwards, every descriptor the worker's engine had is closed, and the process exits.
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

const entry = fileURLToPath(new URL('../../dist/cjs/index.js', import.meta.url));

export async function worker(c, ctx) {
  const { pl } = ctx;
  // The peer: a Node server in the main thread, flooding the worker's connections when asked.
  const sockets = [];
  const srv = net.createServer((s) => {
    sockets.push(s);
    s.on('error', () => {});
    s.resume();
    if (c.flow) {
      const b = Buffer.alloc(1 << 16, 7);
      const more = () => {
        while (!s.destroyed && s.write(b));
      };
      s.on('drain', more);
      more();
    }
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const port = srv.address().port;

  const uses = c.uses.map((u) => JSON.stringify(u)).join(', ');
  const w = new Worker(
    `
    const pl = require(${JSON.stringify(entry)});
    const { parentPort } = require('node:worker_threads');
    (async () => {
      const kept = [];
      for (const use of [${uses}]) {
        if (use === 'connect') kept.push((await pl.createConnection(() => new pl.Protocol(), '127.0.0.1', ${port}))[0]);
        if (use === 'server') kept.push(await pl.createServer(() => new pl.Protocol(), '127.0.0.1', 0));
        if (use === 'subprocess') kept.push((await pl.subprocessExec(() => new pl.SubprocessProtocol(), '/bin/sleep', ['30']))[0]);
        if (use === 'datagram') kept.push((await pl.createDatagramEndpoint(() => new pl.DatagramProtocol(), { localAddr: ['127.0.0.1', 0] }))[0]);
        if (use === 'buffered') kept.push((await pl.createConnection(() => new (class extends pl.BufferedProtocol { b = pl.allocBuffer(4096); getBuffer() { return this.b; } bufferUpdated() {} })(), '127.0.0.1', ${port}))[0]);
      }
      parentPort.postMessage('ready');
      if (${JSON.stringify(c.end)} === 'return') for (const k of kept) k.close();
      if (${JSON.stringify(c.end)} === 'exit') setTimeout(() => process.exit(0), ${c.delayMs});
    })().catch((e) => parentPort.postMessage('failed: ' + (e && e.stack)));
    `,
    { eval: true },
  );
  let exited = false;
  w.on('exit', () => (exited = true));
  w.on('error', (e) => ctx.fail(`the worker failed: ${String(e?.stack ?? e).split('\n')[0]}`));
  const ready = await ctx.within(new Promise((r) => w.once('message', r)), 5000);
  if (ready !== 'ready') ctx.fail(`the worker did not get ready: ${ready}`);
  if (c.end === 'terminate') {
    await ctx.sleep(c.delayMs);
    await w.terminate();
  } else if (!(await ctx.waitFor(() => exited, 5000))) {
    ctx.fail(`the worker did not exit after it ${c.end === 'return' ? 'closed everything' : 'called process.exit()'}`);
    await w.terminate();
  }

  // The main thread still works.
  const [t] = await pl.createConnection(() => new pl.Protocol(), '127.0.0.1', port).catch((e) => {
    ctx.fail(`the main thread could not connect after the worker ended: ${e?.message ?? e}`);
    return [null];
  });
  t?.close();
  for (const s of sockets) s.destroy();
  await new Promise((r) => srv.close(r));
}
