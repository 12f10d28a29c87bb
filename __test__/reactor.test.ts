// Where the engine runs: on the JavaScript thread, turned by Node's event loop (the default host
// reactor), or on an I/O thread of its own (PROTOLOOP_REACTOR=threads). Both serve the same protocols.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { Protocol, createServer } from 'protoloop';
import { entry, portOf, runScript } from './helpers';

// 300 Node clients connect at once (more tasks than tokio runs in one pass of its scheduler) and each
// sends a line and half-closes; the script reports whether every echo came back intact and the names
// of the process's threads. The backlog is Node's default: with asyncio's 100, connects made from the
// one JavaScript thread overflow the listen queue before a turn can accept them (Node's own net server
// then resets a third of them), which is not what this is about.
const echo300 = `
import * as net from 'node:net';
import { readdirSync, readFileSync } from 'node:fs';
class Echo extends pl.Protocol {
  connectionMade(t) { this.t = t; }
  dataReceived(d) { this.t.write(d); }
}
const server = await pl.createServer(() => new Echo(), '127.0.0.1', 0, { backlog: 511 });
const port = server.sockets[0].getsockname()[1];
const replies = await Promise.all(Array.from({ length: 300 }, (_, i) => new Promise((resolve, reject) => {
  const c = net.connect(port, '127.0.0.1', () => c.end('ping ' + i));
  let got = '';
  c.on('data', (d) => (got += d));
  c.on('end', () => resolve(got));
  c.on('error', reject);
})));
server.close();
await server.waitClosed();
// Threads' names can be read only on Linux; elsewhere the test checks the echoes alone.
const threads = process.platform === 'linux' ? readdirSync('/proc/self/task').map((t) => readFileSync('/proc/self/task/' + t + '/comm', 'utf8').trim()) : null;
console.log(JSON.stringify({ intact: replies.filter((r, i) => r === 'ping ' + i).length, threads }));
`;

describe('reactor', () => {
  it.each([
    ['by default runs the engine on the JavaScript thread: no I/O thread, every connection served', 'host', false],
    ['PROTOLOOP_REACTOR=threads runs it on an I/O thread of its own, serving the same', 'threads', true],
  ])('%s', async (_title, reactor, ioThread) => {
    const r = await runScript(echo300, 30_000, { PROTOLOOP_REACTOR: reactor });
    expect(r.err).toBe('');
    expect(r.status).toBe(0);
    const { intact, threads } = JSON.parse(r.out) as { intact: number; threads: string[] | null };
    expect(intact).toBe(300);
    if (threads) expect(threads.includes('protoloop-io')).toBe(ioThread);
    else expect(process.platform).not.toBe('linux');
  });
});

describe('fairness', () => {
  // The engine takes its turns inside Node's loop: a stream that never lets up must not keep the loop
  // from its timers. The sender is another process, so that a starved loop here cannot slow it down,
  // and the receiver spends a while on each chunk, so that bytes are always waiting.
  it('a timer due while bytes keep arriving fires long before they stop', async () => {
    const total = 128 << 20;
    let received = 0;
    let atTimer = -1;
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    class Sink extends Protocol {
      override dataReceived(d: Buffer): void {
        if (received === 0) setTimeout(() => (atTimer = received), 1);
        received += d.length;
        for (const until = performance.now() + 0.05; performance.now() < until; );
      }
      override connectionLost(): void {
        done();
      }
    }
    const server = await createServer(() => new Sink(), '127.0.0.1', 0);
    const sender = spawn(process.execPath, ['-e', `
      const s = require('node:net').connect(${portOf(server)}, '127.0.0.1', () => {
        const chunk = Buffer.alloc(1 << 20);
        let left = ${total / (1 << 20)};
        const more = () => { while (left > 0) { left--; if (!s.write(chunk)) return s.once('drain', more); } s.end(); };
        more();
      });`], { stdio: 'inherit' });
    await finished;
    server.close();
    await once(sender, 'exit');
    expect(received).toBe(total);
    expect(atTimer).toBeGreaterThan(0);
    expect(atTimer).toBeLessThan(total / 4);
  });
});
