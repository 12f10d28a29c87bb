// Node-style errors for everything the engine reports, and the argument checks of the public API.
import { getSystemErrorMap, getSystemErrorName, types } from 'node:util';

/** Not an errno: name resolution found nothing (`protoloop_engine::events::ENOTFOUND`). */
export const ENOTFOUND = 0x7fff_0001;

/** The engine's `Syscall` numbers (`crates/engine/src/events.rs`). */
const SYSCALLS: Record<number, string> = {
  1: 'read',
  2: 'write',
  3: 'connect',
  4: 'getaddrinfo',
  5: 'accept',
  6: 'shutdown',
  10: 'sendto',
  11: 'recvmsg',
  12: 'bind',
  13: 'socket',
  14: 'setsockopt',
  15: 'connect',
  16: 'fstat',
  17: 'fcntl',
  // Registering the descriptor with the engine's poller.
  18: process.platform === 'linux' ? 'epoll_ctl' : 'kevent',
  19: 'getsockname',
  20: 'getsockopt',
  30: 'handshake',
};

let errnos: Map<string, number> | undefined;

/**
 * Node's errno for an error name on this platform (negative): the numbers differ between systems
 * (`ENOTCONN` is -107 on Linux, -57 on macOS, libuv's -4053 on Windows), so the TypeScript layer never
 * writes one down.
 */
export function errnoNamed(name: string): number {
  errnos ??= new Map([...getSystemErrorMap()].map(([n, [code]]) => [code, n]));
  const n = errnos.get(name);
  if (n === undefined) throw new Error(`protoloop: Node knows no errno named ${name}`);
  return n;
}

/** An `Error` shaped like Node's system errors: `code`, `errno` (negative, as Node's), `syscall`. */
export interface SystemError extends Error {
  code: string;
  errno: number;
  syscall: string;
  address?: string;
  port?: number;
}

/**
 * Builds the error for an errno reported by the engine. `syscall` is a name or the engine's number
 * for it; `address`/`port` are added to the message as Node does (`connect ECONNREFUSED 127.0.0.1:1`).
 */
export function systemError(errno: number, syscall: string | number, address?: string, port?: number): SystemError {
  let call = typeof syscall === 'number' ? SYSCALLS[syscall] ?? 'unknown' : syscall;
  let code: string;
  let nodeErrno: number;
  // The bindings return failures as negative numbers, the marker included.
  if (Math.abs(errno) === ENOTFOUND) {
    code = 'ENOTFOUND';
    call = 'getaddrinfo'; // as Node reports a failed lookup, whatever call needed it
    nodeErrno = -3008; // libuv's UV_EAI_NONAME, what Node reports for ENOTFOUND
  } else {
    nodeErrno = -Math.abs(errno);
    try {
      code = getSystemErrorName(nodeErrno);
    } catch {
      code = `E${Math.abs(errno)}`;
    }
  }
  const where = address === undefined ? '' : port === undefined ? ` ${address}` : ` ${address}:${port}`;
  const err = new Error(`${call} ${code}${where}`) as SystemError;
  err.code = code;
  err.errno = nodeErrno;
  err.syscall = call;
  if (address !== undefined) err.address = address;
  if (port !== undefined) err.port = port;
  return err;
}

/**
 * The error of a failed handshake, from a `TlsFailed` record: Node's `code` (`'ERR_TLS_CERT_ALTNAME_INVALID'`,
 * `'UNABLE_TO_VERIFY_LEAF_SIGNATURE'`, `'ECONNRESET'`, `'ETIMEDOUT'` ...), plus `errno`/`syscall` when
 * the socket failed.
 * @internal
 */
export function tlsError(errno: number, syscall: number, payload: Buffer | null, host?: string, port?: number): SystemError {
  const text = payload?.toString() ?? '';
  const tab = text.indexOf('\t');
  const code = tab < 0 ? '' : text.slice(0, tab);
  const message = tab < 0 ? text : text.slice(tab + 1);
  if (code === '') return systemError(errno, syscall, host, port);
  const err = new Error(message) as SystemError;
  err.code = code;
  if (errno !== 0) {
    err.errno = -errno;
    err.syscall = 'handshake';
  }
  if (host !== undefined) err.address = host;
  if (port !== undefined) err.port = port;
  return err;
}

/**
 * The error of an adoption the engine refused (`-(errno + syscall * 2^32)` from the bindings). The
 * descriptor is left open: it is still the caller's. One that a transport or server of protoloop already
 * owns gets `EEXIST` with a message that says so.
 */
export function adoptionError(refusal: number, fd: number): SystemError {
  const v = -refusal;
  const errno = v % 2 ** 32;
  const err = systemError(errno, Math.floor(v / 2 ** 32));
  if (err.code === 'EEXIST') err.message = `${err.syscall} EEXIST: descriptor ${fd} already belongs to a transport or server`;
  return err;
}

