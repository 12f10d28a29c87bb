// Datagram transports (UDP over IPv4 and IPv6, Unix datagram sockets) and `createDatagramEndpoint`.
import { adoptionError, checkBoolean, checkFunction, checkInteger, checkObject, checkPort, checkUnixPath, systemError, toBytes } from './errors';
import { afterBatch, inBatch, register, unregister } from './events';
import { release, retain } from './loop';
import { EventKind, native } from './native';
import type { Address } from './protocols';
import { checkAbstractName, constants, socketExtra, toAddress } from './socket';
import { DatagramTransport, makeProtocol } from './transports';

/** asyncio logs a warning once this many sends were dropped after the transport closed. */
const LOG_THRESHOLD_FOR_CONNLOST_WRITES = 5;

/** How a received record spells its sender (`protoloop_engine::datagram::tag`). */
const TAG_IPV4 = 0;
const TAG_IPV6 = 1;
const TAG_UNIX = 2;

/** The longest sender prefix remembered for reuse (a Unix path is at most 108 bytes). */
const SENDER_KEY_MAX = 128;

/** asyncio's `_header_size`: what each datagram weighs in the write buffer besides its bytes. */
const HEADER_SIZE = 8;

/** u32 per deferred datagram in the table `datagramSendmany` reads: length, host index, port, flowinfo, scope id. */
const ROW = 5;
/** Host index meaning "the endpoint's remote address". */
const NO_HOST = 0xffffffff;

/** Options of `createDatagramEndpoint`, asyncio's keyword arguments in camelCase. */
export interface CreateDatagramEndpointOptions {
  /** Bind to `[host, port]` (a path with `family: AF_UNIX`). */
  localAddr?: Address | null;
  /** Connect to `[host, port]` (a path with `family: AF_UNIX`): `sendto` then needs no address. */
  remoteAddr?: Address | null;
  /** `constants.AF_INET`, `AF_INET6`, `AF_UNIX`, or 0 (whatever the addresses resolve to). */
  family?: number;
  /** 0 or `constants.IPPROTO_UDP`. */
  proto?: number;
  /** `getaddrinfo` flags; accepted for asyncio's sake and not used. */
  flags?: number;
  /** Refused, as asyncio refuses it: `SO_REUSEADDR` lets other users steal UDP traffic. */
  reuseAddress?: boolean;
  /** `SO_REUSEPORT`: several endpoints (of the same user) may bind one port. */
  reusePort?: boolean;
  /** `SO_BROADCAST`; with `remoteAddr` the socket is then not connected, as in asyncio. */
  allowBroadcast?: boolean;
  /** A datagram socket's descriptor to use instead; the transport owns it. */
  sock?: number;
}

function sameAddress(x: Address, y: Address | null): boolean {
  if (y === null) return false;
  if (typeof x === 'string' || typeof y === 'string') return x === y;
  return x[0] === y[0] && x[1] === y[1] && (x.length < 4 || y.length < 4 || (x[2] === y[2] && x[3] === y[3]));
}

function show(a: Address | null): string {
  return JSON.stringify(a);
}

/**
 * Checks an address argument for a socket of `family`: a path string for `AF_UNIX`, else
 * `[host, port]` or `[host, port, flowinfo, scopeId]`.
 */
function checkAddress(name: string, addr: unknown, family: number): Address {
  if (family === constants.AF_UNIX) {
    if (typeof addr !== 'string') throw new TypeError(`The "${name}" argument must be a path string for an AF_UNIX socket`);
    return checkAbstractName(name, checkUnixPath(name, addr));
  }
  if (!Array.isArray(addr) || (addr.length !== 2 && addr.length !== 4)) {
    const hint = typeof addr === 'string' ? ' (for a Unix socket path, set family: constants.AF_UNIX)' : '';
    throw new TypeError(`The "${name}" argument must be a [host, port] or [host, port, flowinfo, scopeId] array${hint}`);
  }
  if (typeof addr[0] !== 'string') throw new TypeError(`The "${name}[0]" argument must be a host string`);
  checkPort(`${name}[1]`, addr[1]);
  if (addr.length === 4) {
    checkInteger(`${name}[2]`, addr[2], 0, 0xffffffff);
    checkInteger(`${name}[3]`, addr[3], 0, 0xffffffff);
  }
  return addr as Address;
}

/**
 * The transport of a datagram socket the engine owns. Each received datagram is one engine record
 * carrying its sender and bytes; `sendto` goes to the kernel at once when nothing is queued, and the
 * engine reports the queued rest as it drains.
 */
