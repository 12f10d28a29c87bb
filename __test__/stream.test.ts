// TCP transports against Node's own `net`: the state machine of API.md, flow control, half-close,
// errors, addresses and extra info.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connectAcceptedSocket, constants, createConnection, createServer, Protocol, Transport, TransportSocket } from 'protoloop';
import { Echo, Recorder, addon, fdTarget, freePort, nodeServer, portOf, readAll, runScript, sleep, waitFor } from './helpers';

const MiB = 1 << 20;

/** Writes `total` random bytes in chunks, obeying pauseWriting/resumeWriting, then writeEof(). */
class Producer extends Recorder {
  paused = false;
  sent = 0;
  pauses = 0;
  readonly sentHash = createHash('sha256');
  readonly recvHash = createHash('sha256');
  recvBytes = 0;
  maxBuffered = 0;
  constructor(readonly total: number) {
    super();
  }
  override connectionMade(t: Transport): void {
    super.connectionMade(t);
    this.pump();
  }
  override dataReceived(data: Buffer): void {
    this.recvHash.update(data);
    this.recvBytes += data.length;
  }
  // Stay half-open until our own bytes are all out, then close.
  override eofReceived(): boolean {
    super.eofReceived();
    if (this.sent === this.total && !this.paused) this.transport.close();
    return true;
  }
  eofSeen(): boolean {
    return this.calls.includes('eofReceived');
  }
  override pauseWriting(): void {
    super.pauseWriting();
    expect(this.paused).toBe(false);
    this.paused = true;
    this.pauses++;
  }
  override resumeWriting(): void {
    super.resumeWriting();
    expect(this.paused).toBe(true);
    expect(this.transport.getWriteBufferSize()).toBeLessThanOrEqual(this.transport.getWriteBufferLimits()[0]);
    this.paused = false;
    this.pump();
  }
  pump(): void {
    while (!this.paused && this.sent < this.total) {
      const chunk = randomBytes(Math.min(256 * 1024, this.total - this.sent));
      this.sentHash.update(chunk);
      this.sent += chunk.length;
      this.transport.write(chunk);
      this.maxBuffered = Math.max(this.maxBuffered, this.transport.getWriteBufferSize());
    }
    if (this.sent === this.total && !this.paused) {
      this.transport.writeEof();
      if (this.eofSeen()) this.transport.close();
    }
  }
}

/** A Node peer that hashes what it reads and sends `total` random bytes with Node's back-pressure. */
function nodeSide(s: net.Socket, total: number): Promise<{ recv: string; recvBytes: number; sent: string }> {
  const recvHash = createHash('sha256');
  const sentHash = createHash('sha256');
  let recvBytes = 0;
  s.on('data', (d) => {
    recvHash.update(d);
    recvBytes += d.length;
  });
  let sent = 0;
  const pump = (): void => {
    while (sent < total) {
      const chunk = randomBytes(Math.min(256 * 1024, total - sent));
      sentHash.update(chunk);
      sent += chunk.length;
      if (!s.write(chunk)) {
        s.once('drain', pump);
        return;
      }
    }
    s.end();
  };
  pump();
  return new Promise((resolve, reject) => {
    s.on('error', reject);
    s.on('close', () => resolve({ recv: recvHash.digest('hex'), recvBytes, sent: sentHash.digest('hex') }));
  });
}

/** Connects a protoloop client to a Node server that never reads (its kernel buffers fill up). */
async function stuckPeer(): Promise<{ t: Transport; rec: Recorder; peer: net.Socket; close(): Promise<void> }> {
  const srv = await nodeServer(() => {}, { pauseOnConnect: true });
  const rec = new Recorder();
  const [t] = await createConnection(() => rec, '127.0.0.1', srv.port);
  const peer = await srv.next();
  return { t, rec, peer, close: srv.close };
}

/** Writes until the kernel stops taking bytes, with the high mark out of the way. */
function fill(t: Transport): number {
  t.setWriteBufferLimits(2 ** 40);
  const chunk = Buffer.alloc(MiB, 7);
  let written = 0;
  for (let i = 0; i < 256 && t.getWriteBufferSize() === 0; i++) {
    t.write(chunk);
    written += chunk.length;
  }
  expect(t.getWriteBufferSize()).toBeGreaterThan(0);
  return written;
}

