// A stream connection (TCP, Unix socket, socketpair) between the protocol under test and a peer (Node's
// net, or protoloop's own server), driven by a sequence of steps from outside and by the protocol's own
// behaviours from inside its callbacks. Checked: callback order, no data while paused or after EOF,
// every byte accepted by write() arrives unless an error is reported, the peer's bytes arrive in order,
// errors thrown at the user are clear, connectionLost comes exactly once and everything closes.
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UNMADE, caller, checkHandlerSaw, checkThrewLost, commonStep, isPrefix, runSteps, stepper, tryMaterialize, viewCopy } from '../drive.mjs';
import { installHandler, makeSubject, soundBuffer } from '../subject.mjs';
import { bytesOf, show } from '../values.mjs';

/** A peer on a Node socket. */
function nodePeer(sock) {
  const p = { got: [], ended: false, closed: false, destroyed: false };
  sock.on('data', (d) => p.got.push(d));
  sock.on('end', () => (p.ended = true));
  sock.on('close', () => (p.closed = true));
  sock.on('error', () => {});
  p.write = (b) => sock.write(b);
  p.end = () => sock.end();
  p.destroy = () => ((p.destroyed = true), sock._handle?.reset ? sock.resetAndDestroy() : sock.destroy()); // a reset where TCP has one
  p.finish = () => sock.end();
  return p;
}

/** A peer that is a protoloop transport (the other end served by protoloop itself). */
function ownPeer() {
  const p = { got: [], ended: false, closed: false, destroyed: false, t: null };
  p.protocol = {
    connectionMade: (t) => (p.t = t),
    dataReceived: (d) => p.got.push(Buffer.from(d)),
    eofReceived: () => ((p.ended = true), true),
    connectionLost: () => (p.closed = true),
  };
  p.write = (b) => p.t.write(b);
  p.end = () => p.t.writeEof();
  p.destroy = () => ((p.destroyed = true), p.t.abort());
  p.finish = () => p.t.close();
  return p;
}

