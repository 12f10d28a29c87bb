// The JavaScript end of the event path: one callback per engine batch walks the flat records
// `[kind, id, a, b, len]` and hands each, with its `len` payload bytes, to the transport, server or
// pending connect that owns its id.
import { getRunningLoop } from './loop';
import { EventKind, native } from './native';
import { freshBytes } from './young';

/** Anything that receives engine events for an id. */
export interface EventSink {
  _onEvent(kind: EventKind, a: number, b: number, data: Buffer | null): void;
  /**
   * Optional: takes the record with the whole batch payload and its place in it instead of
   * `_onEvent`, for sinks that cut the payload up themselves (a datagram's sender and data) and
   * would waste a slice per record.
   */
  _onRaw?(kind: EventKind, a: number, b: number, payload: Buffer, offset: number, len: number): void;
  /** Optional: the sink's handler threw (a bug of ours); a transport fails rather than lose bytes quietly. */
  _internalError?(exc: unknown): void;
}

const sinks = new Map<number, EventSink>();

/** True while `onEvents` hands a batch to its sinks. */
let dispatching = false;
/** What asked, during this batch, to run once it is dispatched (datagram endpoints' deferred sends). */
let atEnd: (() => void)[] = [];

/** Whether an engine batch is being dispatched now: work deferred with `afterBatch` runs soon. */
export function inBatch(): boolean {
  return dispatching;
}

/** Runs `fn` once the batch being dispatched has been handed out (call only while `inBatch()`). */
export function afterBatch(fn: () => void): void {
  atEnd.push(fn);
}

export function register(id: number, sink: EventSink): void {
  sinks.set(id, sink);
}

export function unregister(id: number): void {
  sinks.delete(id);
}

/**
 * One engine batch: `head` is an ArrayBuffer of records, 5 u32 each (kind, id, a, b, len), `payload`
 * the records' payloads back to back (a `data` Buffer given to a protocol is a view of it; large
 * payloads are engine memory handed over without a copy).
 */
function onEvents(head: Buffer | ArrayBuffer, payload: Buffer): void {
  // The addon's declaration says Buffer (napi-rs declares an ArrayBuffer argument only as a borrow).
  const records = new Uint32Array(head as ArrayBuffer);
  dispatching = true;
  try {
    dispatch(records, payload);
    if (payload.length > 0) freshBytes(payload.length);
  } finally {
    dispatching = false;
    // A deferred task may ask for another (a flush's errorReceived sending again goes out at once,
    // since the batch is over), so the list is taken before running it.
    while (atEnd.length > 0) {
      const tasks = atEnd;
      atEnd = [];
      for (const fn of tasks) {
        try {
          fn();
        } catch (exc) {
          getRunningLoop().callExceptionHandler({ message: 'protoloop: internal error after dispatching events', exception: exc });
        }
      }
    }
  }
}

function dispatch(records: Uint32Array, payload: Buffer): void {
  let offset = 0;
  for (let i = 0; i < records.length; i += 5) {
    const kind = records[i] as EventKind;
    const a = records[i + 2];
    const len = records[i + 4];
    const start = offset;
    offset += len;
    const sink = sinks.get(records[i + 1]);
    if (sink === undefined) {
      // A server closed while this connection waited in the queue: nobody will ever own it.
      if (kind === EventKind.Accepted) {
        native.abort(a);
      }
      continue;
    }
    try {
      if (sink._onRaw !== undefined) sink._onRaw(kind, a, records[i + 3], payload, start, len);
      else sink._onEvent(kind, a, records[i + 3], len > 0 ? payload.subarray(start, offset) : null);
    } catch (exc) {
      // Sinks route protocol errors themselves; anything reaching here is a bug of ours, and it must
      // not take the rest of the batch (or the process) down with it. A transport whose event was lost
      // fails with the error, so no byte goes missing without somebody hearing of it.
      if (sink._internalError !== undefined) sink._internalError(exc);
      else getRunningLoop().callExceptionHandler({ message: 'protoloop: internal error while dispatching an event', exception: exc });
    }
  }
}

native.init(onEvents);
