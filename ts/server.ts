// Listening sockets: `createServer` and asyncio's `Server` object.
import { adoptionError, checkBoolean, checkFunction, checkInteger, checkObject, checkPort, systemError } from './errors';
import { register, unregister } from './events';
import { EventLoop, getRunningLoop, release, retain } from './loop';
import { EventKind, native } from './native';
import { TransportSocket, checkFamily, checkListeningSocket } from './socket';
import { StreamTransport, type StreamOwner } from './stream';
import { tlsError } from './errors';
import { TLS_OPS, tlsConnectOptions, tlsExtra, type SslOptions } from './tls';

/** asyncio's default `reuse_address`: on POSIX only. */
const REUSE_ADDRESS_DEFAULT = process.platform !== 'win32';

/** Options of `createServer`, asyncio's keyword arguments in camelCase. */
export interface CreateServerOptions {
  /** `constants.AF_INET`, `constants.AF_INET6`, or 0 (both). */
  family?: number;
  /** A listening socket's descriptor to serve on instead of `host`/`port`; the server owns it. */
  sock?: number;
  /** Queue length of `listen(2)`; default 100. */
  backlog?: number;
  /** `SO_REUSEADDR`; default true, as asyncio on POSIX (false on Windows, where it would let another
   * socket take the port over: asyncio's default there too). */
  reuseAddress?: boolean;
  /** `SO_REUSEPORT` (not on Windows: an `Error` naming it). */
  reusePort?: boolean;
  /** `SO_KEEPALIVE` on every accepted connection. */
  keepAlive?: boolean;
  /** Accept at once (default true); else call `startServing()` or `serveForever()`. */
  startServing?: boolean;
  /** TLS: an `SslOptions` object with `cert` and `key` (and `requestCert`/`ca` for mutual TLS). */
  ssl?: SslOptions | null;
  /** Default 60 000. */
  sslHandshakeTimeoutMs?: number | null;
  /** Default 30 000. */
  sslShutdownTimeoutMs?: number | null;
}

/**
 * A listening server, as asyncio's `Server`. `close()` stops listening and leaves accepted
 * connections open; `waitClosed()` resolves once it is closed and every connection is gone.
 *
 * ```ts
 * await using server = await createServer(() => new EchoProtocol(), '127.0.0.1', 8888);
 * await server.serveForever();
 * ```
 */
export class Server implements StreamOwner {
  /** @internal */ readonly _id: number;
  #protocolFactory: () => object;
  #ssl: unknown;
  #sockets: TransportSocket[];
  /** What the kind does after it stops listening (a Unix server removes its socket file). */
  #onClose: (() => void) | null;
  #clients = new Set<StreamTransport>();
  #serving = false;
  #closed = false;
  #closedWaiters: Array<() => void> = [];
  #emptyWaiters: Array<() => void> = [];

  /** @internal */
  constructor(id: number, protocolFactory: () => object, ssl: unknown = null, onClose: (() => void) | null = null) {
    this._id = id;
    this.#protocolFactory = protocolFactory;
    this.#ssl = ssl;
    this.#onClose = onClose;
    this.#sockets = native.serverFds(id).map((fd) => new TransportSocket(fd, () => !this.#closed));
    register(id, this);
  }