export class DatagramSocketTransport extends DatagramTransport {
  /** @internal */ readonly _id: number;
  readonly #family: number;
  /** Where `sendto` without an address goes: as the caller gave it, and as it resolved. */
  readonly #remote: Address | null;
  readonly #remoteResolved: Address | null;
  #accepted = 0; // buffer units (bytes + 8 per datagram) queued by sendto
  #flushed = 0; // of those, units the kernel has taken
  #droppedSends = 0;
  #paused = false;
  /** Datagrams that arrived while reading was paused, delivered after `resumeReading()`. */
  #held: [Buffer, Address | null][] = [];
  #flushScheduled = false;
  // The last sender, so that a stream of datagrams from one peer shares one frozen address tuple.
  #senderA = -1;
  #senderLen = -1;
  readonly #senderKey = Buffer.allocUnsafe(SENDER_KEY_MAX);
  #sender: Address | null = null;
  // Datagrams sendto deferred while an engine batch is dispatched, all sent with one call once it
  // is: an echo's replies cost one sendmmsg per batch instead of one sendto each. Copied at once, as
  // the caller may reuse its buffer, and counted in #accepted until the kernel takes them.
  #deferData: Buffer | null = null;
  #deferUsed = 0;
  #deferTable: Buffer | null = null;
  #deferRows: Uint32Array | null = null;
  #deferCount = 0;
  #deferHosts: (string | null)[] = [];
  #deferUnits = 0;
  readonly #flushDeferred = (): void => this.#flush();

  /** @internal */
  constructor(id: number, protocol: unknown, extra: Record<string, unknown>, family: number, remote: Address | null, resolved: Address | null) {
    super(protocol, extra);
    this._id = id;
    this.#family = family;
    this.#remote = remote ?? resolved;
    this.#remoteResolved = resolved;
    register(id, this);
    retain();
  }

  /**
   * Makes the transport of live endpoint `id` with a protocol from `protocolFactory`, and calls
   * `connectionMade`. A throwing factory aborts the endpoint and rethrows.
   * @internal
   */
  static _start<P>(id: number, protocolFactory: () => P, remote: Address | null): [DatagramSocketTransport, P] {
    const protocol = makeProtocol(protocolFactory, () => native.abort(id));
    const fd = native.fd(id);
    const t = new DatagramSocketTransport(id, protocol, socketExtra(fd), native.socketKind(fd)?.[0] ?? 0, remote, toAddress(native.datagramRemote(id)));
    t._sockFd = fd;
    t._callProtocol('connectionMade', t);
    return [t, protocol];
  }

  /** @internal Received datagrams are cut out of the batch here, one slice each. */
  _onRaw(kind: EventKind, a: number, b: number, payload: Buffer, offset: number, len: number): void {
    if (kind !== EventKind.DatagramReceived) {
      this._onEvent(kind, a, b);
      return;
    }
    if (this._closing) return;
    const data = payload.subarray(offset + b, offset + len);
    const addr = this.#senderOf(a, payload, offset, b);
    if (this.#paused || this.#held.length > 0) this.#held.push([data, addr]);
    else this.#deliver(data, addr);
  }

  #deliver(data: Buffer, addr: Address | null): void {
    const p = this._protocol;
    try {
      const fn = p?.datagramReceived;
      if (typeof fn === 'function') fn.call(p, data, addr);
    } catch (exc) {
      this._fatalError(exc, 'Exception in protocol callback datagramReceived()');
    }
  }

  /** The sender's address tuple; the previous one again when the same peer sent. */
  #senderOf(a: number, payload: Buffer, offset: number, n: number): Address | null {
    if (a === this.#senderA && n === this.#senderLen) {
      const key = this.#senderKey;
      let i = 0;
      while (i < n && payload[offset + i] === key[i]) i++;
      if (i === n) return this.#sender;
    }
    const tag = a >>> 16;
    let addr: Address | null;
    if (tag === TAG_IPV4) addr = [payload.toString('latin1', offset, offset + n), a & 0xffff];
    else if (tag === TAG_IPV6) {
      const host = payload.toString('latin1', offset + 8, offset + n);
      addr = [host, a & 0xffff, payload.readUInt32LE(offset), payload.readUInt32LE(offset + 4)];
    } else if (tag === TAG_UNIX) addr = payload.toString('utf8', offset, offset + n);
    else addr = null;
    if (typeof addr === 'object' && addr !== null) Object.freeze(addr);
    if (n <= SENDER_KEY_MAX) {
      payload.copy(this.#senderKey, 0, offset, offset + n);
      this.#senderA = a;
      this.#senderLen = n;
      this.#sender = addr;
    }
    return addr;
  }

