// Stream transports: TCP, Unix sockets, pipes and TLS connections (the connect functions are in connect.ts).
import { checkInteger, checkObject, errnoNamed, systemError, tlsError, toBytes } from './errors';
import { READ_HINT, isBuffered } from './buffered';
import { register, unregister } from './events';
import { release, retain } from './loop';
import { EventKind, native } from './native';
import { socketExtra } from './socket';
import { types } from 'node:util';
import { Transport, makeProtocol } from './transports';

/** asyncio logs a warning once this many writes were dropped after the connection was lost. */
const LOG_THRESHOLD_FOR_CONNLOST_WRITES = 5;


/**
 * How a stream transport writes: the engine's plain or TLS writes. Closing, aborting, pausing and the
 * descriptor are every transport's alike (`native.close`, `native.abort`, ...: one id space).
 */
export interface StreamOps {
  write(id: number, data: Uint8Array): number;
  writev(id: number, data: Uint8Array[]): number;
  writeEof(id: number): void;
  /** TLS cannot half-close. */
  canWriteEof: boolean;
  /** A plain stream of the engine: zero-copy receive and sendfile(2) work on it. */
  engineStream: boolean;
}

/** @internal */
export const STREAM_OPS: StreamOps = {
  write: native.writeFunction(),
  writev: native.writev,
  writeEof: native.writeEof,
  canWriteEof: true,
  engineStream: true,
};

type Held = [EventKind, number, Buffer | null];

/**
 * Bytes to hold while reading is paused, as a copy when they are a small part of the memory under them
 * (a view of an event batch's payload, up to 320 KiB that other connections' bytes share): held for as
 * long as the protocol stays paused, a view would keep the whole batch alive.
 */
function unpinned(data: Buffer): Buffer {
  return data.length * 2 <= data.buffer.byteLength ? Buffer.from(data) : data;
}

/** What a `ReadHalf` asks of its transport. @internal */
export interface ReaderOwner {
  isClosing(): boolean;
  /** Hands a read-side event to the protocol. */
  _deliverRead(kind: EventKind, a: number, data: Buffer | null): void;
  /** Delivering failed inside the library: the transport fails with `exc`. */
  _internalError(exc: unknown): void;
}
type WriterOps = Pick<StreamOps, 'write' | 'writev' | 'writeEof'>;

/**
 * The reading half of an engine byte stream, shared by stream transports and read pipes: read pausing,
 * enforced here too, so events the engine had already queued for a paused stream (data, fills, EOF) are
 * held back and handed to `deliver` in order on a later turn after `resume()`.
 * @internal
 */
export class ReadHalf {
  #paused = false;
  /** Events held back while paused (null until the first). */
  #held: Held[] | null = null;
  #flushScheduled = false;

  // The transport itself rather than two closures: a closure and its context per connection add up
  // with 10,000 connections.
  constructor(
    private readonly id: number,
    private readonly owner: ReaderOwner,
  ) {}