  /** @internal */
  _onEvent(kind: EventKind, a: number, b: number, data: Buffer | null): void {
    if (kind === EventKind.TlsFailed) {
      // As asyncio: a socket error (a client that went away) is not worth a report; a TLS failure is.
      if (a === 0) {
        getRunningLoop().callExceptionHandler({ message: 'SSL handshake failed', exception: tlsError(a, b, data), server: this });
      }
      return;
    }
    if (kind !== EventKind.Accepted) return;
    if (this.#closed) {
      native.abort(a);
      return;
    }
    const tls = this.#ssl !== null;
    try {
      const [t] = tls
        ? StreamTransport._start(a, this.#protocolFactory, this, TLS_OPS, tlsExtra(a, this.#ssl))
        : StreamTransport._start(a, this.#protocolFactory, this);
      this.#clients.add(t);
    } catch (exc) {
      getRunningLoop().callExceptionHandler({ message: 'Exception in the protocol factory of a server', exception: exc, server: this });
    }
  }

  /** @internal `startTls` replaced one of this server's connections. */
  _attach(t: StreamTransport): void {
    this.#clients.add(t);
  }

  /** @internal A connection this server accepted has closed. */
  _detach(t: StreamTransport): void {
    this.#clients.delete(t);
    this.#wakeup();
  }

  #wakeup(): void {
    if (!this.#closed || this.#clients.size > 0) return;
    const waiters = this.#emptyWaiters;
    this.#emptyWaiters = [];
    for (const w of waiters) w();
  }

  get sockets(): TransportSocket[] {
    return this.#closed ? [] : [...this.#sockets];
  }

  getLoop(): EventLoop {
    return getRunningLoop();
  }

  isServing(): boolean {
    return this.#serving;
  }

  /** Starts accepting connections; idempotent. */
  async startServing(): Promise<void> {
    if (this.#closed) throw new Error('Server is closed');
    if (this.#serving) return;
    this.#serving = true;
    retain();
    native.startServing(this._id);
  }

  /** Starts serving if needed and resolves once the server is closed. */
  async serveForever(): Promise<void> {
    if (this.#closed) return;
    await this.startServing();
    await new Promise<void>((resolve) => this.#closedWaiters.push(resolve));
  }

  /** Stops listening. Accepted connections stay open (see `closeClients`/`abortClients`). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    native.closeServer(this._id);
    try {
      this.#onClose?.();
    } catch (exc) {
      getRunningLoop().callExceptionHandler({ message: 'Error while cleaning up a closed server', exception: exc, server: this });
    }
    unregister(this._id);
    if (this.#serving) {
      this.#serving = false;
      release();
    }
    const waiters = this.#closedWaiters;
    this.#closedWaiters = [];
    for (const w of waiters) w();
    this.#wakeup();
  }

  /** Resolves once the server is closed and every connection it accepted is gone. */
  async waitClosed(): Promise<void> {
    if (this.#closed && this.#clients.size === 0) return;
    await new Promise<void>((resolve) => this.#emptyWaiters.push(resolve));
  }

  /** Closes every accepted connection (flushing each). */
  closeClients(): void {
    for (const t of [...this.#clients]) t.close();
  }

  /** Aborts every accepted connection. */
  abortClients(): void {
    for (const t of [...this.#clients]) t.abort();
  }

  /** `await using server = ...`: closes and waits, as `async with server:` does. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.waitClosed();
  }

  toString(): string {
    return `<Server id=${this._id} sockets=${this.#sockets.length}${this.#closed ? ' closed' : ''}>`;
  }
}

function hostList(host: unknown): string[] {
  if (host === undefined || host === null || host === '') return [];
  if (typeof host === 'string') return [host];
  if (Array.isArray(host) && host.every((h) => typeof h === 'string')) return host.length === 0 ? [] : host;
  throw new TypeError('The "host" argument must be a string, an array of strings, or null');
}

/**
 * Listens on `host` (a name, an address, a list of them, or null for every interface) and `port`
 * (0: an ephemeral port), creating a protocol per accepted connection. Resolves to a `Server`.
 */
export async function createServer(
  protocolFactory: () => object,
  host?: string | string[] | null,
  port?: number | null,
  options: CreateServerOptions = {},
): Promise<Server> {
  checkFunction('protocolFactory', protocolFactory);
  checkObject('options', options);
  options ??= {};
  const tls = tlsConnectOptions(options, true, null);
  for (const k of ['reuseAddress', 'reusePort', 'keepAlive', 'startServing'] as const) checkBoolean(`options.${k}`, options[k]);
  if (options.reusePort === true) native.requireFeature('reusePort');
  const backlog = checkInteger('options.backlog', options.backlog ?? 100, 0, 0x7fffffff);
  const keepAlive = options.keepAlive === true;
  let id: number;
  if (options.sock !== undefined && options.sock !== null) {
    native.requireFeature('sock');
    if (host != null || port != null) throw new TypeError('host/port and sock can not be specified at the same time');
    checkInteger('options.sock', options.sock, 0, 0x7fffffff);
    checkListeningSocket('options.sock', options.sock);
    id = native.listenOn(options.sock, keepAlive);
    if (id < 0) throw adoptionError(id, options.sock);
  } else {
    const hosts = hostList(host);
    const p = checkPort('port', port ?? 0);
    const family = checkFamily(options.family);
    id = native.listen(hosts, p, family, backlog, options.reuseAddress ?? REUSE_ADDRESS_DEFAULT, options.reusePort ?? false, keepAlive);
    if (id < 0) throw systemError(id, 'listen', hosts.join(',') || undefined, p);
  }
  if (tls !== null) native.tlsServe(id, tls);
  const server = new Server(id, protocolFactory, tls === null ? null : options.ssl);
  if (options.startServing ?? true) await server.startServing();
  return server;
}
