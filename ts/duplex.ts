// Node streams interop (a protoloop extension): `DuplexProtocol`, a protocol whose `stream` is a Node
// `stream.Duplex` over its transport, so that Node's own libraries (`http`, `stream.pipeline`, anything
// that takes a socket-like Duplex) run on protoloop's connections. Back-pressure goes both ways through
// the transport's flow control: a `push()` that returns false pauses reading, and a write callback
// waits while the transport is paused for writing.
import { Duplex } from 'node:stream';
import { checkDuration, checkFunction } from './errors';
import { Protocol } from './protocols';
import { constants } from './socket';
import type { Transport } from './transports';

type WriteCallback = (error?: Error | null) => void;

/** The error of a write once the connection is gone, as a Node socket's. */
function closedError(): Error {
  return Object.assign(new Error('This socket has been closed'), { code: 'EPIPE' });
}

/**
 * The Node `Duplex` side of a `DuplexProtocol`, with the members of a `net.Socket` that Node's `http`
 * (server and client) looks for. It exists from the protocol's construction; writes made before the
 * connection is up wait for it, as a connecting `net.Socket`'s do.
 */
export class TransportDuplex extends Duplex {
  #transport: Transport | null = null;
  /** The connection is gone (connectionLost ran). */
  #gone = false;
  /** We paused reading because `push()` returned false; `_read()` resumes it. */
  #readPaused = false;
  /** The transport is over its high-water mark (between pauseWriting and resumeWriting). */
  #writePaused = false;
  /** The write callback held back until the transport drains. */
  #heldCallback: WriteCallback | null = null;
  /** A write, and an end, that came before the connection did. */
  #early: { chunks: Buffer[]; callback: WriteCallback } | null = null;
  #earlyFinal: WriteCallback | null = null;
  #timeoutMs = 0;
  #timer: NodeJS.Timeout | null = null;

  /** @internal Made by `DuplexProtocol`. */
  constructor() {
    // allowHalfOpen: the peer's EOF ends the readable side only; writing goes on until end().
    super({ allowHalfOpen: true });
  }

  /** The protoloop transport underneath, once connected (null before). */
  get transport(): Transport | null {
    return this.#transport;
  }

  // ---- from the protocol ----

  /** @internal */
  _attach(transport: Transport): void {
    this.#transport = transport;
    if (this.destroyed) {
      // Destroyed while connecting: nothing is wanted from this connection.
      transport.abort();
      return;
    }
    this.#touch();
    const early = this.#early;
    this.#early = null;
    if (early !== null) this.#send(early.chunks, early.callback);
    const final = this.#earlyFinal;
    this.#earlyFinal = null;
    if (final !== null) this._final(final);
    this.emit('connect');
    this.emit('ready');
  }

  /** @internal */
  _data(data: Buffer): void {
    this.#touch();
    if (!this.push(data) && !this.#readPaused && this.#transport !== null) {
      this.#readPaused = true;
      this.#transport.pauseReading();
    }
  }

  /** @internal */
  _eof(): void {
    this.#touch();
    this.push(null);
  }

  /** @internal */
  _pauseWriting(): void {
    this.#writePaused = true;
  }

  /** @internal */
  _resumeWriting(): void {
    this.#writePaused = false;
    const cb = this.#heldCallback;
    this.#heldCallback = null;
    cb?.();
  }

  /** @internal */
  _lost(exc: Error | null): void {
    this.#gone = true;
    this.#clearTimer();
    if (exc !== null) {
      this.destroy(exc);
      return;
    }
    // A clean close: what was written went out (close() flushes), and what arrived is still readable.
    const cb = this.#heldCallback;
    this.#heldCallback = null;
    cb?.();
    if (this.destroyed) return;
    if (!this.readableEnded) this.push(null);
    if (this.readableEnded) this.destroy();
    else this.once('end', () => this.destroy());
  }

  // ---- the Duplex implementation ----

