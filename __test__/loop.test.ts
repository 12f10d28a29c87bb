// The loop of asyncio on Node's: getRunningLoop, Future, callSoon, the exception handler.
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  CancelledError,
  EventLoop,
  Future,
  InvalidStateError,
  Protocol,
  createConnection,
  createServer,
  getRunningLoop,
  type ExceptionContext,
  type Transport,
} from 'protoloop';
import { Recorder, nodeConnect, portOf, readAll, waitFor } from './helpers';

describe('getRunningLoop', () => {
  it('is one loop with asyncio methods', () => {
    const loop = getRunningLoop();
    expect(loop).toBe(getRunningLoop());
    expect(loop).toBeInstanceOf(EventLoop);
    expect(loop.createConnection).toBe(createConnection);
    expect(loop.createServer).toBe(createServer);
    expect(typeof loop.time()).toBe('number');
  });
});

describe('Future', () => {
  it('resolves awaiters with its result; done callbacks run soon after, never inside setResult', async () => {
    const f = getRunningLoop().createFuture<number>();
    expect(f).toBeInstanceOf(Future);
    expect(f.done()).toBe(false);
    expect(() => f.result()).toThrow(InvalidStateError);
    expect(() => f.exception()).toThrow(InvalidStateError);
    const seen: number[] = [];
    f.addDoneCallback((fut) => seen.push(fut.result()));
    setTimeout(() => {
      f.setResult(42);
      expect(seen).toEqual([]);
    }, 1);
    expect(await f).toBe(42);
    await waitFor(() => seen.length === 1);
    expect(seen).toEqual([42]);
    expect(f.done()).toBe(true);
    expect(f.result()).toBe(42);
    expect(f.exception()).toBe(null);
    expect(() => f.setResult(1)).toThrow(InvalidStateError);
    expect(() => f.setException(new Error('x'))).toThrow(InvalidStateError);
    expect(f.cancel()).toBe(false);
    // A callback added after completion still runs, later.
    let late = false;
    f.addDoneCallback(() => (late = true));
    expect(late).toBe(false);
    await waitFor(() => late);
  });

  it('setException rejects awaiters; result() throws it', async () => {
    const f = getRunningLoop().createFuture();
    const e = new Error('bad');
    f.setException(e);
    await expect(f).rejects.toBe(e);
    expect(() => f.result()).toThrow(e);
    expect(f.exception()).toBe(e);
  });

  it('cancel marks it cancelled and rejects with CancelledError', async () => {
    const f = getRunningLoop().createFuture();
    const cb: unknown[] = [];
    const fn = () => cb.push(1);
    f.addDoneCallback(fn);
    f.addDoneCallback(fn);
    expect(f.removeDoneCallback(fn)).toBe(2);
    f.addDoneCallback(fn);
    expect(f.cancel('stop')).toBe(true);
    expect(f.cancelled()).toBe(true);
    expect(f.done()).toBe(true);
    await expect(f).rejects.toBeInstanceOf(CancelledError);
    expect(() => f.result()).toThrow(CancelledError);
    expect(() => f.exception()).toThrow(CancelledError);
    await waitFor(() => cb.length === 1);
  });

  it('an unawaited failed future does not crash the process', async () => {
    const f = getRunningLoop().createFuture();
    f.setException(new Error('nobody listens'));
    await new Promise((r) => setTimeout(r, 20));
  });
});

