// Every export and transport method called with generated arguments: valid ones mixed with odd ones
// (NaN, huge numbers, strings with NUL, prototype member names, Proxies, Object.create(null)...).
// Checked: the process survives; each call returns, throws or rejects with a clear Error (no internal
// message leaking out, nothing that is not an Error); every promise settles; getExtraInfo gives the
// default for names it does not know; whatever a call made is closed again and its descriptors go.
import dgram from 'node:dgram';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { closeSync, constants as fsc, mkdtempSync, openSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkExtraInfo, unclearError } from '../checks.mjs';
import { materialize, show } from '../values.mjs';

/** The calls that take over a descriptor they are given. */
const ADOPTERS = new Set(['createConnection', 'createServer', 'createUnixConnection', 'createUnixServer', 'createDatagramEndpoint', 'connectAcceptedSocket', 'connectReadPipe', 'connectWritePipe']);

/** True for the values that throw when touched (their `sock` cannot be read). */
function isHostile(x) {
  try {
    void x.sock;
    return false;
  } catch {
    return true;
  }
}

export async function args(c, ctx) {
  const { pl } = ctx;
  const made = []; // what the calls made, closed at the end
  const adopted = new Set(); // descriptors a transport took over (it closes them)
  const fdTargets = new Map(); // our descriptors and what they are
  const cleanups = [];
  const env = {};
  const dir = mkdtempSync(join(tmpdir(), 'protoloop-fuzz-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));

  // ---- what valid arguments refer to, made when a call needs it ----
  async function need(name) {
    if (name in env) return env[name];
    switch (name) {
      case 'port': {
        // Ends a connection once it gets bytes: a TLS handshake sent to it fails at once instead of waiting.
        const srv = net.createServer((s) => (s.on('error', () => {}), s.once('data', () => s.end()))).listen(0, '127.0.0.1');
        await new Promise((r) => srv.on('listening', r));
        cleanups.push(() => new Promise((r) => (srv.close(r), srv.unref())));
        const sockets = [];
        srv.on('connection', (s) => sockets.push(s));
        cleanups.push(() => sockets.forEach((s) => s.destroy()));
        return (env.port = srv.address().port);
      }
      case 'udpPort': {
        const u = dgram.createSocket('udp4');
        await new Promise((r) => u.bind(0, '127.0.0.1', r));
        cleanups.push(() => new Promise((r) => u.close(r)));
        return (env.udpPort = u.address().port);
      }
      case 'transport': {
        const port = await need('port');
        const [t] = await pl.createConnection(() => new pl.Protocol(), '127.0.0.1', port);
        made.push(t);
        return (env.transport = t);
      }
      case 'datagram': {
        const [t] = await pl.createDatagramEndpoint(() => new pl.DatagramProtocol(), { localAddr: ['127.0.0.1', 0] });
        made.push(t);
        return (env.datagram = t);
      }
      case 'subprocess': {
        const [t] = await pl.subprocessExec(() => new pl.SubprocessProtocol(), '/bin/sleep', ['10']);
        made.push(t);
        return (env.subprocess = t);
      }
      case 'file': {
        const path = join(dir, 'file');
        writeFileSync(path, 'x'.repeat(1000));
        return (env.file = ownFd(openSync(path, 'r')));
      }
      case 'devnull':
      case 'dir':
        return (env[name] = ownFd(openSync(name === 'dir' ? dir : '/dev/null', 'r')));
      case 'fifoR':
      case 'fifoW': {
        const path = join(dir, 'fifo');
        if (spawnSync('mkfifo', [path]).status !== 0) throw new Error('mkfifo failed');
        env.fifoR = ownFd(openSync(path, fsc.O_RDONLY | fsc.O_NONBLOCK));
        env.fifoW = ownFd(openSync(path, fsc.O_WRONLY | fsc.O_NONBLOCK));
        return env[name];
      }
      case 'sockA': {
        const [a, b] = pl.socketpair();
        ownFd(b);
        return (env.sockA = ownFd(a));
      }
      case 'closedFd': {
        const fd = openSync('/dev/null', 'r');
        closeSync(fd);
        return (env.closedFd = fd);
      }
      case 'transportFd': {
        // The live transport's own descriptor: nobody else may take it, and a refusal must not close it.
        const fd = (await need('transport')).getExtraInfo('socket').fd;
        fdTargets.set(fd, readlinkSync(`/proc/self/fd/${fd}`));
        return (env.transportFd = fd);
      }
      case 'unixPath':
        return (env.unixPath = join(dir, `s${Math.random().toString(36).slice(2)}`));
      default:
        throw new Error(`unknown context value ${name}`);
    }
  }

  /** A descriptor of the case's own, closed at the end unless a transport took it. */
  function ownFd(fd) {
    const target = readlinkSync(`/proc/self/fd/${fd}`);
    fdTargets.set(fd, target);
    cleanups.push(() => {
      let now = null;
      try {
        now = readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        // a transport adopted it and closed it
      }
      if (now === target && !adopted.has(fd)) closeSync(fd);
    });
    return fd;
  }

  /**
   * A description with context references and protocol factories, made into the value; boxed as `{ v }`
   * (awaiting a hostile Proxy itself would read its `then`).
   */
  async function resolve(d) {
    switch (d[0]) {
      case 'ctx':
        return { v: await need(d[1]) };
      case 'udpAddr':
        return { v: ['127.0.0.1', await need('udpPort')] };
      case 'pf':
        return { v: protocolFactory(d) };
      case 'opts': {
        const o = {};
        for (const [k, v] of d[1]) o[k] = (await resolve(v)).v;
        return { v: o };
      }
      case 'list': {
        const out = [];
        for (const v of d[1]) out.push((await resolve(v)).v);
        return { v: out };
      }
      default:
        return { v: materialize(d) };
    }
  }

  const factoryResults = [];
  function protocolFactory(d) {
    const Base = { stream: pl.Protocol, datagram: pl.DatagramProtocol, subprocess: pl.SubprocessProtocol, buffered: pl.BufferedProtocol }[d[2]] ?? pl.Protocol;
    return () => {
      if (d[1] === 'throws') throw materialize(d[3]);
      const p = d[1] === 'returns' ? materialize(d[3]) : new Base();
      factoryResults.push(p);
      return p;
    };
  }

  /** The calls a case can make: name → (resolved arguments) → result. */
  const calls = {
    createConnection: (a) => pl.createConnection(...a),
    createServer: (a) => pl.createServer(...a),
    createUnixConnection: (a) => pl.createUnixConnection(...a),
    createUnixServer: (a) => pl.createUnixServer(...a),
    createDatagramEndpoint: (a) => pl.createDatagramEndpoint(...a),
    connectAcceptedSocket: (a) => pl.connectAcceptedSocket(...a),
    connectReadPipe: (a) => pl.connectReadPipe(...a),
    connectWritePipe: (a) => pl.connectWritePipe(...a),
    subprocessExec: (a) => pl.subprocessExec(...a),
    subprocessShell: (a) => pl.subprocessShell(...a),
    allocBuffer: (a) => pl.allocBuffer(...a),
    sendfile: async (a) => pl.sendfile(await need('transport'), ...a),
    startTls: async (a) => pl.startTls(await need('transport'), new pl.Protocol(), ...a),
    write: async (a) => (await need('transport')).write(...a),
    writelines: async (a) => (await need('transport')).writelines(...a),
    setWriteBufferLimits: async (a) => (await need('transport')).setWriteBufferLimits(...a),
    setProtocol: async (a) => (await need('transport')).setProtocol(...a),
    forwardTo: async (a) => (await need('transport')).forwardTo(...a),
    getExtraInfo: async (a) => checkExtraInfo(await need('transport'), a[0], ctx.fail, 'on a TCP transport'),
    getsockopt: async (a) => (await need('transport')).getExtraInfo('socket').getsockopt(...a),
    setsockopt: async (a) => (await need('transport')).getExtraInfo('socket').setsockopt(...a),
    sendto: async (a) => (await need('datagram')).sendto(...a),
    datagramExtra: async (a) => checkExtraInfo(await need('datagram'), a[0], ctx.fail, 'on a datagram transport'),
    sendSignal: async (a) => (await need('subprocess')).sendSignal(...a),
    getPipeTransport: async (a) => (await need('subprocess')).getPipeTransport(...a),
    subprocessExtra: async (a) => checkExtraInfo(await need('subprocess'), a[0], ctx.fail, 'on a subprocess transport'),
    callSoon: (a) => pl.getRunningLoop().callSoon(...a),
    setExceptionHandler: (a) => {
      const loop = pl.getRunningLoop();
      try {
        loop.setExceptionHandler(...a);
      } finally {
        loop.setExceptionHandler(null);
      }
    },
    futureSetException: (a) => {
      const f = pl.getRunningLoop().createFuture();
      f.setException(...a);
      f.exception(); // retrieved: nothing to report
    },
  };

  for (const { fn, args: descs } of c.calls) {
    let a;
    try {
      a = [];
      for (const d of descs) a.push((await resolve(d)).v);
    } catch (e) {
      ctx.fail(`the fuzzer could not build the arguments of ${fn}: ${e?.stack ?? show(e)}`);
      continue;
    }
    const what = `${fn}(${a.map(show).join(', ')})`;
    // Our descriptors this call was given (as an argument or as options.sock).
    const given = [...fdTargets.keys()].filter((fd) => a.includes(fd) || a.some((x) => x !== null && typeof x === 'object' && !isHostile(x) && x.sock === fd));
    const refused = (how, e) => {
      const why = unclearError(e);
      if (why) ctx.fail(`${what} ${how}: ${why}`);
      for (const fd of given) {
        let now = null;
        try {
          now = readlinkSync(`/proc/self/fd/${fd}`);
        } catch {
          // closed
        }
        if (now !== fdTargets.get(fd)) ctx.fail(`${what} ${how}, yet closed descriptor ${fd}, which it did not take (${fdTargets.get(fd)})`);
      }
    };
    let result;
    try {
      result = calls[fn](a);
    } catch (e) {
      refused('threw', e);
      continue;
    }
    if (result && typeof result.then === 'function') {
      const settled = await ctx.within(
        result.then(
          (v) => ({ v }),
          (e) => ({ e }),
        ),
        5000,
      );
      if (!settled) {
        ctx.fail(`${what} never settled (5 s)`);
        continue;
      }
      if ('e' in settled) {
        refused('rejected', settled.e);
        continue;
      }
      result = settled.v;
    }
    if (ADOPTERS.has(fn)) for (const fd of given) adopted.add(fd);
    if (ADOPTERS.has(fn) && given.includes(env.transportFd)) ctx.fail(`${what} took descriptor ${env.transportFd}, which a live transport owns`);
    keep(result, what);
  }

  /** Checks and keeps what a call made, to close it at the end. */
  function keep(r, what) {
    const items = Array.isArray(r) ? r : [r];
    for (const x of items) {
      if (x instanceof pl.BaseTransport || x instanceof pl.Server) made.push(x);
    }
    if (Array.isArray(r) && r[0] instanceof pl.BaseTransport && (r[1] === null || typeof r[1] !== 'object'))
      ctx.fail(`${what} made a transport whose protocol is ${show(r[1])} (the factory's result must be refused with a TypeError)`);
  }

  // ---- the end: close everything that was made ----
  for (const x of made.reverse()) {
    try {
      if (x instanceof pl.Server) {
        x.close();
        if (!(await ctx.within(x.waitClosed().then(() => true), 3000))) ctx.fail('Server.waitClosed() did not resolve after close()');
      } else if (!x.isClosing()) x.close();
    } catch (e) {
      ctx.fail(`closing ${show(x)} threw ${show(e)}`);
    }
  }
  for (const f of cleanups.reverse()) await f();
}