export async function stream(c, ctx) {
  const { pl } = ctx;
  const handlerLog = [];
  installHandler(pl, c.handler, c.handlerThrows ?? ['error', 'handler'], handlerLog);
  const accepted = [];
  const peerSent = [];
  let wroteEof = false;
  let t = null;
  let peer = null;
  const cleanups = [];

  const call = caller(ctx);
  const run = stepper(ctx, stepOp, (tr) => (t = tr));
  const s = makeSubject(pl, c, ctx, run);

  function write(data, what, where) {
    const closing = t.isClosing();
    const copy = viewCopy(data); // null for a detached view: there is nothing to send, and write() may refuse it
    const ok = call(what, where, () => t.write(data), wroteEof || copy === null);
    if (ok && wroteEof && !closing && copy?.length) ctx.fail(`${what} ${where} after writeEof() did not throw`);
    if (ok && !closing && !wroteEof && copy) accepted.push(copy);
  }

  function stepOp(op, where) {
    if (t === null) return;
    switch (op[0]) {
      case 'write':
        return write(bytesOf(op[1], op[2]), `write(${op[1]} bytes)`, where);
      case 'writeOdd': {
        const v = tryMaterialize(op[1]);
        if (v === UNMADE) return;
        return write(v, `write(${show(v)})`, where);
      }
      case 'writelines': {
        const bufs = op[1].map((n, i) => bytesOf(n, op[2] + i));
        const closing = t.isClosing();
        const ok = call(`writelines(${op[1].length} buffers)`, where, () => t.writelines(bufs), wroteEof);
        if (ok && !closing && !wroteEof) accepted.push(...bufs);
        return;
      }
      case 'writeEof':
        if (call('writeEof()', where, () => t.writeEof(), false)) wroteEof = true;
        return;
      case 'setProtocol':
        // A protocol upgrade: events go to another object (of the same record) from the next one on.
        call('setProtocol()', where, () => t.setProtocol(s.another(op[1] ?? c.bufferSpec)), false);
        return;
      case 'peerWrite': {
        if (peer.ended || peer.destroyed || peer.sentEnd) return;
        // A buffer of a few bytes moves a few bytes per callback: keep such a case's run short.
        const b = bytesOf(c.kind === 'buffered' && !(c.bufferSpec[1] >= 1024) ? Math.min(op[1], 2000) : op[1], op[2]);
        peerSent.push(b);
        peer.write(b);
        return;
      }
      case 'peerEnd':
        if (peer.destroyed || peer.sentEnd) return;
        peer.sentEnd = true;
        peer.end();
        return;
      case 'peerDestroy':
        if (peer.destroyed) return;
        peer.destroy();
        return;
      default:
        if (!commonStep(op, where, t, s, call, ctx)) throw new Error(`unknown step ${op[0]}`);
    }
  }

  /** Waits for `cond` while bytes keep arriving; false after 3 s without progress. */
  async function waitWhileMoving(cond) {
    let seen = -1;
    while (!cond()) {
      const now = s.chunks.length;
      if (now === seen) return false;
      seen = now;
      if (await ctx.waitFor(cond, 3000)) return true;
    }
    return true;
  }

  // ---- the connection ----
  const pf = () => s.protocol;
  try {
    if (c.peer === 'node-server' || c.peer === 'unix') {
      let path = null;
      const srv = net.createServer({ allowHalfOpen: true }, (sock) => (peer = nodePeer(sock)));
      if (c.peer === 'unix') {
        const dir = mkdtempSync(join(tmpdir(), 'protoloop-fuzz-'));
        cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
        path = join(dir, 's');
        await new Promise((r) => srv.listen(path, r));
      } else await new Promise((r) => srv.listen(0, '127.0.0.1', r));
      cleanups.push(() => new Promise((r) => srv.close(r)));
      await (path ? pl.createUnixConnection(pf, path) : pl.createConnection(pf, '127.0.0.1', srv.address().port)).catch((e) => {
        if (s.thrown.length === 0) ctx.fail(`connecting rejected: ${show(e)}`);
      });
      await ctx.waitFor(() => peer !== null, 3000);
    } else if (c.peer === 'node-client') {
      const server = await pl.createServer(pf, '127.0.0.1', 0);
      cleanups.push(async () => {
        server.close();
        if (!(await ctx.within(server.waitClosed().then(() => true), 3000))) ctx.fail('Server.waitClosed() did not resolve after close(), its connection gone');
      });
      peer = nodePeer(net.connect({ port: server.sockets[0].getsockname()[1], host: '127.0.0.1', allowHalfOpen: true }));
      if (!(await ctx.waitFor(() => s.made || s.lost, 3000))) ctx.fail('the server never made a connection for a Node client');
    } else if (c.peer === 'own') {
      const own = ownPeer();
      const server = await pl.createServer(() => own.protocol, '127.0.0.1', 0);
      cleanups.push(async () => {
        server.close();
        if (!(await ctx.within(server.waitClosed().then(() => true), 3000))) ctx.fail('Server.waitClosed() did not resolve after close(), its connection gone');
      });
      await pl.createConnection(pf, '127.0.0.1', server.sockets[0].getsockname()[1]).catch((e) => {
        if (s.thrown.length === 0) ctx.fail(`connecting rejected: ${show(e)}`);
      });
      await ctx.waitFor(() => own.t !== null, 3000);
      peer = own;
    } else if (c.peer === 'socketpair') {
      const [a, b] = pl.socketpair();
      peer = nodePeer(new net.Socket({ fd: b, readable: true, writable: true, allowHalfOpen: true }));
      await pl.connectAcceptedSocket(pf, a).catch((e) => {
        if (s.thrown.length === 0) ctx.fail(`connectAcceptedSocket rejected: ${show(e)}`);
      });
    }
    if (t === null || peer === null) {
      if (t === null && s.thrown.length === 0 && !s.made) ctx.fail('no connection was made');
      peer?.destroy();
      return;
    }

    // ---- the steps ----
    await runSteps(c.steps, run, ctx);

    // ---- the end: the peer's EOF must arrive, then everything closes ----
    const peerEndedCleanly = !peer.destroyed;
    const threw = s.thrown.some((x) => x.cb !== 'connectionLost');
    if (threw) {
      // A callback that throws aborts its transport: nobody else closes it.
      if (!(await ctx.waitFor(() => s.lost, 3000))) ctx.fail(`${s.thrown[0].cb} threw ${show(s.thrown[0].v)}, but the transport was never closed (no connectionLost)`);
    } else if (!t.isClosing()) {
      if (!peer.sentEnd && !peer.destroyed) run.doOp(['peerEnd'], 'at the end');
      // The checks take over: the protocol's behaviours stop (a protocol that pauses itself on every
      // chunk would otherwise hold the EOF back for good).
      s.behaving = false;
      if (s.paused) run.doOp(['resume'], 'at the end');
      if (peerEndedCleanly && !(await waitWhileMoving(() => s.eof || s.lost))) ctx.fail('the peer ended its stream, but eofReceived never came');
    }
    if (!t.isClosing()) run.doOp(['close'], 'at the end');
    if (!(await ctx.waitFor(() => s.lost, 3000))) ctx.fail(`connectionLost never came after ${s.closedByUs ?? 'the connection ended'}`);
    if (!peer.sentEnd && !peer.destroyed) peer.finish();
    else if (peer.t && !peer.closed) await ctx.waitFor(() => peer.ended, 1000).then(() => peer.finish());
    if (!(await ctx.waitFor(() => peer.closed, 3000))) ctx.fail('the peer never saw the connection close');

    // ---- bytes ----
    const got = Buffer.concat(s.chunks);
    const sent = Buffer.concat(peerSent);
    if (!isPrefix(got, sent)) ctx.fail(`received bytes differ from what the peer sent (${got.length} received of ${sent.length}, first difference at ${firstDiff(got, sent)})`);
    else if (s.eof && got.length !== sent.length && peerEndedCleanly) ctx.fail(`eofReceived came after ${got.length} of the ${sent.length} bytes the peer sent`);
    if (s.lost && s.lostExc === null && !s.closedByUs && !s.eof && peerEndedCleanly && !threw) ctx.fail('connectionLost(null) without eofReceived, close() or an error');
    checkThrewLost(s, threw, ctx);
    if (c.kind === 'buffered' && !soundBuffer(c.bufferSpec) && s.lost && s.lostExc === null && sent.length > 0 && got.length < sent.length && !s.closedByUs && !threw)
      ctx.fail(`getBuffer() returned ${JSON.stringify(c.bufferSpec)}: bytes were lost, yet connectionLost got null`);
    const out = Buffer.concat(accepted);
    const peerGot = Buffer.concat(peer.got);
    if (!isPrefix(peerGot, out)) ctx.fail(`the peer received bytes that were not written (${peerGot.length} received of ${out.length}, first difference at ${firstDiff(peerGot, out)})`);
    else if (peerGot.length < out.length && s.closedByUs !== 'abort' && s.lostExc === null && !peer.destroyed && !threw)
      ctx.fail(`write() accepted ${out.length} bytes, the peer received ${peerGot.length}, and no error was reported`);

    // ---- the exception handler saw every thrown value ----
    checkHandlerSaw(c, s, handlerLog, ctx);
  } finally {
    if (t && !s.lost) t.abort();
    if (peer && !peer.closed) peer.destroy();
    for (const f of cleanups.reverse()) await f();
  }
}

function firstDiff(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}