  /**
   * asyncio's selector transports, datagram ones included, can pause reading: no `datagramReceived`
   * until `resumeReading()`, even for datagrams the engine already had in hand.
   */
  isReading(): boolean {
    return !this.#paused && !this._closing;
  }

  pauseReading(): void {
    if (this._closing || this.#paused) return;
    this.#paused = true;
    native.pauseReading(this._id);
  }

  resumeReading(): void {
    if (this._closing || !this.#paused) return;
    this.#paused = false;
    native.resumeReading(this._id);
    // What came in while paused goes out on a later turn, never inside this call.
    if (this.#held.length > 0 && !this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => {
        this.#flushScheduled = false;
        while (!this.#paused && !this._closing && this.#held.length > 0) {
          const [data, addr] = this.#held.shift() as [Buffer, Address | null];
          this.#deliver(data, addr);
        }
      });
    }
  }

  /** @internal */
  _onEvent(kind: EventKind, a: number, b: number): void {
    switch (kind) {
      case EventKind.DatagramError:
        if (!this._lost) this._callProtocol('errorReceived', systemError(a, b));
        return;
      case EventKind.Drained:
        this.#flushed += a;
        this._maybeResumeProtocol();
        return;
      case EventKind.Closed:
        unregister(this._id);
        this._connectionLost(a === 0 ? null : systemError(a, b));
        release();
        return;
    }
  }

