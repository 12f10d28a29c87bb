// TLS: the `ssl` options of the loop functions, `startTls`, the SSL extra info and handshake errors.
// The engine runs the TLS session (rustls); a TLS connection is a StreamTransport whose operations
// are the engine's TLS ones, so flow control, reading pauses and the lifecycle are the same code.
import { X509Certificate } from 'node:crypto';
import { checkBoolean, checkDuration, checkObject, systemError, type SystemError } from './errors';
import { register, unregister } from './events';
import { release, retain } from './loop';
import { EventKind, native } from './native';
import { StreamTransport, type StreamOps } from './stream';
import type { Transport } from './transports';

/** PEM text or its bytes. */
export type Pem = string | ArrayBufferView | ArrayBuffer;

/** The `ssl` option as an object (asyncio's `SSLContext`, in Node's `tls` option names). */
export interface SslOptions {
  /** Trusted CA certificates (PEM). Given: they replace the default roots (Mozilla's, via webpki-roots). */
  ca?: Pem | Pem[] | null;
  /** Our certificate chain (PEM); required on the server side, optional (mutual TLS) on the client. */
  cert?: Pem | null;
  /** The private key of `cert` (PEM: PKCS#8, PKCS#1 or SEC1). */
  key?: Pem | null;
  /** Client: refuse a server certificate that does not verify (default true). Server with
   * `requestCert`: refuse a client without a verifying certificate (default true). */
  rejectUnauthorized?: boolean;
  /** ALPN protocols in order of preference, e.g. `['h2', 'http/1.1']`. */
  alpnProtocols?: string[] | null;
  /** The name to send (SNI) and verify, when `serverHostname` is not given. */
  servername?: string | null;
  /** `'TLSv1.2'` (default) or `'TLSv1.3'`. */
  minVersion?: 'TLSv1.2' | 'TLSv1.3' | null;
  /** `'TLSv1.2'` or `'TLSv1.3'` (default). */
  maxVersion?: 'TLSv1.2' | 'TLSv1.3' | null;
  /** Server: ask clients for a certificate, verified against `ca` (mutual TLS). */
  requestCert?: boolean;
}

export type NativeTlsOpts = Parameters<typeof native.tlsCheck>[0];

/** What `getExtraInfo('ssl_object')` returns: the state of the TLS session. */
export interface SslObject {
  /** `'TLSv1.2'` or `'TLSv1.3'`. */
  version: string;
  /** `[name, version, bits]`, as `'cipher'`. */
  cipher: [string, string, number];
  /** The ALPN protocol both sides chose, or null. */
  alpnProtocol: string | null;
  /** The server name: the one the client sent (SNI), or the one it checked. */
  serverName: string | null;
  serverSide: boolean;
}

/** The peer's certificate, as `getExtraInfo('peercert')` returns it (the fields of Node's `getPeerCertificate`). */
export interface PeerCertificate {
  subject: Record<string, string>;
  issuer: Record<string, string>;
  notBefore: string;
  notAfter: string;
  serialNumber: string;
  /** Node's format: `'DNS:localhost, IP Address:127.0.0.1'`. */
  subjectAltName: string | null;
  /** DER bytes. */
  raw: Buffer;
}

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 60_000;
const DEFAULT_SHUTDOWN_TIMEOUT_MS = 30_000;
const VERSIONS: Record<string, number> = { 'TLSv1.2': 0x0303, 'TLSv1.3': 0x0304 };

/** @internal */
export const TLS_OPS: StreamOps = {
  write: native.tlsWrite,
  writev: native.tlsWritev,
  writeEof: native.tlsWriteEof,
  close: native.tlsClose,
  abort: native.tlsAbort,
  pauseReading: native.tlsPauseReading,
  resumeReading: native.tlsResumeReading,
  fd: native.tlsFd,
  startReading: (id) => native.tlsStartReading(id),
  canWriteEof: false,
  engineStream: false,
};