  /** A read-side event of the engine (`Data`, `Eof`, and the zero-copy kinds). */
  push(kind: EventKind, a: number, data: Buffer | null): void {
    if (this.owner.isClosing()) return;
    if (this.#paused || this.#held !== null) (this.#held ??= []).push([kind, a, data === null ? null : unpinned(data)]);
    else this.owner._deliverRead(kind, a, data);
  }

  isReading(): boolean {
    return !this.#paused && !this.owner.isClosing();
  }

  /** Whether events wait for delivery (held while paused, or not yet flushed). */
  holding(): boolean {
    return this.#held !== null;
  }

  pause(): void {
    if (this.owner.isClosing() || this.#paused) return;
    this.#paused = true;
    native.pauseReading(this.id);
  }

  resume(): void {
    if (this.owner.isClosing() || !this.#paused) return;
    this.#paused = false;
    // Events that came in while paused go out on a later turn, never inside this call, and the engine
    // reads again once they are all delivered: what it read meanwhile would be held again if the
    // protocol pauses on the way (an echo whose writes are still backed up), and held bytes are memory.
    if (this.#held !== null) this.#scheduleFlush();
    else native.resumeReading(this.id);
  }

  /**
   * Puts the undelivered rest of an event back first in line: the protocol paused in the middle of it
   * (a BufferedProtocol's `bufferUpdated` between two of the buffers one chunk fills).
   */
  holdFirst(kind: EventKind, a: number, data: Buffer | null): void {
    (this.#held ??= []).unshift([kind, a, data]);
  }

  /** Forgets held events (the transport is closing). */
  clear(): void {
    this.#held = null;
  }

  /** Takes the held events away (STARTTLS hands them to the TLS session). */
  takeHeld(): Held[] {
    const held = this.#held ?? [];
    this.#held = null;
    return held;
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      // Outside the batch dispatch's guard: a failure here fails the transport, not the process.
      try {
        while (!this.#paused && !this.owner.isClosing() && this.#held !== null) {
          const [kind, a, data] = this.#held.shift() as Held;
          if (this.#held.length === 0) this.#held = null;
          this.owner._deliverRead(kind, a, data);
        }
        if (!this.#paused && !this.owner.isClosing() && this.#held === null) native.resumeReading(this.id);
      } catch (exc) {
        this.owner._internalError(exc);
      }
    });
  }
}

/**
 * The writing half of an engine byte stream, shared by stream transports and write pipes: argument
 * checks, the try-at-once write, counting what the kernel has not taken yet, dropped-write warnings.
 * The transport owns the flow-control marks; `write` tells it when bytes were left queued.
 * @internal
 */
export class WriteHalf {
  /** Bytes taken by write() (and sendfile). */ accepted = 0;
  /** Of those, bytes the kernel has. */ flushed = 0;
  eofWritten = false;
  #droppedWrites = 0;
  #dropped = false;

  /** The EOF came from `close()` (a pipe's close is a flush and EOF), not from `writeEof()`. */
  #eofByClose = false;

  constructor(
    private readonly id: number,
    private readonly ops: WriterOps,
  ) {}

  get bufferSize(): number {
    // Once dropped, drain reports still in flight count as written but nothing is left to send.
    return this.#dropped ? 0 : this.accepted - this.flushed;
  }

  /** The queue is gone (abort, or the connection was lost): asyncio empties its buffer then. */
  drop(): void {
    this.#dropped = true;
  }

  /** Sends `data`; true when part of it was left queued (the caller then checks its high mark). */
  write(data: ArrayBufferView | ArrayBuffer, closing: boolean): boolean {
    const bytes = toBytes('data', data);
    if (this.#refusedAfterEof('write')) closing = true;
    if (closing) {
      this.#dropWrite();
      return false;
    }
    if (bytes.length === 0) return false;
    return this.#sent(bytes.length, this.ops.write(this.id, bytes));
  }

  writelines(listOfData: Iterable<ArrayBufferView | ArrayBuffer>, closing: boolean): boolean {
    if (listOfData === null || typeof (listOfData as any)?.[Symbol.iterator] !== 'function') {
      throw new TypeError('The "listOfData" argument must be an iterable of bytes');
    }
    const views: Uint8Array[] = [];
    let total = 0;
    for (const d of listOfData) {
      const v = toBytes('listOfData[]', d);
      if (v.length > 0) {
        views.push(v);
        total += v.length;
      }
    }
    if (this.#refusedAfterEof('writelines')) closing = true;
    if (closing) {
      this.#dropWrite();
      return false;
    }
    if (total === 0) return false;
    return this.#sent(total, this.ops.writev(this.id, views));
  }

  /** The engine reported `n` queued bytes sent. */
  drained(n: number): void {
    this.flushed += n;
  }

  /** Half-closes once the queue is sent; false when it was already asked for or the stream closes. */
  writeEof(closing: boolean, byClose = false): boolean {
    if (closing || this.eofWritten) return false;
    this.eofWritten = true;
    this.#eofByClose = byClose;
    this.ops.writeEof(this.id);
    return true;
  }

  /**
   * After `writeEof()` a write raises (asyncio's `Cannot call write() after write_eof()`); after a
   * pipe's `close()`, which sends EOF too, it is dropped as after any close (true).
   */
  #refusedAfterEof(method: string): boolean {
    if (!this.eofWritten) return false;
    if (this.#eofByClose) return true;
    throw new Error(`Cannot call ${method}() after writeEof()`);
  }

  #sent(total: number, now: number): boolean {
    this.accepted += total;
    this.flushed += now;
    return now < total;
  }

  #dropWrite(): void {
    if (++this.#droppedWrites === LOG_THRESHOLD_FOR_CONNLOST_WRITES) {
      process.emitWarning('protoloop: write() on a closed transport; the data is dropped', 'ProtoloopWarning');
    }
  }
}

/** Who learns when an accepted stream goes away (its `Server`). */
export interface StreamOwner {
  _detach(t: StreamTransport): void;
  /** `startTls` replaced one of the owner's transports by `t`. */
  _attach(t: StreamTransport): void;
}

/**
 * The transport of a byte stream the engine owns. Reads arrive as engine events; writes go to the
 * kernel at once when nothing is queued, and the engine reports the rest as it drains.
 */
export class StreamTransport extends Transport {
  /** @internal */ readonly _id: number;
  /** @internal */ readonly _ops: StreamOps;
  #owner: StreamOwner | null;
  #reader: ReadHalf;
  #writer: WriteHalf;
  #bytesRead = 0;
  #bytesCopied = 0;
  #started = false;
  // Zero-copy receive. The engine is in target mode while `#targetMode`; `#lent` is the view it may be
  // reading into (lent by protocol `#lentTo`); `#pendingView` is a view getBuffer returned that the engine
  // cannot use, filled by copy from the next bytes.
  #targetMode = false;
  #awaitingMarker = false;
  /**
   * TargetMode markers asked for and not yet seen. Only the last one counts: a switch to plain and back
   * before an earlier marker arrives leaves that marker stale, with `Data` events read while target mode
   * was off still behind it; lending on it would let the engine read into the very buffer those copies go to.
   */
  #markersDue = 0;
  #lent: Uint8Array | null = null;
  #lentTo: unknown = null;
  #pendingView: Uint8Array | null = null;
  #pinnedShared = false;
  /** EOF was delivered: no byte can follow, so no buffer is asked for. */
  #eofDelivered = false;
  /** A lend waits for a later turn (setProtocol calls no protocol method inside itself). */
  #lendScheduled = false;
  /** Bytes are being copied into the protocol's buffers: none may be lent meanwhile (see `#copyIn`). */
  #copying = false;
  #forwarding: { resolve: (r: { bytes: number }) => void; reject: (e: Error) => void } | null = null;
  #sendfile: { resolve: (n: number) => void; reject: (e: Error) => void } | null = null;

  /** @internal */
  constructor(id: number, protocol: unknown, extra: Record<string, unknown>, owner: StreamOwner | null, ops: StreamOps = STREAM_OPS) {
    super(protocol, extra);
    this._id = id;
    this._ops = ops;
    this.#owner = owner;
    this.#reader = new ReadHalf(id, this);
    this.#writer = new WriteHalf(id, ops);
    register(id, this);
    retain();
  }

  protected override _liveExtra(name: string): unknown {
    if (name !== 'stats') return super._liveExtra(name);
    return { bytesRead: this.#bytesRead, bytesWritten: this.#writer.flushed, bytesCopiedOnReceive: this.#bytesCopied };
  }

  /**
   * Makes the transport of live stream `id` with a protocol from `protocolFactory`, and calls
   * `connectionMade`. A throwing factory aborts the stream and rethrows.
   * @internal
   */
  static _start<P>(
    id: number,
    protocolFactory: () => P,
    owner: StreamOwner | null,
    ops: StreamOps = STREAM_OPS,
    moreExtra: Record<string, unknown> = {},
    connectionMade = true,
  ): [StreamTransport, P] {
    const protocol = makeProtocol(protocolFactory, () => native.abort(id));
    const fd = native.fd(id);
    const t = new StreamTransport(id, protocol, { ...socketExtra(fd), ...moreExtra }, owner, ops);
    t._sockFd = fd;
    if (connectionMade) t._callProtocol('connectionMade', t);
    t.#startReading();
    return [t, protocol];
  }

  /** Reading starts after `connectionMade`, into the protocol's own buffers if it is buffered. */
  #startReading(): void {
    if (this._closing) return;
    this.#started = true;
    // One call for every stream transport; a TLS connection decrypts into the engine's own memory, so
    // no buffer is lent to it.
    const buffered = this._ops.engineStream && isBuffered(this._protocol);
    native.startReading(this._id, buffered);
    if (buffered) {
      this.#targetMode = true;
      this.#lendBuffer();
    }
  }

  /** @internal */
  _onEvent(kind: EventKind, a: number, b: number, data: Buffer | null): void {
    switch (kind) {
      case EventKind.Data:
      case EventKind.Eof:
      case EventKind.BufferFilled:
      case EventKind.TargetMode:
        this.#reader.push(kind, a, data);
        return;
      case EventKind.TlsFailed:
        // A TLS connection failed at the TLS level: this is the error its Closed event stands for.
        this._pendingExc ??= tlsError(a, b, data);
        return;
      case EventKind.Drained:
        this.#writer.drained(a);
        this._maybeResumeProtocol();
        return;
      case EventKind.ForwardEnded: {
        const f = this.#forwarding;
        this.#forwarding = null;
        f?.resolve({ bytes: a + b * 2 ** 32 });
        return;
      }
      case EventKind.ForwardFailed: {
        // The other transport refused bytes read here (it closed or shut its write side): they are lost.
        const f = this.#forwarding;
        this.#forwarding = null;
        const bytes = data === null ? 0 : Number(data.readBigUInt64LE(0));
        const err = Object.assign(systemError(a, 'write'), { bytesForwarded: bytes });
        err.message = `forwardTo: the other transport refused bytes read from this one (${err.message}); ${bytes} bytes were forwarded before`;
        f?.reject(err);
        return;
      }
      case EventKind.SendfileDone:
      case EventKind.SendfileFailed:
        this._sendfileEvent(kind, a, b, data);
        return;
      case EventKind.Closed:
        this._sendfileEvent(kind, a, b, data);
        this.#reader.clear();
        this.#lent = this.#pendingView = null;
        if (this.#pinnedShared) native.releaseReadTarget(this._id);
        this.#writer.drop(); // unsent bytes died with the connection
        unregister(this._id);
        this._connectionLost(a === 0 ? null : systemError(a, b));
        this.#owner?._detach(this);
        release();
        return;
    }
  }

  /**
   * @internal The outcome of a queued `sendfile` (`SendfileDone`, `SendfileFailed`), or the stream's end
   * (`Closed`, or STARTTLS taking the socket) rejecting one still pending. STARTTLS hands the plain
   * stream's last events here after `_handOver`: a sendfile queued before the upgrade finishes first.
   */
  _sendfileEvent(kind: EventKind, a: number, b: number, data: Buffer | null): void {
    const f = this.#sendfile;
    this.#sendfile = null;
    if (kind === EventKind.SendfileDone) {
      this.#writer.flushed += a + b * 2 ** 32;
      this.#writer.accepted += a + b * 2 ** 32;
      f?.resolve(a + b * 2 ** 32);
    } else if (kind === EventKind.SendfileFailed) {
      const sent = data === null ? 0 : Number(data.readBigUInt64LE(0));
      this.#writer.flushed += sent;
      this.#writer.accepted += sent;
      f?.reject(Object.assign(systemError(a, 'sendfile'), { bytesSent: sent }));
    } else {
      f?.reject(systemError(a || errnoNamed('EPIPE'), b || 'sendfile'));
    }
  }

  /** @internal A read event, in order, once reading is not paused. */
  _deliverRead(kind: EventKind, n: number, data: Buffer | null): void {
    switch (kind) {
      case EventKind.Eof: {
        this.#pendingView = null;
        this.#eofDelivered = true;
        const keepOpen = this._callProtocol('eofReceived');
        // TLS cannot half-close: its transport closes whatever eofReceived returns (asyncio's sslproto).
        if (!keepOpen || !this._ops.canWriteEof) this.close();
        return;
      }
      case EventKind.Data:
        this.#bytesRead += n;
        this.#bytesCopied += n;
        this.#copyIn(data as Buffer);
        // The rest of a copy held back by a pause inside bufferUpdated ends here: lending resumes.
        this.#lendBuffer();
        return;
      case EventKind.BufferFilled: {
        const view = this.#lent as Uint8Array;
        const lentTo = this.#lentTo;
        this.#lent = this.#lentTo = null;
        this.#bytesRead += n;
        if (lentTo === this._protocol) {
          this._callProtocol('bufferUpdated', n);
        } else {
          // The protocol changed since the buffer was lent: hand the bytes to the new one.
          this.#bytesCopied += n;
          this.#copyIn(Buffer.from(view.subarray(0, n)));
        }
        this.#lendBuffer();
        return;
      }
      case EventKind.TargetMode:
        if (--this.#markersDue > 0 || !this.#awaitingMarker) return;
        this.#awaitingMarker = false;
        this.#targetMode = true;
        this.#lendBuffer();
        return;
    }
  }

  /**
   * `#deliverBytes` with lending held back: a protocol that becomes buffered meanwhile (`setProtocol`
   * in a callback) would otherwise lend the engine the very buffer its next `getBuffer()` returns for
   * the copy (one buffer, reused, is the documented pattern), and with I/O threads the engine's read
   * and the copy would overwrite each other. The caller lends once the copy is done; `#lendBuffer` also
   * waits while the rest of a copy is held back (a pause inside `bufferUpdated`).
   */
  #copyIn(bytes: Buffer): void {
    this.#copying = true;
    try {
      this.#deliverBytes(bytes);
    } finally {
      this.#copying = false;
    }
  }

  /** Copied bytes: to `dataReceived`, or into the buffers a buffered protocol hands out. */
  #deliverBytes(bytes: Buffer): void {
    let offset = 0;
    while (offset < bytes.length && !this._closing) {
      // Checked each round: a bufferUpdated callback may have switched protocols.
      if (!isBuffered(this._protocol)) {
        this._callProtocol('dataReceived', offset === 0 ? bytes : bytes.subarray(offset));
        return;
      }
      const view = this.#pendingView ?? this.#getBuffer(bytes.length - offset);
      this.#pendingView = null;
      if (view === null) return;
      if (view.length === 0) {
        // Its ArrayBuffer was detached (transferred) after getBuffer() returned it: the bytes have
        // nowhere to go, and dropping them quietly would lose them.
        this.#badBuffer(new Error('The buffer getBuffer() returned was detached or emptied before bytes arrived'));
        return;
      }
      const n = Math.min(view.length, bytes.length - offset);
      view.set(bytes.subarray(offset, offset + n));
      offset += n;
      this._callProtocol('bufferUpdated', n);
      if (offset < bytes.length && !this.#reader.isReading() && !this._closing) {
        // Paused inside bufferUpdated: the rest waits for resumeReading(). Its `a` is 0: these bytes
        // were counted when the chunk arrived.
        this.#reader.holdFirst(EventKind.Data, 0, bytes.subarray(offset));
        return;
      }
    }
  }

  #badBuffer(exc: Error): void {
    this._fatalError(exc, 'Invalid buffer from BufferedProtocol.getBuffer()');
  }

  /** `protocol.getBuffer(hint)`, checked; null (and the transport failing) when it is unusable. */
  #getBuffer(hint: number): Uint8Array | null {
    const view = this._callProtocol('getBuffer', hint);
    if (this._closing) return null;
    // util.types, not instanceof: a Proxy of a Uint8Array passes instanceof, then refuses every
    // typed-array operation.
    if (!types.isUint8Array(view) || view.length === 0) {
      this.#badBuffer(new TypeError(`getBuffer() must return a non-empty Uint8Array; it returned ${describeBuffer(view)}`));
      return null;
    }
    return view;
  }

  /**
   * In target mode, asks the protocol for its next buffer and lends it to the engine. A buffer the engine
   * cannot write into turns target mode off: bytes are then copied into it (and into later buffers).
   */
  #lendBuffer(): void {
    if (!this.#targetMode || this.#lent !== null || this._closing || this.#copying || this.#reader.holding() || this.#eofDelivered) return;
    if (!isBuffered(this._protocol)) {
      this.#targetModeOff();
      return;
    }
    const protocol = this._protocol;
    const view = this.#getBuffer(READ_HINT);
    if (view === null) return;
    // getBuffer() switched protocols (setProtocol inside it): that buffer was the old protocol's, and
    // setProtocol has already arranged what comes next.
    if (this._protocol !== protocol || !this.#targetMode) return;
    const shared = view.buffer instanceof SharedArrayBuffer;
    const lent = shared ? native.setSharedReadTarget(this._id, view) : native.setReadTarget(this._id, view);
    if (lent) {
      this.#lent = view;
      this.#lentTo = this._protocol;
      this.#pinnedShared ||= shared;
    } else {
      this.#pendingView = view;
      this.#targetModeOff();
    }
  }

  #scheduleLend(): void {
    if (this.#lendScheduled) return;
    this.#lendScheduled = true;
    setImmediate(() => {
      this.#lendScheduled = false;
      try {
        this.#lendBuffer();
      } catch (exc) {
        this._internalError(exc);
      }
    });
  }

  #targetModeOff(): void {
    if (!this.#targetMode && !this.#awaitingMarker) return;
    this.#targetMode = this.#awaitingMarker = false;
    // A target taken back unfilled gets no fill event; one already filled still arrives.
    if (native.setTargetMode(this._id, false)) this.#lent = this.#lentTo = null;
  }

  /** Callbacks go to `protocol` from the next event on; switching to or from a BufferedProtocol loses no byte. */
  override setProtocol(protocol: any): void {
    super.setProtocol(protocol);
    this.#pendingView = null;
    if (!this.#started || this._closing || !this._ops.engineStream) return;
    if (!isBuffered(protocol)) {
      this.#targetModeOff();
    } else if (this.#targetMode) {
      // Still lent to the old protocol? Its fill is copied over, then the new protocol lends. Not inside
      // this call: asyncio never runs a protocol method inside a transport method (a getBuffer that calls
      // setProtocol recursed until the stack ran out).
      this.#scheduleLend();
    } else if (!this.#awaitingMarker) {
      // Data events already queued are copied; the marker says when reads go into lent memory.
      this.#awaitingMarker = true;
      this.#markersDue++;
      native.setTargetMode(this._id, true);
    }
  }

  isReading(): boolean {
    return this.#reader.isReading();
  }

  pauseReading(): void {
    this.#reader.pause();
  }

  resumeReading(): void {
    this.#reader.resume();
  }

  override getWriteBufferSize(): number {
    return this.#writer.bufferSize;
  }

  write(data: ArrayBufferView | ArrayBuffer): void {
    if (this.#writer.write(data, this._closing)) this._maybePauseProtocol();
  }

  writelines(listOfData: Iterable<ArrayBufferView | ArrayBuffer>): void {
    if (this.#writer.writelines(listOfData, this._closing)) this._maybePauseProtocol();
  }

  /**
   * Has the engine copy everything this transport reads into `other` without the bytes entering
   * JavaScript: reading pauses while `other` has more than `highWater` bytes queued (its high mark by
   * default) until it drains to `lowWater`, and EOF here becomes `writeEof()` there. Either side may be
   * TLS (termination, origination, TLS to TLS; the bytes forwarded are plaintext). TLS cannot half-close:
   * EOF (close_notify) from a TLS transport becomes `writeEof()` on a plain `other`, and EOF into a TLS
   * `other` flushes what was forwarded, then closes it (close_notify). Resolves to `{ bytes }` when this
   * side's stream ends (EOF, error or close); rejects with `EPIPE` (and `bytesForwarded`) when `other`
   * refuses bytes read here (it closed or shut its write side meanwhile): those bytes are lost. Throws
   * at once when this side already received EOF or `other` takes no more bytes. This protocol gets no
   * data meanwhile, but still `eofReceived` and `connectionLost`. (A protoloop extension.)
   */
  forwardTo(other: Transport, options: { highWater?: number; lowWater?: number } = {}): Promise<{ bytes: number }> {
    if (!(other instanceof StreamTransport)) {
      throw new TypeError('The "other" argument must be a stream transport made by protoloop (TCP or Unix socket)');
    }
    if (other === this) throw new TypeError('The "other" argument must be another transport than this one');
    checkObject('options', options);
    const [low, high] = other.getWriteBufferLimits();
    const highWater = checkInteger('options.highWater', options?.highWater ?? high, 0, Number.MAX_SAFE_INTEGER);
    const lowWater = checkInteger('options.lowWater', options?.lowWater ?? Math.min(low, highWater), 0, highWater);
    if (this._closing || other._closing) throw new Error('Cannot forward from or to a closing transport');
    if (this.#forwarding !== null) throw new Error('This transport is already forwarding');
    if (other.#writer.eofWritten) throw new Error('Cannot forward into a transport after its writeEof(): it takes no more bytes');
    const refused = native.forwardTo(this._id, other._id, highWater, lowWater);
    if (refused !== 0) throw new Error(FORWARD_REFUSED[refused] ?? FORWARD_REFUSED[1]);
    return new Promise((resolve, reject) => (this.#forwarding = { resolve, reject }));
  }

  /** @internal `sendfile(2)` in the engine; see `sendfile()`. */
  _sendfileNative(fd: number, offset: number, count: number | null): Promise<number> {
    if (this._closing) return Promise.reject(new Error('The transport is closing'));
    if (this.#sendfile !== null) return Promise.reject(new Error('A sendfile() is already running on this transport'));
    const r = native.sendfile(this._id, fd, offset, count);
    if (r < 0) return Promise.reject(systemError(r, 'sendfile'));
    return new Promise((resolve, reject) => (this.#sendfile = { resolve, reject }));
  }

  writeEof(): void {
    if (!this._ops.canWriteEof) throw new Error('TLS transports do not support writeEof(): TLS cannot half-close');
    this.#writer.writeEof(this._closing);
  }

  canWriteEof(): boolean {
    return this._ops.canWriteEof;
  }

  /**
   * STARTTLS: this transport gives its connection up to a TLS one. No callback reaches its protocol
   * again; returns the bytes it had received but not delivered (paused), which belong to the TLS
   * session, and who owned it.
   * @internal
   */
  _handOver(): { held: Buffer[]; owner: StreamOwner | null; lent: Uint8Array | null } {
    // What it reads goes to the engine's forward, not to a TLS session; the promise would never settle.
    if (this.#forwarding !== null) throw new Error('Cannot start TLS on a transport that is forwarding (forwardTo)');
    // Bytes already read: copies (Data) or fills of the buffer lent to the engine (BufferFilled).
    const lent = this.#lent;
    const held: Buffer[] = [];
    for (const [k, n, d] of this.#reader.takeHeld()) {
      if (k === EventKind.Data && d !== null) held.push(Buffer.from(d));
      else if (k === EventKind.BufferFilled && lent !== null) held.push(Buffer.from(lent.subarray(0, n)));
    }
    this.#reader.clear();
    this._closing = true;
    this._lost = true;
    unregister(this._id);
    const owner = this.#owner;
    owner?._detach(this);
    this.#owner = null;
    release();
    return { held, owner, lent };
  }

  close(): void {
    this._closeHandle('close', () => this.#reader.clear());
  }

  abort(): void {
    this._abort();
  }

  /** @internal */
  protected _abort(): void {
    this._closeHandle('abort', () => {
      this.#reader.clear();
      this.#writer.drop(); // asyncio's abort() empties the buffer at once
    });
  }

  override toString(): string {
    return `<${this._ops.canWriteEof ? 'StreamTransport' : 'TlsTransport'} id=${this._id}${this._closing ? ' closing' : ''}>`;
  }
}

/** Why the engine refused a forward (`protoloop_engine::stream::ForwardRefused`). */
const FORWARD_REFUSED: Record<number, string> = {
  1: 'Cannot forward from or to a closed transport',
  2: 'This transport is already forwarding',
  3: 'Cannot forward from a transport that has already received EOF: its stream has ended (eofReceived is or was called); pass the half-close on with writeEof() on the other transport',
  4: 'Cannot forward into a transport that takes no more bytes (closing, or after its writeEof())',
};

function describeBuffer(v: unknown): string {
  if (types.isProxy(v)) return 'a Proxy';
  if (types.isUint8Array(v)) return 'an empty Uint8Array';
  if (v === null || v === undefined) return String(v);
  if (typeof v !== 'object') return `a ${typeof v}`;
  try {
    return `a ${(v as object).constructor?.name ?? 'object'}`;
  } catch {
    return 'an object';
  }
}
