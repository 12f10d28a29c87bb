// Unix domain sockets: `createUnixConnection`, `createUnixServer` and `socketpair()`. Connected and
// listening Unix sockets are the same `StreamTransport` and `Server` as TCP; only making them differs.
import { lstatSync, unlinkSync } from 'node:fs';
import { adoptionError, checkBoolean, checkFunction, checkInteger, checkObject, checkUnixPath, systemError } from './errors';
import { release, retain } from './loop';
import { native } from './native';
import { Server } from './server';
import { checkAbstractName, checkListeningSocket, constants } from './socket';
import { adoptSocket, awaitConnect } from './connect';
import { StreamTransport } from './stream';
import { TLS_OPS, tlsConnectOptions, tlsExtra, upgradeStream, type SslOptions } from './tls';
import type { Transport } from './transports';

/** Options of `createUnixConnection`. */
export interface CreateUnixConnectionOptions {
  /** A connected `AF_UNIX` stream socket's descriptor to use instead of `path`; the transport owns it. */
  sock?: number;
  /** TLS (client side), as for `createConnection`; needs `serverHostname` (a path names no host). */
  ssl?: boolean | SslOptions | null;
  serverHostname?: string | null;
  sslHandshakeTimeoutMs?: number | null;
  sslShutdownTimeoutMs?: number | null;
}

/** Options of `createUnixServer`. */
export interface CreateUnixServerOptions {
  /** A listening `AF_UNIX` stream socket's descriptor to serve on instead of `path`; the server owns it. */
  sock?: number;
  /** Queue length of `listen(2)`; default 100. */
  backlog?: number;
  /** Accept at once (default true); else call `startServing()` or `serveForever()`. */
  startServing?: boolean;
  /** Remove the socket file when the server closes (default true), if it is still the one bound. */
  cleanupSocket?: boolean;
  /** TLS, server side: an `SslOptions` object with `cert` and `key`. */
  ssl?: SslOptions | null;
  sslHandshakeTimeoutMs?: number | null;
  sslShutdownTimeoutMs?: number | null;
}

/** A path or abstract name (leading `\0`): a non-empty string without NUL bytes after the first. */
function checkPath(name: string, path: unknown): string {
  const p = checkUnixPath(name, path);
  if (p.length === 0) throw new TypeError(`The "${name}" argument must be a non-empty path`);
  checkAbstractName(name, p);
  return p;
}

/** Refuses a descriptor that is not an `AF_UNIX` stream socket, before the engine takes it over. */
function checkUnixSocket(name: string, fd: unknown): number {
  checkInteger(name, fd, 0, 0x7fffffff);
  const kind = native.socketKind(fd as number);
  if (kind === null) throw new TypeError(`The "${name}" argument must be a socket descriptor`);
  const [family, type] = kind;
  if (family !== constants.AF_UNIX || type !== constants.SOCK_STREAM) {
    throw new TypeError(`The "${name}" argument must be an AF_UNIX SOCK_STREAM socket (family ${family}, type ${type})`);
  }
  return fd as number;
}

/**
 * asyncio's `create_unix_connection`: connects to the Unix socket at `path` (a filesystem path, or a
 * Linux abstract name starting with `\0`) and resolves to `[transport, protocol]` once `connectionMade`
 * has run. `getExtraInfo('peername')` is the path. A failed connect rejects (`ENOENT`, `ECONNREFUSED`).
 */
export async function createUnixConnection<P extends object>(
  protocolFactory: () => P,
  path?: string | null,
  options: CreateUnixConnectionOptions = {},
): Promise<[Transport, P]> {
  checkFunction('protocolFactory', protocolFactory);
  native.requireFeature('unix');
  checkObject('options', options);
  options ??= {};
  const tls = tlsConnectOptions(options, false, null);
  if (options.sock != null) {
    if (path != null) throw new TypeError('path and sock can not be specified at the same time');
    const fd = checkUnixSocket('options.sock', options.sock);
    return adoptSocket(protocolFactory, fd, 'options.sock', null, tls, options.ssl) as Promise<[Transport, P]>;
  }
  if (path == null) throw new TypeError('path must be given when sock is not');
  const p = checkPath('path', path);
  retain(); // a pending connect keeps the process alive
  const id = native.connectUnix(p);
  if (tls === null) return awaitConnect(id, protocolFactory, p);
  // The connected socket is upgraded before any protocol sees it, as asyncio wraps it.
  return awaitConnect(id, protocolFactory, p, (plainId) => {
    retain();
    return upgradeStream(plainId, [], tls, tls.serverName ?? null, (tlsId) =>
      StreamTransport._start(tlsId, protocolFactory, null, TLS_OPS, tlsExtra(tlsId, options.ssl)),
    ).finally(release);
  });
}

/**
 * asyncio's `create_unix_server`: listens on the Unix socket `path` (a socket file left there by a dead
 * server is replaced; any other file is an `EADDRINUSE` error) and resolves to a `Server`. Closing the
 * server removes the socket file (`cleanupSocket`, default true) if it is still the one it bound.
 */
export async function createUnixServer(
  protocolFactory: () => object,
  path?: string | null,
  options: CreateUnixServerOptions = {},
): Promise<Server> {
  checkFunction('protocolFactory', protocolFactory);
  native.requireFeature('unix');
  checkObject('options', options);
  options ??= {};
  const tls = tlsConnectOptions(options, true, null);
  checkBoolean('options.startServing', options.startServing);
  checkBoolean('options.cleanupSocket', options.cleanupSocket);
  const backlog = checkInteger('options.backlog', options.backlog ?? 100, 0, 0x7fffffff);
  let id: number;
  let boundPath: string | null = null;
  if (options.sock != null) {
    if (path != null) throw new TypeError('path and sock can not be specified at the same time');
    checkUnixSocket('options.sock', options.sock);
    checkListeningSocket('options.sock', options.sock as number);
    const name = native.sockname(options.sock as number);
    id = native.listenOn(options.sock, false);
    if (id < 0) throw adoptionError(id, options.sock as number);
    boundPath = name?.host ?? null;
  } else {
    if (path == null) throw new TypeError('path must be given when sock is not');
    const p = checkPath('path', path);
    id = native.listenUnix(p, backlog);
    if (id < 0) throw systemError(id, 'listen', p);
    boundPath = p;
  }
  let cleanup: (() => void) | null = null;
  if ((options.cleanupSocket ?? true) && boundPath && !boundPath.startsWith('\0')) {
    // Remove the file only if it is still ours: another server may have replaced it meanwhile.
    const bound = lstatSync(boundPath, { throwIfNoEntry: false });
    const where = boundPath;
    native.removeAtTeardown(id, where); // if this thread ends (a worker) before the server closes
    cleanup = () => {
      const now = lstatSync(where, { throwIfNoEntry: false });
      if (bound && now && now.isSocket() && now.ino === bound.ino && now.dev === bound.dev) unlinkSync(where);
    };
  }
  if (tls !== null) native.tlsServe(id, tls);
  const server = new Server(id, protocolFactory, tls === null ? null : options.ssl, cleanup);
  if (options.startServing ?? true) await server.startServing();
  return server;
}

/**
 * Two connected `AF_UNIX` stream socket descriptors `[a, b]` (Python's `socket.socketpair()`), for
 * `createConnection(pf, null, null, { sock: a })` and friends. Descriptors not handed to a transport are
 * the caller's to close (`fs.closeSync`).
 */
export function socketpair(): [number, number] {
  native.requireFeature('socketpair');
  const r = native.socketpair();
  if (r.length !== 2) throw systemError(r[0], 'socketpair');
  return [r[0], r[1]];
}
