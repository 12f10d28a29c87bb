// The connect functions: createConnection, connectAcceptedSocket and their helpers (adopting a socket,
// awaiting a connect), for plain and TLS streams alike. Apart from stream.ts and tls.ts so that neither
// of those imports the other.
import {
  adoptionError,
  checkDuration,
  checkFunction,
  checkInteger,
  checkObject,
  checkPort,
  checkString,
  systemError,
  tlsError,
} from './errors';
import { register, unregister } from './events';
import { release, retain } from './loop';
import { EventKind, native } from './native';
import { checkFamily, constants } from './socket';
import { StreamTransport, type StreamOwner } from './stream';
import { TLS_OPS, tlsConnectOptions, tlsExtra, upgradeStream, type NativeTlsOpts, type SslOptions } from './tls';
import { newProtocol, type Transport } from './transports';

/** Options of `createConnection`, asyncio's keyword arguments in camelCase. */
export interface CreateConnectionOptions {
  /** `constants.AF_INET`, `constants.AF_INET6`, or 0 (either). */
  family?: number;
  /** A connected stream socket's descriptor to use instead of `host`/`port`; the transport owns it. */
  sock?: number;
  /** Bind to `[host, port]` before connecting. */
  localAddr?: [string, number];
  /** Start the next address after this long (Happy Eyeballs, RFC 8305); asyncio recommends 250. */
  happyEyeballsDelayMs?: number;
  /** Addresses of the first family before the families alternate (1 when a delay is set). */
  interleave?: number;
  /** TLS: `true` (Mozilla's roots, host name checked) or an `SslOptions` object. */
  ssl?: boolean | SslOptions | null;
  /** The name to send (SNI) and check the certificate against; default `host`. */
  serverHostname?: string | null;
  /** Default 60 000. */
  sslHandshakeTimeoutMs?: number | null;
  /** Bound on waiting for the peer's close_notify after `close()`; default 30 000. */
  sslShutdownTimeoutMs?: number | null;
}

/**
 * Opens a TCP connection to `host`:`port` and resolves to `[transport, protocol]` once
 * `protocol.connectionMade` has run. A failed connect rejects with a Node-style error (`code`,
 * `errno`, `syscall`) and creates no protocol.
 *
 * ```ts
 * const [transport, protocol] = await createConnection(() => new MyProtocol(), '127.0.0.1', 8888);
 * ```
 */
export async function createConnection<P extends object>(
  protocolFactory: () => P,
  host?: string | null,
  port?: number | null,
  options: CreateConnectionOptions = {},
): Promise<[Transport, P]> {
  checkFunction('protocolFactory', protocolFactory);
  checkObject('options', options);
  options ??= {};
  const family = checkFamily(options.family);
  const tls = tlsConnectOptions(options, false, options.serverHostname ?? (typeof host === 'string' ? host : null));
  if (options.sock !== undefined && options.sock !== null) {
    if (host != null || port != null) throw new TypeError('host/port and sock can not be specified at the same time');
    return adoptSocket(protocolFactory, options.sock, 'options.sock', null, tls, options.ssl) as Promise<[Transport, P]>;
  }
  if (host === undefined || host === null) throw new TypeError('host and port must be given when sock is not');
  checkString('host', host);
  checkPort('port', port);
  let localHost: string | null = null;
  let localPort = 0;
  if (options.localAddr !== undefined && options.localAddr !== null) {
    if (!Array.isArray(options.localAddr)) throw new TypeError('The "options.localAddr" argument must be a [host, port] array');
    localHost = checkString('options.localAddr[0]', options.localAddr[0]);
    localPort = checkPort('options.localAddr[1]', options.localAddr[1]);
  }
  const delay = options.happyEyeballsDelayMs == null ? null : checkDuration('options.happyEyeballsDelayMs', options.happyEyeballsDelayMs);
  const interleave = options.interleave == null ? null : checkInteger('options.interleave', options.interleave, 0, 1024);
  retain(); // a pending connect keeps the process alive, as a connecting net.Socket does
  let id: number;
  try {
    id = tls === null
      ? native.connect(host, port as number, family, localHost, localPort, delay, interleave)
      : native.tlsConnect(host, port as number, family, localHost, localPort, delay, interleave, tls);
  } catch (exc) {
    release();
    throw exc;
  }
  return new Promise((resolve, reject) => {
    register(id, {
      _onEvent(kind, a, b, data) {
        if (kind !== EventKind.Connected && kind !== EventKind.ConnectFailed && kind !== EventKind.TlsFailed) return;
        unregister(id);
        release();
        if (kind === EventKind.ConnectFailed) {
          reject(systemError(a, b, host, port as number));
          return;
        }
        if (kind === EventKind.TlsFailed) {
          reject(tlsError(a, b, data, host, port as number));
          return;
        }
        try {
          resolve(
            tls === null
              ? StreamTransport._start(id, protocolFactory, null)
              : StreamTransport._start(id, protocolFactory, null, TLS_OPS, tlsExtra(id, options.ssl)),
          );
        } catch (exc) {
          reject(exc);
        }
      },
    });
  });
}

