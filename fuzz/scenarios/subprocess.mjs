// A child process with pipes (cat, or a shell that prints and exits), driven by steps (stdin writes and
// EOF, pausing its output pipes, signals, close) and by the protocol's behaviours. Checked: the
// SubprocessProtocol order (connectionMade first; pipeConnectionLost once per pipe; processExited once;
// connectionLost once, after both), no pipe data while that pipe is paused or after it was lost, cat's
// output is what stdin was given, errors thrown at the user are clear, the child is reaped and
// everything closes.
import { UNMADE, caller, checkHandlerSaw, checkThrewLost, extraStep, isPrefix, runSteps, stepper, tryMaterialize } from '../drive.mjs';
import { installHandler, recorder } from '../subject.mjs';
import { bytesOf, show } from '../values.mjs';

export async function subprocess(c, ctx) {
  const { pl } = ctx;
  const handlerLog = [];
  installHandler(pl, c.handler, c.handlerThrows, handlerLog);
  const s = { calls: [], made: false, lost: false, lostExc: undefined, exited: false, pipesLost: new Set(), paused: new Set(), thrown: [], out: [], behaving: true, killed: false, stdinEof: false, detached: new Set(), opened: new Set() };
  const accepted = [];
  let t = null;
  const call = caller(ctx);
  const run = stepper(ctx, stepOp, (tr) => (t = tr));
  const { enter, violation, behave, life } = recorder(s, ctx, c.behaviours, run);
  // connectionLost comes once, after processExited and after every pipe we still listen to was lost.
  const afterAll = () => {
    if (!s.exited) violation('connectionLost before processExited');
    for (const fd of [0, 1, 2]) if (!s.pipesLost.has(fd) && s.opened.has(fd) && !s.detached.has(fd)) violation(`connectionLost before pipeConnectionLost(${fd})`);
  };
  const methods = {
    ...life(afterAll),
    pipeDataReceived(fd, data) {
      const n = enter(`pipeDataReceived(${fd})`);
      if (fd !== 1 && fd !== 2) violation(`pipeDataReceived for fd ${show(fd)}`);
      if (s.pipesLost.has(fd)) violation(`pipeDataReceived(${fd}) after pipeConnectionLost(${fd})`);
      if (s.paused.has(fd)) violation(`pipeDataReceived(${fd}) while that pipe is paused`);
      if (fd === 1 && Buffer.isBuffer(data)) s.out.push(Buffer.from(data));
      behave('pipeDataReceived', n);
    },
    pipeConnectionLost(fd, exc) {
      const n = enter(`pipeConnectionLost(${fd})`);
      if (s.pipesLost.has(fd)) violation(`pipeConnectionLost(${fd}) twice`);
      s.pipesLost.add(fd);
      if (exc !== null && !(exc instanceof Error)) violation(`pipeConnectionLost(${fd}) got ${show(exc)}`);
      behave('pipeConnectionLost', n);
    },
    processExited() {
      const n = enter('processExited');
      if (s.exited) violation('processExited twice');
      s.exited = true;
      if (t.getReturncode() === null) violation('processExited, yet getReturncode() is null');
      behave('processExited', n);
    },
    // (a subprocess transport's write flow is its stdin pipe's: these only keep the order)
    pauseWriting() {
      behave('pauseWriting', enter('pauseWriting'));
    },
    resumeWriting() {
      behave('resumeWriting', enter('resumeWriting'));
    },
  };
  const protocol = c.shape === 'class' ? Object.assign(new pl.SubprocessProtocol(), methods) : { ...methods };

  function stepOp(op, where) {
    if (t === null) return;
    const stdin = t.getPipeTransport(0);
    switch (op[0]) {
      case 'write': {
        if (!stdin) return;
        const b = bytesOf(op[1], op[2]);
        const closing = stdin.isClosing() || t.isClosing();
        if (call(`stdin.write(${op[1]} bytes)`, where, () => stdin.write(b), s.stdinEof) && !closing && !s.stdinEof) accepted.push(b);
        return;
      }
      case 'writeEof':
        if (stdin && call('stdin.writeEof()', where, () => stdin.writeEof(), false)) s.stdinEof = true;
        return;
      case 'pause':
      case 'resume': {
        const p = t.getPipeTransport(op[1]);
        if (!p) return;
        if (op[0] === 'pause') {
          call(`pipe ${op[1]} pauseReading()`, where, () => p.pauseReading(), false);
          if (!p.isClosing()) s.paused.add(op[1]);
        } else {
          s.paused.delete(op[1]);
          call(`pipe ${op[1]} resumeReading()`, where, () => p.resumeReading(), false);
        }
        return;
      }
      case 'signal': {
        const sig = tryMaterialize(op[1]);
        if (sig === UNMADE) return;
        if (call(`sendSignal(${show(sig)})`, where, () => t.sendSignal(sig), true)) s.killed = true;
        return;
      }
      case 'kill':
        s.killed = true;
        call('kill()', where, () => t.kill(), true); // ESRCH once it exited
        return;
      case 'close':
        s.killed = true;
        call('close()', where, () => t.close(), false);
        return;
      case 'getPipe': {
        const fd = tryMaterialize(op[1]);
        if (fd === UNMADE) return;
        call(`getPipeTransport(${show(fd)})`, where, () => t.getPipeTransport(fd), true);
        return;
      }
      case 'setPipeProtocol': {
        const p = t.getPipeTransport(op[1]);
        // The pipe's events go to another protocol from now on; the process must still finish.
        if (p && call(`pipe ${op[1]} setProtocol(another protocol)`, where, () => p.setProtocol(new pl.Protocol()), false)) s.detached.add(op[1]);
        return;
      }
      default:
        if (!extraStep(op, where, t, ctx)) throw new Error(`unknown step ${op[0]}`);
    }
  }

  const [program, args] = c.program === 'cat' ? ['/bin/cat', []] : ['/bin/sh', ['-c', 'echo out; echo err >&2; exit 3']];
  try {
    await pl.subprocessExec(() => protocol, program, args, { stdin: pl.PIPE, stdout: pl.PIPE, stderr: pl.PIPE }).catch((e) => {
      if (s.thrown.length === 0) ctx.fail(`subprocessExec rejected: ${show(e)}`);
    });
    if (t === null) return;
    s.opened = new Set([0, 1, 2].filter((fd) => t.getPipeTransport(fd) !== null));
    await runSteps(c.steps, run, ctx);

    // ---- the end: stdin ends, the child exits, everything is reported ----
    s.behaving = false;
    const threw = s.thrown.some((x) => x.cb !== 'connectionLost');
    for (const fd of [...s.paused]) run.doOp(['resume', fd], 'at the end');
    if (!t.isClosing() && !threw && !s.stdinEof) run.doOp(['writeEof'], 'at the end');
    if (!(await ctx.waitFor(() => s.lost, 4000))) {
      ctx.fail(`connectionLost never came (${threw ? `${s.thrown[0].cb} threw` : s.killed ? 'after a signal or close()' : 'after stdin ended'}; exited: ${s.exited}, pipes lost: ${[...s.pipesLost]})`);
      t.close();
      await ctx.waitFor(() => s.lost, 2000);
    }
    checkThrewLost(s, threw, ctx);
    // (cat's output is not ours to check once its stdout pipe got another protocol)
    if (c.program === 'cat' && !s.detached.has(1)) {
      const out = Buffer.concat(s.out);
      const want = Buffer.concat(accepted);
      if (!isPrefix(out, want)) ctx.fail(`cat's output differs from its input (${out.length} out of ${want.length})`);
      else if (out.length < want.length && !s.killed && !threw) ctx.fail(`stdin accepted ${want.length} bytes, cat gave back ${out.length}, and nothing was killed`);
    } else if (c.program === 'sh' && !s.killed && !threw && t.getReturncode() !== 3) ctx.fail(`the shell exited 3, getReturncode() says ${t.getReturncode()}`);
    checkHandlerSaw(c, s, handlerLog, ctx);
  } finally {
    if (t && !s.lost) t.close();
  }
}
