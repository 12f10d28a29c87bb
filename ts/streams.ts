// asyncio's high-level streams (CPython 3.12's asyncio/streams.py) on protoloop's transports:
// `openConnection` / `startServer` and their Unix twins, `StreamReader`, `StreamWriter`, and the
// protocol joining them to a transport (`StreamReaderProtocol`). Everything here goes through the
// public transport API; nothing reaches into the engine.
import { asError, checkFunction, checkInteger, checkObject, toBytes } from './errors';
import { getRunningLoop } from './loop';
import { Protocol } from './protocols';
import { createServer, type CreateServerOptions, type Server } from './server';
import { createConnection, type CreateConnectionOptions } from './connect';
import { startTls, type SslOptions, type StartTlsOptions } from './tls';
import type { Transport } from './transports';
import { createUnixConnection, createUnixServer, type CreateUnixConnectionOptions, type CreateUnixServerOptions } from './unix';

/** asyncio's `_DEFAULT_LIMIT`: the line length limit, and half of what a reader buffers before it pauses reading. */
export const DEFAULT_LIMIT = 64 * 1024;

const NEWLINE = Buffer.from('\n');
const EMPTY = Buffer.alloc(0);

/**
 * A read reached EOF before it was satisfied (asyncio's `IncompleteReadError`). `partial` holds the
 * bytes read before EOF (they are consumed); `expected` is how many were asked for, or `null` for
 * `readuntil()`.
 */
export class IncompleteReadError extends Error {
  override name = 'IncompleteReadError';
  readonly partial: Buffer;
  readonly expected: number | null;

  constructor(partial: Buffer, expected: number | null) {
    super(`${partial.length} bytes read on a total of ${expected === null ? 'undefined' : expected} expected bytes`);
    this.partial = partial;
    this.expected = expected;
  }
}

/**
 * `readuntil()` found no separator within the limit (asyncio's `LimitOverrunError`). The data stays in
 * the reader's buffer; `consumed` is how many bytes may be taken to get past the limit (the separator's
 * offset when it was found beyond the limit).
 */
export class LimitOverrunError extends Error {
  override name = 'LimitOverrunError';
  readonly consumed: number;

  constructor(message: string, consumed: number) {
    super(message);
    this.consumed = consumed;
  }
}

function checkLimit(name: string, limit: unknown): number {
  if (limit === undefined || limit === null) return DEFAULT_LIMIT;
  if (typeof limit !== 'number') throw new TypeError(`The "${name}" argument must be a number. Received ${typeof limit}`);
  // asyncio: ValueError('Limit cannot be <= 0').
  if (!Number.isInteger(limit) || limit <= 0) {
    throw new RangeError(`The value of "${name}" is out of range. It must be an integer > 0. Received ${limit}`);
  }
  return limit;
}

/**
 * The error a `drain()` rejects with once the connection is gone: asyncio's `ConnectionResetError('Connection
 * lost')`, carrying the code of the error the connection was lost with (and that error as `cause`).
 */
function connectionLostError(exc: Error | null): Error {
  const err = new Error(exc === null ? 'Connection lost' : `Connection lost: ${exc.message}`, exc === null ? undefined : { cause: exc });
  const e = exc as (Error & { code?: unknown; errno?: unknown; syscall?: unknown }) | null;
  if (e?.code !== undefined) Object.assign(err, { code: e.code, errno: e.errno, syscall: e.syscall });
  return err;
}

/** A pending read's wake-up (asyncio's `_waiter` future). */
interface Waiter {
  resolve(): void;
  reject(e: Error): void;
}

/**
 * The reading end of a stream, as asyncio's `StreamReader`: bytes fed by its protocol are buffered and
 * handed out by `read`, `readline`, `readexactly` and `readuntil`. While more than `2 * limit` bytes wait
 * unread, the transport is paused; it resumes once a read brings the buffer to `limit` or below.
 * One read at a time: a second read while one waits for data throws (asyncio's `RuntimeError`).
 *
 * ```ts
 * const [reader, writer] = await openConnection('127.0.0.1', 8888);
 * for await (const line of reader) console.log(line.toString());
 * ```
 */
export class StreamReader {
  readonly #limit: number;
  // The buffer is a queue of received chunks (views of what the transport delivered, never copied
  // on arrival); `#head` is how much of the first one was already consumed.
  #chunks: Buffer[] = [];
  #head = 0;
  #size = 0;
  #eof = false;
  #waiter: Waiter | null = null;
  #exception: Error | null = null;
  #transport: Transport | null = null;
  #paused = false;

