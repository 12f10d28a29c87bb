// BufferedProtocol support: memory the engine can receive into without a copy.
import { checkInteger } from './errors';
import { native } from './native';

/** What `getBuffer` is asked for when the engine wants its next target: the engine's read size. */
export const READ_HINT = 64 * 1024;

/** True for protocols that receive into their own buffers (asyncio checks for BufferedProtocol). */
export function isBuffered(protocol: unknown): boolean {
  return typeof (protocol as { getBuffer?: unknown } | null)?.getBuffer === 'function';
}

/**
 * A `Uint8Array` of `size` zeroed bytes that the engine can receive into directly: when a
 * `BufferedProtocol.getBuffer()` returns a view of it, bytes go from the socket into this memory with
 * no copy in between. Freed when JavaScript drops it and no stream still reads into it. (A protoloop
 * extension.)
 *
 * ```ts
 * class Sink extends BufferedProtocol {
 *   buf = allocBuffer(1 << 20);
 *   getBuffer() { return this.buf; }
 *   bufferUpdated(n: number) { consume(this.buf.subarray(0, n)); }
 * }
 * ```
 */
export function allocBuffer(size: number): Uint8Array {
  checkInteger('size', size, 1, 2 ** 31 - 1);
  return native.allocBuffer(size);
}