  override _read(_size: number): void {
    if (!this.#readPaused) return;
    this.#readPaused = false;
    this.#transport?.resumeReading();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: WriteCallback): void {
    this.#send([chunk], callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>, callback: WriteCallback): void {
    this.#send(
      chunks.map((c) => c.chunk),
      callback,
    );
  }

  #send(chunks: Buffer[], callback: WriteCallback): void {
    const t = this.#transport;
    if (t === null) {
      // Writable hands one write (or writev) at a time: there is at most one early write.
      this.#early = { chunks, callback };
      return;
    }
    if (this.#gone) {
      callback(closedError());
      return;
    }
    try {
      if (chunks.length === 1) t.write(chunks[0]);
      else t.writelines(chunks);
    } catch (exc) {
      callback(exc as Error);
      return;
    }
    this.#touch();
    // pauseWriting() ran inside write() when it took the buffer over the high mark.
    if (this.#writePaused) this.#heldCallback = callback;
    else callback();
  }

  override _final(callback: WriteCallback): void {
    const t = this.#transport;
    if (t === null) {
      this.#earlyFinal = callback;
      return;
    }
    if (!this.#gone) {
      // TLS cannot half-close: ending its writable side closes the connection.
      if (t.canWriteEof()) t.writeEof();
      else t.close();
    }
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#clearTimer();
    const t = this.#transport;
    if (t !== null && !this.#gone) {
      if (error) t.abort();
      else t.close();
    }
    const held = this.#heldCallback;
    this.#heldCallback = null;
    held?.(error);
    const early = this.#early;
    this.#early = null;
    early?.callback(error ?? closedError());
    callback(error);
  }

  // ---- what Node's net.Socket has and http uses ----

  /** Ends the writable side, then destroys the stream once it finished (as `net.Socket`'s). */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }

  /**
   * Emits `'timeout'` after `ms` without reading or writing (0 turns it off); `callback` is added as a
   * one-time `'timeout'` listener. It never closes anything by itself, as `net.Socket`'s.
   */
  setTimeout(ms: number, callback?: () => void): this {
    checkDuration('ms', ms);
    if (callback !== undefined) {
      checkFunction('callback', callback);
      if (ms === 0) this.removeListener('timeout', callback);
      else this.once('timeout', callback);
    }
    this.#timeoutMs = ms;
    this.#clearTimer();
    if (ms > 0 && !this.destroyed) {
      this.#timer = setTimeout(() => this.emit('timeout'), ms);
      // Like a net.Socket's timeout, it does not keep the process alive by itself.
      this.#timer.unref();
    }
    return this;
  }

  /** The idle timeout set with `setTimeout`, in ms (0: none). */
  get timeout(): number {
    return this.#timeoutMs;
  }

  #touch(): void {
    this.#timer?.refresh();
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** `TCP_NODELAY` (protoloop's TCP transports start with it set). A no-op on other sockets. */
  setNoDelay(noDelay = true): this {
    if (this.#isTcp()) this.#setsockopt(constants.IPPROTO_TCP, constants.TCP_NODELAY, noDelay ? 1 : 0);
    return this;
  }

  /** `SO_KEEPALIVE`, and the idle time before the first probe (`TCP_KEEPIDLE`, rounded to seconds). */
  setKeepAlive(enable = false, initialDelayMs = 0): this {
    if (!this.#isTcp()) return this;
    this.#setsockopt(constants.SOL_SOCKET, constants.SO_KEEPALIVE, enable ? 1 : 0);
    if (enable && initialDelayMs > 0 && constants.TCP_KEEPIDLE !== undefined) {
      this.#setsockopt(constants.IPPROTO_TCP, constants.TCP_KEEPIDLE, Math.max(1, Math.floor(initialDelayMs / 1000)));
    }
    return this;
  }

  #isTcp(): boolean {
    return Array.isArray(this.#transport?.getExtraInfo('peername'));
  }

  #setsockopt(level: number, option: number, value: number): void {
    try {
      this.#transport?.getExtraInfo('socket')?.setsockopt(level, option, value);
    } catch {
      // The connection closed meanwhile: Node's socket ignores these calls then too.
    }
  }

  /** Kept for `http.Agent`, which calls them on pooled sockets; a protoloop transport always holds the process. */
  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  #address(name: 'peername' | 'sockname'): [string, number] | null {
    const a = this.#transport?.getExtraInfo(name);
    return Array.isArray(a) ? [a[0], a[1]] : null;
  }

  get remoteAddress(): string | undefined {
    return this.#address('peername')?.[0];
  }

  get remotePort(): number | undefined {
    return this.#address('peername')?.[1];
  }

  get remoteFamily(): string | undefined {
    const a = this.#address('peername');
    return a === null ? undefined : a[0].includes(':') ? 'IPv6' : 'IPv4';
  }

  get localAddress(): string | undefined {
    return this.#address('sockname')?.[0];
  }

  get localPort(): number | undefined {
    return this.#address('sockname')?.[1];
  }

  /** `{ address, family, port }` of this end, as `net.Socket.address()` (`{}` when not a TCP socket). */
  address(): { address: string; family: string; port: number } | Record<string, never> {
    const a = this.#address('sockname');
    return a === null ? {} : { address: a[0], family: a[0].includes(':') ? 'IPv6' : 'IPv4', port: a[1] };
  }

  /** True until the connection is made. */
  get connecting(): boolean {
    return this.#transport === null && !this.destroyed;
  }

  get pending(): boolean {
    return this.#transport === null;
  }

  /** As `net.Socket.readyState`. */
  get readyState(): 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.#transport === null) return this.destroyed ? 'closed' : 'opening';
    if (this.destroyed) return 'closed';
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    if (this.writable) return 'writeOnly';
    return 'closed';
  }

  /** Bytes received from the transport. */
  get bytesRead(): number {
    return this.#transport?.getExtraInfo('stats')?.bytesRead ?? 0;
  }

  /** Bytes the kernel has taken. */
  get bytesWritten(): number {
    return this.#transport?.getExtraInfo('stats')?.bytesWritten ?? 0;
  }
}