  /** `limit` (default 64 KiB): the longest line or `readuntil` chunk, and half the buffer's pause mark. */
  constructor(limit: number = DEFAULT_LIMIT) {
    this.#limit = checkLimit('limit', limit);
  }

  /** The limit this reader was made with. */
  get limit(): number {
    return this.#limit;
  }

  /** The exception the stream failed with (`setException`, or the error the connection was lost with), or null. */
  exception(): Error | null {
    return this.#exception;
  }

  /** Fails the stream: reads throw `exc` from now on, and a read waiting for data rejects with it. */
  setException(exc: Error): void {
    this.#exception = exc;
    const w = this.#waiter;
    this.#waiter = null;
    w?.reject(exc);
  }

  /** The transport to pause and resume for flow control (set once, by the protocol). */
  setTransport(transport: Transport): void {
    if (this.#transport !== null) throw new Error('Transport already set');
    this.#transport = transport;
  }

  /** @internal `StreamWriter.startTls()` replaced the transport: the TLS one starts out reading. */
  _replaceTransport(transport: Transport): void {
    this.#transport = transport;
    this.#paused = false;
    this.#maybePause();
  }

  /** True once EOF was fed and every byte has been read. */
  atEof(): boolean {
    return this.#eof && this.#size === 0;
  }

  /** The peer sent EOF (or the connection closed): reads return what is left, then EOF. */
  feedEof(): void {
    this.#eof = true;
    this.#wakeup();
  }

  /** Bytes for the reader to hand out (copied: the caller may reuse its memory). */
  feedData(data: ArrayBufferView | ArrayBuffer): void {
    const view = toBytes('data', data);
    this._feedOwned(Buffer.from(view));
  }

  /**
   * @internal `feedData` without the copy, for a Buffer nobody writes to again (what a transport's
   * `dataReceived` hands over): the reader keeps views of it.
   */
  _feedOwned(data: Buffer): void {
    if (this.#eof) throw new Error('feedData() after feedEof()');
    if (data.length === 0) return;
    this.#chunks.push(data);
    this.#size += data.length;
    this.#wakeup();
    this.#maybePause();
  }

  #maybePause(): void {
    const t = this.#transport;
    if (t === null || this.#paused || this.#size <= 2 * this.#limit) return;
    this.#paused = true;
    t.pauseReading();
  }

  #maybeResume(): void {
    if (this.#paused && this.#size <= this.#limit) {
      this.#paused = false;
      this.#transport?.resumeReading();
    }
  }

  #wakeup(): void {
    const w = this.#waiter;
    this.#waiter = null;
    w?.resolve();
  }

