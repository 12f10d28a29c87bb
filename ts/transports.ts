// The transport classes of asyncio. Users never construct them; the library's transports extend
// them, so `instanceof` works as in Python.
//
// `BaseTransport` also carries what every transport kind shares, as uvloop's UVBaseTransport does:
// the protocol and extra info, the once-only connection lifecycle, write flow control marks, and
// routing of protocol exceptions to the loop's exception handler. A transport kind supplies a few
// hooks (`getWriteBufferSize`, `abort`) and calls `_callProtocol` / `_connectionLost`.
import { asError, checkInteger, safeString } from './errors';
import { getRunningLoop } from './loop';
import type { Address } from './protocols';
import { native } from './native';
import { TransportSocket } from './socket';

/** The default high-water mark of write flow control (asyncio's 64 KiB); low defaults to high/4. */
export const DEFAULT_HIGH_WATER = 64 * 1024;

type AnyProtocol = any;

export abstract class BaseTransport {
  /** @internal */ protected _protocol: AnyProtocol;
  /** @internal */ protected _extra: Record<string, unknown>;
  /** @internal close() or abort() was called, or the connection is gone. */ protected _closing = false;
  /** @internal connectionLost has been called. */ protected _lost = false;
  /** @internal the error to report when an abort we started completes. */ protected _pendingExc: Error | null = null;
  #high = DEFAULT_HIGH_WATER;
  #low = DEFAULT_HIGH_WATER / 4;
  #protocolPaused = false;
  // Per-connection state is allocated when first needed: a server holding 10,000 idle connections
  // pays for every field of every transport (see the memory benchmark).
  #drainWaiters: Array<{ limit: number; resolve: () => void; reject: (e: Error) => void }> | null = null;
  /** @internal The descriptor behind extra info `'socket'` (-1: no socket), wrapped on first ask. */
  protected _sockFd = -1;
  #socket: TransportSocket | null = null;

  /** @internal */
  protected constructor(protocol: AnyProtocol, extra: Record<string, unknown>) {
    this._protocol = protocol;
    this._extra = extra;
  }

  /** Information about the transport (`'peername'`, `'sockname'`, `'socket'`, ...), or `defaultValue`. */
  getExtraInfo<T = any>(name: string, defaultValue?: T): T | any {
    // Names are strings: anything else is no key here (and may refuse to become one).
    if (typeof name !== 'string') return defaultValue ?? null;
    // Own keys only: 'constructor' or '__proto__' are not extra info (asyncio's dict.get).
    const v = (Object.hasOwn(this._extra, name) ? this._extra[name] : undefined) ?? this._liveExtra(name);
    return v === undefined ? (defaultValue ?? null) : typeof v === 'function' ? v() : v;
  }

