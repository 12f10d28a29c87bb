// The loop functions: callSoon and Futures, with callbacks that throw anything or return anything and
// futures completed, cancelled, queried and awaited in any order. Checked: the process survives (an
// exception in a callback goes to the exception handler, as asyncio sends both callSoon's and done
// callbacks' exceptions there), callbacks run once each, in order, never inside the call that scheduled
// them, a future completes once (a second completion is an InvalidStateError), and the process exits.
import { unclearError } from '../checks.mjs';
import { UNMADE, tryMaterialize } from '../drive.mjs';
import { installHandler } from '../subject.mjs';
import { materialize, show } from '../values.mjs';

export async function loop(c, ctx) {
  const { pl } = ctx;
  const handlerLog = [];
  installHandler(pl, c.handler, ['error', 'handler'], handlerLog);
  const theLoop = pl.getRunningLoop();
  const futures = [theLoop.createFuture(), theLoop.createFuture(), theLoop.createFuture()];
  const completedBy = futures.map(() => null);
  const expected = []; // callbacks scheduled, in the order they must run
  const ran = [];
  const thrown = [];
  let inside = null; // the call running now, which must not run callbacks itself

  function callback(id, then) {
    return (...a) => {
      if (inside) ctx.fail(`callback ${id} ran inside ${inside}`);
      ran.push(id);
      if (then[0] === 'throw') {
        const v = materialize(then[1]);
        thrown.push({ id, v });
        throw v;
      }
      return then[0] === 'return' ? materialize(then[1]) : undefined;
    };
  }
  function call(what, fn, mayThrow, rethrows = false) {
    inside = what;
    try {
      return { v: fn() };
    } catch (e) {
      const why = rethrows ? null : unclearError(e); // result() throws the exception that was set: any value
      if (why) ctx.fail(`${what}: ${why}`);
      else if (!mayThrow) ctx.fail(`${what} threw ${show(e)}`);
      return { e };
    } finally {
      inside = null;
    }
  }

  let n = 0;
  const handles = [];
  for (const op of c.ops) {
    const id = `#${n++}`;
    const f = futures[op[1] ?? 0];
    const i = op[1];
    switch (op[0]) {
      case 'callSoon': {
        const r = call('callSoon()', () => theLoop.callSoon(callback(id, op[2]), 1, 2), false);
        if (r.v) {
          expected.push(id);
          handles.push([id, r.v]);
        }
        break;
      }
      case 'cancelHandle': {
        const h = handles[op[1] % Math.max(1, handles.length)];
        if (h && !ran.includes(h[0])) {
          call('Handle.cancel()', () => h[1].cancel(), false);
          if (expected.includes(h[0])) expected.splice(expected.indexOf(h[0]), 1);
        }
        break;
      }
      case 'addDoneCallback': {
        const r = call(`future ${i}.addDoneCallback()`, () => f.addDoneCallback(callback(id, op[2])), false);
        if (!r.e) expected.push(id);
        break;
      }
      case 'setResult':
      case 'setException':
      case 'cancel': {
        const v = tryMaterialize(op[2]);
        if (v === UNMADE) break;
        const wasDone = f.done();
        const r = call(`future ${i}.${op[0]}(${show(v)})`, () => (op[0] === 'setResult' ? f.setResult(v) : op[0] === 'setException' ? f.setException(v) : f.cancel(v)), true);
        if (op[0] === 'cancel') {
          if (r.v !== !wasDone) ctx.fail(`future ${i}.cancel() returned ${show(r.v)} on a future that was ${wasDone ? '' : 'not '}done`);
        } else if (wasDone && !r.e) ctx.fail(`future ${i}.${op[0]}() on a done future did not throw`);
        else if (wasDone && r.e?.name !== 'InvalidStateError' && !(op[0] === 'setException' && v == null)) ctx.fail(`future ${i}.${op[0]}() on a done future threw ${show(r.e)}, not an InvalidStateError`);
        if (!wasDone && f.done()) completedBy[i] = op[0];
        break;
      }
      case 'query':
        call(`future ${i}.result()`, () => f.result(), true, f.done());
        call(`future ${i}.exception()`, () => f.exception(), true, f.cancelled());
        break;
      case 'await':
        await Promise.race([
          Promise.resolve(f).then(
            () => {},
            () => {},
          ),
          ctx.sleep(50),
        ]);
        break;
      case 'tick':
        await ctx.tick();
        break;
      default:
        throw new Error(`unknown op ${op[0]}`);
    }
  }
  // Complete what is pending, so every done callback is due; then let them all run.
  for (const [i, f] of futures.entries()) if (!f.done()) call(`future ${i}.cancel()`, () => f.cancel(), false);
  await ctx.waitFor(() => ran.length >= expected.length, 2000);
  await ctx.sleep(10);
  for (const id of expected) if (ran.filter((x) => x === id).length !== 1) ctx.fail(`callback ${id} ran ${ran.filter((x) => x === id).length} times`);
  for (const id of ran) if (!expected.includes(id)) ctx.fail(`callback ${id} ran, though it was cancelled or never scheduled`);
  const soon = expected.filter((id) => c.ops[Number(id.slice(1))][0] === 'callSoon');
  const soonRan = ran.filter((id) => soon.includes(id));
  if (soonRan.join() !== soon.filter((id) => soonRan.includes(id)).join()) ctx.fail(`callSoon callbacks ran out of order: ${soonRan.join(' ')} (scheduled ${soon.join(' ')})`);
  if (c.handler !== 'default') for (const { id, v } of thrown) if (!handlerLog.some((h) => Object.is(h.exception, v))) ctx.fail(`${show(v)} thrown by callback ${id} never reached the exception handler`);
  // A future whose exception nobody retrieved may be reported; swallow it as asyncio only logs it.
  for (const f of futures) Promise.resolve(f).catch(() => {});
}