  /**
   * Sends `data` as one datagram to `addr`, or to `remoteAddr` when the endpoint has one (then
   * `addr` must be omitted or equal it). Never blocks: what the kernel cannot take now is queued.
   * A failed send (e.g. `ECONNREFUSED` on a connected socket) goes to `errorReceived`.
   */
  sendto(data: ArrayBufferView | ArrayBuffer, addr?: Address | null): void {
    const bytes = toBytes('data', data);
    let host: string | null = null;
    let port = 0;
    let flowinfo = 0;
    let scopeId = 0;
    if (addr === this.#sender && addr !== null && this.#remote === null) {
      // The tuple datagramReceived just handed out (an echo's reply): already known good.
      if (typeof addr === 'string') host = addr;
      else {
        host = addr[0];
        port = addr[1];
        if (addr.length === 4) {
          flowinfo = addr[2];
          scopeId = addr[3];
        }
      }
    } else if (addr !== undefined && addr !== null) {
      const a = checkAddress('addr', addr, this.#family);
      if (this.#remote !== null) {
        if (!sameAddress(a, this.#remote) && !sameAddress(a, this.#remoteResolved)) {
          throw new RangeError(`Invalid address: must be null or ${show(this.#remote)}. Received ${show(a)}`);
        }
      } else if (typeof a === 'string') {
        host = a;
      } else {
        host = a[0];
        port = a[1];
        if (a.length === 4) {
          flowinfo = a[2];
          scopeId = a[3];
        }
      }
    } else if (this.#remote === null) {
      throw new TypeError('The "addr" argument is required: this endpoint has no remoteAddr');
    }
    if (this._closing) {
      if (++this.#droppedSends === LOG_THRESHOLD_FOR_CONNLOST_WRITES) {
        process.emitWarning('protoloop: sendto() on a closed transport; the data is dropped', 'ProtoloopWarning');
      }
      return;
    }
    if (inBatch()) {
      const units = bytes.length + HEADER_SIZE;
      // Deferring never pauses the protocol: past the high-water mark the kernel decides, as before.
      if (this.getWriteBufferSize() + units <= this.getWriteBufferLimits()[1]) {
        this.#defer(bytes, host, port, flowinfo, scopeId);
        this.#accepted += units;
        return;
      }
      this.#flush();
    }
    const r = native.datagramSendto(this._id, bytes, host, port, flowinfo, scopeId);
    if (r === 0) return;
    if (r > 0) {
      this.#accepted += r;
      this._maybePauseProtocol();
      return;
    }
    this._callProtocol('errorReceived', host === null ? systemError(r, 'sendto') : systemError(r, 'sendto', host, port || undefined));
  }

  #defer(bytes: Uint8Array, host: string | null, port: number, flowinfo: number, scopeId: number): void {
    const n = this.#deferCount;
    if (n === 0) afterBatch(this.#flushDeferred);
    let data = this.#deferData;
    if (data === null || data.length - this.#deferUsed < bytes.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(65536, 2 * (this.#deferUsed + bytes.length)));
      if (data !== null) data.copy(grown, 0, 0, this.#deferUsed);
      this.#deferData = data = grown;
    }
    data.set(bytes, this.#deferUsed);
    this.#deferUsed += bytes.length;
    let rows = this.#deferRows;
    if (rows === null || rows.length < (n + 1) * ROW) {
      const table = Buffer.allocUnsafeSlow(Math.max(64, 2 * (n + 1)) * ROW * 4);
      const grown = new Uint32Array(table.buffer, table.byteOffset, table.length / 4);
      if (rows !== null) grown.set(rows.subarray(0, n * ROW));
      this.#deferTable = table;
      this.#deferRows = rows = grown;
    }
    let h = NO_HOST;
    if (host !== null) {
      const hosts = this.#deferHosts;
      h = hosts.length - 1;
      if (h < 0 || hosts[h] !== host) {
        h = hosts.indexOf(host);
        if (h < 0) h = hosts.push(host) - 1;
      }
    }
    const at = n * ROW;
    rows[at] = bytes.length;
    rows[at + 1] = h;
    rows[at + 2] = port;
    rows[at + 3] = flowinfo;
    rows[at + 4] = scopeId;
    this.#deferCount = n + 1;
    this.#deferUnits += bytes.length + HEADER_SIZE;
  }

  /** Sends the deferred datagrams in one call; what the kernel refuses now the engine queues. */
  #flush(): void {
    const count = this.#deferCount;
    if (count === 0) return;
    const units = this.#deferUnits;
    const hosts = this.#deferHosts;
    const rows = this.#deferRows as Uint32Array;
    this.#deferCount = 0;
    this.#deferUsed = 0;
    this.#deferUnits = 0;
    this.#deferHosts = [];
    const r = native.datagramSendmany(this._id, this.#deferData as Buffer, this.#deferTable as Buffer, count, hosts);
    if (r === null) {
      this.#flushed += units;
      this._maybeResumeProtocol();
      return;
    }
    // Everything is read out of the table before a callback can defer more into it.
    let done = 0;
    const failed: [number, string | null, number][] = [];
    for (let i = 0; i < count; i++) {
      const x = r[i] as number;
      if (x > 0) continue; // queued: the engine reports it drained
      done += rows[i * ROW] + HEADER_SIZE;
      if (x < 0) {
        const h = rows[i * ROW + 1];
        failed.push([x, h === NO_HOST ? null : (hosts[h] as string), rows[i * ROW + 2]]);
      }
    }
    this.#flushed += done;
    for (const [errno, host, port] of failed) {
      this._callProtocol('errorReceived', host === null ? systemError(errno, 'sendto') : systemError(errno, 'sendto', host, port || undefined));
    }
    this._maybeResumeProtocol();
  }

  /**
   * Sends the deferred datagrams without telling the protocol anything: before an abort, whose
   * caller saw them leave (without deferring they would have been on the wire already).
   */
  #sendDeferredQuietly(): void {
    if (this.#deferCount === 0) return;
    native.datagramSendmany(this._id, this.#deferData as Buffer, this.#deferTable as Buffer, this.#deferCount, this.#deferHosts);
    this.#flushed += this.#deferUnits;
    this.#deferCount = 0;
    this.#deferUsed = 0;
    this.#deferUnits = 0;
    this.#deferHosts = [];
  }

  /** Buffer units not yet taken by the kernel: each queued datagram's bytes plus 8 (asyncio's header). */
  override getWriteBufferSize(): number {
    return this.#accepted - this.#flushed;
  }

  /** Stops receiving, sends what is queued, then `connectionLost(null)`. */
  close(): void {
    this._closeHandle('close', () => {
      // What sendto deferred was accepted before the close: it goes out first, as queued datagrams do.
      this.#flush();
      this.#held = [];
    });
  }

  abort(): void {
    this._abort();
  }

  /** @internal */
  protected _abort(): void {
    this._closeHandle('abort', () => {
      this.#held = [];
      this.#sendDeferredQuietly();
    });
  }

  override toString(): string {
    return `<DatagramTransport id=${this._id}${this._closing ? ' closing' : ''}>`;
  }
}

type IpParts = [string | null, number];

function endpointParts(name: string, addr: unknown, family: number): IpParts {
  if (addr === undefined || addr === null) return [null, 0];
  const a = checkAddress(name, addr, family);
  return typeof a === 'string' ? [a, 0] : [a[0], a[1]];
}

/**
 * Creates a datagram endpoint, as asyncio's `create_datagram_endpoint`, and resolves to
 * `[transport, protocol]` once `protocol.connectionMade` has run. Bind and connect failures reject
 * with a Node-style error (`code`, `errno`, `syscall`) and create no protocol.
 *
 * ```ts
 * const [transport] = await createDatagramEndpoint(() => new EchoServerProtocol(), { localAddr: ['127.0.0.1', 9999] });
 * ```
 */
export async function createDatagramEndpoint<P extends object>(
  protocolFactory: () => P,
  options: CreateDatagramEndpointOptions = {},
): Promise<[DatagramTransport, P]> {
  checkFunction('protocolFactory', protocolFactory);
  checkObject('options', options);
  options ??= {};
  const { localAddr, remoteAddr, sock } = options;
  if (options.reuseAddress) {
    throw new TypeError('The "options.reuseAddress" option is not supported for datagram endpoints (it is unsafe, as in asyncio); use reusePort');
  }
  checkBoolean('options.reusePort', options.reusePort);
  if (options.reusePort === true) native.requireFeature('reusePort');
  checkBoolean('options.allowBroadcast', options.allowBroadcast);
  const family = options.family == null ? 0 : checkInteger('options.family', options.family, 0, 0xffff);
  if (family !== 0 && family !== constants.AF_INET && family !== constants.AF_INET6 && family !== constants.AF_UNIX) {
    throw new RangeError(`The value of "options.family" must be 0, AF_INET, AF_INET6 or AF_UNIX. Received ${family}`);
  }
  const proto = options.proto == null ? 0 : checkInteger('options.proto', options.proto, 0, 0xffff);
  if (proto !== 0 && !(proto === constants.IPPROTO_UDP && family !== constants.AF_UNIX)) {
    throw new RangeError(`The value of "options.proto" must be 0 or IPPROTO_UDP. Received ${proto}`);
  }
  const flags = options.flags == null ? 0 : checkInteger('options.flags', options.flags, 0, 0x7fffffff);

  if (sock !== undefined && sock !== null) {
    native.requireFeature('sock');
    checkInteger('options.sock', sock, 0, 0x7fffffff);
    const given = Object.entries({ localAddr, remoteAddr, family, proto, flags, reusePort: options.reusePort, allowBroadcast: options.allowBroadcast })
      .filter(([, v]) => v !== undefined && v !== null && v !== 0 && v !== false)
      .map(([k]) => k);
    if (given.length > 0) {
      throw new TypeError(`Socket modifier options can not be used when sock is specified (${given.join(', ')})`);
    }
    const kind = native.socketKind(sock);
    if (kind !== null && kind[1] !== constants.SOCK_DGRAM) {
      throw new TypeError(`A datagram socket was expected for "options.sock", got a socket of type ${kind[1]}`);
    }
    const id = native.datagramAdopt(sock);
    if (id < 0) throw adoptionError(id, sock);
    return DatagramSocketTransport._start(id, protocolFactory, null);
  }

  if ((localAddr === undefined || localAddr === null) && (remoteAddr === undefined || remoteAddr === null) && family === 0) {
    throw new TypeError('createDatagramEndpoint needs options.localAddr, options.remoteAddr or options.sock (or options.family for an unbound socket)');
  }
  const [localHost, localPort] = endpointParts('options.localAddr', localAddr, family);
  const [remoteHost, remotePort] = endpointParts('options.remoteAddr', remoteAddr, family);
  retain(); // a pending open keeps the process alive, as a pending connect does
  const id = native.datagramOpen(family, localHost, localPort, remoteHost, remotePort, options.reusePort === true, options.allowBroadcast === true);
  return new Promise((resolve, reject) => {
    register(id, {
      _onEvent(kind, a, b) {
        if (kind !== EventKind.DatagramOpened && kind !== EventKind.DatagramOpenFailed) return;
        unregister(id);
        release();
        if (kind === EventKind.DatagramOpenFailed) {
          // Name the address the failing call was about, as Node does (`bind EADDRINUSE 127.0.0.1:9`).
          const about = b === 12 ? [localHost, localPort] : b === 15 ? [remoteHost, remotePort] : [null, 0];
          const host = about[0] as string | null;
          reject(host === null ? systemError(a, b) : systemError(a, b, host, family === constants.AF_UNIX ? undefined : (about[1] as number)));
          return;
        }
        try {
          resolve(DatagramSocketTransport._start(id, protocolFactory, (remoteAddr ?? null) as Address | null));
        } catch (exc) {
          reject(exc);
        }
      },
    });
  });
}
