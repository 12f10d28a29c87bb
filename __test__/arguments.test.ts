// Bad input: TypeError for wrong types, RangeError for out-of-range values, each naming the argument;
// never a crash, a leaked descriptor or a half-made protocol.
import { closeSync, fstatSync, openSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { constants, createConnection, createServer, getRunningLoop, Protocol, type Transport } from 'protoloop';
import { Recorder, addon, fdSnapshot, newFds, nodeServer, portOf } from './helpers';

const pf = () => new Protocol();

async function connected(): Promise<{ t: Transport; rec: Recorder; done(): Promise<void> }> {
  const srv = await nodeServer();
  const rec = new Recorder();
  const [t] = await createConnection(() => rec, '127.0.0.1', srv.port);
  return {
    t,
    rec,
    done: async () => {
      t.close();
      await rec.lost;
      await srv.close();
    },
  };
}

describe('transport methods', () => {
  it('write and writelines refuse strings (encode first) and non-bytes', async () => {
    const { t, rec, done } = await connected();
    expect(() => t.write('text' as any)).toThrow(TypeError);
    expect(() => t.write('text' as any)).toThrow(/encode/);
    expect(() => t.write('text' as any)).toThrow(/"data"/);
    expect(() => t.write(42 as any)).toThrow(/"data"/);
    expect(() => t.write(null as any)).toThrow(TypeError);
    expect(() => t.write({ length: 3 } as any)).toThrow(TypeError);
    expect(() => t.writelines(['a'] as any)).toThrow(/encode/);
    expect(() => t.writelines(null as any)).toThrow(/listOfData/);
    expect(() => t.writelines(5 as any)).toThrow(TypeError);
    // A bad item anywhere means nothing of the call is sent.
    expect(() => t.writelines([Buffer.from('ok'), 'bad'] as any)).toThrow(TypeError);
    expect(t.getExtraInfo('stats').bytesWritten).toBe(0);
    expect(rec.calls).toEqual(['connectionMade']);
    await done();
  });

  it('setWriteBufferLimits: negative marks and low > high are RangeErrors naming the mark', async () => {
    const { t, done } = await connected();
    expect(() => t.setWriteBufferLimits(-1)).toThrow(RangeError);
    expect(() => t.setWriteBufferLimits(-1)).toThrow(/"high"/);
    expect(() => t.setWriteBufferLimits(100, -1)).toThrow(/"low"/);
    expect(() => t.setWriteBufferLimits(10, 20)).toThrow(RangeError);
    expect(() => t.setWriteBufferLimits(10, 20)).toThrow(/"low"/);
    expect(() => t.setWriteBufferLimits(undefined, 100_000)).not.toThrow(); // high = 4 * low
    expect(() => t.setWriteBufferLimits(1.5)).toThrow(RangeError);
    expect(() => t.setWriteBufferLimits('1' as any)).toThrow(TypeError);
    expect(() => t.setWriteBufferLimits(Number.NaN)).toThrow(/"high"/);
    // NaN is a number out of range, not a wrong type ("must be a number. Received number" before).
    expect(() => t.setWriteBufferLimits(Number.NaN)).toThrow(RangeError);
    expect(() => t.setWriteBufferLimits(Number.NaN)).toThrow(/Received NaN/);
    // A failed call changes nothing.
    t.setWriteBufferLimits(1000, 10);
    expect(() => t.setWriteBufferLimits(10, 20)).toThrow(RangeError);
    expect(t.getWriteBufferLimits()).toEqual([10, 1000]);
    await done();
  });

  it('setProtocol and TransportSocket calls check their arguments', async () => {
    const { t, done } = await connected();
    expect(() => t.setProtocol(null)).toThrow(TypeError);
    expect(() => t.setProtocol(5 as any)).toThrow(/"protocol"/);
    const sock = t.getExtraInfo('socket');
    expect(() => sock.getsockopt('x', 1)).toThrow(/"level"/);
    expect(() => sock.getsockopt(constants.SOL_SOCKET, -1)).toThrow(RangeError);
    expect(() => sock.setsockopt(constants.SOL_SOCKET, constants.SO_KEEPALIVE, 'on')).toThrow(/"value"/);
    await done();
  });
});

describe('createConnection', () => {
  it('a port of 70000 (or -1, 1.5) is a RangeError naming "port"', async () => {
    for (const port of [70000, -1, 1.5, 65536]) {
      const err = await createConnection(pf, '127.0.0.1', port).catch((e) => e);
      expect(err).toBeInstanceOf(RangeError);
      expect(err.message).toMatch(/"port"/);
    }
    await expect(createConnection(pf, '127.0.0.1', '80' as any)).rejects.toThrow(TypeError);
    await expect(createConnection(pf, '127.0.0.1')).rejects.toThrow(TypeError);
  });

  it('a non-function factory is a TypeError naming "protocolFactory"', async () => {
    for (const f of [null, undefined, {}, 'Protocol', new Protocol()]) {
      const err = await createConnection(f as any, '127.0.0.1', 1).catch((e) => e);
      expect(err).toBeInstanceOf(TypeError);
      expect(err.message).toMatch(/"protocolFactory"/);
    }
  });

  it('bad options are TypeErrors or RangeErrors naming the option', async () => {
    const cases: Array<[unknown[], ErrorConstructor, RegExp]> = [
      [[42, 80], TypeError, /"host"/],
      [[['127.0.0.1'], 80], TypeError, /"host"/],
      [['127.0.0.1', 80, 'opts'], TypeError, /"options"/],
      [['127.0.0.1', 80, { family: 99 }], RangeError, /"options.family"/],
      [['127.0.0.1', 80, { family: 'inet' }], TypeError, /"options.family"/],
      [['127.0.0.1', 80, { localAddr: '127.0.0.1' }], TypeError, /"options.localAddr"/],
      [['127.0.0.1', 80, { localAddr: ['127.0.0.1', 70000] }], RangeError, /"options.localAddr\[1\]"/],
      [['127.0.0.1', 80, { localAddr: [1, 0] }], TypeError, /"options.localAddr\[0\]"/],
      [['127.0.0.1', 80, { happyEyeballsDelayMs: -1 }], RangeError, /"options.happyEyeballsDelayMs"/],
      [['127.0.0.1', 80, { happyEyeballsDelayMs: '250' }], TypeError, /"options.happyEyeballsDelayMs"/],
      [['127.0.0.1', 80, { interleave: 'x' }], TypeError, /"options.interleave"/],
      [['127.0.0.1', 80, { interleave: -1 }], RangeError, /"options.interleave"/],
      [[null, null, { sock: -1 }], RangeError, /"options.sock"/],
      [[null, null, { sock: 'x' }], TypeError, /"options.sock"/],
      [['127.0.0.1', 80, { sock: 3 }], TypeError, /sock/],
    ];
    for (const [args, type, re] of cases) {
      const err = await (createConnection as any)(pf, ...args).catch((e: unknown) => e);
      expect(err, JSON.stringify(args)).toBeInstanceOf(type);
      expect(err.message, JSON.stringify(args)).toMatch(re);
    }
  });

  it('sock that is not an open socket rejects with a system error and takes nothing', async () => {
    const before = fdSnapshot();
    await expect(createConnection(pf, null, null, { sock: 1_000_000 })).rejects.toMatchObject({ code: 'EBADF' });
    // A descriptor that is not a socket is refused and stays open: the caller still owns it.
    const fd = openSync('/dev/null', 'r');
    await expect(createConnection(pf, null, null, { sock: fd })).rejects.toMatchObject({ code: 'ENOTSOCK' });
    expect(fstatSync(fd).isCharacterDevice()).toBe(true);
    closeSync(fd);
    expect(newFds(before)).toEqual([]);
  });
});

describe('createServer', () => {
  it('factory, port, host and option checks', async () => {
    await expect(createServer(null as any, '127.0.0.1', 0)).rejects.toThrow(/"protocolFactory"/);
    await expect(createServer(pf, '127.0.0.1', 70000)).rejects.toThrow(RangeError);
    await expect(createServer(pf, '127.0.0.1', 70000)).rejects.toThrow(/"port"/);
    await expect(createServer(pf, 42 as any, 0)).rejects.toThrow(/"host"/);
    await expect(createServer(pf, ['127.0.0.1', 1] as any, 0)).rejects.toThrow(/"host"/);
    await expect(createServer(pf, '127.0.0.1', 0, { backlog: -1 })).rejects.toThrow(/"options.backlog"/);
    await expect(createServer(pf, '127.0.0.1', 0, { backlog: 'x' as any })).rejects.toThrow(TypeError);
    await expect(createServer(pf, '127.0.0.1', 0, { reuseAddress: 'yes' as any })).rejects.toThrow(/"options.reuseAddress"/);
    await expect(createServer(pf, '127.0.0.1', 0, { reusePort: 1 as any })).rejects.toThrow(/"options.reusePort"/);
    await expect(createServer(pf, '127.0.0.1', 0, { keepAlive: 'on' as any })).rejects.toThrow(/"options.keepAlive"/);
    await expect(createServer(pf, '127.0.0.1', 0, { startServing: 0 as any })).rejects.toThrow(/"options.startServing"/);
    await expect(createServer(pf, '127.0.0.1', 0, { family: 12345 })).rejects.toThrow(RangeError);
    await expect(createServer(pf, '127.0.0.1', 0, 'x' as any)).rejects.toThrow(/"options"/);
    await expect(createServer(pf, 'nonexistent.invalid', 0)).rejects.toMatchObject({ code: 'ENOTFOUND', errno: -3008, syscall: 'getaddrinfo' });
    await expect(createServer(pf, null, null, { sock: 1_000_000 })).rejects.toThrow(/"options.sock"/);
  });

  it('a throwing call leaves no server behind', async () => {
    const before = fdSnapshot();
    await expect(createServer(pf, '127.0.0.1', 0, { backlog: -5 })).rejects.toThrow(RangeError);
    expect(newFds(before)).toEqual([]);
    const s = await createServer(pf, '127.0.0.1', 0);
    expect(portOf(s)).toBeGreaterThan(0);
    s.close();
  });
});

describe('loop', () => {
  it('callSoon, setExceptionHandler and Future callbacks check for functions', () => {
    const loop = getRunningLoop();
    expect(() => loop.callSoon(5 as any)).toThrow(/"fn"/);
    expect(() => loop.setExceptionHandler('x' as any)).toThrow(/"handler"/);
    const f = loop.createFuture();
    expect(() => f.addDoneCallback(null as any)).toThrow(TypeError);
    expect(() => f.setException(undefined)).toThrow(TypeError);
  });
});

describe('the addon', () => {
  // The stream write is a bare Node-API function (no napi-rs argument checks): it must check its own.
  const write = (addon as unknown as { writeFunction(): (...a: unknown[]) => number }).writeFunction();

  it('its stream write rejects what is not (id, Uint8Array) with a TypeError naming the argument', () => {
    expect(() => write('x', Buffer.from('a'))).toThrow(/"id" argument/);
    expect(() => write()).toThrow(TypeError);
    expect(() => write(1, 'text')).toThrow(/"data" argument must be a Uint8Array/);
    expect(() => write(1, new Uint16Array(2))).toThrow(TypeError);
    expect(write(0x7fffffff, Buffer.from('to nobody'))).toBe(0);
  });
});