  /** Waits for `feedData` or `feedEof`; resumes a paused transport first (else `readexactly(n > 2 * limit)` would wait forever). */
  #waitForData(funcName: string): Promise<void> {
    if (this.#waiter !== null) {
      throw new Error(`${funcName}() called while another read is already waiting for incoming data`);
    }
    if (this.#paused) {
      this.#paused = false;
      this.#transport?.resumeReading();
    }
    return new Promise((resolve, reject) => (this.#waiter = { resolve, reject }));
  }

  /**
   * Up to `n` bytes: with `n` > 0, as soon as at least one byte is there (an empty Buffer only at EOF);
   * `n` = 0, an empty Buffer at once; `n` < 0 (the default, -1), everything until EOF.
   */
  async read(n = -1): Promise<Buffer> {
    checkInteger('n', n, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
    if (this.#exception !== null) throw this.#exception;
    if (n === 0) return EMPTY;
    if (n < 0) {
      // In pieces of `limit`, as asyncio does: waiting for everything at once would pause the
      // transport above 2 * limit and never resume it.
      const blocks: Buffer[] = [];
      for (;;) {
        const block = await this.read(this.#limit);
        if (block.length === 0) break;
        blocks.push(block);
      }
      return blocks.length === 1 ? blocks[0] : Buffer.concat(blocks);
    }
    if (this.#size === 0 && !this.#eof) await this.#waitForData('read');
    const data = this.#take(Math.min(n, this.#size));
    this.#maybeResume();
    return data;
  }

  /**
   * One line, through `\n`. At EOF the partial line without `\n`, then empty Buffers. A line longer than
   * `limit` throws a plain `Error` (asyncio's `ValueError`) after dropping it (the whole line when its end
   * is in the buffer, else everything buffered).
   */
  async readline(): Promise<Buffer> {
    try {
      return await this.readuntil(NEWLINE);
    } catch (e) {
      if (e instanceof IncompleteReadError) return e.partial;
      if (e instanceof LimitOverrunError) {
        if (this.#startsWith(NEWLINE, e.consumed)) this.#drop(e.consumed + NEWLINE.length);
        else this.#drop(this.#size);
        this.#maybeResume();
        throw new Error(e.message);
      }
      throw e;
    }
  }

  /**
   * Everything through `separator` (default `\n`), separator included. At EOF without it,
   * `IncompleteReadError` (`expected` null) with what was left, which is consumed. When the separator is
   * not within `limit` bytes, `LimitOverrunError`, the data left in the buffer to read another way.
   */
  async readuntil(separator: ArrayBufferView | ArrayBuffer = NEWLINE): Promise<Buffer> {
    const sep = toBytes('separator', separator);
    if (sep.length === 0) throw new RangeError('The "separator" argument must be at least one byte long');
    if (this.#exception !== null) throw this.#exception;
    // The offset up to which the buffer is known to hold no separator.
    let offset = 0;
    let isep: number;
    for (;;) {
      if (this.#size - offset >= sep.length) {
        isep = this.#indexOf(sep, offset);
        if (isep !== -1) break;
        offset = this.#size + 1 - sep.length;
        if (offset > this.#limit) throw new LimitOverrunError('Separator is not found, and chunk exceed the limit', offset);
      }
      // A whole message may be buffered with EOF already fed: EOF is checked after the search.
      if (this.#eof) throw new IncompleteReadError(this.#take(this.#size), null);
      await this.#waitForData('readuntil');
      if (this.#exception !== null) throw this.#exception;
    }
    if (isep > this.#limit) throw new LimitOverrunError('Separator is found, but chunk is longer than limit', isep);
    const chunk = this.#take(isep + sep.length);
    this.#maybeResume();
    return chunk;
  }

  /** Exactly `n` bytes; at EOF before that, `IncompleteReadError` with the bytes there were (consumed). */
  async readexactly(n: number): Promise<Buffer> {
    checkInteger('n', n, 0, Number.MAX_SAFE_INTEGER);
    if (this.#exception !== null) throw this.#exception;
    if (n === 0) return EMPTY;
    while (this.#size < n) {
      if (this.#eof) throw new IncompleteReadError(this.#take(this.#size), n);
      await this.#waitForData('readexactly');
      if (this.#exception !== null) throw this.#exception;
    }
    const data = this.#take(n);
    this.#maybeResume();
    return data;
  }

  /** `for await (const line of reader)`: each line (as `readline()`) until EOF. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer, void, undefined> {
    for (;;) {
      const line = await this.readline();
      if (line.length === 0) return;
      yield line;
    }
  }

  // ---- the buffer: a queue of chunks ----

  /** Removes and returns the first `n` bytes (`n` <= size): a view when they lie in one chunk, else one copy. */
  #take(n: number): Buffer {
    if (n === 0) return EMPTY;
    const first = this.#chunks[0];
    if (first.length - this.#head >= n) {
      const out = first.subarray(this.#head, this.#head + n);
      this.#advance(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.#chunks[0];
      const k = Math.min(c.length - this.#head, n - filled);
      c.copy(out, filled, this.#head, this.#head + k);
      filled += k;
      this.#advance(k);
    }
    return out;
  }

  #drop(n: number): void {
    while (n > 0) {
      const k = Math.min(this.#chunks[0].length - this.#head, n);
      this.#advance(k);
      n -= k;
    }
  }

  /** Consumes `k` bytes of the first chunk (at most what is left of it). */
  #advance(k: number): void {
    this.#head += k;
    this.#size -= k;
    if (this.#head === this.#chunks[0].length) {
      this.#chunks.shift();
      this.#head = 0;
    }
  }

  /** The offset of `sep` in the buffer at or after `from`, or -1; a separator may straddle chunks. */
  #indexOf(sep: Uint8Array, from: number): number {
    let base = 0; // offset of chunk i's first unread byte in the buffer
    for (let i = 0; i < this.#chunks.length; i++) {
      const c = this.#chunks[i];
      const start = i === 0 ? this.#head : 0;
      const end = base + c.length - start;
      if (end > from) {
        const at = c.indexOf(sep, start + Math.max(0, from - base));
        if (at !== -1) return base + at - start;
        if (sep.length > 1 && i + 1 < this.#chunks.length) {
          for (let p = Math.max(from, end - sep.length + 1); p < end; p++) {
            if (this.#startsWith(sep, p)) return p;
          }
        }
      }
      base = end;
    }
    return -1;
  }

  /** Whether the buffer holds `sep` at offset `pos`. */
  #startsWith(sep: Uint8Array, pos: number): boolean {
    if (pos + sep.length > this.#size) return false;
    let i = 0;
    let off = pos + this.#head;
    while (off >= this.#chunks[i].length) off -= this.#chunks[i++].length;
    for (let j = 0; j < sep.length; j++) {
      if (off === this.#chunks[i].length) {
        i++;
        off = 0;
      }
      if (this.#chunks[i][off++] !== sep[j]) return false;
    }
    return true;
  }

  toString(): string {
    const info = ['StreamReader'];
    if (this.#size > 0) info.push(`${this.#size} bytes`);
    if (this.#eof) info.push('eof');
    if (this.#limit !== DEFAULT_LIMIT) info.push(`limit=${this.#limit}`);
    if (this.#waiter !== null) info.push('waiter');
    if (this.#exception !== null) info.push(`exception=${this.#exception.message}`);
    if (this.#paused) info.push('paused');
    return `<${info.join(' ')}>`;
  }
}

/** `clientConnected(reader, writer)` of `startServer`: may be `async`. */
export type ClientConnected = (reader: StreamReader, writer: StreamWriter) => unknown;

/**
 * The protocol between a transport and a `StreamReader` (asyncio's `StreamReaderProtocol`): it feeds the
 * reader, holds the write flow control `drain()` waits on, and, for servers, makes the `StreamWriter` and
 * calls `clientConnected`. Useful on its own to read a pipe as a stream:
 * `connectReadPipe(() => new StreamReaderProtocol(reader), fd)`.
 */
export class StreamReaderProtocol extends Protocol {
  #reader: StreamReader | null;
  #clientConnected: ClientConnected | null;
  #overSsl = false;
  // Write flow control (asyncio's FlowControlMixin).
  #paused = false;
  #drainWaiters: Waiter[] = [];
  #lost = false;
  #lostExc: Error | null = null;
  #closedWaiters: Waiter[] = [];

  constructor(reader: StreamReader | null, clientConnected: ClientConnected | null = null) {
    super();
    if (reader !== null && !(reader instanceof StreamReader)) throw new TypeError('The "reader" argument must be a StreamReader or null');
    if (clientConnected !== null) checkFunction('clientConnected', clientConnected);
    this.#reader = reader;
    this.#clientConnected = clientConnected;
  }

  /** @internal Whether this protocol serves a server's connection (`startTls` then runs server side). */
  get _serverSide(): boolean {
    return this.#clientConnected !== null;
  }

  /** @internal `StreamWriter.startTls()` moved the stream to a TLS transport. */
  _replaceWriter(writer: StreamWriter): void {
    this.#overSsl = writer.transport.getExtraInfo('sslcontext') != null;
    this.#reader?._replaceTransport(writer.transport);
  }

  override connectionMade(transport: Transport): void {
    this.#reader?.setTransport(transport);
    this.#overSsl = transport.getExtraInfo('sslcontext') != null;
    const cb = this.#clientConnected;
    if (cb === null) return;
    const writer = new StreamWriter(transport, this, this.#reader);
    let res: unknown;
    try {
      res = cb(this.#reader as StreamReader, writer);
    } catch (exc) {
      this.#clientFailed(exc, transport);
      return;
    }
    if (res !== null && typeof res === 'object' && typeof (res as PromiseLike<unknown>).then === 'function') {
      Promise.resolve(res as PromiseLike<unknown>).then(undefined, (exc: unknown) => this.#clientFailed(exc, transport));
    }
  }

  /** asyncio 3.12: the exception handler hears of it, and the transport is closed (what was written is flushed). */
  #clientFailed(exc: unknown, transport: Transport): void {
    getRunningLoop().callExceptionHandler({
      message: 'Unhandled exception in client_connected_cb',
      exception: exc,
      transport,
      protocol: this,
    });
    transport.close();
  }

  override connectionLost(exc: Error | null): void {
    const reader = this.#reader;
    if (reader !== null) {
      if (exc === null) reader.feedEof();
      else reader.setException(exc);
    }
    this.#lost = true;
    this.#lostExc = exc;
    for (const w of this.#closedWaiters.splice(0)) {
      if (exc === null) w.resolve();
      else w.reject(exc);
    }
    // A drain waiting when the connection goes did not get its bytes out (or cannot know it did).
    const err = connectionLostError(exc);
    for (const w of this.#drainWaiters.splice(0)) w.reject(err);
  }

  override dataReceived(data: Buffer): void {
    // The transport's Buffers are never reused by it: the reader keeps views instead of copies.
    this.#reader?._feedOwned(data);
  }

  override eofReceived(): boolean {
    this.#reader?.feedEof();
    // Stay half-open: the writer may still write, then close (TLS closes anyway).
    return !this.#overSsl;
  }

  override pauseWriting(): void {
    this.#paused = true;
  }

  override resumeWriting(): void {
    this.#paused = false;
    for (const w of this.#drainWaiters.splice(0)) w.resolve();
  }

  /** @internal What `drain()` waits on: nothing while not paused; the resume, or the connection's loss. */
  _drainHelper(): Promise<void> {
    if (this.#lost) return Promise.reject(connectionLostError(this.#lostExc));
    if (!this.#paused) return Promise.resolve();
    return new Promise((resolve, reject) => this.#drainWaiters.push({ resolve, reject }));
  }

  /** @internal What `waitClosed()` waits on. Made on demand: a rejection nobody awaits would be an unhandled one. */
  _closeWaiter(): Promise<void> {
    if (this.#lost) return this.#lostExc === null ? Promise.resolve() : Promise.reject(this.#lostExc);
    return new Promise((resolve, reject) => this.#closedWaiters.push({ resolve, reject }));
  }
}

/**
 * The writing end of a stream, as asyncio's `StreamWriter`: `write()` never blocks, and `await drain()`
 * after writing is what waits for the peer (flow control). `close()` flushes, then `waitClosed()` resolves.
 *
 * ```ts
 * writer.write(Buffer.from('hello\n'));
 * await writer.drain();
 * writer.close();
 * await writer.waitClosed();
 * ```
 */
export class StreamWriter {
  #transport: Transport;
  readonly #protocol: StreamReaderProtocol;
  readonly #reader: StreamReader | null;

  constructor(transport: Transport, protocol: StreamReaderProtocol, reader: StreamReader | null = null) {
    if (transport === null || typeof transport !== 'object') throw new TypeError('The "transport" argument must be a transport');
    if (!(protocol instanceof StreamReaderProtocol)) throw new TypeError('The "protocol" argument must be a StreamReaderProtocol');
    if (reader !== null && !(reader instanceof StreamReader)) throw new TypeError('The "reader" argument must be a StreamReader or null');
    this.#transport = transport;
    this.#protocol = protocol;
    this.#reader = reader;
  }

  /** The transport underneath (after `startTls()`, the TLS one). */
  get transport(): Transport {
    return this.#transport;
  }

  /** Queues `data`; never blocks. Follow with `await drain()` to wait while the peer is behind. */
  write(data: ArrayBufferView | ArrayBuffer): void {
    this.#transport.write(data);
  }

  writelines(data: Iterable<ArrayBufferView | ArrayBuffer>): void {
    this.#transport.writelines(data);
  }

  /** Half-closes once the queue is sent (not on TLS: see `canWriteEof()`). */
  writeEof(): void {
    this.#transport.writeEof();
  }

  canWriteEof(): boolean {
    return this.#transport.canWriteEof();
  }

  /** Closes the stream once what was written is sent. */
  close(): void {
    this.#transport.close();
  }

  isClosing(): boolean {
    return this.#transport.isClosing();
  }

  /** Resolves once the connection is closed; rejects with the error it was lost with, if any. */
  waitClosed(): Promise<void> {
    return this.#protocol._closeWaiter();
  }

  getExtraInfo<T = any>(name: string, defaultValue?: T): T | any {
    return this.#transport.getExtraInfo(name, defaultValue);
  }

  /**
   * Resolves at once while the transport's buffer is at or below its high-water mark, else once it
   * drains to the low mark. Rejects with an `Error` saying "Connection lost" (with the `code` of the
   * connection's error, if it had one) once the connection is gone, also after our own `close()`.
   */
  async drain(): Promise<void> {
    const exc = this.#reader?.exception() ?? null;
    if (exc !== null) throw connectionLostError(exc);
    if (this.#transport.isClosing()) {
      // Let the loop turn so that a connection that is going can report it (asyncio's sleep(0)).
      await new Promise((r) => setImmediate(r));
    }
    await this.#protocol._drainHelper();
  }

  /**
   * Upgrades the connection to TLS in place (asyncio's `StreamWriter.start_tls`): client side, or server
   * side for a connection `startServer` accepted. The reader and writer go on over TLS.
   */
  async startTls(ssl: true | SslOptions, options: Omit<StartTlsOptions, 'serverSide'> = {}): Promise<void> {
    checkObject('options', options);
    await this.drain();
    const old = this.#transport;
    let t: Transport;
    try {
      t = await startTls(old, this.#protocol, ssl, { ...(options ?? {}), serverSide: this.#protocol._serverSide });
    } catch (exc) {
      // Once the plain transport has given its socket up, a failed handshake is the end of the connection:
      // the reader, drain() and waitClosed() learn it (else they would wait forever).
      if (old.isClosing()) this.#protocol.connectionLost(asError(exc));
      throw exc;
    }
    this.#transport = t;
    this.#protocol._replaceWriter(this);
  }

  toString(): string {
    return `<StreamWriter transport=${String(this.#transport)}${this.#reader === null ? '' : ` reader=${this.#reader}`}>`;
  }
}

/** The stream functions' own option: the reader's limit. */
export interface StreamOptions {
  /** The reader's limit (default 64 KiB): longest line, and half of what is buffered before reading pauses. */
  limit?: number;
}

export type OpenConnectionOptions = CreateConnectionOptions & StreamOptions;
export type StartServerOptions = CreateServerOptions & StreamOptions;
export type OpenUnixConnectionOptions = CreateUnixConnectionOptions & StreamOptions;
export type StartUnixServerOptions = CreateUnixServerOptions & StreamOptions;

/** `limit` checked and taken out; the rest goes to the transport function. */
function splitOptions<O extends StreamOptions>(options: O | undefined | null): [number, Omit<O, 'limit'>] {
  checkObject('options', options);
  const { limit, ...rest } = options ?? ({} as O);
  return [checkLimit('options.limit', limit), rest];
}

async function open(
  options: StreamOptions | undefined | null,
  connect: (pf: () => StreamReaderProtocol, rest: object) => Promise<[Transport, StreamReaderProtocol]>,
): Promise<[StreamReader, StreamWriter]> {
  const [limit, rest] = splitOptions(options);
  const reader = new StreamReader(limit);
  const protocol = new StreamReaderProtocol(reader);
  const [transport] = await connect(() => protocol, rest);
  return [reader, new StreamWriter(transport, protocol, reader)];
}

function serverFactory(clientConnected: ClientConnected, limit: number): () => StreamReaderProtocol {
  return () => new StreamReaderProtocol(new StreamReader(limit), clientConnected);
}

/**
 * Connects to `host`:`port` and resolves to `[reader, writer]` (asyncio's `open_connection`). `options`
 * are `createConnection`'s (TLS included) plus `limit`.
 *
 * ```ts
 * const [reader, writer] = await openConnection('127.0.0.1', 8888);
 * writer.write(Buffer.from('hello\n'));
 * await writer.drain();
 * console.log((await reader.readline()).toString());
 * ```
 */
export function openConnection(host?: string | null, port?: number | null, options: OpenConnectionOptions = {}): Promise<[StreamReader, StreamWriter]> {
  return open(options, (pf, rest) => createConnection(pf, host, port, rest));
}

/**
 * Listens on `host`:`port` and calls `clientConnected(reader, writer)` for every connection (asyncio's
 * `start_server`); resolves to the `Server`. If `clientConnected` throws or rejects, the loop's
 * exception handler gets it and the connection is closed. `options` are `createServer`'s plus `limit`.
 */
export async function startServer(
  clientConnected: ClientConnected,
  host?: string | string[] | null,
  port?: number | null,
  options: StartServerOptions = {},
): Promise<Server> {
  checkFunction('clientConnected', clientConnected);
  const [limit, rest] = splitOptions(options);
  return createServer(serverFactory(clientConnected, limit), host, port, rest);
}

/** `openConnection` over a Unix socket at `path` (asyncio's `open_unix_connection`). */
export function openUnixConnection(path?: string | null, options: OpenUnixConnectionOptions = {}): Promise<[StreamReader, StreamWriter]> {
  return open(options, (pf, rest) => createUnixConnection(pf, path, rest));
}

/** `startServer` on a Unix socket at `path` (asyncio's `start_unix_server`). */
export async function startUnixServer(
  clientConnected: ClientConnected,
  path?: string | null,
  options: StartUnixServerOptions = {},
): Promise<Server> {
  checkFunction('clientConnected', clientConnected);
  const [limit, rest] = splitOptions(options);
  return createUnixServer(serverFactory(clientConnected, limit), path, rest);
}
