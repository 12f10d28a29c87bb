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
 * One engine batch. Its records, 5 u32 each (kind, id, a, b, len): the first `head` words of this
 * thread's records buffer, or, in a batch with more of them than it holds, the ArrayBuffer `head`.
 * Their payloads, back to back: `length` bytes from `start` of the ArrayBuffer `payload` (a slab the
 * engine copies small batches into, one after the other), or, when `start` is undefined, all of the
 * Buffer `payload` (engine memory handed over without a copy). A `data` Buffer given to a protocol is
 * a view of it.
 */
function onEvents(head: number | ArrayBuffer, payload: ArrayBuffer | Buffer, start: number | undefined, length: number | undefined): void {
  const records = typeof head === 'number' ? RECORDS : new Uint32Array(head);
  const count = typeof head === 'number' ? head : records.length;
  dispatching = true;
  try {
    if (start === undefined) {
      dispatch(records, count, payload as Buffer, null, 0);
      if ((payload as Buffer).length > 0) freshBytes((payload as Buffer).length);
    } else {
      dispatch(records, count, null, payload as ArrayBuffer, start, length as number);
      // Small batches fill slabs: each new slab is as many fresh bytes.
      if ((length as number) > 0) freshBytes(length as number);
    }
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

/**
 * Hands out the batch's `count` record words. Payload bytes are views of `buffer`, or, for a batch in
 * the slab, of its `length` bytes of `slab` from `base` on: one Buffer per record, and one over the
 * batch for `_onRaw` sinks.
 */
function dispatch(records: Uint32Array, count: number, buffer: Buffer | null, slab: ArrayBuffer | null, base: number, length = 0): void {
  let offset = 0;
  for (let i = 0; i < count; i += 5) {
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
      if (sink._onRaw !== undefined) {
        buffer ??= Buffer.from(slab as ArrayBuffer, base, length);
        sink._onRaw(kind, a, records[i + 3], buffer, start, len);
      } else if (len === 0) {
        sink._onEvent(kind, a, records[i + 3], null);
      } else {
        sink._onEvent(kind, a, records[i + 3], buffer !== null ? buffer.subarray(start, offset) : Buffer.from(slab as ArrayBuffer, base + start, len));
      }
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
/** The records buffer `onEvents` reads when `head` is a number (one per thread, for its life). */
const RECORDS = new Uint32Array(native.eventRecords());
