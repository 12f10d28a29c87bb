// What user code hands back into the library: protocol callbacks and done callbacks that throw anything
// (values `String()` cannot convert included), factories that return anything, names that are
// Object.prototype members. The process survives, the transport fails with an Error somebody sees,
// nothing leaks, and the process still exits by itself. (Reproducers 03, 04, 06, 07, 14 of issue 22.)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  Future,
  Protocol,
  SubprocessProtocol,
  connectReadPipe,
  createConnection,
  createServer,
  getRunningLoop,
  socketpair,
  subprocessExec,
  type ExceptionContext,
  type Transport,
} from 'protoloop';
import { Recorder, openFds, portOf, runScript, waitFor } from './helpers';

/** Thrown values that refuse to become strings, as a script's source (each makes a fresh one). */
const UNPRINTABLE = `{
  nullPrototype: () => Object.create(null),
  throwingToString: () => ({ toString() { throw new Error('no'); }, valueOf() { throw new Error('no'); } }),
  revokedProxy: () => { const r = Proxy.revocable({}, {}); r.revoke(); return r.proxy; },
}`;

describe('a protocol callback that throws a value String() cannot convert', () => {
  it('fails its transport with an Error; the process survives, leaks nothing and exits by itself', async () => {
    // Every callback the bug reached: connectionMade (06), dataReceived, eofReceived run from the
    // held-events path after resumeReading (03), connectionLost (04). The default exception handler
    // reports each. Run in a fresh Node: a crash or a hang is the failure.
    const r = await runScript(`
      import net from 'node:net';
      import fs from 'node:fs';
      const sockets = () => fs.readdirSync(process.platform === 'linux' ? '/proc/self/fd' : '/dev/fd').filter((f) => { try { return fs.fstatSync(Number(f)).isSocket(); } catch { return false; } }).length;
      const values = ${UNPRINTABLE};
      const srv = net.createServer((s) => { s.on('error', () => {}); s.end('hello'); }).listen(0, '127.0.0.1');
      await new Promise((r) => srv.on('listening', r));
      const before = sockets();
      const out = {};
      for (const [name, make] of Object.entries(values)) {
        for (const where of ['connectionMade', 'dataReceived', 'heldEof', 'connectionLost']) {
          let lost;
          const done = new Promise((r) => (lost = r));
          class P extends pl.Protocol {
            connectionMade(t) { this.t = t; if (where === 'connectionMade') throw make(); }
            dataReceived() {
              if (where === 'dataReceived') throw make();
              if (where === 'heldEof') { this.t.pauseReading(); setTimeout(() => this.t.resumeReading(), 50); }
            }
            eofReceived() { if (where === 'heldEof') throw make(); }
            connectionLost(e) { lost(e); if (where === 'connectionLost') throw make(); }
          }
          await pl.createConnection(() => new P(), '127.0.0.1', srv.address().port);
          const e = await done;
          out[where + '/' + name] = e === null ? null : e instanceof Error ? 'Error' : typeof e;
        }
      }
      await new Promise((r) => setTimeout(r, 100));
      out.socketsLeft = sockets() - before;
      srv.close();
      console.log(JSON.stringify(out));
    `);
    expect(r.signal).toBe(null);
    expect(r.status, r.err).toBe(0);
    const out = JSON.parse(r.out);
    for (const name of ['nullPrototype', 'throwingToString', 'revokedProxy']) {
      expect(out[`connectionMade/${name}`]).toBe('Error');
      expect(out[`dataReceived/${name}`]).toBe('Error');
      expect(out[`heldEof/${name}`]).toBe('Error');
      expect(out[`connectionLost/${name}`]).toBe(null);
    }
    expect(out.socketsLeft).toBe(0);
    for (const where of ['connectionMade', 'dataReceived', 'eofReceived', 'connectionLost']) {
      expect(r.err).toContain(`Exception in protocol callback ${where}()`);
    }
  });

  it('gives connectionLost an Error whose cause is the thrown value, and the handler the value itself', async () => {
    const thrown = Object.create(null);
    const contexts: ExceptionContext[] = [];
    getRunningLoop().setExceptionHandler((c) => contexts.push(c));
    const server = net.createServer((s) => {
      s.on('error', () => {});
      s.write('x');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      class P extends Recorder {
        override dataReceived(): void {
          throw thrown;
        }
      }
      const [t, p] = await createConnection(() => new P(), '127.0.0.1', (server.address() as net.AddressInfo).port);
      const exc = await p.lost;
      expect(exc).toBeInstanceOf(Error);
      expect((exc as Error).cause).toBe(thrown);
      expect(contexts).toHaveLength(1);
      expect(contexts[0]!.message).toBe('Exception in protocol callback dataReceived()');
      expect(contexts[0]!.exception).toBe(thrown);
      expect(contexts[0]!.transport).toBe(t);
    } finally {
      getRunningLoop().setExceptionHandler(null);
      server.close();
    }
  });
});

describe('a done callback that throws', () => {
  it('goes to the exception handler, as asyncio runs done callbacks with call_soon', async () => {
    const contexts: ExceptionContext[] = [];
    getRunningLoop().setExceptionHandler((c) => contexts.push(c));
    try {
      const f = new Future<number>();
      const ran: number[] = [];
      f.addDoneCallback(function failing() {
        throw Object.create(null);
      });
      f.addDoneCallback((g) => ran.push(g.result()));
      f.setResult(7);
      // Added after completion: scheduled at once, and its exception goes the same way.
      f.addDoneCallback(() => {
        throw new Error('late');
      });
      await waitFor(() => contexts.length === 2 && ran.length === 1);
      expect(ran).toEqual([7]);
      expect(contexts[0]!.message).toBe('Exception in callback failing');
      expect(contexts[0]!.future).toBe(f);
      expect((contexts[1]!.exception as Error).message).toBe('late');
    } finally {
      getRunningLoop().setExceptionHandler(null);
    }
  });

  it('reported by the default handler does not crash the process', async () => {
    const r = await runScript(`
      const values = ${UNPRINTABLE};
      for (const make of Object.values(values)) {
        const f = pl.getRunningLoop().createFuture();
        f.addDoneCallback(() => { throw make(); });
        f.setResult(1);
        pl.getRunningLoop().callSoon(() => { throw make(); });
      }
      setTimeout(() => console.log('alive'), 50);
    `);
    expect(r.status, r.err).toBe(0);
    expect(r.out.trim()).toBe('alive');
    expect(r.err.match(/Exception in callback/g)).toHaveLength(6);
  });
});

describe('values named like Object.prototype members', () => {
  it('are unknown extra-info keys: getExtraInfo returns the default', async () => {
    const server = await createServer(() => new Protocol(), '127.0.0.1', 0);
    try {
      const [t] = await createConnection(() => new Protocol(), '127.0.0.1', portOf(server));
      for (const k of ['hasOwnProperty', 'valueOf', 'constructor', '__proto__', 'toString']) {
        expect(t.getExtraInfo(k, 'DEFAULT'), k).toBe('DEFAULT');
        expect(t.getExtraInfo(k), k).toBe(null);
      }
      expect(t.getExtraInfo('peername')).toEqual(['127.0.0.1', portOf(server)]);
      t.close();
    } finally {
      server.close();
    }
  });

  it('are unknown signal names: sendSignal throws a TypeError with ERR_UNKNOWN_SIGNAL, as process.kill', async () => {
    const [p] = await subprocessExec(() => new SubprocessProtocol(), '/bin/sleep', ['5']);
    try {
      for (const s of ['toString', '__proto__', 'constructor', 'SIGNOPE']) {
        let err: unknown;
        try {
          p.sendSignal(s);
        } catch (e) {
          err = e;
        }
        expect(err, s).toBeInstanceOf(TypeError);
        expect(err, s).toMatchObject({ code: 'ERR_UNKNOWN_SIGNAL', message: `Unknown signal: ${s}` });
      }
      expect(p.getReturncode()).toBe(null); // nothing was sent
    } finally {
      p.close();
    }
  });
});

describe('a protocol factory that returns no protocol', () => {
  it('is refused with a TypeError by subprocessExec before any child starts, and by the pipe functions leaving the descriptor alone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'protoloop-factory-'));
    const marker = join(dir, 'ran');
    try {
      for (const bad of [5, null, undefined, 'protocol']) {
        await expect(subprocessExec((() => bad) as never, '/bin/sh', ['-c', `touch ${marker}`])).rejects.toThrow(
          /The "protocolFactory" argument must return a protocol object/,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
      expect(() => writeFileSync(join(marker), '', { flag: 'wx' })).not.toThrow(); // no child made it
      const [a, b] = socketpair();
      const before = openFds();
      for (const fd of [a, b]) {
        await expect(connectReadPipe((() => 5) as never, fd)).rejects.toThrow(TypeError);
      }
      expect(openFds()).toBe(before);
      // Still ours and still connected: a real adoption works afterwards.
      const [t, p] = await connectReadPipe(() => new Recorder(), a);
      const w = new net.Socket({ fd: b, readable: false, writable: true });
      w.end('still here');
      await p.lost;
      expect(p.received.toString()).toBe('still here');
      expect(t.isClosing()).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a subprocess pipe given a protocol of its own', () => {
  it('still counts for the subprocess: connectionLost comes once the child exited and the pipes closed', async () => {
    class P extends SubprocessProtocol {
      lost = false;
      override connectionLost(): void {
        this.lost = true;
      }
    }
    const [t, p] = await subprocessExec(() => new P(), '/bin/sh', ['-c', 'echo out; sleep 0.1']);
    const own = new Recorder();
    t.getPipeTransport(1)!.setProtocol(own);
    await waitFor(() => p.lost, 10_000, 'the subprocess connectionLost');
    expect(t.getReturncode()).toBe(0);
    expect(own.calls.at(-1)).toBe('connectionLost');
  });
});
