// Pipe transports: asyncio's `connect_read_pipe` / `connect_write_pipe`, also the stdio pipes of
// child processes (ts/subprocess.ts). A pipe end is an engine stream; the reading and writing halves are
// stream.ts's `ReadHalf` / `WriteHalf`, and lifecycle and flow control are BaseTransport's.
import { fstatSync } from 'node:fs';
import { adoptionError, checkFunction, checkInteger, systemError } from './errors';
import { register, unregister } from './events';
import { release, retain } from './loop';
import { EventKind, native } from './native';
import { STREAM_OPS, ReadHalf, WriteHalf } from './stream';
import { ReadTransport, WriteTransport, newProtocol } from './transports';

/** Who learns that a pipe closed, whatever its protocol is now (a subprocess counting its pipes). @internal */
export type PipeOwner = (t: ReadPipeTransport | WritePipeTransport) => void;

/** What pipe transports share when the engine closed the pipe: unregistering, `connectionLost`, the owner. */
function pipeClosed(t: ReadPipeTransport | WritePipeTransport, errno: number, syscall: number): void {
  unregister(t._id);
  release();
  t._connectionLost(errno === 0 ? null : systemError(errno, syscall));
  t._owner?.(t);
}

/**
 * The read end of a pipe (asyncio's `_UnixReadPipeTransport`). EOF calls `eofReceived()` and then
 * closes the transport, whatever `eofReceived` returns: a pipe cannot be half-open.
 */
export class ReadPipeTransport extends ReadTransport {
  /** @internal */ readonly _id: number;
  /** @internal */ _owner: PipeOwner | null = null;
  #reader: ReadHalf;

  /** @internal */
  constructor(id: number, protocol: unknown, extra: Record<string, unknown>) {
    super(protocol, extra);
    this._id = id;
    this.#reader = new ReadHalf(id, this);
    register(id, this);
    retain();
  }

  /** @internal */
  _onEvent(kind: EventKind, a: number, b: number, data: Buffer | null): void {
    switch (kind) {
      case EventKind.Data:
      case EventKind.Eof:
        this.#reader.push(kind, a, data);
        return;
      case EventKind.Closed:
        this.#reader.clear();
        pipeClosed(this, a, b);
        return;
    }
  }

  /** @internal A read event, in order, once reading is not paused. */
  _deliverRead(kind: EventKind, _a: number, data: Buffer | null): void {
    if (kind === EventKind.Eof) {
      this._callProtocol('eofReceived');
      this.close();
    } else {
      this._callProtocol('dataReceived', data);
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

  close(): void {
    this._closeHandle('close', () => this.#reader.clear());
  }

  /** @internal */
  protected _abort(): void {
    this._closeHandle('abort', () => this.#reader.clear());
  }

  override toString(): string {
    return `<ReadPipeTransport id=${this._id}${this._closing ? ' closing' : ''}>`;
  }
}

/**
 * The write end of a pipe (asyncio's `_UnixWritePipeTransport`). It notices its reader going away even
 * while idle: `connectionLost(null)`, or an `EPIPE` error when bytes were still queued (as a write
 * would fail). `writeEof()` closes the pipe once the buffer is sent.
 */
export class WritePipeTransport extends WriteTransport {
  /** @internal */ readonly _id: number;
  /** @internal */ _owner: PipeOwner | null = null;
  #writer: WriteHalf;

  /** @internal */
  constructor(id: number, protocol: unknown, extra: Record<string, unknown>) {
    super(protocol, extra);
    this._id = id;
    this.#writer = new WriteHalf(id, STREAM_OPS);
    register(id, this);
    retain();
  }

  /** @internal */
  _onEvent(kind: EventKind, a: number, b: number): void {
    switch (kind) {
      case EventKind.Drained:
        this.#writer.drained(a);
        this._maybeResumeProtocol();
        return;
      case EventKind.Closed:
        pipeClosed(this, a, b);
        return;
    }
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

  /** Closes the pipe once everything buffered is written; `connectionLost(null)` follows. */
  writeEof(): void {
    if (this.#writer.writeEof(this._closing)) this._closing = true;
  }

  canWriteEof(): boolean {
    return true;
  }

  /** As asyncio: flush, then close (as `writeEof()`); a `write()` after it is dropped. */
  close(): void {
    if (this.#writer.writeEof(this._closing, true)) this._closing = true;
  }

  abort(): void {
    this._abort();
  }

  /** @internal */
  protected _abort(): void {
    this._closeHandle('abort', () => {});
  }

  override toString(): string {
    return `<WritePipeTransport id=${this._id}${this._closing ? ' closing' : ''}>`;
  }
}

/**
 * Refuses what asyncio refuses: pipe transports serve pipes (FIFOs), sockets and character devices
 * (ttys), not regular files or directories, whose readiness means nothing.
 */
function checkPipeFd(fd: unknown): number {
  checkInteger('fd', fd, 0, 0x7fffffff);
  let st;
  try {
    st = fstatSync(fd as number);
  } catch (e) {
    throw systemError(Math.abs((e as { errno?: number }).errno ?? 9), 'fstat');
  }
  if (!st.isFIFO() && !st.isSocket() && !st.isCharacterDevice()) {
    throw new TypeError(`The "fd" argument must be a pipe, socket or character device (a tty); descriptor ${fd} is not`);
  }
  return fd as number;
}

/** @internal Makes a pipe transport of stream `id` for `protocol` and calls `connectionMade`. */
export function startPipe(id: number, write: boolean, protocol: unknown, fd: number, owner: PipeOwner | null = null): ReadPipeTransport | WritePipeTransport {
  const extra = { pipe: fd };
  const t = write ? new WritePipeTransport(id, protocol, extra) : new ReadPipeTransport(id, protocol, extra);
  t._owner = owner;
  t._callProtocol('connectionMade', t);
  // Reading starts after connectionMade, as asyncio adds its reader then.
  if (!write && !t.isClosing()) native.startReading(id, false);
  return t;
}

async function connectPipe<P>(protocolFactory: () => P, fd: number, write: boolean): Promise<[ReadPipeTransport | WritePipeTransport, P]> {
  checkFunction('protocolFactory', protocolFactory);
  native.requireFeature('pipes');
  checkPipeFd(fd);
  const protocol = newProtocol(protocolFactory);
  const id = native.openPipe(fd, write);
  if (id < 0) throw adoptionError(id, fd);
  return [startPipe(id, write, protocol, fd), protocol];
}

/**
 * asyncio's `connect_read_pipe`: reads the pipe (or FIFO, tty, socket) behind descriptor `fd`, which the
 * transport owns from now on and closes. Resolves to `[ReadTransport, protocol]` after `connectionMade`.
 */
export async function connectReadPipe<P extends object>(protocolFactory: () => P, fd: number): Promise<[ReadTransport, P]> {
  return connectPipe(protocolFactory, fd, false) as Promise<[ReadTransport, P]>;
}

/**
 * asyncio's `connect_write_pipe`: writes to the pipe behind descriptor `fd`, which the transport owns
 * from now on. Resolves to `[WriteTransport, protocol]` after `connectionMade`.
 */
export async function connectWritePipe<P extends object>(protocolFactory: () => P, fd: number): Promise<[WriteTransport, P]> {
  return connectPipe(protocolFactory, fd, true) as Promise<[WriteTransport, P]>;
}