function pemBytes(name: string, v: unknown): Buffer {
  if (typeof v === 'string') return Buffer.from(v);
  if (ArrayBuffer.isView(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (v instanceof ArrayBuffer) return Buffer.from(v);
  throw new TypeError(`The "${name}" argument must be PEM text (a string or a Buffer)`);
}

function timeout(name: string, v: unknown, dflt: number): number {
  return v === undefined || v === null ? dflt : checkDuration(name, v, true);
}

function optString(name: string, v: unknown): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw new TypeError(`The "${name}" argument must be a string`);
  return v;
}

function version(name: string, v: unknown): number | null {
  if (v === undefined || v === null) return null;
  const n = typeof v === 'string' ? VERSIONS[v] : undefined;
  if (n === undefined) throw new RangeError(`The value of "${name}" must be 'TLSv1.2' or 'TLSv1.3'. Received ${String(v)}`);
  return n;
}

interface TlsKeywords {
  ssl?: unknown;
  serverHostname?: unknown;
  sslHandshakeTimeoutMs?: unknown;
  sslShutdownTimeoutMs?: unknown;
}

/**
 * Checks the `ssl` option and its companions and returns what the engine takes, or null without TLS.
 * `defaultName` is the name a client checks when neither `serverHostname` nor `ssl.servername` is set.
 * @internal
 */
export function tlsConnectOptions(options: TlsKeywords, serverSide: boolean, defaultName: string | null, sslName = 'options.ssl'): NativeTlsOpts | null {
  const ssl = options.ssl;
  if (ssl === undefined || ssl === null || ssl === false) {
    // asyncio refuses the TLS keywords without ssl (a ValueError there).
    for (const k of ['serverHostname', 'sslHandshakeTimeoutMs', 'sslShutdownTimeoutMs'] as const) {
      if (options[k] !== undefined && options[k] !== null) throw new TypeError(`The "options.${k}" option is only meaningful with ssl`);
    }
    return null;
  }
  if (ssl !== true && (typeof ssl !== 'object' || Array.isArray(ssl))) {
    throw new TypeError(`The "${sslName}" argument must be true or an object of TLS options`);
  }
  const o = (ssl === true ? {} : ssl) as SslOptions;
  if (serverSide && options.serverHostname != null) throw new TypeError('The "options.serverHostname" option is only meaningful for a client');
  checkBoolean(`${sslName}.rejectUnauthorized`, o.rejectUnauthorized);
  checkBoolean(`${sslName}.requestCert`, o.requestCert);
  const caList = o.ca === undefined || o.ca === null ? [] : Array.isArray(o.ca) ? o.ca : [o.ca];
  const alpn = o.alpnProtocols ?? [];
  // Names of 1 to 255 bytes (RFC 7301), counted in UTF-8 as they are sent.
  if (!Array.isArray(alpn) || !alpn.every((p) => typeof p === 'string' && p.length > 0 && Buffer.byteLength(p) < 256)) {
    throw new TypeError(`The "${sslName}.alpnProtocols" argument must be an array of non-empty strings of at most 255 bytes`);
  }
  const serverName = serverSide ? null : optString('options.serverHostname', options.serverHostname) ?? optString(`${sslName}.servername`, o.servername) ?? defaultName;
  const opts: NativeTlsOpts = {
    serverSide,
    ca: caList.map((c, i) => pemBytes(`${sslName}.ca[${i}]`, c)),
    cert: o.cert == null ? undefined : pemBytes(`${sslName}.cert`, o.cert),
    key: o.key == null ? undefined : pemBytes(`${sslName}.key`, o.key),
    rejectUnauthorized: o.rejectUnauthorized ?? true,
    alpnProtocols: alpn,
    serverName: serverName ?? undefined,
    minVersion: version(`${sslName}.minVersion`, o.minVersion) ?? undefined,
    maxVersion: version(`${sslName}.maxVersion`, o.maxVersion) ?? undefined,
    requestCert: o.requestCert ?? false,
    handshakeTimeoutMs: timeout('options.sslHandshakeTimeoutMs', options.sslHandshakeTimeoutMs, DEFAULT_HANDSHAKE_TIMEOUT_MS),
    shutdownTimeoutMs: timeout('options.sslShutdownTimeoutMs', options.sslShutdownTimeoutMs, DEFAULT_SHUTDOWN_TIMEOUT_MS),
  };
  if (serverSide && (opts.cert === undefined || opts.key === undefined)) {
    throw new TypeError(`The "${sslName}" argument of a TLS server must have cert and key`);
  }
  if (!serverSide && opts.serverName === undefined) {
    throw new TypeError('A TLS client needs a server name: pass options.serverHostname');
  }
  try {
    native.tlsCheck(opts, null);
  } catch (exc) {
    throw new TypeError(`The "${sslName}" argument is invalid: ${(exc as Error).message}`);
  }
  return opts;
}

/** `'CN=a\nO=b'` (Node's X509Certificate) → `{ CN: 'a', O: 'b' }` (Node's getPeerCertificate). */
function nameObject(dn: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of dn.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

function peerCertificate(der: Buffer | undefined): PeerCertificate | null {
  if (der === undefined) return null;
  const raw = Buffer.from(der);
  try {
    const x = new X509Certificate(raw);
    return {
      subject: nameObject(x.subject),
      issuer: nameObject(x.issuer),
      notBefore: x.validFrom,
      notAfter: x.validTo,
      serialNumber: x.serialNumber,
      subjectAltName: x.subjectAltName ?? null,
      raw,
    };
  } catch {
    // rustls accepted it, so this is an encoding Node cannot show; the bytes are still the truth.
    return { subject: {}, issuer: {}, notBefore: '', notAfter: '', serialNumber: '', subjectAltName: null, raw };
  }
}

/**
 * The TLS categories of `getExtraInfo`, captured once the handshake is done so they stay readable
 * after the connection closes.
 * @internal
 */
export function tlsExtra(id: number, ssl: unknown): Record<string, unknown> {
  const info = native.tlsInfo(id);
  if (info === null) return { compression: null, sslcontext: ssl, peercert: null };
  const cipher: [string, string, number] = [info.cipher, info.version, info.bits];
  const sslObject: SslObject = Object.freeze({
    version: info.version,
    cipher,
    alpnProtocol: info.alpnProtocol ?? null,
    serverName: info.serverName ?? null,
    serverSide: info.serverSide,
  });
  return {
    cipher,
    peercert: peerCertificate(info.peerCertificates[0]),
    compression: null,
    sslcontext: ssl,
    ssl_object: sslObject,
  };
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
 * STARTTLS in the engine: stream `oldId` gives its socket up (after sending what it had queued); the
 * bytes it read but nobody delivered (`held`, then any still in flight) go to the TLS session first.
 * Once the handshake is done, `make(id)` builds the transport of the TLS connection at once (inside the
 * event dispatch, so that no event of the new id finds nobody to take it) and the promise resolves to it.
 * `plain` is the old transport, if any: the outcome of a sendfile it had queued still goes to it.
 * @internal
 */
export function upgradeStream<T>(
  oldId: number,
  held: Buffer[],
  tls: NativeTlsOpts,
  host: string | null,
  make: (id: number) => T,
  lent: Uint8Array | null = null,
  plain: StreamTransport | null = null,
): Promise<T> {
  const newId = native.tlsDetach(oldId);
  if (newId < 0) return Promise.reject(new Error('The transport is closed'));
  retain();
  const early = [...held];
  return new Promise<T>((resolve, reject) => {
    register(oldId, {
      _onEvent(kind, a, b, data) {
        if (kind === EventKind.Data && data !== null) {
          early.push(Buffer.from(data));
        } else if (kind === EventKind.BufferFilled && lent !== null) {
          early.push(Buffer.from(lent.subarray(0, a)));
        } else if (kind === EventKind.SendfileDone || kind === EventKind.SendfileFailed) {
          plain?._sendfileEvent(kind, a, b, data);
        } else if (kind === EventKind.Closed) {
          plain?._sendfileEvent(kind, a, b, data);
          unregister(oldId);
          release();
          reject(a === 0 ? new Error('The transport closed before the TLS upgrade') : systemError(a, b));
        } else if (kind === EventKind.Detached) {
          // The writer finished before the detach, so a queued sendfile has settled by now.
          plain?._sendfileEvent(EventKind.Closed, 0, 0, null);
          unregister(oldId);
          register(newId, {
            _onEvent(kind2, a2, b2, data2) {
              if (kind2 !== EventKind.Connected && kind2 !== EventKind.TlsFailed) return;
              unregister(newId);
              release();
              if (kind2 !== EventKind.Connected) {
                reject(tlsError(a2, b2, data2));
                return;
              }
              try {
                resolve(make(newId));
              } catch (exc) {
                reject(exc);
              }
            },
          });
          try {
            if (!native.tlsUpgrade(newId, Buffer.concat(early), tls, host)) throw new Error('The detached socket is gone');
          } catch (exc) {
            unregister(newId);
            release();
            reject(exc);
          }
        }
      },
    });
  });
}

/** Options of `startTls`, asyncio's keyword arguments in camelCase. */
export interface StartTlsOptions {
  /** Run the server end of the handshake (needs `ssl.cert` and `ssl.key`). */
  serverSide?: boolean;
  /** Client: the name to send and verify; default `ssl.servername`, else the peer's address. */
  serverHostname?: string | null;
  sslHandshakeTimeoutMs?: number | null;
  sslShutdownTimeoutMs?: number | null;
}

/**
 * Upgrades a live TCP (or Unix) stream transport to TLS in place (STARTTLS), as asyncio's
 * `loop.start_tls`. Resolves to the new transport once the handshake is done; from then on `protocol`
 * receives the decrypted stream (its `connectionMade` is not called again). The old transport is no
 * longer usable. A failed handshake rejects and closes the connection.
 */
export async function startTls(
  transport: Transport,
  protocol: object,
  ssl: true | SslOptions,
  options: StartTlsOptions = {},
): Promise<Transport> {
  if (!(transport instanceof StreamTransport)) throw new TypeError('The "transport" argument must be a stream transport of protoloop');
  if (!transport.canWriteEof()) throw new TypeError('The "transport" argument is already a TLS transport');
  if (protocol === null || typeof protocol !== 'object') throw new TypeError('The "protocol" argument must be a protocol object');
  checkObject('options', options);
  options ??= {};
  checkBoolean('options.serverSide', options.serverSide);
  if (ssl === null || ssl === undefined || (ssl as unknown) === false) throw new TypeError('The "ssl" argument must be true or an object of TLS options');
  if (transport.isClosing()) throw new Error('The transport is closing');
  const serverSide = options.serverSide ?? false;
  const peer = transport.getExtraInfo('peername');
  const peerHost = Array.isArray(peer) ? String(peer[0]) : null;
  const tls = tlsConnectOptions({ ...options, ssl }, serverSide, peerHost, 'ssl') as NativeTlsOpts;
  const { held, owner, lent } = transport._handOver();
  const upgraded = upgradeStream(transport._id, held, tls, tls.serverName ?? null, (id) => {
    const [t] = StreamTransport._start(id, () => protocol, owner, TLS_OPS, tlsExtra(id, ssl), false);
    owner?._attach(t);
    return t;
  }, lent, transport);
  // The plain stream reads no more (the detach above stopped it): a SharedArrayBuffer it had been lent
  // for zero-copy receive may go.
  native.releaseReadTarget(transport._id);
  return upgraded;
}
