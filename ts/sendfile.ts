// asyncio's `loop.sendfile`: a file onto a stream transport with sendfile(2), or by reading and
// writing when the kernel path is not available (TLS, or a file sendfile cannot take).
import { read as readCallback } from 'node:fs';
import { promisify } from 'node:util';
import { checkBoolean, checkInteger, checkObject } from './errors';
import { native } from './native';
import { StreamTransport } from './stream';
import { WriteTransport, type Transport } from './transports';

const read = promisify(readCallback);
const FALLBACK_CHUNK = 256 * 1024;
/** Errors of a first sendfile(2) that mean "not for this file or socket", not "failed". */
const NOT_AVAILABLE = new Set(['EINVAL', 'ENOSYS', 'EOPNOTSUPP', 'ENOTSUP', 'ESPIPE']);

/** What `fallback: false` rejects with when the kernel path cannot be used (asyncio's SendfileNotAvailableError). */
export class SendfileNotAvailableError extends Error {
  override name = 'SendfileNotAvailableError';
  readonly code = 'ERR_SENDFILE_NOT_AVAILABLE';
}

/** A file descriptor, or anything with a numeric `fd` (a `fs.promises.FileHandle`). */
export type FileLike = number | { fd: number };

/**
 * Sends `count` bytes (default: to the end) of a file from `offset` over `transport`, after what is
 * already buffered, and resolves to the number of bytes sent. Plain TCP and Unix stream transports use
 * `sendfile(2)`: no byte passes through user space. Otherwise (TLS, or a file the kernel path refuses)
 * the file is read and written when `fallback` is true (the default), and the promise rejects with
 * `SendfileNotAvailableError` (`code: 'ERR_SENDFILE_NOT_AVAILABLE'`) when it is false. As in asyncio,
 * the file position ends at `offset` + bytes sent.
 */
export async function sendfile(
  transport: Transport,
  file: FileLike,
  offset = 0,
  count: number | null = null,
  options: { fallback?: boolean } = {},
): Promise<number> {
  if (!(transport instanceof WriteTransport)) throw new TypeError('The "transport" argument must be a writable transport');
  const fd = typeof file === 'number' ? file : (file as { fd?: unknown } | null)?.fd;
  checkInteger('file', fd, 0, 0x7fffffff);
  checkInteger('offset', offset, 0, Number.MAX_SAFE_INTEGER);
  if (count !== null && count !== undefined) checkInteger('count', count, 1, Number.MAX_SAFE_INTEGER);
  checkObject('options', options);
  checkBoolean('options.fallback', options?.fallback);
  const fallback = options?.fallback ?? true;
  if (transport.isClosing()) throw new Error('The transport is closing');

  if (transport instanceof StreamTransport && transport._ops.engineStream) {
    try {
      return await transport._sendfileNative(fd as number, offset, count ?? null);
    } catch (exc) {
      const e = exc as { code?: string; bytesSent?: number };
      // Only a refusal before any byte went out may fall back; anything else is a real failure.
      if (!(NOT_AVAILABLE.has(e.code ?? '') && !e.bytesSent)) throw exc;
      if (!fallback) throw new SendfileNotAvailableError(`sendfile(2) is not available for this file: ${e.code}`);
    }
  } else if (!fallback) {
    throw new SendfileNotAvailableError('sendfile(2) is not available for this transport (TLS or not a socket)');
  }
  return sendfileFallback(transport as WriteTransport, fd as number, offset, count ?? null);
}

/** Reads and writes in chunks, honouring the transport's flow control. */
async function sendfileFallback(transport: WriteTransport, fd: number, offset: number, count: number | null): Promise<number> {
  const [low, high] = transport.getWriteBufferLimits();
  let sent = 0;
  try {
    await transport._waitForBuffer(0);
    while (count === null || sent < count) {
      const want = count === null ? FALLBACK_CHUNK : Math.min(FALLBACK_CHUNK, count - sent);
      const { bytesRead, buffer } = await read(fd, Buffer.allocUnsafe(want), 0, want, offset + sent);
      if (bytesRead === 0) break;
      if (transport.isClosing()) throw new Error('The transport closed during sendfile()');
      transport.write(buffer.subarray(0, bytesRead));
      sent += bytesRead;
      if (transport.getWriteBufferSize() > high) await transport._waitForBuffer(low);
    }
    return sent;
  } finally {
    native.seek(fd, offset + sent);
  }
}
