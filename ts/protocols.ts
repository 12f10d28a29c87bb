// The protocol classes of asyncio. Every method is a no-op, so a subclass overrides only what it
// needs; any object with the right methods works as a protocol too.
import type { BaseTransport, DatagramTransport, SubprocessTransport, Transport } from './transports';

/** Base of all protocols: connection lifecycle and write flow control. */
export class BaseProtocol {
  /** Called once when the connection is made, with its transport. */
  connectionMade(_transport: BaseTransport): void {}
  /** Called once when the connection is lost or closed; `exc` is `null` on a clean close. */
  connectionLost(_exc: Error | null): void {}
  /** The transport's write buffer went over the high mark: stop writing until `resumeWriting`. */
  pauseWriting(): void {}
  /** The transport's write buffer drained to the low mark or below. */
  resumeWriting(): void {}
}

/** A streaming protocol (TCP, Unix sockets, pipes, TLS). */
export class Protocol extends BaseProtocol {
  override connectionMade(_transport: Transport): void {}
  /** Bytes arrived. How they are split into calls is not defined; do not rely on message boundaries. */
  dataReceived(_data: Buffer): void {}
  /**
   * The peer sent EOF. Return a truthy value to keep the connection half-open (you may still write,
   * then close); a falsy value closes the transport.
   */
  eofReceived(): boolean | void {}
}

/** A streaming protocol that receives into buffers it provides (zero-copy with `allocBuffer`). */
export class BufferedProtocol extends BaseProtocol {
  override connectionMade(_transport: Transport): void {}
  /** Returns a non-empty buffer for the next bytes; `sizehint` is a suggested size, possibly 0. */
  getBuffer(_sizehint: number): Uint8Array {
    throw new Error('BufferedProtocol.getBuffer() must be overridden');
  }
  /** `nbytes` bytes were written at the start of the buffer `getBuffer` returned. */
  bufferUpdated(_nbytes: number): void {}
  eofReceived(): boolean | void {}
}

/** An address as asyncio gives it: `[host, port]`, `[host, port, flowinfo, scopeId]` or a path. */
export type Address = [string, number] | [string, number, number, number] | string;

/** A datagram (UDP) protocol. */
export class DatagramProtocol extends BaseProtocol {
  override connectionMade(_transport: DatagramTransport): void {}
  datagramReceived(_data: Buffer, _addr: Address): void {}
  /** A previous send or receive failed (for example `ECONNREFUSED` from ICMP). */
  errorReceived(_exc: Error): void {}
}

/** A protocol for child processes and their stdio pipes. */
export class SubprocessProtocol extends BaseProtocol {
  override connectionMade(_transport: SubprocessTransport): void {}
  /** The child wrote `data` to stdout (`fd` 1) or stderr (`fd` 2). */
  pipeDataReceived(_fd: number, _data: Buffer): void {}
  /** One of the child's pipes closed. */
  pipeConnectionLost(_fd: number, _exc: Error | null): void {}
  /** The child exited. */
  processExited(): void {}
}