/**
 * A `Protocol` whose `stream` is a Node `Duplex` over the transport (a protoloop extension): Node's own
 * libraries then run on protoloop's connections. `onStream(duplex)` is called from `connectionMade`.
 *
 * ```ts
 * const server = http.createServer(handler);
 * await createServer(() => new DuplexProtocol((duplex) => server.emit('connection', duplex)), '127.0.0.1', 8080);
 * ```
 */
export class DuplexProtocol extends Protocol {
  /** The Node stream; it exists from construction on and is connected from `connectionMade`. */
  readonly stream: TransportDuplex;
  /** The transport, once `connectionMade` ran. */
  transport: Transport | null = null;
  readonly #onStream: ((duplex: TransportDuplex) => void) | null;
  /** `onStream` threw: the exception handler has the error, and nobody holds the stream to hear it again. */
  #onStreamFailed = false;

  constructor(onStream?: ((duplex: TransportDuplex) => void) | null) {
    super();
    if (onStream !== undefined && onStream !== null) checkFunction('onStream', onStream);
    this.#onStream = onStream ?? null;
    this.stream = new TransportDuplex();
  }

  override connectionMade(transport: Transport): void {
    this.transport = transport;
    try {
      this.#onStream?.(this.stream);
    } catch (exc) {
      this.#onStreamFailed = true;
      throw exc; // to the transport's guard: the exception handler, then abort
    }
    this.stream._attach(transport);
  }

  override dataReceived(data: Buffer): void {
    this.stream._data(data);
  }

  override eofReceived(): boolean {
    this.stream._eof();
    return true;
  }

  override pauseWriting(): void {
    this.stream._pauseWriting();
  }

  override resumeWriting(): void {
    this.stream._resumeWriting();
  }

  override connectionLost(exc: Error | null): void {
    // An 'error' event without a listener would throw out of this callback (and crash the process).
    if (this.#onStreamFailed) this.stream.destroy();
    else this.stream._lost(exc);
  }
}
