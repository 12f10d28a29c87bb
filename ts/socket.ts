// `TransportSocket` (what `getExtraInfo('socket')` returns), socket constants and address tuples.
import { checkInteger, errnoNamed, systemError } from './errors';
import { native } from './native';
import type { Address } from './protocols';

type NativeAddress = { family: number; host: string; port: number; flowinfo: number; scopeId: number };

/** Socket option and address-family numbers of this platform (`AF_*`, `SOL_*`, `SO_*`, `TCP_*` ...). */
export const constants: Readonly<Record<string, number>> = Object.freeze(native.socketConstants());

/** Whether a Unix socket path starting with NUL names an abstract socket here (Linux only). */
const ABSTRACT_UNIX_NAMES: boolean = native.abstractUnixNames();

/**
 * Refuses a Linux abstract Unix name (a path starting with NUL) where there are none, with an Error
 * naming the platform, before it reaches the kernel as an odd file name (macOS would take it as one).
 * @internal
 */
export function checkAbstractName(name: string, path: string): string {
  if (path.startsWith('\0') && !ABSTRACT_UNIX_NAMES) {
    const build = process.platform === 'linux' ? ' (this addon was built with the portable backend)' : '';
    throw new Error(`The "${name}" argument is an abstract Unix socket name (it starts with a NUL byte); those exist only on Linux, not on ${process.platform}${build}`);
  }
  return path;
}

/** An engine address as asyncio shows it: `[host, port]`, `[host, port, flowinfo, scopeId]`, a path. */
export function toAddress(a: NativeAddress | null): Address | null {
  if (a === null) return null;
  if (a.family === constants.AF_INET) return [a.host, a.port];
  if (a.family === constants.AF_INET6) return [a.host, a.port, a.flowinfo, a.scopeId];
  return a.host;
}

/**
 * For `sock=` of a server: refuses a descriptor that is not a listening stream socket before the engine
 * takes it over (an unconnected or connected one would never accept anything).
 * @internal
 */
export function checkListeningSocket(name: string, fd: number): void {
  const kind = native.socketKind(fd);
  if (kind === null) throw new TypeError(`The "${name}" argument must be a socket descriptor`);
  if (kind[1] !== constants.SOCK_STREAM || native.getsockopt(fd, constants.SOL_SOCKET, constants.SO_ACCEPTCONN) !== 1) {
    throw new TypeError(`The "${name}" argument must be a listening stream socket`);
  }
}

/** `options.family`: 0 (any), `AF_INET` or `AF_INET6`. */
export function checkFamily(family: unknown): number {
  if (family === undefined || family === null) return 0;
  checkInteger('options.family', family, 0, 0xffff);
  if (family !== 0 && family !== constants.AF_INET && family !== constants.AF_INET6) {
    throw new RangeError(`The value of "options.family" must be 0, AF_INET or AF_INET6. Received ${family}`);
  }
  return family as number;
}

/**
 * The socket part of a transport's extra info, captured when the transport is made (asyncio keeps
 * `peername` and `sockname` readable after the connection closed). `isOpen` guards the live socket.
 * @internal
 */
export function socketExtra(fd: number): { sockname: Address | null; peername: Address | null } {
  return { sockname: toAddress(native.sockname(fd)), peername: toAddress(native.peername(fd)) };
}

// getsockopt reports failures below this offset (a negative errno shifted by 2^40), so that
// negative option values stay readable.
const GETSOCKOPT_ERROR = -(2 ** 40);

/**
 * A view of a transport's socket, as asyncio's `TransportSocket`: addresses and options, but no I/O
 * (the engine owns the descriptor). Calls fail with `EBADF` once the transport is closed.
 */
export class TransportSocket {
  // Asked of the kernel on first use: most transports never show their socket, and three
  // getsockopt calls per connection would cost every accept.
  #kind: number[] | null = null;

  /** @internal */
  constructor(
    readonly fd: number,
    private readonly isOpen: () => boolean,
  ) {}

  #getKind(): number[] {
    if (this.#kind === null) {
      // Once the transport is closed the number may belong to another socket: do not ask then.
      const kind = this.isOpen() ? native.socketKind(this.fd) : null;
      if (kind === null) return [0, 0, 0];
      this.#kind = kind;
    }
    return this.#kind;
  }

  /** The address family (`constants.AF_INET`, `AF_INET6`, `AF_UNIX`). */
  get family(): number {
    return this.#getKind()[0];
  }

  /** The socket type (`constants.SOCK_STREAM`, `SOCK_DGRAM`). */
  get type(): number {
    return this.#getKind()[1];
  }

  get proto(): number {
    return this.#getKind()[2];
  }

  #check(syscall: string): void {
    if (!this.isOpen()) throw systemError(errnoNamed('EBADF'), syscall);
  }

  getsockname(): Address {
    this.#check('getsockname');
    const a = toAddress(native.sockname(this.fd));
    if (a === null) throw systemError(errnoNamed('EBADF'), 'getsockname');
    return a;
  }

  getpeername(): Address {
    this.#check('getpeername');
    const a = toAddress(native.peername(this.fd));
    if (a === null) throw systemError(errnoNamed('ENOTCONN'), 'getpeername');
    return a;
  }

  /** An integer option, e.g. `getsockopt(constants.IPPROTO_TCP, constants.TCP_NODELAY)`. */
  getsockopt(level: number, option: number): number {
    checkInteger('level', level, 0, 0x7fffffff);
    checkInteger('option', option, 0, 0x7fffffff);
    this.#check('getsockopt');
    const v = native.getsockopt(this.fd, level, option);
    if (v <= GETSOCKOPT_ERROR / 2) throw systemError(v - GETSOCKOPT_ERROR, 'getsockopt');
    return v;
  }

  /** Sets an integer (or boolean) option. */
  setsockopt(level: number, option: number, value: number | boolean): void {
    checkInteger('level', level, 0, 0x7fffffff);
    checkInteger('option', option, 0, 0x7fffffff);
    const v = typeof value === 'boolean' ? Number(value) : checkInteger('value', value, -0x80000000, 0x7fffffff);
    this.#check('setsockopt');
    const r = native.setsockopt(this.fd, level, option, v);
    if (r < 0) throw systemError(r, 'setsockopt');
  }

  toString(): string {
    return `<TransportSocket fd=${this.fd} family=${this.family} type=${this.type} proto=${this.proto}>`;
  }
}
