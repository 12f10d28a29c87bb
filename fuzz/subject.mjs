// The protocol under test: it records every callback, checks asyncio's order as the calls come, and
// behaves as the case says (re-enters the transport, throws any value, returns any value).
import { materialize, show } from './values.mjs';

/**
 * What a callback does on its `nth` call (0 = every call): `ops` on the transport first (write, close,
 * pauseReading...), then `then`: ['none'], ['throw', valueDesc] or ['return', valueDesc].
 * @typedef {{ cb: string, nth: number, ops: any[], then: any[] }} Behaviour
 */

/**
 * The function that makes callback `cb`, on its `n`th call, behave as the case says: it runs the ops
 * (through `run.doOp`), then throws (recorded in `s.thrown`) or returns `{ value }`, or returns null.
 */
export function behaviour(behaviours, s, run) {
  return function behave(cb, n) {
    if (!s.behaving) return null;
    for (const b of behaviours) {
      if (b.cb !== cb || (b.nth !== 0 && b.nth !== n)) continue;
      for (const op of b.ops) run.doOp(op, `in ${cb}`);
      if (b.then[0] === 'throw') {
        const v = materialize(b.then[1]);
        s.thrown.push({ cb, v });
        throw v;
      }
      if (b.then[0] === 'return') return { value: materialize(b.then[1]) };
    }
    return null;
  };
}

/** The exception handler variants: the default one (prints), one that records, one that throws. */
export function installHandler(pl, kind, thrownDesc, log) {
  const loop = pl.getRunningLoop();
  if (kind === 'default') loop.setExceptionHandler(null);
  else if (kind === 'recording') loop.setExceptionHandler((context) => log.push(context));
  else
    loop.setExceptionHandler((context) => {
      log.push(context);
      throw materialize(thrownDesc);
    });
}

/**
 * The order every protocol's callbacks must keep, checked as they come: `enter(cb)` records a call in
 * `s.calls`, fails the case for a call after connectionLost or before connectionMade, and returns how
 * many times `cb` has been called; `violation(msg)` fails the case with the last calls for context;
 * `behave(cb, n)` does what the case's behaviours say; `life(lostCheck)` gives the callbacks every
 * protocol kind has (lifeCallbacks).
 */
export function recorder(s, ctx, behaviours, run) {
  const counts = new Map();
  const violation = (msg) => ctx.fail(`${msg} (calls: ${s.calls.slice(-8).join(', ')})`);
  function enter(cb) {
    s.calls.push(cb);
    if (s.lost) violation(`${cb} after connectionLost`);
    if (cb !== 'connectionMade' && !s.made) violation(`${cb} before connectionMade`);
    const n = (counts.get(cb) ?? 0) + 1;
    counts.set(cb, n);
    return n;
  }
  const rec = { enter, violation, behave: behaviour(behaviours, s, run) };
  rec.life = (lostCheck) => lifeCallbacks(s, rec, run, lostCheck);
  return rec;
}

function lifeCallbacks(s, { enter, violation, behave }, run, lostCheck = null) {
  const errorOrThrown = (exc) => {
    if (exc !== null && !(exc instanceof Error) && !s.thrown.some((x) => Object.is(x.v, exc))) violation(`connectionLost got ${show(exc)}: neither null nor an Error`);
  };
  return {
    connectionMade(t) {
      const n = enter('connectionMade');
      if (n > 1) violation('connectionMade called twice');
      s.made = true;
      s.transport = t;
      run.onMade?.(t);
      behave('connectionMade', n);
    },
    pauseWriting() {
      const n = enter('pauseWriting');
      if (s.writePaused) violation('pauseWriting twice without resumeWriting');
      s.writePaused = true;
      behave('pauseWriting', n);
    },
    resumeWriting() {
      const n = enter('resumeWriting');
      if (!s.writePaused) violation('resumeWriting without pauseWriting');
      s.writePaused = false;
      behave('resumeWriting', n);
    },
    connectionLost(exc) {
      const n = enter('connectionLost');
      if (n > 1) violation('connectionLost called twice');
      s.lost = true;
      s.lostExc = exc;
      s.lostAt = Date.now();
      (lostCheck ?? errorOrThrown)(exc);
      behave('connectionLost', n);
    },
  };
}

/**
 * Builds the protocol object for `kind` ('plain' | 'buffered'), shaped as `shape` ('class': an instance
 * of protoloop's class, 'plain': a plain object, 'nullproto': methods on Object.create(null)).
 * `t` is an object with `doOp(op)`, which runs a transport operation for a behaviour.
 */