  /**
   * Extra info computed when asked (counters), for the kinds that have some. A hook rather than a
   * closure stored in `_extra`: adding a property to each transport's extra object gave every one of
   * them a hidden class of its own (10,000 connections, 10,000 maps).
   * @internal
   */
  protected _liveExtra(name: string): unknown {
    if (name === 'socket' && this._sockFd >= 0) return (this.#socket ??= new TransportSocket(this._sockFd, () => !this._lost));
    return undefined;
  }

  /** Callbacks go to `protocol` from the next event on. */
  setProtocol(protocol: AnyProtocol): void {
    if (protocol === null || typeof protocol !== 'object') {
      throw new TypeError('The "protocol" argument must be a protocol object');
    }
    this._protocol = protocol;
  }

  getProtocol(): AnyProtocol {
    return this._protocol;
  }

  /** True once `close()` or `abort()` was called or the connection was lost. */
  isClosing(): boolean {
    return this._closing;
  }

  /** Closes the transport; buffered data is flushed first, then `connectionLost(null)`. */
  abstract close(): void;

  // ---- write flow control, shared by every transport that writes ----

  /** Bytes accepted by `write()` that the kernel has not taken yet. */
  getWriteBufferSize(): number {
    return 0;
  }

  /** `[low, high]`. */
  getWriteBufferLimits(): [number, number] {
    return [this.#low, this.#high];
  }

  /**
   * Sets the marks: `pauseWriting()` when the buffer goes strictly over `high`, `resumeWriting()` when
   * it drains to `low` or below. `high` defaults to 64 KiB (or 4 × `low`), `low` to `high / 4`.
   */
  setWriteBufferLimits(high?: number | null, low?: number | null): void {
    if (high !== undefined && high !== null) checkInteger('high', high, 0, Number.MAX_SAFE_INTEGER);
    if (low !== undefined && low !== null) checkInteger('low', low, 0, Number.MAX_SAFE_INTEGER);
    let h = high ?? (low == null ? DEFAULT_HIGH_WATER : 4 * low);
    const l = low ?? Math.floor(h / 4);
    if (l > h) {
      throw new RangeError(`The value of "low" is out of range. It must be <= high (${h}). Received ${l}`);
    }
    this.#high = h;
    this.#low = l;
    this._maybePauseProtocol();
    this._maybeResumeProtocol();
  }

  /** @internal Call after the buffer grew. */
  protected _maybePauseProtocol(): void {
    if (this.#protocolPaused || this.getWriteBufferSize() <= this.#high) return;
    this.#protocolPaused = true;
    this._callProtocol('pauseWriting');
  }

  /** @internal Resolves once at most `limit` bytes are buffered; rejects if the connection is lost. */
  _waitForBuffer(limit: number): Promise<void> {
    if (this._lost) return Promise.reject(new Error('The transport is closed'));
    if (this.getWriteBufferSize() <= limit) return Promise.resolve();
    return new Promise((resolve, reject) => (this.#drainWaiters ??= []).push({ limit, resolve, reject }));
  }

  /** @internal Call after the buffer shrank. */
  protected _maybeResumeProtocol(): void {
    if (this.#drainWaiters !== null && this.#drainWaiters.length > 0) {
      const size = this.getWriteBufferSize();
      const ready = this.#drainWaiters.filter((w) => size <= w.limit);
      this.#drainWaiters = this.#drainWaiters.filter((w) => size > w.limit);
      for (const w of ready) w.resolve();
    }
    if (!this.#protocolPaused || this.getWriteBufferSize() > this.#low) return;
    this.#protocolPaused = false;
    // A protocol that closed its transport is not told to write again.
    if (!this._closing) this._callProtocol('resumeWriting');
  }

  // ---- lifecycle and error routing ----

  /**
   * Calls `protocol[method](...args)` if the protocol has it. An exception goes to the loop's exception
   * handler and aborts this transport with it; `undefined` is returned then.
   * @internal
   */
  _callProtocol(method: string, ...args: unknown[]): unknown {
    const p = this._protocol;
    try {
      // Looked up inside the guard too: a protocol may be a Proxy whose property reads throw.
      const fn = p?.[method];
      return typeof fn === 'function' ? fn.apply(p, args) : undefined;
    } catch (exc) {
      this._fatalError(exc, `Exception in protocol callback ${method}()`);
      return undefined;
    }
  }

  /**
   * @internal Reports `exc` and aborts the transport; `connectionLost(exc)` follows. Survives any
   * thrown value: the exception handler never throws and the value becomes an `Error` safely.
   */
  _fatalError(exc: unknown, message: string): void {
    getRunningLoop().callExceptionHandler({ message, exception: exc, transport: this, protocol: this._protocol });
    if (this._lost) return;
    this._pendingExc ??= asError(exc);
    this._abort();
  }

  /** @internal An event handler of ours failed: the transport cannot be trusted to deliver, so it fails. */
  _internalError(exc: unknown): void {
    this._fatalError(exc, `protoloop: internal error while handling an event of ${safeString(this)}`);
  }

  /** @internal The kind's way of dropping everything and closing now. */
  protected abstract _abort(): void;

  /** @internal The engine handle behind the transport (one id space for every kind). */
  abstract readonly _id: number;

  /**
   * @internal What `close()` and `abort()` of the engine-backed kinds share: once only, `letGo` sends or
   * drops what JavaScript still holds for the handle (held reads, deferred datagrams, queued bytes), then
   * the engine closes it, after flushing (`close`) or at once (`abort`); `connectionLost` follows.
   */
  protected _closeHandle(how: 'close' | 'abort', letGo: () => void): void {
    if (how === 'close' ? this._closing : this._lost) return;
    letGo();
    this._closing = true;
    if (how === 'close') native.close(this._id);
    else native.abort(this._id);
  }

  /** @internal Delivers `connectionLost` exactly once; later events are ignored. */
  _connectionLost(exc: Error | null): boolean {
    if (this._lost) return false;
    this._lost = true;
    this._closing = true;
    const waiters = this.#drainWaiters ?? [];
    this.#drainWaiters = null;
    for (const w of waiters) w.reject(exc ?? new Error('The transport was closed'));
    const p = this._protocol;
    try {
      const fn = p?.connectionLost;
      if (typeof fn === 'function') fn.call(p, this._pendingExc ?? exc);
    } catch (e) {
      getRunningLoop().callExceptionHandler({ message: 'Exception in protocol callback connectionLost()', exception: e, transport: this, protocol: p });
    }
    return true;
  }
}

/**
 * Calls a protocol factory for an engine handle that is already open; if the factory throws, the
 * handle is dropped with `abort` and the exception goes on to the caller.
 * @internal
 */
export function makeProtocol<P>(protocolFactory: () => P, abort: () => void): P {
  let protocol: P;
  try {
    protocol = protocolFactory();
  } catch (exc) {
    abort();
    throw exc;
  }
  // A factory that forgot its `return` would otherwise leave a live connection with nobody to tell.
  if (protocol === null || typeof protocol !== 'object') {
    abort();
    throw new TypeError(`The "protocolFactory" argument must return a protocol object; it returned ${protocol === null ? 'null' : typeof protocol}`);
  }
  return protocol;
}

/** A protocol from `protocolFactory` before anything is opened for it (pipes, subprocesses): checked as `makeProtocol` does. @internal */
export function newProtocol<P>(protocolFactory: () => P): P {
  return makeProtocol(protocolFactory, () => {});
}

/** Mixes the read/write interfaces of asyncio's `Transport(ReadTransport, WriteTransport)`. */
function isKind(base: Function, o: unknown): boolean {
  return Function.prototype[Symbol.hasInstance].call(base, o) || o instanceof Transport;
}

/** A transport that receives (a read pipe, the read side of a stream). */
export abstract class ReadTransport extends BaseTransport {
  static override [Symbol.hasInstance](o: unknown): boolean {
    return this === ReadTransport ? isKind(ReadTransport, o) : Function.prototype[Symbol.hasInstance].call(this, o);
  }
  abstract isReading(): boolean;
  /** No data reaches the protocol until `resumeReading()`; idempotent. */
  abstract pauseReading(): void;
  abstract resumeReading(): void;
}

/** A transport that sends (a write pipe, the write side of a stream). */
export abstract class WriteTransport extends BaseTransport {
  static override [Symbol.hasInstance](o: unknown): boolean {
    return this === WriteTransport ? isKind(WriteTransport, o) : Function.prototype[Symbol.hasInstance].call(this, o);
  }
  abstract write(data: ArrayBufferView | ArrayBuffer): void;
  abstract writelines(listOfData: Iterable<ArrayBufferView | ArrayBuffer>): void;
  abstract writeEof(): void;
  abstract canWriteEof(): boolean;
  /** Closes at once; buffered data is lost; `connectionLost(null)` follows soon after. */
  abstract abort(): void;
}

/** A bidirectional stream (TCP, Unix socket, TLS): both a `ReadTransport` and a `WriteTransport`. */
export abstract class Transport extends BaseTransport {
  abstract isReading(): boolean;
  abstract pauseReading(): void;
  abstract resumeReading(): void;
  abstract write(data: ArrayBufferView | ArrayBuffer): void;
  abstract writelines(listOfData: Iterable<ArrayBufferView | ArrayBuffer>): void;
  abstract writeEof(): void;
  abstract canWriteEof(): boolean;
  abstract abort(): void;
  /**
   * Has the engine copy everything this transport reads into `other`, without the bytes entering
   * JavaScript (a protoloop extension; see `StreamTransport.forwardTo`).
   */
  abstract forwardTo(other: Transport, options?: { highWater?: number; lowWater?: number }): Promise<{ bytes: number }>;
}

/** A datagram (UDP) transport. */
export abstract class DatagramTransport extends BaseTransport {
  abstract sendto(data: ArrayBufferView | ArrayBuffer, addr?: Address | null): void;
  abstract abort(): void;
}

/** A child process with pipes to its stdio. */
export abstract class SubprocessTransport extends BaseTransport {
  abstract getPid(): number;
  abstract getReturncode(): number | null;
  abstract getPipeTransport(fd: number): ReadTransport | WriteTransport | null;
  abstract sendSignal(signal: number | string): void;
  abstract terminate(): void;
  abstract kill(): void;
}
