// BufferedProtocol: zero-copy receive into allocBuffer / SharedArrayBuffer memory, one copy otherwise.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { BufferedProtocol, Protocol, allocBuffer, createConnection, getRunningLoop, type ExceptionContext, type Transport } from 'protoloop';
import { runScript, waitFor } from './helpers';

const servers: net.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** A Node net server that sends `data` to each client, then ends (half-closes) the connection. */
async function sender(data: Buffer | ((s: net.Socket) => void)): Promise<number> {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    if (typeof data === 'function') data(s);
    else s.end(data);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
}

function pattern(n: number, seed = 0): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed + (i >> 8)) & 255;
  return b;
}

type Kind = 'alloc' | 'shared' | 'plain';

function makeBuffer(kind: Kind, size: number): Uint8Array {
  if (kind === 'alloc') return allocBuffer(size);
  if (kind === 'shared') return new Uint8Array(new SharedArrayBuffer(size));
  return new Uint8Array(size);
}

/** Rebuilds the stream from the bufferUpdated slices of one fixed buffer; records the call order. */
class Collector extends BufferedProtocol {
  transport!: Transport;
  parts: Buffer[] = [];
  calls: string[] = [];
  sizes: number[] = [];
  lost: Promise<Error | null>;
  #lost!: (e: Error | null) => void;
  constructor(readonly buf: Uint8Array) {
    super();
    this.lost = new Promise((r) => (this.#lost = r));
  }
  override connectionMade(t: Transport): void {
    this.transport = t;
    this.calls.push('connectionMade');
  }
  override getBuffer(sizehint: number): Uint8Array {
    this.calls.push('getBuffer');
    this.sizes.push(sizehint);
    return this.buf;
  }
  override bufferUpdated(n: number): void {
    this.calls.push('bufferUpdated');
    this.parts.push(Buffer.from(this.buf.subarray(0, n)));
  }
  override eofReceived(): boolean {
    this.calls.push('eofReceived');
    return false;
  }
  override connectionLost(exc: Error | null): void {
    this.calls.push('connectionLost');
    this.#lost(exc);
  }
  get received(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/**
 * Streams 1 MiB under the I/O-threads reactor to a P1 that, after two fills, pauses, switches to the
 * script's `P2` and resumes; `classes` defines P2 (and what it uses) with `t`, `recv` and `lost` in
 * scope. Resolves to how much arrived and where it first differs from what was sent (-1: nowhere).
 */
async function switchAfterTwoFills(classes: string): Promise<{ length: number; firstDifferent: number }> {
  const r = await runScript(
    `
      import net from 'node:net';
      const N = 1 << 20;
      const data = Buffer.alloc(N);
      for (let i = 0; i < N; i++) data[i] = (i * 131 + (i >>> 8)) & 255;
      const srv = net.createServer((s) => s.end(data)).listen(0, '127.0.0.1');
      await new Promise((r) => srv.on('listening', r));
      const recv = [];
      let t, lost;
      const done = new Promise((r) => (lost = r));
${classes}      class P1 extends pl.BufferedProtocol {
        buf = pl.allocBuffer(65536); k = 0;
        connectionMade(tr) { t = tr; }
        getBuffer() { return this.buf; }
        bufferUpdated(n) {
          recv.push(Buffer.from(this.buf.subarray(0, n)));
          if (++this.k === 2) { t.pauseReading(); setTimeout(() => { t.setProtocol(new P2()); t.resumeReading(); }, 50); }
        }
      }
      await pl.createConnection(() => new P1(), '127.0.0.1', srv.address().port);
      await done;
      const got = Buffer.concat(recv);
      console.log(JSON.stringify({ length: got.length, firstDifferent: [...got].findIndex((b, i) => b !== data[i]) }));
      srv.close();
    `,
    20_000,
    { PROTOLOOP_REACTOR: 'threads' },
  );
  expect(r.err).toBe('');
  return JSON.parse(r.out);
}

describe('BufferedProtocol receive', () => {
  for (const kind of ['alloc', 'shared', 'plain'] as Kind[]) {
    it(`rebuilds 9 KiB exactly from a fixed 100-byte ${kind} buffer`, async () => {
      const data = pattern(9 * 1024);
      const port = await sender(data);
      const p = new Collector(makeBuffer(kind, 100));
      const [t] = await createConnection(() => p, '127.0.0.1', port);
      expect(await p.lost).toBe(null);
      expect(p.received.equals(data)).toBe(true);
      expect(p.parts.every((x) => x.length > 0 && x.length <= 100)).toBe(true);
      const stats = t.getExtraInfo('stats');
      expect(stats.bytesRead).toBe(data.length);
      // The zero-copy path is taken for engine memory and SharedArrayBuffers; anything else costs one copy.
      expect(stats.bytesCopiedOnReceive).toBe(kind === 'plain' ? data.length : 0);
    });
  }

  for (const size of [1, 2, 4, 100, 1 << 20]) {
    it(`delivers every byte in order through a ${size}-byte allocBuffer`, async () => {
      const data = pattern(size === 1 ? 3000 : 9 * 1024, size);
      const port = await sender(data);
      const p = new Collector(allocBuffer(size));
      const [t] = await createConnection(() => p, '127.0.0.1', port);
      await p.lost;
      expect(p.received.equals(data)).toBe(true);
      expect(t.getExtraInfo('stats').bytesCopiedOnReceive).toBe(0);
    });
  }

  it('streams 256 MiB byte-exact into one reusable allocBuffer', async () => {
    const chunk = pattern(1 << 20, 7);
    const total = 256;
    const port = await sender((s) => {
      let sent = 0;
      const pump = (): void => {
        while (sent < total) {
          sent++;
          if (!s.write(chunk)) {
            s.once('drain', pump);
            return;
          }
        }
        s.end();
      };
      pump();
    });
    const hash = createHash('sha256');
    let got = 0;
    class Sink extends BufferedProtocol {
      buf = allocBuffer(256 * 1024);
      done = getRunningLoop().createFuture<Error | null>();
      override getBuffer(): Uint8Array {
        return this.buf;
      }
      override bufferUpdated(n: number): void {
        hash.update(this.buf.subarray(0, n));
        got += n;
      }
      override connectionLost(exc: Error | null): void {
        this.done.setResult(exc);
      }
    }
    const [t, p] = await createConnection(() => new Sink(), '127.0.0.1', port);
    expect(await p.done).toBe(null);
    const expected = createHash('sha256');
    for (let i = 0; i < total; i++) expected.update(chunk);
    expect(got).toBe(total << 20);
    expect(hash.digest('hex')).toBe(expected.digest('hex'));
    expect(t.getExtraInfo('stats')).toMatchObject({ bytesRead: total << 20, bytesCopiedOnReceive: 0 });
  }, 120_000);

  it('calls getBuffer before each fill, eofReceived once, and nothing after it but connectionLost', async () => {
    const port = await sender(pattern(5000));
    const p = new Collector(allocBuffer(1000));
    await createConnection(() => p, '127.0.0.1', port);
    await p.lost;
    const calls = p.calls;
    expect(calls[0]).toBe('connectionMade');
    expect(calls.at(-1)).toBe('connectionLost');
    expect(calls.filter((c) => c === 'eofReceived')).toHaveLength(1);
    const eof = calls.indexOf('eofReceived');
    expect(calls.slice(eof + 1)).toEqual(['connectionLost']);
    // Every bufferUpdated follows a getBuffer that it answers.
    let outstanding = 0;
    for (const c of calls) {
      if (c === 'getBuffer') outstanding = 1;
      if (c === 'bufferUpdated') {
        expect(outstanding).toBe(1);
        outstanding = 0;
      }
    }
    expect(p.sizes.every((s) => Number.isInteger(s) && s > 0)).toBe(true);
  });

  for (const [what, value] of [
    ['an empty Uint8Array', () => new Uint8Array(0)],
    ['an ArrayBuffer', () => new ArrayBuffer(10)],
    ['a string', () => 'buffer'],
  ] as const) {
    it(`fails the transport when getBuffer returns ${what}`, async () => {
      const port = await sender(pattern(100));
      const seen: unknown[] = [];
      getRunningLoop().setExceptionHandler((ctx) => seen.push(ctx.exception));
      try {
        class Bad extends Collector {
          override getBuffer(): Uint8Array {
            return value() as unknown as Uint8Array;
          }
        }
        const p = new Bad(new Uint8Array(1));
        await createConnection(() => p, '127.0.0.1', port);
        const exc = await p.lost;
        expect(exc).toBeInstanceOf(TypeError);
        expect(String(exc)).toMatch(/getBuffer\(\) must return a non-empty Uint8Array/);
        expect(p.calls).not.toContain('bufferUpdated');
        expect(seen[0]).toBe(exc);
      } finally {
        getRunningLoop().setExceptionHandler(null);
      }
    });
  }

  it('holds fills back while reading is paused', async () => {
    let peer!: net.Socket;
    const port = await sender((s) => (peer = s));
    const p = new Collector(allocBuffer(64));
    const [t] = await createConnection(() => p, '127.0.0.1', port);
    await waitFor(() => peer !== undefined);
    peer.write('a'.repeat(10));
    await waitFor(() => p.received.length === 10);
    t.pauseReading();
    expect(t.isReading()).toBe(false);
    peer.write('b'.repeat(10));
    peer.end();
    await new Promise((r) => setTimeout(r, 200));
    expect(p.received.toString()).toBe('a'.repeat(10));
    expect(p.calls).not.toContain('eofReceived');
    t.resumeReading();
    await p.lost;
    expect(p.received.toString()).toBe('a'.repeat(10) + 'b'.repeat(10));
  });

  for (const kind of ['alloc', 'plain'] as Kind[]) {
    it(`pauseReading() inside bufferUpdated stops the rest of the chunk until resumeReading() (${kind} buffer)`, async () => {
      // 10,000 bytes arrive at once; a 100-byte plain buffer is filled from one copied chunk, so the
      // pause has to stop the copy loop in its middle (reproducer 09).
      const data = pattern(10_000, 9);
      const port = await sender(data);
      let whilePaused = 0;
      let paused = false;
      class Pauser extends Collector {
        override bufferUpdated(n: number): void {
          if (paused) whilePaused++;
          super.bufferUpdated(n);
          paused = true;
          this.transport.pauseReading();
        }
      }
      const p = new Pauser(makeBuffer(kind, 100));
      const [t] = await createConnection(() => p, '127.0.0.1', port);
      await waitFor(() => p.parts.length === 1);
      await new Promise((r) => setTimeout(r, 100));
      expect(whilePaused).toBe(0);
      expect(p.parts).toHaveLength(1);
      expect(t.isReading()).toBe(false);
      // One buffer per resume, then all of it in order.
      while (!p.calls.includes('connectionLost')) {
        paused = false;
        t.resumeReading();
        await new Promise((r) => setTimeout(r, 1));
      }
      expect(whilePaused).toBe(0);
      expect(p.received.equals(data)).toBe(true);
      expect(p.calls.filter((c) => c === 'eofReceived')).toHaveLength(1);
    });
  }

  it('a getBuffer() view detached before bytes arrive fails the transport with an Error instead of dropping the bytes', async () => {
    const port = await sender(pattern(100_000));
    const contexts: ExceptionContext[] = [];
    getRunningLoop().setExceptionHandler((c) => contexts.push(c));
    try {
      class Detacher extends Collector {
        first = true;
        override getBuffer(hint: number): Uint8Array {
          super.getBuffer(hint);
          const b = new Uint8Array(4096);
          if (this.first) {
            this.first = false;
            // The view's memory is transferred away after it was handed to the library (reproducer 13).
            queueMicrotask(() => structuredClone(b.buffer, { transfer: [b.buffer] }));
          }
          return b;
        }
      }
      const p = new Detacher(new Uint8Array(1));
      await createConnection(() => p, '127.0.0.1', port);
      const exc = await p.lost;
      expect(exc).toBeInstanceOf(Error);
      expect((exc as Error).message).toMatch(/detached/);
      expect(contexts.map((c) => c.message)).toEqual(['Invalid buffer from BufferedProtocol.getBuffer()']);
    } finally {
      getRunningLoop().setExceptionHandler(null);
    }
  });

  it('a getBuffer() that returns a Proxy of a Uint8Array fails the transport with a TypeError; nothing leaks and the process exits', async () => {
    // In a fresh Node: before the fix the socket leaked and the process never exited (reproducer 07).
    const r = await runScript(`
      import net from 'node:net';
      const srv = net.createServer((s) => { s.on('error', () => {}); s.end('data'); }).listen(0, '127.0.0.1');
      await new Promise((r) => srv.on('listening', r));
      let lost;
      const done = new Promise((r) => (lost = r));
      class B extends pl.BufferedProtocol {
        getBuffer() { return new Proxy(new Uint8Array(100), {}); }
        bufferUpdated() {}
        connectionLost(e) { lost(e); }
      }
      await pl.createConnection(() => new B(), '127.0.0.1', srv.address().port);
      const e = await done;
      srv.close();
      console.log(e.constructor.name + ': ' + e.message);
    `);
    expect(r.status, r.err).toBe(0);
    expect(r.out.trim()).toBe('TypeError: getBuffer() must return a non-empty Uint8Array; it returned a Proxy');
  });

  it('switches between Protocol and BufferedProtocol mid-stream both ways without losing or reordering a byte', async () => {
    const data = pattern(4 << 20, 3);
    const port = await sender((s) => {
      // Several writes with gaps, so that switches happen with bytes in flight and bytes still to come.
      let i = 0;
      const step = 256 * 1024;
      const next = (): void => {
        if (i >= data.length) {
          s.end();
          return;
        }
        s.write(data.subarray(i, i + step));
        i += step;
        setTimeout(next, 1);
      };
      next();
    });
    const parts: Buffer[] = [];
    const order: string[] = [];
    let transport!: Transport;
    const done = getRunningLoop().createFuture<Error | null>();
    let switches = 0;
    const swap = (): void => {
      switches++;
      transport.setProtocol(switches % 2 === 1 ? new Plain() : new Buffered(switches % 4 === 0 ? 'shared' : 'alloc'));
    };
    class Plain extends Protocol {
      override dataReceived(d: Buffer): void {
        order.push('data');
        parts.push(Buffer.from(d));
        if (parts.length % 3 === 0) swap();
      }
      override connectionLost(exc: Error | null): void {
        done.setResult(exc);
      }
    }
    class Buffered extends BufferedProtocol {
      buf: Uint8Array;
      constructor(kind: Kind) {
        super();
        this.buf = makeBuffer(kind, 4096);
      }
      override connectionMade(t: Transport): void {
        transport = t;
      }
      override getBuffer(): Uint8Array {
        return this.buf;
      }
      override bufferUpdated(n: number): void {
        order.push('fill');
        parts.push(Buffer.from(this.buf.subarray(0, n)));
        if (parts.length % 5 === 0) swap();
      }
      override connectionLost(exc: Error | null): void {
        done.setResult(exc);
      }
    }
    await createConnection(() => new Buffered('alloc'), '127.0.0.1', port);
    expect(await done).toBe(null);
    expect(switches).toBeGreaterThan(4);
    expect(order).toContain('data');
    expect(order).toContain('fill');
    expect(Buffer.concat(parts).equals(data)).toBe(true);
  });

  it('frees allocBuffer memory: 10,000 getBuffer calls with fresh buffers keep RSS flat', () => {
    const script = fileURLToPath(new URL('./fixtures/alloc-churn.mjs', import.meta.url));
    const out = execFileSync(process.execPath, ['--expose-gc', script], { encoding: 'utf8', timeout: 120_000 });
    const { calls, rssGrowthMiB, allocatedMiB } = JSON.parse(out.trim().split('\n').at(-1) as string);
    expect(calls).toBeGreaterThanOrEqual(10_000);
    expect(allocatedMiB).toBeGreaterThan(2000);
    expect(rssGrowthMiB).toBeLessThan(64);
  }, 150_000);
});

describe('switching protocols while a buffer is lent', () => {
  it('I/O threads: a buffer lent to the engine is never also the target of a copy (no byte overwritten)', async () => {
    // P1 switches to P2 while one of its buffers is lent; P2's first bufferUpdated switches to P3, whose
    // one reused buffer was then lent to the engine and handed out for the rest of the copy at once,
    // so the engine's read and the copy overwrote each other (the I/O thread reads while JavaScript
    // copies). The slow second getBuffer() widens that window, as a busy callback would.
    expect(await switchAfterTwoFills(`
      class P3 extends pl.BufferedProtocol {
        buf = pl.allocBuffer(65536); calls = 0;
        getBuffer() { if (++this.calls === 2) { const end = Date.now() + 30; while (Date.now() < end); } return this.buf; }
        bufferUpdated(n) { recv.push(Buffer.from(this.buf.subarray(0, n))); }
        connectionLost() { lost(); }
      }
      class P2 extends pl.BufferedProtocol {
        buf = pl.allocBuffer(1000); switched = false;
        getBuffer() { return this.buf; }
        bufferUpdated(n) { recv.push(Buffer.from(this.buf.subarray(0, n))); if (!this.switched) { this.switched = true; t.setProtocol(new P3()); } }
      }
    `)).toEqual({ length: 1 << 20, firstDifferent: -1 });
  });

  it('I/O threads: pausing in bufferUpdated mid-copy lends nothing until the held rest is copied', async () => {
    // P2 gets P1's lent fill by copy, in 1000-byte pieces of its one buffer, and pauses after the first:
    // the rest is held. Lending P2's buffer to the engine then would let the engine read into it while,
    // after resumeReading(), the held rest is copied into the same buffer.
    expect(await switchAfterTwoFills(`
      class P2 extends pl.BufferedProtocol {
        buf = pl.allocBuffer(1000); updates = 0; resumed = false;
        getBuffer() { if (this.resumed) { this.resumed = false; const end = Date.now() + 30; while (Date.now() < end); } return this.buf; }
        bufferUpdated(n) {
          recv.push(Buffer.from(this.buf.subarray(0, n)));
          if (++this.updates === 1) { t.pauseReading(); setTimeout(() => { this.resumed = true; t.resumeReading(); }, 50); }
        }
        connectionLost() { lost(); }
      }
    `)).toEqual({ length: 1 << 20, firstDifferent: -1 });
  });
});

describe('switching to a BufferedProtocol and back before the engine confirms the switch', () => {
  it('I/O threads: a stale TargetMode marker lends nothing (Data read while target mode was off is not overwritten)', async () => {
    // dataReceived switches to B (a marker is queued), back to itself (target mode off), waits while the
    // I/O thread reads on into Data events, then to B again (a second marker). The first marker then
    // arrived with those Data events still behind it: B's buffer was lent on it, the engine filled it
    // while the copy of those events went into the same buffer, and B's next fill repeated copied bytes
    // in place of the ones read. The sender is on its own thread so that it goes on sending meanwhile.
    const r = await runScript(
      `
      import { Worker } from 'node:worker_threads';
      const N = 4 << 20;
      const data = Buffer.alloc(N);
      for (let i = 0; i < N; i++) data[i] = (i * 131 + (i >>> 8)) & 255;
      const w = new Worker(\`
        const { parentPort, workerData } = require('node:worker_threads');
        const data = Buffer.from(workerData);
        const srv = require('node:net').createServer((s) => {
          let i = 0;
          const next = () => { if (i >= data.length) { s.end(); srv.close(); return; } s.write(data.subarray(i, i += 16384)); setTimeout(next, 1); };
          next();
        }).listen(0, '127.0.0.1', () => parentPort.postMessage(srv.address().port));
      \`, { eval: true, workerData: data, execArgv: [] });
      const port = await new Promise((r) => w.once('message', r));
      const recv = [];
      let t, p, lost;
      const done = new Promise((r) => (lost = r));
      const spin = (ms) => { const end = Date.now() + ms; while (Date.now() < end); };
      class B extends pl.BufferedProtocol {
        buf = pl.allocBuffer(65536); k = 0;
        getBuffer() { spin(5); return this.buf; }
        bufferUpdated(n) { recv.push(Buffer.from(this.buf.subarray(0, n))); if (++this.k % 4 === 0) t.setProtocol(p); }
        connectionLost() { lost(); }
      }
      class P extends pl.Protocol {
        k = 0;
        connectionMade(tr) { t = tr; }
        dataReceived(d) {
          recv.push(Buffer.from(d));
          if (++this.k % 3 !== 0) return;
          const b = new B();
          t.setProtocol(b);
          t.setProtocol(this);
          spin(4);
          t.setProtocol(b);
        }
        connectionLost() { lost(); }
      }
      await pl.createConnection(() => (p = new P()), '127.0.0.1', port);
      await done;
      const got = Buffer.concat(recv);
      console.log(JSON.stringify({ length: got.length, firstDifferent: [...got].findIndex((b, i) => b !== data[i]) }));
    `,
      60_000,
      { PROTOLOOP_REACTOR: 'threads' },
    );
    expect(r.err).toBe('');
    expect(JSON.parse(r.out)).toEqual({ length: 4 << 20, firstDifferent: -1 });
  }, 70_000);
});

describe('examples/buffered-receive', () => {
  it('receives the whole stream with no byte copied', () => {
    const script = fileURLToPath(new URL('../dist/examples/buffered-receive.js', import.meta.url));
    const out = execFileSync(process.execPath, [script], { encoding: 'utf8', env: { ...process.env, MIB: '64' }, timeout: 60_000 });
    expect(out).toMatch(/^received 64 MiB in [\d.]+ s: \d+ MiB\/s$/m);
    expect(out).toContain(`bytesRead ${64 << 20}, bytesCopiedOnReceive 0`);
  });
});

describe('allocBuffer', () => {
  it('returns zeroed, writable memory of the asked size', () => {
    const b = allocBuffer(1000);
    expect(b).toBeInstanceOf(Uint8Array);
    expect(b.length).toBe(1000);
    expect(b.every((x) => x === 0)).toBe(true);
    b.fill(7);
    expect(b[999]).toBe(7);
  });

  it('rejects bad sizes naming the argument', () => {
    expect(() => allocBuffer(0)).toThrow(RangeError);
    expect(() => allocBuffer(-1)).toThrow(/"size"/);
    expect(() => allocBuffer(1.5)).toThrow(RangeError);
    expect(() => allocBuffer('10' as unknown as number)).toThrow(TypeError);
  });
});
