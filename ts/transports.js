"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.SubprocessTransport = exports.DatagramTransport = exports.Transport = exports.WriteTransport = exports.ReadTransport = exports.BaseTransport = exports.DEFAULT_HIGH_WATER = void 0;
// The transport classes of asyncio. Users never construct them; the library's transports extend
// them, so `instanceof` works as in Python.
//
// `BaseTransport` also carries what every transport kind shares, as uvloop's UVBaseTransport does:
// the protocol and extra info, the once-only connection lifecycle, write flow control marks, and
// routing of protocol exceptions to the loop's exception handler. A transport kind supplies a few
// hooks (`getWriteBufferSize`, `abort`) and calls `_callProtocol` / `_connectionLost`.
const errors_1 = require("./errors");
const loop_1 = require("./loop");
/** The default high-water mark of write flow control (asyncio's 64 KiB); low defaults to high/4. */
exports.DEFAULT_HIGH_WATER = 64 * 1024;
class BaseTransport {
    /** @internal */ _protocol;
    /** @internal */ _extra;
    /** @internal close() or abort() was called, or the connection is gone. */ _closing = false;
    /** @internal connectionLost has been called. */ _lost = false;
    /** @internal the error to report when an abort we started completes. */ _pendingExc = null;
    #high = exports.DEFAULT_HIGH_WATER;
    #low = exports.DEFAULT_HIGH_WATER / 4;
    #protocolPaused = false;
    /** @internal */
    constructor(protocol, extra) {
        this._protocol = protocol;
        this._extra = extra;
    }
    /** Information about the transport (`'peername'`, `'sockname'`, `'socket'`, ...), or `defaultValue`. */
    getExtraInfo(name, defaultValue) {
        const v = this._extra[name];
        return v === undefined ? (defaultValue ?? null) : typeof v === 'function' ? v() : v;
    }
    /** Callbacks go to `protocol` from the next event on. */
    setProtocol(protocol) {
        if (protocol === null || typeof protocol !== 'object') {
            throw new TypeError('The "protocol" argument must be a protocol object');
        }
        this._protocol = protocol;
    }
    getProtocol() {
        return this._protocol;
    }
    /** True once `close()` or `abort()` was called or the connection was lost. */
    isClosing() {
        return this._closing;
    }
    // ---- write flow control, shared by every transport that writes ----
    /** Bytes accepted by `write()` that the kernel has not taken yet. */
    getWriteBufferSize() {
        return 0;
    }
    /** `[low, high]`. */
    getWriteBufferLimits() {
        return [this.#low, this.#high];
    }
    /**
     * Sets the marks: `pauseWriting()` when the buffer goes strictly over `high`, `resumeWriting()` when
     * it drains to `low` or below. `high` defaults to 64 KiB (or 4 × `low`), `low` to `high / 4`.
     */
    setWriteBufferLimits(high, low) {
        if (high !== undefined && high !== null)
            (0, errors_1.checkInteger)('high', high, 0, Number.MAX_SAFE_INTEGER);
        if (low !== undefined && low !== null)
            (0, errors_1.checkInteger)('low', low, 0, Number.MAX_SAFE_INTEGER);
        let h = high ?? (low == null ? exports.DEFAULT_HIGH_WATER : 4 * low);
        const l = low ?? Math.floor(h / 4);
        if (l > h) {
            throw new RangeError(`The value of "low" is out of range. It must be <= high (${h}). Received ${l}`);
        }
        this.#high = h;
        this.#low = l;
        this._maybePauseProtocol();
        this._maybeResumeProtocol();
    }
    /** @internal Call after the buffer grew. */
    _maybePauseProtocol() {
        if (this.#protocolPaused || this.getWriteBufferSize() <= this.#high)
            return;
        this.#protocolPaused = true;
        this._callProtocol('pauseWriting');
    }
    /** @internal Call after the buffer shrank. */
    _maybeResumeProtocol() {
        if (!this.#protocolPaused || this.getWriteBufferSize() > this.#low)
            return;
        this.#protocolPaused = false;
        // A protocol that closed its transport is not told to write again.
        if (!this._closing)
            this._callProtocol('resumeWriting');
    }
    // ---- lifecycle and error routing ----
    /**
     * Calls `protocol[method](...args)` if the protocol has it. An exception goes to the loop's exception
     * handler and aborts this transport with it; `undefined` is returned then.
     */
    _callProtocol(method, ...args) {
        const p = this._protocol;
        const fn = p?.[method];
        if (typeof fn !== 'function')
            return undefined;
        try {
            return fn.apply(p, args);
        }
        catch (exc) {
            this._fatalError(exc, `Exception in protocol callback ${method}()`);
            return undefined;
        }
    }
    /** @internal Reports `exc` and aborts the transport; `connectionLost(exc)` follows. */
    _fatalError(exc, message) {
        (0, loop_1.getRunningLoop)().callExceptionHandler({ message, exception: exc, transport: this, protocol: this._protocol });
        if (this._lost)
            return;
        this._pendingExc ??= exc instanceof Error ? exc : new Error(String(exc));
        this._abort();
    }
    /** @internal Delivers `connectionLost` exactly once; later events are ignored. */
    _connectionLost(exc) {
        if (this._lost)
            return false;
        this._lost = true;
        this._closing = true;
        const p = this._protocol;
        try {
            p?.connectionLost?.(this._pendingExc ?? exc);
        }
        catch (e) {
            (0, loop_1.getRunningLoop)().callExceptionHandler({ message: 'Exception in protocol callback connectionLost()', exception: e, transport: this, protocol: p });
        }
        return true;
    }
}
exports.BaseTransport = BaseTransport;
/** Mixes the read/write interfaces of asyncio's `Transport(ReadTransport, WriteTransport)`. */
function isKind(base, o) {
    return Function.prototype[Symbol.hasInstance].call(base, o) || o instanceof Transport;
}
/** A transport that receives (a read pipe, the read side of a stream). */
class ReadTransport extends BaseTransport {
    static [Symbol.hasInstance](o) {
        return this === ReadTransport ? isKind(ReadTransport, o) : Function.prototype[Symbol.hasInstance].call(this, o);
    }
}
exports.ReadTransport = ReadTransport;
/** A transport that sends (a write pipe, the write side of a stream). */
class WriteTransport extends BaseTransport {
    static [Symbol.hasInstance](o) {
        return this === WriteTransport ? isKind(WriteTransport, o) : Function.prototype[Symbol.hasInstance].call(this, o);
    }
}
exports.WriteTransport = WriteTransport;
/** A bidirectional stream (TCP, Unix socket, TLS): both a `ReadTransport` and a `WriteTransport`. */
class Transport extends BaseTransport {
}
exports.Transport = Transport;
/** A datagram (UDP) transport. */
class DatagramTransport extends BaseTransport {
}
exports.DatagramTransport = DatagramTransport;
/** A child process with pipes to its stdio. */
class SubprocessTransport extends BaseTransport {
}
exports.SubprocessTransport = SubprocessTransport;
//# sourceMappingURL=transports.js.map