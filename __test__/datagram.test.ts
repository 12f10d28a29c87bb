import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as dgram from 'node:dgram';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getSystemErrorName } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import {
  constants,
  createDatagramEndpoint,
  DatagramProtocol,
  DatagramTransport,
  getRunningLoop,
  TransportSocket,
  type Address,
  type ExceptionContext,
} from 'protoloop';
import { abstractUnixNames, expectNoNewFds, fdSnapshot, fdTarget, waitFor } from './helpers';

/** Records every callback of a datagram protocol in order. */
class DgramRecorder extends DatagramProtocol {
  transport!: DatagramTransport;
  calls: string[] = [];
  datagrams: [Buffer, Address][] = [];
  errors: Error[] = [];
  lostExc: Error | null | undefined = undefined;
  readonly lost: Promise<Error | null>;
  #lost!: (e: Error | null) => void;
  onDatagram: ((data: Buffer, addr: Address) => void) | null = null;

  constructor() {
    super();
    this.lost = new Promise((r) => (this.#lost = r));
  }
  override connectionMade(t: DatagramTransport): void {
    this.transport = t;
    this.calls.push('connectionMade');
  }
  override datagramReceived(data: Buffer, addr: Address): void {
    this.calls.push('datagramReceived');
    this.datagrams.push([Buffer.from(data), addr]);
    this.onDatagram?.(data, addr);
  }
  override errorReceived(exc: Error): void {
    this.calls.push('errorReceived');
    this.errors.push(exc);
  }
  override pauseWriting(): void {
    this.calls.push('pauseWriting');
  }
  override resumeWriting(): void {
    this.calls.push('resumeWriting');
  }
  override connectionLost(exc: Error | null): void {
    this.calls.push('connectionLost');
    this.lostExc = exc;
    this.#lost(exc);
  }
}

type NodeSocket = dgram.Socket & { got: [Buffer, dgram.RemoteInfo][] };

async function nodeSocket(type: 'udp4' | 'udp6', host: string, echo = false): Promise<NodeSocket> {
  const s = dgram.createSocket(type) as NodeSocket;
  s.got = [];
  s.on('message', (m, r) => {
    s.got.push([m, r]);
    if (echo) s.send(m, r.port, r.address);
  });
  await new Promise<void>((r) => s.bind(0, host, r));
  return s;
}

const closeNode = (s: dgram.Socket) => new Promise<void>((r) => s.close(() => r()));

/** A UDP port nobody listens on (bound, then released). */
async function deadPort(): Promise<number> {
  const s = await nodeSocket('udp4', '127.0.0.1');
  const port = s.address().port;
  await closeNode(s);
  return port;
}

/** Whether someone has bound UDP `port` on 127.0.0.1. */
function udpPortTaken(port: number): Promise<boolean> {
  const probe = dgram.createSocket('udp4');
  return new Promise((resolve) => {
    probe.once('error', () => resolve(true));
    probe.bind(port, '127.0.0.1', () => probe.close(() => resolve(false)));
  });
}

const tmp = mkdtempSync(join(tmpdir(), 'protoloop-dgram-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('UDP against Node dgram', () => {
  it('a protoloop endpoint sends to and receives from a Node dgram socket (IPv4)', async () => {
    const peer = await nodeSocket('udp4', '127.0.0.1', true);
    const port = peer.address().port;
    const rec = new DgramRecorder();
    const [t, p] = await createDatagramEndpoint(() => rec, { remoteAddr: ['127.0.0.1', port] });
    expect(p).toBe(rec);
    expect(t).toBeInstanceOf(DatagramTransport);
    expect(t.getExtraInfo('peername')).toEqual(['127.0.0.1', port]);
    const [, myPort] = t.getExtraInfo('sockname') as [string, number];
    t.sendto(Buffer.from('one'));
    t.sendto(new Uint8Array([116, 119, 111]), ['127.0.0.1', port]); // the remote address itself is allowed
    await waitFor(() => rec.datagrams.length === 2);
    expect(peer.got.map(([m, r]) => [m.toString(), r.address, r.port])).toEqual([
      ['one', '127.0.0.1', myPort],
      ['two', '127.0.0.1', myPort],
    ]);
    expect(rec.datagrams.map(([d, a]) => [d.toString(), a])).toEqual([
      ['one', ['127.0.0.1', port]],
      ['two', ['127.0.0.1', port]],
    ]);
    t.close();
    expect(await rec.lost).toBe(null);
    expect(rec.calls[0]).toBe('connectionMade');
    expect(rec.calls.at(-1)).toBe('connectionLost');
    await closeNode(peer);
  });

  it('a Node dgram client talks to a protoloop echo endpoint (IPv4), datagram boundaries kept', async () => {
    const rec = new DgramRecorder();
    rec.onDatagram = (d, a) => rec.transport.sendto(d, a);
    const [t] = await createDatagramEndpoint(() => rec, { localAddr: ['127.0.0.1', 0] });
    const [host, port] = t.getExtraInfo('sockname') as [string, number];
    expect(host).toBe('127.0.0.1');
    expect(t.getExtraInfo('peername')).toBe(null);
    const client = await nodeSocket('udp4', '127.0.0.1');
    const sizes = [1, 0, 100, 1472, 9000, 65507];
    for (const n of sizes) client.send(Buffer.alloc(n, n % 251), port, '127.0.0.1');
    await waitFor(() => client.got.length === sizes.length);
    expect(client.got.map(([m]) => m.length)).toEqual(sizes);
    expect(client.got.every(([m, r]) => m.equals(Buffer.alloc(m.length, m.length % 251)) && r.port === port)).toBe(true);
    expect(rec.datagrams.map(([d]) => d.length)).toEqual(sizes);
    expect(rec.datagrams[0][1]).toEqual(['127.0.0.1', client.address().port]);
    t.close();
    await rec.lost;
    await closeNode(client);
  });

  it('echoes sent while a received batch is handled leave in order and intact, even from a reused buffer', async () => {
    const rec = new DgramRecorder();
    const scratch = Buffer.alloc(2048);
    const buffered: number[] = [];
    rec.onDatagram = (d, a) => {
      // The reply is written into one buffer the protocol reuses at once: sendto must have copied it.
      d.copy(scratch);
      rec.transport.sendto(scratch.subarray(0, d.length), a);
      buffered.push(rec.transport.getWriteBufferSize());
      scratch.fill(0xee);
    };
    const [t] = await createDatagramEndpoint(() => rec, { localAddr: ['127.0.0.1', 0] });
    const [, port] = t.getExtraInfo('sockname') as [string, number];
    const client = await nodeSocket('udp4', '127.0.0.1');
    // Waves small enough for the kernel's receive buffers (UDP may drop a flood), large enough that
    // the engine receives several of each in one batch.
    const count = 320;
    const wave = 16;
    const sent: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const m = Buffer.alloc(4 + ((i * 37) % 200), i % 251);
      m.writeUInt32BE(i);
      sent.push(m);
      client.send(m, port, '127.0.0.1');
      if ((i + 1) % wave === 0) await waitFor(() => client.got.length === i + 1);
    }
    expect(client.got.map(([m]) => m.readUInt32BE(0))).toEqual(sent.map((_, i) => i));
    expect(client.got.every(([m], i) => m.equals(sent[i]))).toBe(true);
    // Replies to one engine batch go out together once it is handled: until then each counts as
    // buffered (bytes + 8), which is still far below the high mark, so writing never paused.
    expect(buffered.some((n) => n > 0)).toBe(true);
    expect(rec.calls).not.toContain('pauseWriting');
    expect(t.getWriteBufferSize()).toBe(0);
    t.close();
    await rec.lost;
    await closeNode(client);
  });

  it('a reply sent just before close() or an exception in datagramReceived still goes out', async () => {
    const loop = getRunningLoop();
    const seen: ExceptionContext[] = [];
    loop.setExceptionHandler((ctx) => seen.push(ctx));
    try {
      const boom = new Error('boom');
      const closer = new DgramRecorder();
      closer.onDatagram = (d, a) => {
        closer.transport.sendto(Buffer.concat([Buffer.from('bye '), d]), a);
        closer.transport.close();
      };
      const thrower = new DgramRecorder();
      thrower.onDatagram = (d, a) => {
        thrower.transport.sendto(Buffer.concat([Buffer.from('oops '), d]), a);
        throw boom;
      };
      const [c] = await createDatagramEndpoint(() => closer, { localAddr: ['127.0.0.1', 0] });
      const [t] = await createDatagramEndpoint(() => thrower, { localAddr: ['127.0.0.1', 0] });
      const client = await nodeSocket('udp4', '127.0.0.1');
      client.send(Buffer.from('x'), (c.getExtraInfo('sockname') as [string, number])[1], '127.0.0.1');
      expect(await closer.lost).toBe(null);
      client.send(Buffer.from('y'), (t.getExtraInfo('sockname') as [string, number])[1], '127.0.0.1');
      expect(await thrower.lost).toBe(boom);
      await waitFor(() => client.got.length === 2);
      expect(client.got.map(([m]) => m.toString())).toEqual(['bye x', 'oops y']);
      expect(seen).toHaveLength(1);
      await closeNode(client);
    } finally {
      loop.setExceptionHandler(null);
    }
  });

  it('works over IPv6 both ways, with [host, port, flowinfo, scopeId] addresses', async () => {
    const peer = await nodeSocket('udp6', '::1', true);
    const port = peer.address().port;
    const rec = new DgramRecorder();
    const [t] = await createDatagramEndpoint(() => rec, { localAddr: ['::1', 0] });
    expect(t.getExtraInfo('socket').family).toBe(constants.AF_INET6);
    const sockname = t.getExtraInfo('sockname') as [string, number, number, number];
    expect(sockname[0]).toBe('::1');
    expect(sockname).toHaveLength(4);
    t.sendto(Buffer.from('v6'), ['::1', port]);
    await waitFor(() => rec.datagrams.length === 1);
    expect(rec.datagrams[0][0].toString()).toBe('v6');
    expect(rec.datagrams[0][1]).toEqual(['::1', port, 0, 0]);
    expect(peer.got[0][1]).toMatchObject({ address: '::1', port: sockname[1], family: 'IPv6' });
    // The address tuple handed out can be handed back.
    t.sendto(Buffer.from('back'), rec.datagrams[0][1]);
    await waitFor(() => rec.datagrams.length === 2);
    t.close();
    await rec.lost;
    await closeNode(peer);
  });

  it('resolves host names in localAddr and remoteAddr, and accepts either form back in sendto', async () => {
    const peer = await nodeSocket('udp4', '127.0.0.1', true);
    const port = peer.address().port;
    const rec = new DgramRecorder();
    const [t] = await createDatagramEndpoint(() => rec, { remoteAddr: ['localhost', port], family: constants.AF_INET });
    expect(t.getExtraInfo('peername')).toEqual(['127.0.0.1', port]);
    t.sendto(Buffer.from('a'), ['localhost', port]);
    t.sendto(Buffer.from('b'), ['127.0.0.1', port]);
    await waitFor(() => rec.datagrams.length === 2);
    t.close();
    await rec.lost;
    await closeNode(peer);
  });

  it('sendto to a host name resolves it off the main thread and keeps datagram order', async () => {
    const peer = await nodeSocket('udp4', '127.0.0.1');
    const port = peer.address().port;
    const rec = new DgramRecorder();
    const [t] = await createDatagramEndpoint(() => rec, { family: constants.AF_INET });
    t.sendto(Buffer.from('1'), ['localhost', port]);
    t.sendto(Buffer.from('2'), ['127.0.0.1', port]);
    t.sendto(Buffer.from('3'), ['localhost', port]);
    await waitFor(() => peer.got.length === 3);
    expect(peer.got.map(([m]) => m.toString())).toEqual(['1', '2', '3']);
    await waitFor(() => t.getWriteBufferSize() === 0);
    t.close();
    await rec.lost;
    await closeNode(peer);
  });

  it('delivers 100,000 datagrams of mixed sizes up to 65,507 bytes intact and in order, both directions', async () => {
    const COUNT = 100_000;
    const WINDOW = 32; // in flight at once, so that no receive buffer overflows
    const size = (i: number) => (i % 500 === 0 ? 65507 : 8 + ((i * 7919) % 1400));
    const datagram = (i: number) => {
      const b = Buffer.alloc(size(i), i & 0xff);
      b.writeUInt32BE(i, 0);
      return b;
    };
    // Waits, woken by the receiver rather than by polling, until `cond` holds.
    let check: (() => void) | null = null;
    const until = (cond: () => boolean) =>
      new Promise<void>((resolve) => {
        check = () => {
          if (cond()) {
            check = null;
            resolve();
          }
        };
        check();
      });

    // Node dgram → protoloop.
    let got = 0;
    let bad = 0;
    const rec = new DgramRecorder();
    rec.datagramReceived = (d: Buffer) => {
      if (d.length !== size(got) || d.readUInt32BE(0) !== got || d[d.length - 1] !== (got & 0xff)) bad++;
      got++;
      check?.();
    };
    const [t] = await createDatagramEndpoint(() => rec, { localAddr: ['127.0.0.1', 0] });
    const port = (t.getExtraInfo('sockname') as [string, number])[1];
    const sender = await nodeSocket('udp4', '127.0.0.1');
    for (let i = 0; i < COUNT; i++) {
      if (i - got >= WINDOW) await until(() => i - got < WINDOW);
      sender.send(datagram(i), port, '127.0.0.1');
    }
    await waitFor(() => got === COUNT, 10_000, `all datagrams (lost ${COUNT - got})`);
    expect(bad).toBe(0);

    // protoloop → Node dgram.
    let back = 0;
    let badBack = 0;
    sender.removeAllListeners('message');
    sender.on('message', (d) => {
      if (d.length !== size(back) || d.readUInt32BE(0) !== back) badBack++;
      back++;
      check?.();
    });
    const to: Address = ['127.0.0.1', sender.address().port];
    for (let i = 0; i < COUNT; i++) {
      if (i - back >= WINDOW) await until(() => i - back < WINDOW);
      t.sendto(datagram(i), to);
    }
    await waitFor(() => back === COUNT, 10_000, `all datagrams back (lost ${COUNT - back})`);
    expect(badBack).toBe(0);
    t.close();
    await rec.lost;
    await closeNode(sender);
  });
});

describe('datagram errors', () => {
  it('errorReceived gets ECONNREFUSED on a connected socket, and the endpoint stays open', async () => {
    const port = await deadPort();
    const rec = new DgramRecorder();
    const [t] = await createDatagramEndpoint(() => rec, { remoteAddr: ['127.0.0.1', port] });
    t.sendto(Buffer.from('anyone?'));
    await waitFor(() => rec.errors.length > 0, 10_000, 'errorReceived');
    const exc = rec.errors[0] as Error & { code: string; errno: number; syscall: string };
    expect(exc.code).toBe('ECONNREFUSED');
    expect(exc.errno).toBeLessThan(0);
    expect(typeof exc.syscall).toBe('string');
    expect(t.isClosing()).toBe(false);
    expect(rec.calls).not.toContain('connectionLost');
    // Still usable: a peer now listening on that port gets the next datagram.
    const peer = dgram.createSocket('udp4') as NodeSocket;
    peer.got = [];
    peer.on('message', (m, r) => peer.got.push([m, r]));
    await new Promise<void>((r) => peer.bind(port, '127.0.0.1', r));
    t.sendto(Buffer.from('there'));
    await waitFor(() => peer.got.length === 1);
    t.close();
    expect(await rec.lost).toBe(null);
    await closeNode(peer);
  });

  it('sendto checks its arguments (TypeError, RangeError) like asyncio', async () => {
    const peer = await nodeSocket('udp4', '127.0.0.1');
    const port = peer.address().port;
    const connected = new DgramRecorder();
    const [c] = await createDatagramEndpoint(() => connected, { remoteAddr: ['127.0.0.1', port] });
    expect(() => c.sendto(Buffer.from('x'), ['127.0.0.1', port + 1 > 65535 ? port - 1 : port + 1])).toThrow(RangeError);
    expect(() => c.sendto(Buffer.from('x'), ['127.0.0.2', port])).toThrow(/Invalid address/);
    expect(() => c.sendto('text' as any)).toThrow(TypeError);
    expect(() => c.sendto('text' as any)).toThrow(/encode/);
    expect(() => c.sendto(Buffer.from('x'), '/a/path')).toThrow(TypeError);
    expect(() => c.sendto(Buffer.from('x'), ['127.0.0.1', 70000])).toThrow(RangeError);
    expect(() => c.sendto(Buffer.from('x'), [1 as any, port])).toThrow(TypeError);

    const unconnected = new DgramRecorder();
    const [u] = await createDatagramEndpoint(() => unconnected, { localAddr: ['127.0.0.1', 0] });
    expect(() => u.sendto(Buffer.from('x'))).toThrow(TypeError);
    expect(() => u.sendto(Buffer.from('x'), null)).toThrow(/addr/);
    expect(() => u.sendto(Buffer.from('x'), ['127.0.0.1'] as any)).toThrow(TypeError);
    expect(() => u.sendto(Buffer.from('x'), ['127.0.0.1', -1])).toThrow(RangeError);
    expect(() => u.sendto(Buffer.from('x'), ['127.0.0.1', 1.5])).toThrow(RangeError);
    // An IPv6 destination on an IPv4 socket is an OSError in asyncio: errorReceived, not a throw.
    // (It comes synchronously from the send on this thread, or from the engine's writer when
    // PROTOLOOP_WRITE_PATH=engine hands it every send.)
    u.sendto(Buffer.from('x'), ['::1', port]);
    await waitFor(() => unconnected.errors.length === 1);
    expect(unconnected.errors.map((e: any) => e.code)).toEqual(['EAFNOSUPPORT']);
    // So is a datagram too large for UDP.
    u.sendto(Buffer.alloc(70_000), ['127.0.0.1', port]);
    await waitFor(() => unconnected.errors.length === 2);
    expect(unconnected.errors.map((e: any) => [e.code, e.syscall])).toEqual([
      ['EAFNOSUPPORT', 'sendto'],
      ['EMSGSIZE', 'sendto'],
    ]);
    // A name that does not resolve is reported once the engine has tried.
    u.sendto(Buffer.from('x'), ['no-such-host.invalid', port]);
    await waitFor(() => unconnected.errors.length === 3, 10_000, 'errorReceived(ENOTFOUND)');
    expect(unconnected.errors[2]).toMatchObject({ code: 'ENOTFOUND', syscall: 'getaddrinfo' });
    expect(u.getWriteBufferSize()).toBe(0);
    expect(connected.errors).toEqual([]);
    expect(peer.got).toEqual([]);
    c.close();
    u.close();
    await Promise.all([connected.lost, unconnected.lost]);
    await closeNode(peer);
  });

  it('sock: refuses a socket another endpoint owns with EEXIST, and leaves it to that endpoint', async () => {
    const rec = new DgramRecorder();
    const [t] = await createDatagramEndpoint(() => rec, { localAddr: ['127.0.0.1', 0] });
    const fd = (t.getExtraInfo('socket') as TransportSocket).fd;
    const file = fdTarget(fd);
    const err = await createDatagramEndpoint(() => new DgramRecorder(), { sock: fd }).catch((e) => e);
    expect(err).toMatchObject({ code: 'EEXIST', errno: -17 });
    expect(fdTarget(fd)).toBe(file); // refused, not closed
    // The first endpoint still receives on it.
    const port = (t.getExtraInfo('sockname') as [string, number])[1];
    const peer = dgram.createSocket('udp4');
    peer.send('still mine', port, '127.0.0.1');
    await waitFor(() => rec.datagrams.length === 1);
    expect(rec.datagrams[0][0].toString()).toBe('still mine');
    peer.close();
    t.close();
    await rec.lost;
  });

  it('createDatagramEndpoint refuses bad options, naming them', async () => {
    const pf = () => new DgramRecorder();
    await expect(createDatagramEndpoint(pf)).rejects.toThrow(TypeError);
    await expect(createDatagramEndpoint(pf, {})).rejects.toThrow(/localAddr/);
    await expect(createDatagramEndpoint(null as any, { localAddr: ['127.0.0.1', 0] })).rejects.toThrow(TypeError);
    await expect(createDatagramEndpoint(pf, { family: 12345 })).rejects.toThrow(RangeError);
    await expect(createDatagramEndpoint(pf, { family: -1 })).rejects.toThrow(RangeError);
    await expect(createDatagramEndpoint(pf, { localAddr: '/tmp/x' })).rejects.toThrow(/AF_UNIX/);
    await expect(createDatagramEndpoint(pf, { localAddr: ['127.0.0.1', 0], family: constants.AF_UNIX })).rejects.toThrow(TypeError);
    await expect(createDatagramEndpoint(pf, { localAddr: ['127.0.0.1', 65536] })).rejects.toThrow(RangeError);
    await expect(createDatagramEndpoint(pf, { localAddr: ['127.0.0.1'] as any })).rejects.toThrow(TypeError);
    await expect(createDatagramEndpoint(pf, { localAddr: ['127.0.0.1', 0], reuseAddress: true })).rejects.toThrow(/reuseAddress/);
    await expect(createDatagramEndpoint(pf, { localAddr: ['127.0.0.1', 0], reusePort: 1 as any })).rejects.toThrow(TypeError);
    await expect(createDatagramEndpoint(pf, { localAddr: ['127.0.0.1', 0], proto: 6 })).rejects.toThrow(RangeError);
    await expect(createDatagramEndpoint(pf, { sock: 0, localAddr: ['127.0.0.1', 0] })).rejects.toThrow(/localAddr/);
    await expect(createDatagramEndpoint(pf, { sock: 0, allowBroadcast: true })).rejects.toThrow(/allowBroadcast/);
    await expect(createDatagramEndpoint(pf, { sock: -1 })).rejects.toThrow(RangeError);
    // Bad file descriptors are resource errors: rejected with a Node-style error.
    await expect(createDatagramEndpoint(pf, { sock: 987654 })).rejects.toMatchObject({ code: 'EBADF' });
    // No family has both a local and a remote address (asyncio: "can not get address information").
    await expect(createDatagramEndpoint(pf, { localAddr: ['127.0.0.1', 0], remoteAddr: ['::1', 9] })).rejects.toMatchObject({
      code: 'EAFNOSUPPORT',
    });
    await expect(createDatagramEndpoint(pf, { localAddr: ['no-such-host.invalid', 0] })).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it('a bind failure rejects with EADDRINUSE naming the address, and creates no protocol', async () => {
    const taken = await nodeSocket('udp4', '127.0.0.1');
    const port = taken.address().port;
    let made = 0;
    const err = await createDatagramEndpoint(() => (made++, new DgramRecorder()), { localAddr: ['127.0.0.1', port] }).catch((e) => e);
    expect(err).toMatchObject({ code: 'EADDRINUSE', syscall: 'bind', address: '127.0.0.1', port });
    expect(err.message).toBe(`bind EADDRINUSE 127.0.0.1:${port}`);
    expect(made).toBe(0);
    await closeNode(taken);
  });

  it('an exception in datagramReceived goes to the exception handler and aborts that endpoint only', async () => {
    const loop = getRunningLoop();
    const seen: ExceptionContext[] = [];
    loop.setExceptionHandler((ctx) => seen.push(ctx));
    try {
      const boom = new Error('boom');
      const bad = new DgramRecorder();
      bad.onDatagram = () => {
        throw boom;
      };
      const good = new DgramRecorder();
      const [b] = await createDatagramEndpoint(() => bad, { localAddr: ['127.0.0.1', 0] });
      const [g] = await createDatagramEndpoint(() => good, { localAddr: ['127.0.0.1', 0] });
      const client = await nodeSocket('udp4', '127.0.0.1');
      client.send(Buffer.from('x'), (b.getExtraInfo('sockname') as [string, number])[1], '127.0.0.1');
      expect(await bad.lost).toBe(boom);
      expect(seen).toHaveLength(1);
      expect(seen[0].exception).toBe(boom);
      expect(seen[0].transport).toBe(b);
      client.send(Buffer.from('y'), (g.getExtraInfo('sockname') as [string, number])[1], '127.0.0.1');
      await waitFor(() => good.datagrams.length === 1);
      g.close();
      await good.lost;
      await closeNode(client);
    } finally {
      loop.setExceptionHandler(null);
    }
  });
});

describe('datagram transport lifecycle and options', () => {
  it('abort calls connectionLost(null) soon after, never inside abort(); sendto after close is dropped', async () => {
    const peer = await nodeSocket('udp4', '127.0.0.1');
    const rec = new DgramRecorder();
    const [t] = await createDatagramEndpoint(() => rec, { remoteAddr: ['127.0.0.1', peer.address().port] });
    t.abort();
    expect(rec.calls).toEqual(['connectionMade']);
    expect(t.isClosing()).toBe(true);
    expect(await rec.lost).toBe(null);
    t.sendto(Buffer.from('late'));
    t.close();
    t.abort();
    expect(rec.calls).toEqual(['connectionMade', 'connectionLost']);
    // Extra info stays readable after the close, as in asyncio.
    expect(t.getExtraInfo('peername')).toEqual(['127.0.0.1', peer.address().port]);
    expect(() => (t.getExtraInfo('socket') as TransportSocket).getsockname()).toThrow(/EBADF/);
    await closeNode(peer);
  });

  it("the socket's errors carry this platform's errno for their code (getpeername unconnected: ENOTCONN; closed: EBADF)", async () => {
    // The numbers differ between systems (ENOTCONN: 107 on Linux, 57 on macOS, libuv's 4053 on Windows).
    const rec = new DgramRecorder();
    const [t] = await createDatagramEndpoint(() => rec, { localAddr: ['127.0.0.1', 0] });
    const sock = t.getExtraInfo('socket') as TransportSocket;
    const thrown = (f: () => unknown) => { try { f(); } catch (e) { return e as { code: string; errno: number }; } throw new Error('no error'); };
    const notconn = thrown(() => sock.getpeername());
    expect(notconn.code).toBe('ENOTCONN');
    expect(getSystemErrorName(notconn.errno)).toBe('ENOTCONN');
    t.abort();
    await rec.lost;
    const badf = thrown(() => sock.getsockname());
    expect(badf.code).toBe('EBADF');
    expect(getSystemErrorName(badf.errno)).toBe('EBADF');
  });

  it('close() receives nothing more and ends with connectionLost(null)', async () => {
    const rec = new DgramRecorder();
    const [t] = await createDatagramEndpoint(() => rec, { localAddr: ['127.0.0.1', 0] });
    const port = (t.getExtraInfo('sockname') as [string, number])[1];
    const client = await nodeSocket('udp4', '127.0.0.1');
    t.close();
    client.send(Buffer.from('too late'), port, '127.0.0.1');
    expect(await rec.lost).toBe(null);
    expect(rec.calls).toEqual(['connectionMade', 'connectionLost']);
    await closeNode(client);
  });

  it('pauseReading holds datagrams back until resumeReading, then delivers them in order', async () => {
    const paused = new DgramRecorder();
    const [a] = await createDatagramEndpoint(() => paused, { localAddr: ['127.0.0.1', 0] });
    const marker = new DgramRecorder();
    const [m] = await createDatagramEndpoint(() => marker, { localAddr: ['127.0.0.1', 0] });
    expect(a.isReading()).toBe(true);
    a.pauseReading();
    a.pauseReading(); // idempotent
    expect(a.isReading()).toBe(false);
    const client = await nodeSocket('udp4', '127.0.0.1');
    const send = (d: string, t: DatagramTransport) =>
      new Promise<void>((r) => client.send(Buffer.from(d), (t.getExtraInfo('sockname') as [string, number])[1], '127.0.0.1', () => r()));
    for (const d of ['1', '2', '3']) await send(d, a);
    // Sent after those: once it is in, the engine has had every chance to pass them on.
    await send('marker', m);
    await waitFor(() => marker.datagrams.length === 1);
    await new Promise((r) => setImmediate(r));
    expect(paused.datagrams).toEqual([]);
    a.resumeReading();
    expect(paused.datagrams).toEqual([]); // never inside resumeReading()
    await waitFor(() => paused.datagrams.length === 3);
    expect(paused.datagrams.map(([d]) => d.toString())).toEqual(['1', '2', '3']);
    a.close();
    m.close();
    expect(a.isReading()).toBe(false);
    await Promise.all([paused.lost, marker.lost]);
    await closeNode(client);
  });

  it('getExtraInfo("socket") is a SOCK_DGRAM TransportSocket; allowBroadcast sets SO_BROADCAST', async () => {
    const plain = new DgramRecorder();
    const [p] = await createDatagramEndpoint(() => plain, { localAddr: ['127.0.0.1', 0] });
    const ps = p.getExtraInfo('socket') as TransportSocket;
    expect(ps).toBeInstanceOf(TransportSocket);
    expect([ps.family, ps.type, ps.proto]).toEqual([constants.AF_INET, constants.SOCK_DGRAM, constants.IPPROTO_UDP]);
    expect(ps.getsockopt(constants.SOL_SOCKET, constants.SO_BROADCAST)).toBe(0);
    expect(ps.getsockname()).toEqual(p.getExtraInfo('sockname'));

    // With allowBroadcast and a remote address, the socket is not connected (asyncio's rule), but
    // sendto without an address goes to the remote one.
    const peer = await nodeSocket('udp4', '127.0.0.1');
    const rec = new DgramRecorder();
    const [b] = await createDatagramEndpoint(() => rec, { remoteAddr: ['127.0.0.1', peer.address().port], allowBroadcast: true });
    const bs = b.getExtraInfo('socket') as TransportSocket;
    expect(bs.getsockopt(constants.SOL_SOCKET, constants.SO_BROADCAST)).toBe(1);
    expect(b.getExtraInfo('peername')).toBe(null);
    b.sendto(Buffer.from('to the remote'));
    await waitFor(() => peer.got.length === 1);
    expect(peer.got[0][0].toString()).toBe('to the remote');
    p.close();
    b.close();
    await Promise.all([plain.lost, rec.lost]);
    await closeNode(peer);
  });

  it('reusePort lets two endpoints bind one port', async () => {
    const a = new DgramRecorder();
    const [ta] = await createDatagramEndpoint(() => a, { localAddr: ['127.0.0.1', 0], reusePort: true });
    const port = (ta.getExtraInfo('sockname') as [string, number])[1];
    const b = new DgramRecorder();
    const [tb] = await createDatagramEndpoint(() => b, { localAddr: ['127.0.0.1', port], reusePort: true });
    expect((tb.getExtraInfo('sockname') as [string, number])[1]).toBe(port);
    expect((tb.getExtraInfo('socket') as TransportSocket).getsockopt(constants.SOL_SOCKET, constants.SO_REUSEPORT)).toBe(1);
    // Without it, the port is taken.
    await expect(createDatagramEndpoint(() => new DgramRecorder(), { localAddr: ['127.0.0.1', port] })).rejects.toMatchObject({
      code: 'EADDRINUSE',
    });
    ta.close();
    tb.close();
    await Promise.all([a.lost, b.lost]);
  });

  it('an unbound endpoint of a given family can send', async () => {
    const peer = await nodeSocket('udp6', '::1', true);
    const rec = new DgramRecorder();
    const [t] = await createDatagramEndpoint(() => rec, { family: constants.AF_INET6 });
    t.sendto(Buffer.from('hi'), ['::1', peer.address().port]);
    await waitFor(() => rec.datagrams.length === 1);
    t.close();
    await rec.lost;
    await closeNode(peer);
  });

  it('takes over a datagram socket handed in with sock (made by Python, connected to it)', async () => {
    const script = `
import { createDatagramEndpoint } from ${JSON.stringify(new URL('../dist/esm/index.mjs', import.meta.url).pathname)};
const fd = Number(process.argv[1]);
const [t] = await createDatagramEndpoint(() => ({
  connectionMade: (t) => console.log(JSON.stringify([t.getExtraInfo('peername'), t.getExtraInfo('socket').fd])),
  connectionLost: () => console.log('lost'),
}), { sock: fd });
t.sendto(Buffer.from('adopted'));
t.close();
`;
    const py = `
import socket, subprocess, sys
rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rx.bind(("127.0.0.1", 0))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(rx.getsockname())
out = subprocess.run([sys.argv[1], "--input-type=module", "-e", sys.argv[2], str(s.fileno())], pass_fds=(s.fileno(),), capture_output=True, text=True)
s.close()
sys.stdout.write(out.stdout)
sys.stderr.write(out.stderr)
print(rx.getsockname()[1], rx.recv(100).decode())
`;
    const child = spawn('python3', ['-c', py, process.execPath, script]);
    const out = lines(child);
    const code = await new Promise((r) => child.on('exit', r));
    expect(code).toBe(0);
    expect(out).toHaveLength(3);
    const [port, word] = out[2].split(' ');
    const [peername] = JSON.parse(out[0]);
    expect(peername).toEqual(['127.0.0.1', Number(port)]);
    expect(out[1]).toBe('lost');
    expect(word).toBe('adopted');
  });

  it('loop.createDatagramEndpoint is the same function', () => {
    expect(getRunningLoop().createDatagramEndpoint).toBe(createDatagramEndpoint);
  });

  it('opening and closing many endpoints leaks no descriptor', async () => {
    const before = fdSnapshot();
    const taken = await nodeSocket('udp4', '127.0.0.1');
    const takenPort = taken.address().port;
    for (let round = 0; round < 10; round++) {
      const recs: DgramRecorder[] = [];
      const opened = await Promise.all(
        Array.from({ length: 20 }, (_, i) => {
          const rec = new DgramRecorder();
          recs.push(rec);
          const opts = i % 2 === 0 ? { localAddr: ['127.0.0.1', 0] as Address } : { remoteAddr: ['::1', 9] as Address };
          return createDatagramEndpoint(() => rec, opts);
        }),
      );
      // Failures close their socket too: a bind that fails, a protocol factory that throws.
      await expect(createDatagramEndpoint(() => new DgramRecorder(), { localAddr: ['127.0.0.1', takenPort] })).rejects.toThrow();
      const oops = new Error('no protocol today');
      const factory = () => {
        throw oops;
      };
      await expect(createDatagramEndpoint(factory, { localAddr: ['127.0.0.1', 0] })).rejects.toBe(oops);
      opened.forEach(([t], i) => (i % 3 === 0 ? t.abort() : t.close()));
      await Promise.all(recs.map((r) => r.lost));
    }
    await closeNode(taken);
    await expectNoNewFds(before, 5000);
  });
});

describe('Unix datagram sockets', () => {
  it('two endpoints talk over path addresses, and over abstract names', async () => {
    const abstract = [`\0protoloop-test-${process.pid}-s`, `\0protoloop-test-${process.pid}-c`];
    if (!abstractUnixNames) {
      // macOS (and the portable build standing in for it) has none: an Error naming the platform.
      const err = await createDatagramEndpoint(() => new DgramRecorder(), { localAddr: abstract[0], family: constants.AF_UNIX }).catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(/abstract Unix socket name .* only on Linux, not on \w+/);
    }
    for (const [serverPath, clientPath] of [[join(tmp, 'server.sock'), join(tmp, 'client.sock')], ...(abstractUnixNames ? [abstract] : [])]) {
      const server = new DgramRecorder();
      server.onDatagram = (d, a) => server.transport.sendto(Buffer.concat([Buffer.from('echo:'), d]), a);
      const [s] = await createDatagramEndpoint(() => server, { localAddr: serverPath, family: constants.AF_UNIX });
      expect(s.getExtraInfo('sockname')).toBe(serverPath);
      const client = new DgramRecorder();
      const [c] = await createDatagramEndpoint(() => client, { localAddr: clientPath, remoteAddr: serverPath, family: constants.AF_UNIX });
      expect(c.getExtraInfo('peername')).toBe(serverPath);
      c.sendto(Buffer.from('hello'));
      await waitFor(() => client.datagrams.length === 1);
      expect(server.datagrams[0]).toEqual([Buffer.from('hello'), clientPath]);
      expect(client.datagrams[0]).toEqual([Buffer.from('echo:hello'), serverPath]);
      expect(() => c.sendto(Buffer.from('x'), ['127.0.0.1', 1])).toThrow(TypeError);
      s.close();
      c.close();
      await Promise.all([server.lost, client.lost]);
    }
  });

  it('a path with a NUL byte after the first is refused with a TypeError naming it, never truncated', async () => {
    const path = join(tmp, 'nul.sock');
    const pf = () => new DgramRecorder();
    const u = { family: constants.AF_UNIX };
    await expect(createDatagramEndpoint(pf, { ...u, localAddr: `${path}\0tail` })).rejects.toThrow(/"options.localAddr".*NUL/);
    await expect(createDatagramEndpoint(pf, { ...u, remoteAddr: `${path}\0tail` })).rejects.toThrow(/"options.remoteAddr".*NUL/);
    await expect(createDatagramEndpoint(pf, { ...u, localAddr: `\0abstract\0tail` })).rejects.toThrow(TypeError);
    expect(existsSync(path)).toBe(false); // once bound at the prefix, silently
    const rec = new DgramRecorder();
    const [t] = await createDatagramEndpoint(() => rec, { ...u, localAddr: path });
    expect(() => t.sendto(Buffer.from('x'), `${path}\0tail`)).toThrow(/"addr".*NUL/);
    expect(rec.datagrams).toEqual([]); // nothing went to the prefix, which is this very socket
    t.close();
    await rec.lost;
  });

  it('a datagram from an unbound Unix socket has no sender address (null)', async () => {
    const path = join(tmp, 'anon.sock');
    const server = new DgramRecorder();
    const [s] = await createDatagramEndpoint(() => server, { localAddr: path, family: constants.AF_UNIX });
    const client = new DgramRecorder();
    const [c] = await createDatagramEndpoint(() => client, { remoteAddr: path, family: constants.AF_UNIX });
    c.sendto(Buffer.from('who am I'));
    await waitFor(() => server.datagrams.length === 1);
    expect(server.datagrams[0]).toEqual([Buffer.from('who am I'), null]);
    expect(() => s.sendto(Buffer.from('reply'), server.datagrams[0][1])).toThrow(TypeError);
    s.close();
    c.close();
    await Promise.all([server.lost, client.lost]);
  });

  it('a stale socket file at localAddr is replaced, as asyncio does', async () => {
    const path = join(tmp, 'stale.sock');
    const first = new DgramRecorder();
    const [a] = await createDatagramEndpoint(() => first, { localAddr: path, family: constants.AF_UNIX });
    a.close();
    await first.lost;
    const second = new DgramRecorder();
    const [b] = await createDatagramEndpoint(() => second, { localAddr: path, family: constants.AF_UNIX });
    expect(b.getExtraInfo('sockname')).toBe(path);
    b.close();
    await second.lost;
  });
});

/** A Python receiver on a Unix datagram socket that reads nothing until told to, then counts. */
function pythonReceiver(path: string): ChildProcessWithoutNullStreams {
  const script = `
import socket, sys, hashlib
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
n, h = 0, hashlib.sha256()
while True:
    d = s.recv(65536)
    if d == b"END":
        break
    n += 1
    h.update(d)
print(n, h.hexdigest(), flush=True)
`;
  return spawn('python3', ['-c', script, path]);
}

function lines(child: ChildProcessWithoutNullStreams): string[] {
  const out: string[] = [];
  let rest = '';
  child.stdout.on('data', (d) => {
    const parts = (rest + d).split('\n');
    rest = parts.pop() as string;
    out.push(...parts);
  });
  return out;
}

describe('datagram write flow control', () => {
  it('queues what the kernel refuses, pauses over the high mark, resumes at the low mark, loses nothing', async () => {
    const path = join(tmp, 'slow-reader.sock');
    const py = pythonReceiver(path);
    const out = lines(py);
    await waitFor(() => out.includes('ready'), 10_000, 'python receiver');
    const rec = new DgramRecorder();
    const [t] = await createDatagramEndpoint(() => rec, { remoteAddr: path, family: constants.AF_UNIX });
    t.setWriteBufferLimits(4000, 1000);
    expect(t.getWriteBufferLimits()).toEqual([1000, 4000]);
    const COUNT = 200;
    const hash = createHash('sha256');
    let pausedAt = -1;
    for (let i = 0; i < COUNT; i++) {
      const d = Buffer.alloc(1000, i & 0xff);
      d.writeUInt32BE(i, 0);
      hash.update(d);
      t.sendto(d);
      // pauseWriting is called inside the sendto that takes the buffer over the high mark.
      if (pausedAt < 0 && rec.calls.includes('pauseWriting')) pausedAt = i;
    }
    // The receiver reads nothing yet, so its queue is full and the rest waits in the transport.
    expect(pausedAt).toBeGreaterThan(0);
    expect(t.getWriteBufferSize()).toBeGreaterThan(4000);
    expect(t.getWriteBufferSize() % 1008).toBe(0); // each queued datagram counts its bytes + 8
    // An empty datagram counts too.
    const sizeBefore = t.getWriteBufferSize();
    t.sendto(Buffer.alloc(0));
    expect(t.getWriteBufferSize()).toBe(sizeBefore + 8);
    hash.update(Buffer.alloc(0));
    expect(rec.calls.filter((c) => c === 'pauseWriting')).toHaveLength(1);
    py.stdin.write('go\n');
    await waitFor(() => t.getWriteBufferSize() === 0, 10_000, 'the buffer to drain');
    expect(rec.calls.filter((c) => c === 'resumeWriting')).toHaveLength(1);
    expect(rec.calls.indexOf('resumeWriting')).toBeGreaterThan(rec.calls.indexOf('pauseWriting'));
    t.sendto(Buffer.from('END'));
    await waitFor(() => out.length > 1, 10_000, 'the python count');
    expect(out[1]).toBe(`${COUNT + 1} ${hash.digest('hex')}`);
    t.close();
    expect(await rec.lost).toBe(null);
    py.kill();
  });

  it('close() flushes queued datagrams before connectionLost', async () => {
    const path = join(tmp, 'slow-reader-2.sock');
    const py = pythonReceiver(path);
    const out = lines(py);
    await waitFor(() => out.includes('ready'), 10_000, 'python receiver');
    const rec = new DgramRecorder();
    const [t] = await createDatagramEndpoint(() => rec, { remoteAddr: path, family: constants.AF_UNIX });
    for (let i = 0; i < 50; i++) t.sendto(Buffer.alloc(500, i));
    t.sendto(Buffer.from('END'));
    expect(t.getWriteBufferSize()).toBeGreaterThan(0);
    t.close();
    expect(rec.calls).not.toContain('connectionLost');
    py.stdin.write('go\n');
    expect(await rec.lost).toBe(null);
    await waitFor(() => out.length > 1, 10_000, 'the python count');
    expect(out[1].split(' ')[0]).toBe('50');
    py.kill();
  });
});

describe('the spec examples', () => {
  it('udp-echo-client and udp-echo-server talk to each other', async () => {
    const port = await deadPort();
    const env = { ...process.env, PORT: String(port) };
    const example = (name: string) => new URL(`../dist/examples/${name}.js`, import.meta.url).pathname;
    const server = spawn(process.execPath, [example('udp-echo-server')], { env });
    const serverOut = lines(server);
    // The server is up once its port is taken.
    const end = Date.now() + 10_000;
    while (!(await udpPortTaken(port))) {
      if (Date.now() > end) throw new Error(`the echo server did not bind 127.0.0.1:${port}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const client = spawn(process.execPath, [example('udp-echo-client')], { env });
    const clientOut = lines(client);
    const code = await new Promise((r) => client.on('exit', r));
    expect(code).toBe(0);
    expect(clientOut).toEqual(['Send: "Hello World!"', 'Received: "Hello World!"', 'Close the socket', 'Connection closed']);
    await waitFor(() => serverOut.length >= 3);
    expect(serverOut[0]).toBe('Starting UDP server');
    expect(serverOut[1]).toMatch(/^Received "Hello World!" from \["127\.0\.0\.1",\d+\]$/);
    expect(serverOut[2]).toMatch(/^Send "Hello World!" to \["127\.0\.0\.1",\d+\]$/);
    server.kill('SIGINT');
    await new Promise((r) => server.on('exit', r));
  });
});