describe('TCP against Node net', () => {
  it('a protoloop client talks to a Node net echo server', async () => {
    const srv = await nodeServer((s) => s.pipe(s));
    const rec = new Recorder();
    const [t, p] = await createConnection(() => rec, '127.0.0.1', srv.port);
    expect(p).toBe(rec);
    expect(t).toBeInstanceOf(Transport);
    expect(t.getExtraInfo('peername')).toEqual(['127.0.0.1', srv.port]);
    t.write(Buffer.from('hello'));
    await waitFor(() => rec.received.length === 5);
    expect(rec.received.toString()).toBe('hello');
    t.close();
    expect(await rec.lost).toBe(null);
    expect(rec.shape).toEqual(['connectionMade', 'dataReceived', 'connectionLost']);
    await srv.close();
  });

  it('data Buffers a protocol keeps stay intact while later messages arrive (small batches share a slab)', async () => {
    // Each message arrives in a batch of its own (the client waits for an ack before the next): small
    // batches are copied one after the other into 64 KiB slabs, and 1,500 x 100 bytes fill three.
    const kept: Buffer[] = [];
    class Keeper extends Protocol {
      t!: Transport;
      connectionMade(t: Transport): void {
        this.t = t;
      }
      dataReceived(data: Buffer): void {
        kept.push(data);
        this.t.write(Buffer.from('k'));
      }
    }
    const server = await createServer(() => new Keeper(), '127.0.0.1', 0);
    const s = net.connect(portOf(server), '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    const sent: Buffer[] = [];
    for (let i = 0; i < 1500; i++) {
      const msg = Buffer.alloc(100, i % 251);
      msg.writeUInt32BE(i, 0);
      sent.push(msg);
      const acked = new Promise((r) => s.once('data', r));
      s.write(msg);
      await acked;
    }
    s.destroy();
    expect(Buffer.concat(kept).equals(Buffer.concat(sent))).toBe(true);
    await server[Symbol.asyncDispose]();
  });

  it('a Node net client talks to a protoloop echo server', async () => {
    const server = await createServer(() => new Echo(), '127.0.0.1', 0);
    const s = net.connect(portOf(server), '127.0.0.1');
    const all = readAll(s);
    s.end('hello from node');
    expect((await all).toString()).toBe('hello from node');
    await server[Symbol.asyncDispose]();
  });

  it('64 MiB each way, protoloop client and Node server, hashed, with flow control', async () => {
    const total = 64 * MiB;
    let peer!: Promise<Awaited<ReturnType<typeof nodeSide>>>;
    // Half-open allowed: Node must not end its side (and stall its own writes) on our EOF.
    const srv = await nodeServer((s) => (peer = nodeSide(s, total)), { allowHalfOpen: true });
    const prod = new Producer(total);
    await createConnection(() => prod, '127.0.0.1', srv.port);
    expect(await prod.lost).toBe(null);
    const node = await peer;
    expect(node.recvBytes).toBe(total);
    expect(node.recv).toBe(prod.sentHash.digest('hex'));
    expect(prod.recvBytes).toBe(total);
    expect(prod.recvHash.digest('hex')).toBe(node.sent);
    // The producer obeyed the marks: it never let the buffer grow past high + one chunk.
    expect(prod.maxBuffered).toBeLessThanOrEqual(64 * 1024 + 256 * 1024);
    expect(prod.pauses).toBeGreaterThan(0);
    expect(prod.shape.filter((c) => c !== 'pauseWriting' && c !== 'resumeWriting')).toEqual([
      'connectionMade',
      'eofReceived',
      'connectionLost',
    ]);
    await srv.close();
  }, 120_000);

  it('64 MiB each way, Node client and protoloop server, hashed, with flow control', async () => {
    const total = 64 * MiB;
    const prod = new Producer(total);
    const server = await createServer(() => prod, '127.0.0.1', 0);
    const s = net.connect({ port: portOf(server), host: '127.0.0.1', allowHalfOpen: true });
    const node = await nodeSide(s, total);
    expect(await prod.lost).toBe(null);
    expect(node.recvBytes).toBe(total);
    expect(node.recv).toBe(prod.sentHash.digest('hex'));
    expect(prod.recvBytes).toBe(total);
    expect(prod.recvHash.digest('hex')).toBe(node.sent);
    expect(prod.maxBuffered).toBeLessThanOrEqual(64 * 1024 + 256 * 1024);
    await server[Symbol.asyncDispose]();
  }, 120_000);
});

describe('protocol state machine', () => {
  it('connectionMade first and once, connectionLost last and once, nothing after', async () => {
    const srv = await nodeServer((s) => s.end('bye'));
    const rec = new Recorder();
    const [t] = await createConnection(() => rec, '127.0.0.1', srv.port);
    expect(rec.calls).toEqual(['connectionMade']);
    expect(await rec.lost).toBe(null);
    expect(rec.shape).toEqual(['connectionMade', 'dataReceived', 'eofReceived', 'connectionLost']);
    expect(rec.received.toString()).toBe('bye');
    // Anything done on the transport afterwards produces no callback.
    t.write(Buffer.from('late'));
    t.close();
    t.abort();
    t.pauseReading();
    t.resumeReading();
    await sleep(50);
    expect(rec.calls.filter((c) => c === 'connectionLost')).toHaveLength(1);
    expect(rec.calls.at(-1)).toBe('connectionLost');
    await srv.close();
  });

  it('eofReceived returning falsy closes the transport', async () => {
    let peerClosed!: Promise<void>;
    const srv = await nodeServer((s) => {
      s.resume();
      peerClosed = new Promise((r) => s.on('end', () => r()));
      s.end('x');
    });
    const rec = new Recorder();
    const [t] = await createConnection(() => rec, '127.0.0.1', srv.port);
    await rec.eof;
    expect(t.isClosing()).toBe(true);
    expect(await rec.lost).toBe(null);
    await peerClosed;
    await srv.close();
  });

  it('eofReceived returning truthy keeps the connection half-open: write, then close', async () => {
    let peerData!: Promise<Buffer>;
    const srv = await nodeServer((s) => {
      peerData = readAll(s);
      s.end('ping');
    });
    const rec = new Recorder();
    rec.eofResult = true;
    const [t] = await createConnection(() => rec, '127.0.0.1', srv.port);
    await rec.eof;
    await sleep(20);
    expect(t.isClosing()).toBe(false);
    expect(rec.calls).not.toContain('connectionLost');
    t.write(Buffer.from('pong'));
    t.close();
    expect((await peerData).toString()).toBe('pong');
    expect(await rec.lost).toBe(null);
    expect(rec.shape).toEqual(['connectionMade', 'dataReceived', 'eofReceived', 'connectionLost']);
    await srv.close();
  });

  it('half-close from protoloop: writeEof, the Node peer sees end and can still answer', async () => {
    const srv = await nodeServer((s) => {
      const chunks: Buffer[] = [];
      s.on('data', (d) => chunks.push(d));
      s.on('end', () => s.end(Buffer.concat(chunks).toString().toUpperCase()));
    }, { allowHalfOpen: true });
    const rec = new Recorder();
    const [t] = await createConnection(() => rec, '127.0.0.1', srv.port);
    expect(t.canWriteEof()).toBe(true);
    t.write(Buffer.from('half'));
    t.writeEof();
    t.writeEof(); // idempotent
    expect(() => t.write(Buffer.from('more'))).toThrow(/writeEof/);
    expect(() => t.writelines([Buffer.from('more')])).toThrow(/writeEof/);
    expect(await rec.lost).toBe(null);
    expect(rec.received.toString()).toBe('HALF');
    expect(rec.shape).toEqual(['connectionMade', 'dataReceived', 'eofReceived', 'connectionLost']);
    await srv.close();
  });

  it('half-close from Node: end() reaches eofReceived, protoloop can still answer', async () => {
    let answer!: Promise<Buffer>;
    const srv = await nodeServer((s) => {
      answer = readAll(s);
      s.end('question');
    });
    class Answer extends Recorder {
      override eofReceived() {
        super.eofReceived();
        this.transport.write(Buffer.from(`answer to ${this.received}`));
        return true;
      }
    }
    const rec = new Answer();
    const [t] = await createConnection(() => rec, '127.0.0.1', srv.port);
    await rec.eof;
    t.writeEof();
    expect((await answer).toString()).toBe('answer to question');
    // Both directions are shut; the transport stays until closed, as in asyncio.
    t.close();
    expect(await rec.lost).toBe(null);
    await srv.close();
  });

  it('abort drops the buffer; connectionLost(null) comes later, never inside abort()', async () => {
    const { t, rec, peer, close } = await stuckPeer();
    const written = fill(t) + 10;
    const peerGot = new Promise<number>((resolve) => {
      let n = 0;
      peer.on('data', (d) => (n += d.length));
      peer.on('close', () => resolve(n));
    });
    t.write(Buffer.from('never sent'));
    const queued = t.getWriteBufferSize();
    t.abort();
    expect(rec.calls).not.toContain('connectionLost');
    expect(t.isClosing()).toBe(true);
    // The buffer is gone at once, as asyncio's abort() clears it.
    expect(t.getWriteBufferSize()).toBe(0);
    expect(await rec.lost).toBe(null);
    expect(t.getWriteBufferSize()).toBe(0);
    peer.resume();
    const got = await peerGot;
    // What the kernel had goes out; the queue (and the last write) never does.
    expect(got).toBeLessThan(written);
    expect(got).toBeGreaterThanOrEqual(written - queued);
    expect(rec.calls.filter((c) => c === 'connectionLost')).toHaveLength(1);
    await close();
  });

  it('close flushes a large buffer; no resumeWriting once the protocol closed', async () => {
    const { t, rec, peer, close } = await stuckPeer();
    const data = randomBytes(24 * MiB);
    t.write(data);
    expect(t.getWriteBufferSize()).toBeGreaterThan(64 * 1024);
    expect(rec.calls).toEqual(['connectionMade', 'pauseWriting']);
    t.close();
    expect(t.isClosing()).toBe(true);
    t.close(); // idempotent
    const all = readAll(peer);
    peer.resume();
    const got = await all;
    expect(got.length).toBe(data.length);
    expect(got.equals(data)).toBe(true);
    expect(await rec.lost).toBe(null);
    expect(rec.calls).toEqual(['connectionMade', 'pauseWriting', 'connectionLost']);
    await close();
  });

  it('write after close or loss is dropped without an error; empty writes are no-ops', async () => {
    const srv = await nodeServer();
    const rec = new Recorder();
    const [t] = await createConnection(() => rec, '127.0.0.1', srv.port);
    t.write(Buffer.alloc(0));
    t.write(new Uint8Array(0));
    t.writelines([]);
    t.writelines([Buffer.alloc(0), new ArrayBuffer(0)]);
    expect(t.getWriteBufferSize()).toBe(0);
    t.close();
    t.write(Buffer.from('dropped'));
    t.writelines([Buffer.from('dropped')]);
    expect(t.getWriteBufferSize()).toBe(0);
    await rec.lost;
    for (let i = 0; i < 10; i++) t.write(Buffer.from('dropped'));
    expect(t.getWriteBufferSize()).toBe(0);
    const peer = await srv.next();
    expect((await readAll(peer)).length).toBe(0);
    await srv.close();
  });

  it('mutating a buffer after write() returns does not change what is sent', async () => {
    const { t, rec, peer, close } = await stuckPeer();
    const data = randomBytes(16 * MiB);
    const copy = Buffer.from(data);
    t.write(data);
    expect(t.getWriteBufferSize()).toBeGreaterThan(0);
    data.fill(0);
    const view = new Uint8Array(randomBytes(1000));
    const viewCopy = Buffer.from(view);
    t.writelines([view]);
    view.fill(1);
    t.close();
    const all = readAll(peer);
    peer.resume();
    expect((await all).equals(Buffer.concat([copy, viewCopy]))).toBe(true);
    await rec.lost;
    await close();
  });

  it('writelines with thousands of buffers, behind a full kernel buffer, arrives byte-exact', async () => {
    const { t, rec, peer, close } = await stuckPeer();
    fill(t);
    const before = t.getWriteBufferSize();
    const parts: Buffer[] = [];
    for (let i = 0; i < 3000; i++) parts.push(randomBytes((i * 7919) % 3000));
    t.writelines(parts);
    const total = parts.reduce((n, p) => n + p.length, 0);
    expect(t.getWriteBufferSize()).toBe(before + total);
    // And the same straight to an idle socket (more buffers than one writev takes).
    const srv = await nodeServer();
    const rec2 = new Recorder();
    const [t2] = await createConnection(() => rec2, '127.0.0.1', srv.port);
    const got2 = readAll(await srv.next());
    t2.writelines(parts);
    t2.close();
    expect((await got2).equals(Buffer.concat(parts))).toBe(true);
    const all = readAll(peer);
    peer.resume();
    t.close();
    const got = await all;
    expect(got.subarray(got.length - total).equals(Buffer.concat(parts))).toBe(true);
    await rec.lost;
    await close();
    await srv.close();
  });

  it('writelines sends every kind of bytes in order', async () => {
    const srv = await nodeServer();
    const rec = new Recorder();
    const [t] = await createConnection(() => rec, '127.0.0.1', srv.port);
    const got = readAll(await srv.next());
    const ab = new TextEncoder().encode('c').buffer;
    t.writelines([Buffer.from('a'), new Uint8Array([98]), ab, new DataView(new TextEncoder().encode('d').buffer), new Uint16Array([0x6665])]);
    t.writelines((function* () {
      yield Buffer.from('g');
      yield Buffer.from('h');
    })());
    t.write(new TextEncoder().encode('i').buffer);
    t.close();
    expect((await got).toString()).toBe('abcdefghi');
    await srv.close();
  });
});

describe('write flow control', () => {
  it('defaults to [16 KiB, 64 KiB] and derives the missing mark as asyncio does', async () => {
    const srv = await nodeServer();
    const rec = new Recorder();
    const [t] = await createConnection(() => rec, '127.0.0.1', srv.port);
    expect(t.getWriteBufferLimits()).toEqual([16 * 1024, 64 * 1024]);
    t.setWriteBufferLimits(1000);
    expect(t.getWriteBufferLimits()).toEqual([250, 1000]);
    t.setWriteBufferLimits(undefined, 100);
    expect(t.getWriteBufferLimits()).toEqual([100, 400]);
    t.setWriteBufferLimits(10, 10);
    expect(t.getWriteBufferLimits()).toEqual([10, 10]);
    t.setWriteBufferLimits(0, 0);
    expect(t.getWriteBufferLimits()).toEqual([0, 0]);
    t.setWriteBufferLimits();
    expect(t.getWriteBufferLimits()).toEqual([16 * 1024, 64 * 1024]);
    // A small write to an idle socket goes to the kernel at once: nothing counts as buffered.
    t.write(Buffer.from('x'));
    expect(t.getWriteBufferSize()).toBe(0);
    expect(rec.calls).toEqual(['connectionMade']);
    t.close();
    await rec.lost;
    await srv.close();
  });

  it('pauses strictly over high, synchronously; re-checks on setWriteBufferLimits; resumes at or under low; alternates', async () => {
    const { t, rec, peer, close } = await stuckPeer();
    fill(t);
    expect(rec.calls).toEqual(['connectionMade']);
    const b = t.getWriteBufferSize();
    t.setWriteBufferLimits(b, 0); // at high exactly: not over
    expect(rec.calls).toEqual(['connectionMade']);
    t.write(Buffer.alloc(1)); // one byte over high: pause inside write()
    expect(t.getWriteBufferSize()).toBe(b + 1);
    expect(rec.calls).toEqual(['connectionMade', 'pauseWriting']);
    t.write(Buffer.alloc(1000));
    t.writelines([Buffer.alloc(10)]);
    t.setWriteBufferLimits(1, 0);
    expect(rec.calls).toEqual(['connectionMade', 'pauseWriting']);
    // Raising the mark does not pause again; lowering it again (while paused) does nothing either.
    t.setWriteBufferLimits(2 ** 40, 0);
    t.setWriteBufferLimits(1, 0);
    expect(rec.calls).toEqual(['connectionMade', 'pauseWriting']);
    // Now let the peer read: the buffer drains to 0 (= low) and resumeWriting comes once.
    let sizeAtResume = -1;
    rec.resumeWriting = function () {
      Recorder.prototype.resumeWriting.call(this);
      sizeAtResume = t.getWriteBufferSize();
    };
    peer.resume();
    await waitFor(() => rec.calls.includes('resumeWriting'));
    expect(sizeAtResume).toBe(0);
    expect(rec.calls).toEqual(['connectionMade', 'pauseWriting', 'resumeWriting']);
    // A second round alternates the same way.
    peer.pause();
    await sleep(50);
    fill(t);
    t.setWriteBufferLimits(t.getWriteBufferSize() - 1, 0); // re-check pauses at once
    expect(rec.calls).toEqual(['connectionMade', 'pauseWriting', 'resumeWriting', 'pauseWriting']);
    peer.resume();
    await waitFor(() => rec.calls.length === 5);
    expect(rec.calls.at(-1)).toBe('resumeWriting');
    t.close();
    await rec.lost;
    await close();
  });

  it('setWriteBufferLimits with a low mark above the buffer resumes a paused protocol', async () => {
    const { t, rec, close } = await stuckPeer();
    fill(t);
    const b = t.getWriteBufferSize();
    t.setWriteBufferLimits(b - 1, 0);
    expect(rec.calls).toEqual(['connectionMade', 'pauseWriting']);
    t.setWriteBufferLimits(b + 10, b);
    expect(rec.calls).toEqual(['connectionMade', 'pauseWriting', 'resumeWriting']);
    t.abort();
    await rec.lost;
    await close();
  });

  it('getWriteBufferSize counts only bytes the kernel has not taken', async () => {
    const { t, rec, peer, close } = await stuckPeer();
    fill(t);
    const b = t.getWriteBufferSize();
    t.write(Buffer.alloc(12345));
    expect(t.getWriteBufferSize()).toBe(b + 12345);
    peer.resume();
    await waitFor(() => t.getWriteBufferSize() === 0);
    const stats = t.getExtraInfo('stats');
    expect(stats.bytesWritten).toBeGreaterThan(b);
    t.close();
    await rec.lost;
    await close();
  });
});

describe('read flow control', () => {
  it('pauseReading holds back bytes already in flight and the EOF until resumeReading', async () => {
    const payload = randomBytes(4 * MiB);
    const srv = await nodeServer((s) => s.end(payload));
    class Pauser extends Recorder {
      override dataReceived(d: Buffer) {
        super.dataReceived(d);
        if (this.chunks.length === 1) {
          this.transport.pauseReading();
          this.transport.pauseReading(); // idempotent
        }
      }
    }
    const rec = new Pauser();
    const [t] = await createConnection(() => rec, '127.0.0.1', srv.port);
    expect(t.isReading()).toBe(true);
    await waitFor(() => rec.chunks.length === 1);
    expect(t.isReading()).toBe(false);
    // Not waiting for the peer to finish writing: how much of 4 MiB the kernel takes while nobody reads
    // depends on how far its buffers had grown (a flake beside a CPU hog), and it changes nothing here.
    await sleep(300);
    expect(rec.calls).toEqual(['connectionMade', 'dataReceived']);
    t.resumeReading();
    // Nothing is delivered inside resumeReading() itself.
    expect(rec.calls).toEqual(['connectionMade', 'dataReceived']);
    t.resumeReading();
    expect(t.isReading()).toBe(true);
    await rec.lost;
    expect(rec.received.equals(payload)).toBe(true);
    expect(rec.shape).toEqual(['connectionMade', 'dataReceived', 'eofReceived', 'connectionLost']);
    expect(t.isReading()).toBe(false);
    await srv.close();
  });

  it('pauseReading inside connectionMade holds back the first bytes too', async () => {
    const srv = await nodeServer((s) => s.end('first'));
    class PauseAtOnce extends Recorder {
      override connectionMade(t: Transport) {
        super.connectionMade(t);
        t.pauseReading();
      }
    }
    const rec = new PauseAtOnce();
    const [t] = await createConnection(() => rec, '127.0.0.1', srv.port);
    await sleep(200);
    expect(rec.calls).toEqual(['connectionMade']);
    t.resumeReading();
    await rec.lost;
    expect(rec.received.toString()).toBe('first');
    await srv.close();
  });

  it('a small message and its EOF, arriving together, are both held while paused', async () => {
    let write!: (s: string) => void;
    const srv = await nodeServer((s) => (write = (m) => s.end(m)));
    const rec = new Recorder();
    const [t] = await createConnection(() => rec, '127.0.0.1', srv.port);
    await waitFor(() => write !== undefined);
    t.pauseReading();
    write('while paused');
    await sleep(200);
    expect(rec.calls).toEqual(['connectionMade']);
    t.resumeReading();
    await rec.lost;
    expect(rec.received.toString()).toBe('while paused');
    expect(rec.shape).toEqual(['connectionMade', 'dataReceived', 'eofReceived', 'connectionLost']);
    await srv.close();
  });
});

describe('transport details', () => {
  it('setProtocol switches callbacks from the next event on', async () => {
    let send!: (m: string) => void;
    const srv = await nodeServer((s) => (send = (m) => s.write(m)));
    const first = new Recorder();
    const second = new Recorder();
    const [t] = await createConnection(() => first, '127.0.0.1', srv.port);
    await waitFor(() => send !== undefined);
    send('one');
    await waitFor(() => first.received.length === 3);
    t.setProtocol(second);
    expect(t.getProtocol()).toBe(second);
    send('two');
    await waitFor(() => second.received.length === 3);
    t.close();
    await second.lost;
    expect(first.shape).toEqual(['connectionMade', 'dataReceived']);
    expect(second.shape).toEqual(['dataReceived', 'connectionLost']);
    expect(second.received.toString()).toBe('two');
    await srv.close();
  });

  it('getExtraInfo: peername, sockname, socket with options, stats; still readable after close', async () => {
    const srv = await nodeServer((s) => s.pipe(s));
    const rec = new Recorder();
    const [t] = await createConnection(() => rec, '127.0.0.1', srv.port);
    const peer = await srv.next();
    expect(t.getExtraInfo('peername')).toEqual(['127.0.0.1', srv.port]);
    expect(t.getExtraInfo('sockname')).toEqual(['127.0.0.1', peer.remotePort]);
    expect(t.getExtraInfo('nonexistent')).toBe(null);
    expect(t.getExtraInfo('nonexistent', 42)).toBe(42);
    const sock = t.getExtraInfo('socket') as TransportSocket;
    expect(sock).toBeInstanceOf(TransportSocket);
    expect(sock.family).toBe(constants.AF_INET);
    expect(sock.type).toBe(constants.SOCK_STREAM);
    expect(sock.proto).toBe(constants.IPPROTO_TCP);
    expect(typeof sock.fd).toBe('number');
    expect(sock.getsockname()).toEqual(t.getExtraInfo('sockname'));
    expect(sock.getpeername()).toEqual(['127.0.0.1', srv.port]);
    expect(sock.getsockopt(constants.IPPROTO_TCP, constants.TCP_NODELAY)).toBe(1);
    expect(sock.getsockopt(constants.SOL_SOCKET, constants.SO_KEEPALIVE)).toBe(0);
    sock.setsockopt(constants.SOL_SOCKET, constants.SO_KEEPALIVE, 1);
    expect(sock.getsockopt(constants.SOL_SOCKET, constants.SO_KEEPALIVE)).toBe(1);
    sock.setsockopt(constants.SOL_SOCKET, constants.SO_KEEPALIVE, false);
    expect(sock.getsockopt(constants.SOL_SOCKET, constants.SO_KEEPALIVE)).toBe(0);
    expect(sock.getsockopt(constants.SOL_SOCKET, constants.SO_TYPE)).toBe(constants.SOCK_STREAM);
    expect(() => sock.getsockopt(constants.SOL_SOCKET, 9999)).toThrow(expect.objectContaining({ code: 'ENOPROTOOPT', syscall: 'getsockopt' }));
    for (const k of ['AF_INET', 'AF_INET6', 'AF_UNIX', 'SOCK_STREAM', 'SOL_SOCKET', 'SO_REUSEADDR', 'SO_KEEPALIVE', 'IPPROTO_TCP', 'TCP_NODELAY']) {
      expect(typeof constants[k]).toBe('number');
    }
    t.write(Buffer.from('12345'));
    await waitFor(() => rec.received.length === 5);
    expect(t.getExtraInfo('stats')).toEqual({ bytesRead: 5, bytesWritten: 5, bytesCopiedOnReceive: 5 });
    const peername = t.getExtraInfo('peername');
    const sockname = t.getExtraInfo('sockname');
    t.close();
    await rec.lost;
    expect(t.getExtraInfo('peername')).toEqual(peername);
    expect(t.getExtraInfo('sockname')).toEqual(sockname);
    expect(t.getExtraInfo('stats')).toEqual({ bytesRead: 5, bytesWritten: 5, bytesCopiedOnReceive: 5 });
    expect(() => sock.getsockopt(constants.IPPROTO_TCP, constants.TCP_NODELAY)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    await srv.close();
  });
});

describe('errors', () => {
  it('ECONNREFUSED rejects with code, errno and syscall, and creates no protocol', async () => {
    const port = await freePort();
    let made = 0;
    const err = await createConnection(() => (made++, new Recorder()), '127.0.0.1', port).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({ code: 'ECONNREFUSED', errno: -111, syscall: 'connect', address: '127.0.0.1', port });
    expect(err.message).toContain('ECONNREFUSED');
    expect(made).toBe(0);
  });

  it('a localAddr that cannot be bound rejects with syscall "bind", as Node says', async () => {
    const port = await freePort();
    // 192.0.2.1 (TEST-NET-1) is on no interface here.
    const err = await createConnection(() => new Recorder(), '127.0.0.1', port, { localAddr: ['192.0.2.1', 0] }).catch((e) => e);
    expect(err).toMatchObject({ code: 'EADDRNOTAVAIL', syscall: 'bind' });
    const viaNode = await new Promise<any>((r) => net.connect({ host: '127.0.0.1', port, localAddress: '192.0.2.1' }).on('error', r));
    expect(err.syscall).toBe(viaNode.syscall);
  });

  it('a localAddr whose port a server listens on rejects with EADDRINUSE at "bind", as Node says', async () => {
    // Windows' SO_REUSEADDR would let the bind take a listening port over (undefined which socket then
    // gets the traffic): the engine sets it only on Unix, where a listening port stays refused.
    const node = net.createServer();
    await new Promise<void>((r) => node.listen(0, '127.0.0.1', r));
    const busy = (node.address() as net.AddressInfo).port;
    const target = await freePort();
    const err = await createConnection(() => new Recorder(), '127.0.0.1', target, { localAddr: ['127.0.0.1', busy] }).catch((e) => e);
    const viaNode = await new Promise<any>((r) => net.connect({ host: '127.0.0.1', port: target, localAddress: '127.0.0.1', localPort: busy }).on('error', r));
    await new Promise((r) => node.close(r));
    expect(err).toMatchObject({ code: 'EADDRINUSE', syscall: 'bind' });
    expect([viaNode.code, viaNode.syscall]).toEqual([err.code, err.syscall]);
  });

  it('an unknown host name rejects with ENOTFOUND', async () => {
    let made = 0;
    const err = await createConnection(() => (made++, new Recorder()), 'nonexistent.invalid', 80).catch((e) => e);
    expect(err).toMatchObject({ code: 'ENOTFOUND', syscall: 'getaddrinfo' });
    expect(made).toBe(0);
  });

  it('a peer reset reaches connectionLost with ECONNRESET (client side)', async () => {
    // Reset once the client has spoken: a reset racing the handshake may fail the connect itself
    // (SO_ERROR reads ECONNRESET), as it does in asyncio.
    const srv = await nodeServer((s) => s.once('data', () => s.resetAndDestroy()));
    const rec = new Recorder();
    const [t] = await createConnection(() => rec, '127.0.0.1', srv.port);
    t.write(Buffer.from('hello?'));
    const exc = await rec.lost;
    expect(exc).toMatchObject({ code: 'ECONNRESET', errno: -104 });
    expect(rec.calls.at(-1)).toBe('connectionLost');
    await srv.close();
  });

  it('a connection lost with bytes still queued reports ECONNRESET/EPIPE and an empty buffer', async () => {
    const { t, rec, peer, close } = await stuckPeer();
    fill(t);
    expect(t.getWriteBufferSize()).toBeGreaterThan(0);
    peer.resetAndDestroy();
    const exc = await rec.lost;
    expect(['ECONNRESET', 'EPIPE']).toContain((exc as NodeJS.ErrnoException).code);
    expect(t.getWriteBufferSize()).toBe(0);
    await close();
  });

  it('a peer reset reaches connectionLost with ECONNRESET (server side)', async () => {
    const rec = new Recorder();
    const server = await createServer(() => rec, '127.0.0.1', 0);
    const s = net.connect(portOf(server), '127.0.0.1');
    s.on('error', () => {});
    await rec.made;
    s.resetAndDestroy();
    expect(await rec.lost).toMatchObject({ code: 'ECONNRESET' });
    await server[Symbol.asyncDispose]();
  });
});

describe('adopting a descriptor a transport already owns', () => {
  it('createConnection({ sock }) and connectAcceptedSocket refuse it with EEXIST and leave it open to its owner', async () => {
    const srv = await nodeServer((s) => s.pipe(s));
    const rec = new Recorder();
    const [t] = await createConnection(() => rec, '127.0.0.1', srv.port);
    const fd = (t.getExtraInfo('socket') as TransportSocket).fd;
    const file = fdTarget(fd);
    // The factory runs first, as asyncio calls it before touching the socket (so a factory that throws
    // leaves the descriptor alone too); a refused adoption gives its protocol no callback.
    const made: Recorder[] = [];
    for (const adopt of [
      () => createConnection(() => made[made.push(new Recorder()) - 1]!, null, null, { sock: fd }),
      () => connectAcceptedSocket(() => made[made.push(new Recorder()) - 1]!, fd),
    ]) {
      const err = await adopt().catch((e) => e);
      expect(err).toMatchObject({ code: 'EEXIST', errno: -17 });
      expect(err.message).toContain(`descriptor ${fd} already belongs to a transport`);
      // Refused, not closed: the number is still the owner's socket (a closed one could be reused).
      expect(fdTarget(fd)).toBe(file);
    }
    expect(made.map((p) => p.calls)).toEqual([[], []]);
    t.write(Buffer.from('still mine'));
    await waitFor(() => rec.received.toString() === 'still mine');
    t.close();
    expect(await rec.lost).toBe(null);
    await srv.close();
  });
});

describe('addresses and connect options', () => {
  it('a happyEyeballsDelayMs too large for a duration is a RangeError, and the process lives on', async () => {
    // 1e308 is finite, but no duration holds it: it once reached the engine and aborted the process.
    const r = await runScript(`
      for (const v of [1e308, 2 ** 53, Number.MAX_VALUE]) {
        await pl.createConnection(() => new pl.Protocol(), '127.0.0.1', 1, { happyEyeballsDelayMs: v })
          .then(() => console.log('connected?'), (e) => console.log(e.constructor.name, e.message));
      }
    `);
    expect(r.signal).toBe(null);
    expect(r.status).toBe(0);
    expect(r.out.trim().split('\n')).toEqual(
      Array(3).fill(expect.stringMatching(/^RangeError The value of "options.happyEyeballsDelayMs" is out of range/)),
    );
  });

  it('IPv6: a protoloop client and a protoloop server on ::1', async () => {
    const srvRec = new Recorder();
    const server = await createServer(() => srvRec, '::1', 0);
    const addr = server.sockets[0].getsockname();
    expect(addr[0]).toBe('::1');
    expect(server.sockets[0].family).toBe(constants.AF_INET6);
    const rec = new Recorder();
    const [t] = await createConnection(() => rec, '::1', addr[1] as number);
    expect(t.getExtraInfo('peername')).toEqual(['::1', addr[1], 0, 0]);
    await srvRec.made;
    expect((srvRec.transport.getExtraInfo('peername') as unknown[])[0]).toBe('::1');
    t.write(Buffer.from('six'));
    await waitFor(() => srvRec.received.length === 3);
    t.close();
    await srvRec.lost;
    await server[Symbol.asyncDispose]();
  });

  it('IPv6 against Node: protoloop client to a Node server on ::1', async () => {
    const srv = await nodeServer((s) => s.end('v6'), {}, '::1');
    const rec = new Recorder();
    await createConnection(() => rec, '::1', srv.port, { family: constants.AF_INET6 });
    await rec.lost;
    expect(rec.received.toString()).toBe('v6');
    await srv.close();
  });

  it('host name "localhost" resolves and connects, with and without Happy Eyeballs', async () => {
    const srv = await nodeServer((s) => s.end('local'));
    for (const options of [{}, { happyEyeballsDelayMs: 50 }, { happyEyeballsDelayMs: 0, interleave: 2 }, { interleave: 1 }, { family: constants.AF_INET }]) {
      const rec = new Recorder();
      const [t] = await createConnection(() => rec, 'localhost', srv.port, options);
      expect(t.getExtraInfo('peername')).toEqual(['127.0.0.1', srv.port]);
      await rec.lost;
      expect(rec.received.toString()).toBe('local');
    }
    await srv.close();
  });

  it('localAddr binds the client before connecting', async () => {
    const srv = await nodeServer((s) => s.end(`${s.remoteAddress}`));
    const rec = new Recorder();
    const [t] = await createConnection(() => rec, '127.0.0.1', srv.port, { localAddr: ['127.0.0.2', 0] });
    expect((t.getExtraInfo('sockname') as [string, number])[0]).toBe('127.0.0.2');
    await rec.lost;
    expect(rec.received.toString()).toBe('127.0.0.2');
    const port = await freePort();
    const rec2 = new Recorder();
    const [t2] = await createConnection(() => rec2, '127.0.0.1', srv.port, { localAddr: ['127.0.0.1', port] });
    expect(t2.getExtraInfo('sockname')).toEqual(['127.0.0.1', port]);
    await rec2.lost;
    await srv.close();
  });

  it('sock: a connected socket made by python3 and passed to a child process', async () => {
    const srv = await nodeServer((s) => s.pipe(s));
    const dir = mkdtempSync(join(tmpdir(), 'protoloop-sock-'));
    const script = join(dir, 'child.mjs');
    const entry = new URL('../dist/esm/index.mjs', import.meta.url).pathname;
    writeFileSync(
      script,
      `import { createConnection, Protocol } from ${JSON.stringify(entry)};
      const fd = Number(process.argv[2]);
      class P extends Protocol {
        connectionMade(t) { this.t = t; t.write(Buffer.from('via sock')); }
        dataReceived(d) { console.log('got ' + d + ' peer ' + this.t.getExtraInfo('peername')[1]); this.t.close(); }
      }
      await createConnection(() => new P(), null, null, { sock: fd });
      `,
    );
    const py = `import os, socket, sys
s = socket.create_connection(('127.0.0.1', ${srv.port}))
os.set_inheritable(s.fileno(), True)
os.execv(sys.argv[1], [sys.argv[1], sys.argv[2], str(s.fileno())])`;
    // Asynchronously: the Node echo server lives in this process.
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const c = execFile('python3', ['-c', py, process.execPath, script], { timeout: 20_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? (err.code as number) : 0, stdout, stderr }),
      );
      c.stdin?.end();
    });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(`got via sock peer ${srv.port}`);
    expect(r.code).toBe(0);
    await srv.close();
  });
});

describe('server close with connections still queued', () => {
  it('leaves no stream behind when connections were accepted just before close()', async () => {
    const { openHandles } = addon;
    const before = openHandles();
    for (let round = 0; round < 20; round++) {
      const server = await createServer(() => new Protocol(), '127.0.0.1', 0);
      const port = portOf(server);
      const peers = Array.from({ length: 10 }, () => net.connect(port, '127.0.0.1').on('error', () => {}));
      await Promise.all(peers.map((p) => new Promise((r) => p.once('connect', r))));
      // Accepted events may still be queued when the server closes.
      server.close();
      server.abortClients();
      for (const p of peers) p.destroy();
    }
    await waitFor(() => openHandles() === before, 10_000, 'engine handles to return to their count');
  });
});
