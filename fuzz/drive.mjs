// What every transport scenario does alike: calling the transport and judging what it throws, running
// the steps (from the test and from inside callbacks), the steps all transport kinds share, and the
// checks at the end (byte accounting, the exception handler, connectionLost's argument).
import { checkExtraInfo, unclearError } from './checks.mjs';
import { materialize, show } from './values.mjs';

/** What tryMaterialize gives for a description whose making throws (a hostile getter, say). */
export const UNMADE = Symbol('unmade');

/** The value a description stands for, or UNMADE when making it throws: such a step is skipped. */
export function tryMaterialize(desc) {
  try {
    return materialize(desc);
  } catch {
    return UNMADE;
  }
}

/** A copy of the bytes an ArrayBuffer view holds, or null (not a view, or a detached one). */
export function viewCopy(v) {
  try {
    if (ArrayBuffer.isView(v)) return Buffer.from(Buffer.from(v.buffer, v.byteOffset, v.byteLength));
  } catch {
    // a detached view: there is nothing to send, and the transport may refuse it
  }
  return null;
}

/**
 * `call(what, where, fn, mayThrow)`: calls `fn` on the transport; a throw must be a clear Error, and only
 * where `mayThrow` allows. True when `fn` returned.
 */
export function caller(ctx) {
  return function call(what, where, fn, mayThrow) {
    try {
      fn();
      return true;
    } catch (e) {
      const why = unclearError(e);
      if (why) ctx.fail(`${what} ${where}: ${why}`);
      else if (!mayThrow) ctx.fail(`${what} ${where} threw ${show(e)}`);
      return false;
    }
  };
}

/**
 * The `run` a subject's behaviours use: `doOp(op, where)` runs one step through `stepOp`; a throw there
 * is the fuzzer's own bug, reported as such. `onMade(t)` hears of the transport.
 */
export function stepper(ctx, stepOp, onMade) {
  return {
    onMade,
    doOp(op, where) {
      try {
        stepOp(op, where);
      } catch (e) {
        ctx.fail(`the fuzzer's own step ${JSON.stringify(op)} failed: ${e?.stack ?? show(e)}`);
      }
    },
  };
}

/** The case's steps from the test, a tick after each; ['wait', ms] sleeps. */
export async function runSteps(steps, run, ctx) {
  for (const op of steps) {
    if (op[0] === 'wait') await ctx.sleep(op[1]);
    else {
      run.doOp(op, 'from the test');
      await ctx.tick();
    }
  }
}

/**
 * The steps every transport with one read side shares (pause, resume, close, abort, limits, extra),
 * recording in `s` what the protocol must see from then on. False for any other step.
 */
export function commonStep(op, where, t, s, call, ctx) {
  switch (op[0]) {
    case 'pause':
      call('pauseReading()', where, () => t.pauseReading(), false);
      if (!t.isClosing()) s.paused = true;
      return true;
    case 'resume':
      s.paused = false;
      call('resumeReading()', where, () => t.resumeReading(), false);
      return true;
    case 'close':
      s.closedByUs ??= 'close';
      call('close()', where, () => t.close(), false);
      return true;
    case 'abort':
      s.closedByUs = 'abort';
      call('abort()', where, () => t.abort(), false);
      return true;
    case 'limits': {
      const h = materialize(op[1]);
      const l = materialize(op[2]);
      call(`setWriteBufferLimits(${show(h)}, ${show(l)})`, where, () => t.setWriteBufferLimits(h, l), true);
      return true;
    }
    default:
      return extraStep(op, where, t, ctx);
  }
}

/** ['extra', keyDesc]: getExtraInfo with any key (checks.mjs says what it must answer). False for other steps. */
export function extraStep(op, where, t, ctx) {
  if (op[0] !== 'extra') return false;
  const k = tryMaterialize(op[1]);
  if (k !== UNMADE) checkExtraInfo(t, k, ctx.fail, where);
  return true;
}

/** True when `got` is `sent` or the start of it. */
export function isPrefix(got, sent) {
  return sent.subarray(0, got.length).equals(got) && got.length <= sent.length;
}

/** A callback that threw (`threw`: other than connectionLost) must not be followed by connectionLost(null). */
export function checkThrewLost(s, threw, ctx) {
  if (threw && s.lost && s.lostExc === null) ctx.fail(`a callback threw (${s.thrown[0].cb}), yet connectionLost got null`);
}

/** With a handler of our own, every value a callback threw reached the loop's exception handler. */
export function checkHandlerSaw(c, s, handlerLog, ctx) {
  if (c.handler !== 'default')
    for (const { cb, v } of s.thrown) if (!handlerLog.some((h) => Object.is(h.exception, v))) ctx.fail(`${show(v)} thrown by ${cb} never reached the exception handler`);
}