/** asyncio's `InvalidStateError`: a `Future` was completed twice or read too early. */
export class InvalidStateError extends Error {
  override name = 'InvalidStateError';
}

/** asyncio's `CancelledError`: what a cancelled `Future` rejects with. */
export class CancelledError extends Error {
  override name = 'CancelledError';
}

/**
 * `String(v)` for a value from user code, which may refuse conversion (`Object.create(null)`, an object
 * whose `toString` throws, a revoked Proxy): reporting a problem must never become a new one.
 */
export function safeString(v: unknown): string {
  try {
    return String(v);
  } catch {
    try {
      return Object.prototype.toString.call(v);
    } catch {
      return `[unprintable ${typeof v}]`;
    }
  }
}

/** `v instanceof Error`, false where asking throws (a revoked Proxy). */
export function isError(v: unknown): v is Error {
  try {
    return v instanceof Error;
  } catch {
    return false;
  }
}

/**
 * The `Error` that stands for a thrown value: the value itself when it is one, otherwise an `Error`
 * describing it with the value as its `cause` (a protocol may throw anything).
 */
export function asError(v: unknown): Error {
  return isError(v) ? v : new Error(safeString(v), { cause: v });
}

function typeError(name: string, expected: string, value: unknown): TypeError {
  const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
  return new TypeError(`The "${name}" argument must be ${expected}. Received ${got}`);
}

/** Bytes a caller hands in: any `ArrayBufferView` or `ArrayBuffer`, seen as a `Uint8Array`. */
export function toBytes(name: string, data: unknown): Uint8Array {
  // util.types rather than instanceof: a Proxy of a Uint8Array passes instanceof, then refuses every
  // typed-array operation (and the addon cannot read it).
  if (types.isUint8Array(data)) return data;
  if (types.isArrayBufferView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (types.isAnyArrayBuffer(data)) return new Uint8Array(data);
  if (typeof data === 'string') {
    throw new TypeError(
      `The "${name}" argument must be bytes (a Buffer, TypedArray, DataView or ArrayBuffer), not a string: ` +
        `encode it first, e.g. Buffer.from(text)`,
    );
  }
  throw typeError(name, 'bytes (a Buffer, TypedArray, DataView or ArrayBuffer)', data);
}

export function checkFunction(name: string, value: unknown): void {
  if (typeof value !== 'function') throw typeError(name, 'a function', value);
}

export function checkObject(name: string, value: unknown): void {
  if (value !== undefined && value !== null && typeof value !== 'object') throw typeError(name, 'an object', value);
}

export function checkBoolean(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'boolean') throw typeError(name, 'a boolean', value);
}

/** An integer in `[min, max]`; `TypeError` for a non-number, `RangeError` outside the range. */
export function checkInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number') throw typeError(name, 'a number', value);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`The value of "${name}" is out of range. It must be an integer >= ${min} and <= ${max}. Received ${value}`);
  }
  return value;
}

/**
 * The longest duration an option takes, in milliseconds (some 285,000 years): every duration becomes a
 * Rust `Duration` in the engine, which a number such as 1e308 does not fit.
 */
export const MAX_DURATION_MS = Number.MAX_SAFE_INTEGER;

/**
 * A duration in milliseconds: a number >= 0 (> 0 with `positive`) and at most `MAX_DURATION_MS`. The one
 * check of every duration option, so that no number the engine cannot hold gets past it.
 */
export function checkDuration(name: string, value: unknown, positive = false): number {
  if (typeof value !== 'number') throw typeError(name, 'a number', value);
  if (!(positive ? value > 0 : value >= 0) || !(value <= MAX_DURATION_MS)) {
    throw new RangeError(`The value of "${name}" is out of range. It must be ${positive ? '> 0' : '>= 0'} and <= ${MAX_DURATION_MS}. Received ${value}`);
  }
  return value;
}

/**
 * A Unix socket path: a string with no NUL byte after the first (a leading one makes an abstract
 * name; any other would end the path there, silently naming another socket).
 */
export function checkUnixPath(name: string, value: unknown): string {
  checkString(name, value);
  if ((value as string).indexOf('\0', 1) !== -1) {
    throw new TypeError(`The "${name}" argument must not contain NUL bytes except a leading one (an abstract name)`);
  }
  return value as string;
}

export function checkPort(name: string, value: unknown): number {
  return checkInteger(name, value, 0, 65535);
}

export function checkString(name: string, value: unknown): string {
  if (typeof value !== 'string') throw typeError(name, 'a string', value);
  return value;
}
