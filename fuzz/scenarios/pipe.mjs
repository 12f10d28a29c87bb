// Pipe transports over a FIFO: connectReadPipe with a Node writer at the other end, or connectWritePipe
// with a Node reader (which may go away), driven by steps and by the protocol's behaviours. Checked:
// callback order, no data while paused or after EOF, the bytes arrive in order (all of them once EOF
// came), every byte write() accepted reaches the reader unless an error is reported, and everything
// closes.
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { closeSync, constants as fsc, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { caller, checkHandlerSaw, checkThrewLost, commonStep, isPrefix, runSteps, stepper } from '../drive.mjs';
import { installHandler, makeSubject } from '../subject.mjs';
import { bytesOf, show } from '../values.mjs';

export async function pipe(c, ctx) {
  const { pl } = ctx;
  const handlerLog = [];
  installHandler(pl, c.handler, c.handlerThrows, handlerLog);
  const dir = mkdtempSync(join(tmpdir(), 'protoloop-fuzz-'));
  const path = join(dir, 'fifo');
  if (spawnSync('mkfifo', [path]).status !== 0) throw new Error('mkfifo failed');
  const reading = c.direction === 'read';
  const accepted = [];
  const peerSent = [];
  let t = null;
  let wroteEof = false;
  const call = caller(ctx);
  const run = stepper(ctx, stepOp, (tr) => (t = tr));
  const s = makeSubject(pl, { kind: 'plain', shape: c.shape, behaviours: c.behaviours }, ctx, run);

  // The FIFO's two ends: ours goes to protoloop, the other to a Node socket (libuv's pipe handle).
  const rfd = openSync(path, fsc.O_RDONLY | fsc.O_NONBLOCK);
  const wfd = openSync(path, fsc.O_WRONLY | fsc.O_NONBLOCK);
  const peerSock = new net.Socket({ fd: reading ? wfd : rfd, readable: !reading, writable: reading });
  const peer = { got: [], closed: false, ended: false };
  peerSock.on('data', (d) => peer.got.push(d));
  peerSock.on('end', () => (peer.ended = true));
  peerSock.on('close', () => (peer.closed = true));
  peerSock.on('error', () => {});

  function stepOp(op, where) {
    if (t === null) return;
    switch (op[0]) {
      case 'write': {
        if (reading) return;
        const b = bytesOf(op[1], op[2]);
        const closing = t.isClosing();
        if (call(`write(${op[1]} bytes)`, where, () => t.write(b), wroteEof) && !closing && !wroteEof) accepted.push(b);
        return;
      }
      case 'writeEof':
        if (!reading && call('writeEof()', where, () => t.writeEof(), false)) wroteEof = true;
        return;
      case 'peerWrite': {
        if (!reading || peer.sentEnd || peer.gone) return;
        const b = bytesOf(op[1], op[2]);
        peerSent.push(b);
        peerSock.write(b);
        return;
      }
      case 'peerEnd':
        if (peer.sentEnd || peer.gone) return;
        peer.sentEnd = true;
        if (reading) peerSock.end();
        else ((peer.gone = true), peerSock.destroy()); // the reader goes away
        return;
      case 'writeOdd':
      case 'writelines':
      case 'setProtocol':
        return; // the stream scenario's (behaviours share its operations)
      case 'pause':
      case 'resume':
        if (!reading) return; // a write pipe has no reading to pause
        break;
      case 'abort':
      case 'limits':
        if (reading) return; // a read pipe has no write side
        break;
    }
    if (!commonStep(op, where, t, s, call, ctx)) throw new Error(`unknown step ${op[0]}`);
  }

  try {
    await (reading ? pl.connectReadPipe(() => s.protocol, rfd) : pl.connectWritePipe(() => s.protocol, wfd)).catch((e) => {
      if (s.thrown.length === 0) ctx.fail(`connecting the pipe rejected: ${show(e)}`);
    });
    if (t === null) {
      closeSync(reading ? rfd : wfd); // refused: the descriptor is still ours
      return;
    }
    await runSteps(c.steps, run, ctx);

    // ---- the end ----
    s.behaving = false;
    const threw = s.thrown.some((x) => x.cb !== 'connectionLost');
    if (!t.isClosing() && !threw) {
      if (reading) {
        if (s.paused) run.doOp(['resume'], 'at the end');
        if (!peer.sentEnd) run.doOp(['peerEnd'], 'at the end');
        if (!(await ctx.waitFor(() => s.eof || s.lost, 3000))) ctx.fail('the writer closed the FIFO, but eofReceived never came');
      }
      if (!t.isClosing()) run.doOp(['close'], 'at the end');
    }
    if (!(await ctx.waitFor(() => s.lost, 3000))) ctx.fail(threw ? `${s.thrown[0].cb} threw, but the pipe transport was never closed` : 'connectionLost never came');
    checkThrewLost(s, threw, ctx);
    if (!peer.gone) await ctx.waitFor(() => peer.closed || peer.ended, 2000);

    if (reading) {
      const got = Buffer.concat(s.chunks);
      const sent = Buffer.concat(peerSent);
      if (!isPrefix(got, sent)) ctx.fail(`received bytes differ from what the writer sent (${got.length} of ${sent.length})`);
      else if (s.eof && got.length !== sent.length) ctx.fail(`eofReceived came after ${got.length} of the ${sent.length} bytes written`);
    } else {
      const out = Buffer.concat(accepted);
      const got = Buffer.concat(peer.got);
      if (!isPrefix(got, out)) ctx.fail(`the reader received bytes that were not written (${got.length} of ${out.length})`);
      else if (got.length < out.length && !peer.gone && s.closedByUs !== 'abort' && s.lostExc === null && !threw)
        ctx.fail(`write() accepted ${out.length} bytes, the reader received ${got.length}, and no error was reported`);
    }
    checkHandlerSaw(c, s, handlerLog, ctx);
  } finally {
    if (t && !s.lost) t.abort?.() ?? t.close();
    peerSock.destroy();
    // The end protoloop did not take (or took and closed) is the peer's; the FIFO's directory goes.
    rmSync(dir, { recursive: true, force: true });
  }
}
