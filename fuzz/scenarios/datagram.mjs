// A datagram endpoint (UDP over IPv4, or AF_UNIX datagrams) and a peer (Node's dgram, or another
// protoloop endpoint), driven by steps and by the protocol's behaviours. Checked: callback order, no
// datagram while paused or after close/abort, every datagram received is one the peer sent (whole, in
// order, from the peer's address), every datagram sendto() accepted reaches the peer unless the endpoint
// was aborted or an error reported, errors thrown at the user are clear, and everything closes.
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UNMADE, caller, checkHandlerSaw, checkThrewLost, commonStep, runSteps, stepper, tryMaterialize, viewCopy } from '../drive.mjs';
import { installHandler, recorder } from '../subject.mjs';
import { bytesOf, materialize, show } from '../values.mjs';

export async function datagram(c, ctx) {
  const { pl } = ctx;
  const handlerLog = [];
  installHandler(pl, c.handler, c.handlerThrows, handlerLog);
  const cleanups = [];
  const accepted = []; // datagrams sendto() took
  const peerSent = [];
  const unix = c.peer === 'unix';
  let dir = null;
  if (unix) {
    dir = mkdtempSync(join(tmpdir(), 'protoloop-fuzz-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  }

  // ---- the peer ----
  const peer = { got: [], addr: null };
  if (c.peer === 'dgram') {
    const sock = dgram.createSocket('udp4');
    sock.on('message', (m) => peer.got.push(Buffer.from(m)));
    sock.on('error', () => {});
    await new Promise((r) => sock.bind(0, '127.0.0.1', r));
    peer.addr = ['127.0.0.1', sock.address().port];
    peer.send = (b, to) => sock.send(b, to[1], to[0]);
    cleanups.push(() => new Promise((r) => sock.close(r)));
  } else {
    const options = unix ? { family: pl.constants.AF_UNIX, localAddr: join(dir, 'peer') } : { localAddr: ['127.0.0.1', 0] };
    const [pt] = await pl.createDatagramEndpoint(() => ({ datagramReceived: (d) => peer.got.push(Buffer.from(d)) }), options);
    peer.addr = pt.getExtraInfo('sockname');
    peer.send = (b, to) => pt.sendto(b, to);
    cleanups.push(async () => {
      pt.close();
      await ctx.waitFor(() => pt.isClosing(), 1000);
    });
  }

  // ---- the endpoint under test ----
  const s = { calls: [], made: false, lost: false, lostExc: undefined, paused: false, closedByUs: null, thrown: [], got: [], behaving: true, writePaused: false };
  let t = null;
  const call = caller(ctx);
  const run = stepper(ctx, stepOp, (tr) => (t = tr));
  const { enter, violation, behave, life } = recorder(s, ctx, c.behaviours, run);
  const methods = {
    ...life(),
    datagramReceived(data, addr) {
      const n = enter('datagramReceived');
      if (s.paused) violation('datagramReceived while reading is paused');
      if (s.closedByUs) violation(`datagramReceived after ${s.closedByUs}()`);
      if (!Buffer.isBuffer(data)) violation(`datagramReceived got ${show(data)}, not a Buffer`);
      else s.got.push(Buffer.from(data));
      if (JSON.stringify(addr) !== JSON.stringify(peer.addr)) violation(`datagramReceived from ${JSON.stringify(addr)}, the peer is ${JSON.stringify(peer.addr)}`);
      behave('datagramReceived', n);
    },
    errorReceived(exc) {
      const n = enter('errorReceived');
      if (!(exc instanceof Error)) violation(`errorReceived got ${show(exc)}, not an Error`);
      behave('errorReceived', n);
    },
  };
  const protocol = c.shape === 'class' ? Object.assign(new pl.DatagramProtocol(), methods) : c.shape === 'nullproto' ? Object.assign(Object.create(null), methods) : { ...methods };

  /** The address a sendto step names: the peer's, none (connected endpoints), or an odd one. */
  function address(d) {
    if (d[0] === 'peer') return peer.addr;
    if (d[0] === 'none') return undefined;
    return materialize(d);
  }

  function stepOp(op, where) {
    if (t === null) return;
    switch (op[0]) {
      case 'sendto': {
        const b = bytesOf(op[1], op[2]);
        const to = address(op[3]);
        const closing = t.isClosing();
        const valid = op[3][0] === 'peer' || (op[3][0] === 'none' && c.connected);
        const ok = call(`sendto(${op[1]} bytes, ${show(to)})`, where, () => t.sendto(b, to), !valid);
        // The Unix stream functions refuse a path with a NUL inside; a datagram path must not be cut there.
        if (ok && unix && typeof to === 'string' && to.indexOf('\0') > 0) ctx.fail(`sendto(${show(to)}) accepted an AF_UNIX path with a NUL inside`);
        if (ok && !closing && (valid || JSON.stringify(to) === JSON.stringify(peer.addr))) accepted.push(b);
        return;
      }
      case 'sendOdd': {
        const v = tryMaterialize(op[1]);
        if (v === UNMADE) return;
        const closing = t.isClosing();
        const copy = viewCopy(v);
        if (call(`sendto(${show(v)}, the peer)`, where, () => t.sendto(v, peer.addr), true) && copy?.length && !closing) accepted.push(copy); // (an empty datagram may be skipped, as asyncio 3.12 does)
        return;
      }
      case 'peerSend': {
        const b = bytesOf(op[1], op[2]);
        peerSent.push(b);
        peer.send(b, t.getExtraInfo('sockname'));
        return;
      }
      default:
        if (!commonStep(op, where, t, s, call, ctx)) throw new Error(`unknown step ${op[0]}`);
    }
  }

  try {
    const options = unix ? { family: pl.constants.AF_UNIX, localAddr: join(dir, 'me') } : { localAddr: ['127.0.0.1', 0] };
    if (c.connected) options.remoteAddr = peer.addr;
    await pl.createDatagramEndpoint(() => protocol, options).catch((e) => {
      if (s.thrown.length === 0) ctx.fail(`createDatagramEndpoint rejected: ${show(e)}`);
    });
    if (t === null) return;
    await runSteps(c.steps, run, ctx);

    // ---- the end ----
    s.behaving = false;
    const threw = s.thrown.some((x) => x.cb !== 'connectionLost');
    if (!t.isClosing() && !threw) {
      if (s.paused) run.doOp(['resume'], 'at the end');
      // Whatever the peer sent is in the socket's queue by now (loopback): it must all come.
      await ctx.waitFor(() => s.got.length >= peerSent.length, 1000);
      run.doOp(['close'], 'at the end');
    }
    if (!(await ctx.waitFor(() => s.lost, 3000))) ctx.fail(threw ? `${s.thrown[0].cb} threw, but the endpoint was never closed (no connectionLost)` : 'connectionLost never came after close()');
    checkThrewLost(s, threw, ctx);

    // ---- datagrams ----
    if (!isSubsequence(s.got, peerSent)) ctx.fail(`datagrams received are not the peer's, in order (${s.got.length} received, ${peerSent.length} sent)`);
    else if (!threw && !s.closedByUs && s.got.length < peerSent.length) ctx.fail(`${peerSent.length - s.got.length} of the peer's ${peerSent.length} datagrams never arrived (loopback), though reading was resumed`);
    // An empty datagram (empty or detached data) may be sent or skipped (asyncio 3.12 skips it, 3.13 sends it).
    await ctx.waitFor(() => peer.got.filter((b) => b.length > 0).length >= accepted.length, 1000);
    peer.got = peer.got.filter((b) => b.length > 0);
    if (!isSubsequence(peer.got, accepted)) ctx.fail(`the peer received datagrams that were not sent (${peer.got.length} received, ${accepted.length} accepted)`);
    else if (peer.got.length < accepted.length && s.closedByUs !== 'abort' && !threw && s.lostExc === null)
      ctx.fail(`sendto() accepted ${accepted.length} datagrams, the peer received ${peer.got.length}, and no error was reported`);
    checkHandlerSaw(c, s, handlerLog, ctx);
  } finally {
    if (t && !s.lost) t.abort();
    for (const f of cleanups.reverse()) await f();
  }
}

/** True when `xs` appear in `ys` in order (datagrams may be lost only where that is allowed). */
function isSubsequence(xs, ys) {
  let j = 0;
  for (const x of xs) {
    while (j < ys.length && !ys[j].equals(x)) j++;
    if (j === ys.length) return false;
    j++;
  }
  return true;
}