describe('callSoon', () => {
  it('runs callbacks later, in order, with arguments; a cancelled handle does not run', async () => {
    const loop = getRunningLoop();
    const order: string[] = [];
    loop.callSoon((a: string, b: string) => order.push(a + b), 'x', 'y');
    const h = loop.callSoon(() => order.push('cancelled'));
    loop.callSoon(() => order.push('z'));
    h.cancel();
    expect(h.cancelled()).toBe(true);
    expect(order).toEqual([]);
    await waitFor(() => order.length === 2);
    await new Promise((r) => setTimeout(r, 10));
    expect(order).toEqual(['xy', 'z']);
  });

  it('an exception in a callSoon callback goes to the exception handler', async () => {
    const loop = getRunningLoop();
    const seen: ExceptionContext[] = [];
    loop.setExceptionHandler((ctx, l) => {
      expect(l).toBe(loop);
      seen.push(ctx);
    });
    try {
      const boom = new Error('soon boom');
      loop.callSoon(() => {
        throw boom;
      });
      await waitFor(() => seen.length === 1);
      expect(seen[0].exception).toBe(boom);
      expect(seen[0].message).toMatch(/callback/);
    } finally {
      loop.setExceptionHandler(null);
    }
  });
});

describe('exception handler', () => {
  it('setExceptionHandler / getExceptionHandler / callExceptionHandler', () => {
    const loop = getRunningLoop();
    expect(loop.getExceptionHandler()).toBe(null);
    const seen: ExceptionContext[] = [];
    const h = (ctx: ExceptionContext) => seen.push(ctx);
    loop.setExceptionHandler(h);
    expect(loop.getExceptionHandler()).toBe(h);
    loop.callExceptionHandler({ message: 'hello' });
    expect(seen).toEqual([{ message: 'hello' }]);
    loop.setExceptionHandler(null);
    expect(loop.getExceptionHandler()).toBe(null);
  });

  it('a handler that throws falls back to the default handler (stderr) for both errors', async () => {
    const code = `
      import { getRunningLoop } from ${JSON.stringify(new URL('../dist/esm/index.mjs', import.meta.url).pathname)};
      const loop = getRunningLoop();
      loop.setExceptionHandler(() => { throw new Error('handler broke'); });
      loop.callExceptionHandler({ message: 'original problem', exception: new Error('first') });
      console.log('still running');
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    expect(await new Promise((r) => child.on('exit', r))).toBe(0);
    expect(err).toContain('handler broke');
    expect(err).toContain('original problem');
    expect(out).toBe('still running\n');
  });

  it('an exception in a protocol callback reaches the handler and aborts only that transport', async () => {
    const loop = getRunningLoop();
    const seen: ExceptionContext[] = [];
    loop.setExceptionHandler((ctx) => seen.push(ctx));
    try {
      const boom = new Error('dataReceived boom');
      class Echo extends Recorder {
        override dataReceived(d: Buffer) {
          super.dataReceived(d);
          if (d.toString().includes('boom')) throw boom;
          this.transport.write(d);
        }
      }
      const recs: Echo[] = [];
      const server = await createServer(() => {
        const r = new Echo();
        recs.push(r);
        return r;
      }, '127.0.0.1', 0);
      const good = await nodeConnect(portOf(server));
      const bad = await nodeConnect(portOf(server));
      bad.on('error', () => {});
      const badClosed = new Promise((r) => bad.on('close', r));
      await waitFor(() => recs.length === 2);
      bad.write('boom');
      await badClosed;
      await waitFor(() => seen.length === 1);
      const ctx = seen[0];
      expect(ctx.exception).toBe(boom);
      expect(ctx.message).toMatch(/dataReceived/);
      const victim = recs.find((r) => r.transport === ctx.transport)!;
      expect(victim).toBeDefined();
      expect(ctx.protocol).toBe(victim);
      expect(await victim.lost).toBe(boom);
      expect(victim.calls.filter((c) => c === 'connectionLost')).toHaveLength(1);
      // The other connection is untouched.
      const got = new Promise<string>((r) => good.once('data', (d) => r(d.toString())));
      good.write('still here');
      expect(await got).toBe('still here');
      const other = recs.find((r) => r !== victim)!;
      expect(other.calls).not.toContain('connectionLost');
      good.end();
      await other.lost;
      await server[Symbol.asyncDispose]();
    } finally {
      loop.setExceptionHandler(null);
    }
  });

  it('exceptions in connectionMade, eofReceived and connectionLost are routed too', async () => {
    const loop = getRunningLoop();
    const seen: ExceptionContext[] = [];
    loop.setExceptionHandler((ctx) => seen.push(ctx));
    try {
      const srv = net.createServer((s) => {
        s.on('error', () => {});
        s.end('x');
      });
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
      const port = (srv.address() as net.AddressInfo).port;

      class ThrowsOnMade extends Recorder {
        override connectionMade(t: Transport) {
          super.connectionMade(t);
          throw new Error('made boom');
        }
      }
      const a = new ThrowsOnMade();
      await createConnection(() => a, '127.0.0.1', port);
      expect((await a.lost)?.message).toBe('made boom');
      expect(a.calls).not.toContain('dataReceived');

      class ThrowsOnEof extends Recorder {
        override eofReceived(): boolean {
          super.eofReceived();
          throw new Error('eof boom');
        }
      }
      const b = new ThrowsOnEof();
      await createConnection(() => b, '127.0.0.1', port);
      expect((await b.lost)?.message).toBe('eof boom');

      class ThrowsOnLost extends Recorder {
        override connectionLost(exc: Error | null) {
          super.connectionLost(exc);
          throw new Error('lost boom');
        }
      }
      const c = new ThrowsOnLost();
      await createConnection(() => c, '127.0.0.1', port);
      await c.lost;
      await waitFor(() => seen.some((s) => (s.exception as Error)?.message === 'lost boom'));
      expect(seen.map((s) => (s.exception as Error).message)).toEqual(['made boom', 'eof boom', 'lost boom']);
      srv.close();
    } finally {
      loop.setExceptionHandler(null);
    }
  });

  it('a throwing protocol factory rejects createConnection and leaves the peer closed', async () => {
    let peerClosed!: Promise<unknown>;
    const srv = net.createServer((s) => {
      s.on('error', () => {});
      peerClosed = readAll(s).catch(() => null);
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    await expect(
      createConnection(() => {
        throw new Error('factory boom');
      }, '127.0.0.1', port),
    ).rejects.toThrow('factory boom');
    await waitFor(() => peerClosed !== undefined);
    await peerClosed;
    srv.close();
  });

  it('the default handler prints to stderr, naming the transport, and the process goes on', async () => {
    const entry = new URL('../dist/esm/index.mjs', import.meta.url).pathname;
    const code = `
      import { createServer, createConnection, Protocol } from ${JSON.stringify(entry)};
      const server = await createServer(() => new (class extends Protocol {
        dataReceived() { throw new Error('callback exploded'); }
      })(), '127.0.0.1', 0);
      const port = server.sockets[0].getsockname()[1];
      await createConnection(() => new (class extends Protocol {
        connectionMade(t) { t.write(Buffer.from('go')); }
        connectionLost() { server.close(); console.log('client lost'); }
      })(), '127.0.0.1', port);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const status = await new Promise((r) => child.on('exit', r));
    expect(err).toContain('Exception in protocol callback dataReceived()');
    expect(err).toContain('callback exploded');
    expect(err).toMatch(/transport: <StreamTransport id=\d+/);
    expect(err).toMatch(/protocol: </);
    expect(out).toContain('client lost');
    expect(status).toBe(0);
  });
});

describe('Protocol classes', () => {
  it('plain objects with the right methods work as protocols', async () => {
    const srv = net.createServer((s) => s.end('plain'));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    let data = '';
    let lost!: () => void;
    const done = new Promise<void>((r) => (lost = r));
    const [t] = await createConnection(
      () => ({
        dataReceived: (d: Buffer) => (data += d),
        connectionLost: () => lost(),
      }),
      '127.0.0.1',
      port,
    );
    await done;
    expect(data).toBe('plain');
    expect(t.isClosing()).toBe(true);
    expect(new Protocol().eofReceived()).toBeUndefined();
    srv.close();
  });
});