export function makeSubject(pl, { kind, shape, behaviours, bufferSpec }, ctx, run) {
  const s = {
    calls: [],
    made: false,
    eof: false,
    lost: false,
    lostExc: undefined,
    chunks: [],
    thrown: [], // values our callbacks threw, in order
    paused: false, // reading paused by us (set when pauseReading() returns)
    closedByUs: null, // 'close' | 'abort'
    writePaused: false,
    transport: null,
    lostAt: 0,
    buffer: null,
    behaving: true, // false once the checks at the end take over
  };
  const { enter, violation, behave, life } = recorder(s, ctx, behaviours, run);

  const methods = {
    ...life(),
    dataReceived(data) {
      const n = enter('dataReceived');
      if (s.eof) violation('dataReceived after eofReceived');
      if (s.paused) violation('dataReceived while reading is paused');
      if (s.closedByUs) violation(`dataReceived after ${s.closedByUs}()`);
      if (!Buffer.isBuffer(data)) violation(`dataReceived got ${show(data)}, not a Buffer`);
      else s.chunks.push(Buffer.from(data));
      behave('dataReceived', n);
    },
    eofReceived() {
      const n = enter('eofReceived');
      if (s.eof) violation('eofReceived called twice');
      if (s.paused) violation('eofReceived while reading is paused');
      s.eof = true;
      const r = behave('eofReceived', n);
      return r ? r.value : undefined;
    },
  };
  /**
   * A protocol object over the shared record `s`; every object has its own last buffer, since
   * bufferUpdated(n) is about the buffer that object's getBuffer() handed out.
   */
  function build(spec) {
    const own = { ...methods };
    let buffer = null;
    if (kind === 'buffered') {
      delete own.dataReceived;
      own.getBuffer = function getBuffer(sizehint) {
        const n = enter('getBuffer');
        // (getBuffer while paused is allowed: protoloop asks for the next buffer in advance, to lend it)
        if (s.eof) violation('getBuffer after eofReceived');
        if (!Number.isInteger(sizehint)) violation(`getBuffer(${show(sizehint)}): the size hint is not an integer`);
        const pausedBefore = s.paused;
        const r = behave('getBuffer', n);
        buffer = r ? r.value : makeBuffer(pl, spec);
        // Paused inside getBuffer: the read in progress still completes with its one bufferUpdated, as
        // asyncio's get_buffer -> recv_into -> buffer_updated does.
        s.fillInProgress = s.paused && !pausedBefore;
        return buffer;
      };
      own.bufferUpdated = function bufferUpdated(nbytes) {
        const n = enter('bufferUpdated');
        if (s.eof) violation('bufferUpdated after eofReceived');
        if (s.paused && !s.fillInProgress) violation('bufferUpdated while reading is paused');
        s.fillInProgress = false;
        if (s.closedByUs) violation(`bufferUpdated after ${s.closedByUs}()`);
        if (buffer === null) violation('bufferUpdated on a protocol whose getBuffer() was never called');
        let len = -1;
        try {
          len = buffer.length;
        } catch {
          // a buffer whose length cannot be read never gets this far (the transport must fail first)
        }
        if (!Number.isInteger(nbytes) || nbytes <= 0 || nbytes > len) violation(`bufferUpdated(${show(nbytes)}) for a buffer of ${len} bytes`);
        else s.chunks.push(Buffer.from(buffer.subarray(0, nbytes)));
        behave('bufferUpdated', n);
      };
    }
    if (shape === 'plain') return own;
    if (shape === 'nullproto') return Object.assign(Object.create(null), own);
    const Base = kind === 'buffered' ? pl.BufferedProtocol : pl.Protocol;
    return Object.assign(new (class Subject extends Base {})(), own);
  }
  const protocol = build(bufferSpec);
  /** Another protocol object for setProtocol(): the same record, a buffer of `spec`. */
  s.another = (spec) => build(spec);
  s.protocol = protocol;
  return s;
}

/** The buffer a BufferedProtocol hands out, by its description. */
export function makeBuffer(pl, spec) {
  const [k, n] = spec;
  switch (k) {
    case 'alloc':
      return pl.allocBuffer(n);
    case 'u8':
      return new Uint8Array(n);
    case 'buffer':
      return Buffer.alloc(n);
    case 'sab':
      return new Uint8Array(new SharedArrayBuffer(n));
    case 'offset': // a view into the middle of a larger buffer
      return new Uint8Array(n + 16).subarray(8, 8 + n);
    case 'detachLater': {
      const u = new Uint8Array(n);
      queueMicrotask(() => structuredClone(u.buffer, { transfer: [u.buffer] }));
      return u;
    }
    default:
      return materialize(spec); // a hostile or wrong value: the transport must fail with an error
  }
}

/** True when `b` could be a sound buffer: the transport must then deliver into it. */
export function soundBuffer(spec) {
  return ['alloc', 'u8', 'buffer', 'sab', 'offset'].includes(spec[0]) && spec[1] > 0;
}