/**
 * Waits for a connect request `id` of the engine (a Unix connect) and starts its transport with `start`
 * (plain by default); the caller has called `retain()` for the pending connect.
 * @internal
 */
export function awaitConnect<P>(
  id: number,
  protocolFactory: () => P,
  address: string,
  start: (id: number) => [Transport, P] | Promise<[Transport, P]> = (id) => StreamTransport._start(id, protocolFactory, null),
): Promise<[Transport, P]> {
  return new Promise((resolve, reject) => {
    register(id, {
      _onEvent(kind, a, b) {
        if (kind !== EventKind.Connected && kind !== EventKind.ConnectFailed) return;
        unregister(id);
        release();
        if (kind === EventKind.ConnectFailed) {
          reject(systemError(a, b, address));
          return;
        }
        try {
          resolve(start(id));
        } catch (exc) {
          reject(exc);
        }
      },
    });
  });
}

/** @internal Wraps a connected stream socket descriptor (asyncio's `sock=`). */
export async function adoptSocket<P extends object>(
  protocolFactory: () => P,
  fd: unknown,
  name: string,
  owner: StreamOwner | null = null,
  tls: NativeTlsOpts | null = null,
  ssl: unknown = null,
): Promise<[Transport, P]> {
  native.requireFeature('sock'); // Windows has no descriptors to hand over: its Error, as the engine words it
  checkInteger(name, fd, 0, 0x7fffffff);
  // A datagram or listening socket would make a transport that can never work: refuse it clearly.
  const kind = native.socketKind(fd as number);
  if (kind !== null && kind[1] !== constants.SOCK_STREAM) {
    throw new TypeError(`The "${name}" argument must be a stream socket (SOCK_STREAM); descriptor ${fd} has type ${kind[1]}`);
  }
  if (kind !== null && native.getsockopt(fd as number, constants.SOL_SOCKET, constants.SO_ACCEPTCONN) === 1) {
    throw new TypeError(`The "${name}" argument must be a connected socket, not a listening one`);
  }
  // The protocol first, as asyncio makes it before it touches the socket: a factory that throws or returns
  // no protocol must leave the caller's descriptor open, not closed by an adoption already made.
  const protocol = newProtocol(protocolFactory);
  protocolFactory = () => protocol;
  const id = native.adopt(fd as number, false, true);
  if (id < 0) throw adoptionError(id, fd as number);
  if (tls === null) return StreamTransport._start(id, protocolFactory, owner);
  // A socket handed over with ssl= is upgraded before any protocol sees it, as asyncio wraps it.
  retain();
  return upgradeStream(id, [], tls, tls.serverName ?? null, (tlsId) =>
    StreamTransport._start(tlsId, protocolFactory, owner, TLS_OPS, tlsExtra(tlsId, ssl)),
  ).finally(release);
}

/**
 * Wraps an accepted (connected) socket descriptor in a transport, as asyncio's
 * `connect_accepted_socket`. The transport owns the descriptor.
 */
export async function connectAcceptedSocket<P extends object>(
  protocolFactory: () => P,
  fd: number,
  options: ConnectAcceptedSocketOptions = {},
): Promise<[Transport, P]> {
  checkFunction('protocolFactory', protocolFactory);
  checkObject('options', options);
  options ??= {};
  // An accepted socket is the server end: TLS runs server side, as asyncio's connect_accepted_socket.
  const tls = tlsConnectOptions(options, true, null);
  return adoptSocket(protocolFactory, fd, 'fd', null, tls, options.ssl);
}

/** Options of `connectAcceptedSocket`. */
export interface ConnectAcceptedSocketOptions {
  /** TLS, server side: an `SslOptions` object with `cert` and `key`. */
  ssl?: SslOptions | null;
  sslHandshakeTimeoutMs?: number | null;
  sslShutdownTimeoutMs?: number | null;
}
