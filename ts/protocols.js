"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.SubprocessProtocol = exports.DatagramProtocol = exports.BufferedProtocol = exports.Protocol = exports.BaseProtocol = void 0;
/** Base of all protocols: connection lifecycle and write flow control. */
class BaseProtocol {
    /** Called once when the connection is made, with its transport. */
    connectionMade(_transport) { }
    /** Called once when the connection is lost or closed; `exc` is `null` on a clean close. */
    connectionLost(_exc) { }
    /** The transport's write buffer went over the high mark: stop writing until `resumeWriting`. */
    pauseWriting() { }
    /** The transport's write buffer drained to the low mark or below. */
    resumeWriting() { }
}
exports.BaseProtocol = BaseProtocol;
/** A streaming protocol (TCP, Unix sockets, pipes, TLS). */
class Protocol extends BaseProtocol {
    connectionMade(_transport) { }
    /** Bytes arrived. How they are split into calls is not defined; do not rely on message boundaries. */
    dataReceived(_data) { }
    /**
     * The peer sent EOF. Return a truthy value to keep the connection half-open (you may still write,
     * then close); a falsy value closes the transport.
     */
    eofReceived() { }
}
exports.Protocol = Protocol;
/** A streaming protocol that receives into buffers it provides (zero-copy with `allocBuffer`). */
class BufferedProtocol extends BaseProtocol {
    connectionMade(_transport) { }
    /** Returns a non-empty buffer for the next bytes; `sizehint` is a suggested size, possibly 0. */
    getBuffer(_sizehint) {
        throw new Error('BufferedProtocol.getBuffer() must be overridden');
    }
    /** `nbytes` bytes were written at the start of the buffer `getBuffer` returned. */
    bufferUpdated(_nbytes) { }
    eofReceived() { }
}
exports.BufferedProtocol = BufferedProtocol;
/** A datagram (UDP) protocol. */
class DatagramProtocol extends BaseProtocol {
    connectionMade(_transport) { }
    datagramReceived(_data, _addr) { }
    /** A previous send or receive failed (for example `ECONNREFUSED` from ICMP). */
    errorReceived(_exc) { }
}
exports.DatagramProtocol = DatagramProtocol;
/** A protocol for child processes and their stdio pipes. */
class SubprocessProtocol extends BaseProtocol {
    connectionMade(_transport) { }
    /** The child wrote `data` to stdout (`fd` 1) or stderr (`fd` 2). */
    pipeDataReceived(_fd, _data) { }
    /** One of the child's pipes closed. */
    pipeConnectionLost(_fd, _exc) { }
    /** The child exited. */
    processExited() { }
}
exports.SubprocessProtocol = SubprocessProtocol;
//# sourceMappingURL=protocols.js.map