"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.StreamTransport = void 0;
exports.rejectSsl = rejectSsl;
exports.createConnection = createConnection;
exports.adoptSocket = adoptSocket;
exports.connectAcceptedSocket = connectAcceptedSocket;
// Stream transports (TCP now; Unix sockets and pipes reuse it) and `createConnection`.
const errors_1 = require("./errors");
const events_1 = require("./events");
const loop_1 = require("./loop");
const native_1 = require("./native");
const socket_1 = require("./socket");
const transports_1 = require("./transports");
/** asyncio logs a warning once this many writes were dropped after the connection was lost. */
const LOG_THRESHOLD_FOR_CONNLOST_WRITES = 5;
/**
 * The transport of a byte stream the engine owns. Reads arrive as engine events; writes go to the
 * kernel at once when nothing is queued, and the engine reports the rest as it drains.
 */
class StreamTransport extends transports_1.Transport {
    /** @internal */ _id;
    #owner;
    #accepted = 0; // bytes taken by write()
    #flushed = 0; // of those, bytes the kernel has
    #bytesRead = 0;
    #bytesCopied = 0;
    #eofWritten = false;
    #paused = false;
    #held = [];
    #flushScheduled = false;
    #droppedWrites = 0;
    /** @internal */
    constructor(id, protocol, extra, owner) {
        super(protocol, extra);
        this._id = id;
        this.#owner = owner;
        this._extra.stats = () => ({
            bytesRead: this.#bytesRead,
            bytesWritten: this.#flushed,
            bytesCopiedOnReceive: this.#bytesCopied,
        });
        (0, events_1.register)(id, this);
        (0, loop_1.retain)();
    }
    /**
     * Makes the transport of live stream `id` with a protocol from `protocolFactory`, and calls
     * `connectionMade`. A throwing factory aborts the stream and rethrows.
     * @internal
     */
    static _start(id, protocolFactory, owner) {
        let protocol;
        try {
            protocol = protocolFactory();
        }
        catch (exc) {
            native_1.native.abort(id);
            throw exc;
        }
        const fd = native_1.native.streamFd(id);
        let t = undefined;
        const socket = new socket_1.TransportSocket(fd, () => t !== undefined && !t._lost);
        const extra = {
            socket,
            sockname: (0, socket_1.toAddress)(native_1.native.sockname(fd)),
            peername: (0, socket_1.toAddress)(native_1.native.peername(fd)),
        };
        t = new StreamTransport(id, protocol, extra, owner);
        t._callProtocol('connectionMade', t);
        return [t, protocol];
    }
    /** @internal */
    _onEvent(kind, a, b, data) {
        switch (kind) {
            case 1 /* EventKind.Data */:
            case 2 /* EventKind.Eof */:
                if (this._closing)
                    return;
                if (this.#paused || this.#held.length > 0)
                    this.#held.push([kind, data]);
                else
                    this.#deliver(kind, data);
                return;
            case 3 /* EventKind.Drained */:
                this.#flushed += a;
                this._maybeResumeProtocol();
                return;
            case 4 /* EventKind.Closed */:
                this.#held = [];
                (0, events_1.unregister)(this._id);
                this._connectionLost(a === 0 ? null : (0, errors_1.systemError)(a, b));
                this.#owner?._detach(this);
                (0, loop_1.release)();
                return;
        }
    }
    #deliver(kind, data) {
        if (kind === 2 /* EventKind.Eof */) {
            const keepOpen = this._callProtocol('eofReceived');
            if (!keepOpen)
                this.close();
            return;
        }
        const bytes = data;
        this.#bytesRead += bytes.length;
        this.#bytesCopied += bytes.length;
        const p = this._protocol;
        if (typeof p?.getBuffer === 'function')
            this.#fillBuffers(bytes);
        else
            this._callProtocol('dataReceived', bytes);
    }
    /** BufferedProtocol: copy into the buffers the protocol hands out until the bytes are used up. */
    #fillBuffers(bytes) {
        let offset = 0;
        while (offset < bytes.length && !this._closing) {
            const buf = this._callProtocol('getBuffer', bytes.length - offset);
            if (this._closing)
                return;
            if (!(buf instanceof Uint8Array) || buf.length === 0) {
                this._fatalError(new TypeError('getBuffer() must return a non-empty Uint8Array'), 'Invalid buffer from getBuffer()');
                return;
            }
            const n = Math.min(buf.length, bytes.length - offset);
            buf.set(bytes.subarray(offset, offset + n));
            offset += n;
            this._callProtocol('bufferUpdated', n);
        }
    }
    #scheduleFlush() {
        if (this.#flushScheduled)
            return;
        this.#flushScheduled = true;
        setImmediate(() => {
            this.#flushScheduled = false;
            while (!this.#paused && !this._closing && this.#held.length > 0) {
                const [kind, data] = this.#held.shift();
                this.#deliver(kind, data);
            }
        });
    }
    isReading() {
        return !this.#paused && !this._closing;
    }
    pauseReading() {
        if (this._closing || this.#paused)
            return;
        this.#paused = true;
        native_1.native.pauseReading(this._id);
    }
    resumeReading() {
        if (this._closing || !this.#paused)
            return;
        this.#paused = false;
        native_1.native.resumeReading(this._id);
        // Events that came in while paused go out on a later turn, never inside this call.
        if (this.#held.length > 0)
            this.#scheduleFlush();
    }
    getWriteBufferSize() {
        return this.#accepted - this.#flushed;
    }
    write(data) {
        const bytes = (0, errors_1.toBytes)('data', data);
        if (this.#eofWritten)
            throw new Error('Cannot call write() after writeEof()');
        if (this._closing) {
            this.#dropWrite();
            return;
        }
        if (bytes.length === 0)
            return;
        this.#sent(bytes.length, native_1.native.write(this._id, bytes));
    }
    writelines(listOfData) {
        if (listOfData === null || typeof listOfData?.[Symbol.iterator] !== 'function') {
            throw new TypeError('The "listOfData" argument must be an iterable of bytes');
        }
        const views = [];
        let total = 0;
        for (const d of listOfData) {
            const v = (0, errors_1.toBytes)('listOfData[]', d);
            if (v.length > 0) {
                views.push(v);
                total += v.length;
            }
        }
        if (this.#eofWritten)
            throw new Error('Cannot call writelines() after writeEof()');
        if (this._closing) {
            this.#dropWrite();
            return;
        }
        if (total === 0)
            return;
        this.#sent(total, native_1.native.writev(this._id, views));
    }
    #sent(total, now) {
        this.#accepted += total;
        this.#flushed += now;
        if (now < total)
            this._maybePauseProtocol();
    }
    #dropWrite() {
        if (++this.#droppedWrites === LOG_THRESHOLD_FOR_CONNLOST_WRITES) {
            process.emitWarning('protoloop: write() on a closed transport; the data is dropped', 'ProtoloopWarning');
        }
    }
    writeEof() {
        if (this._closing || this.#eofWritten)
            return;
        this.#eofWritten = true;
        native_1.native.writeEof(this._id);
    }
    canWriteEof() {
        return true;
    }
    close() {
        if (this._closing)
            return;
        this._closing = true;
        this.#held = [];
        native_1.native.close(this._id);
    }
    abort() {
        this._abort();
    }
    /** @internal */
    _abort() {
        if (this._lost)
            return;
        this._closing = true;
        this.#held = [];
        native_1.native.abort(this._id);
    }
    toString() {
        return `<StreamTransport id=${this._id}${this._closing ? ' closing' : ''}>`;
    }
}
exports.StreamTransport = StreamTransport;
/** @internal */
function rejectSsl(options) {
    if (options.ssl !== undefined && options.ssl !== null && options.ssl !== false) {
        throw new Error('protoloop: TLS (the "ssl" option) is not available in this build yet');
    }
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
async function createConnection(protocolFactory, host, port, options = {}) {
    (0, errors_1.checkFunction)('protocolFactory', protocolFactory);
    (0, errors_1.checkObject)('options', options);
    options ??= {};
    rejectSsl(options);
    const family = (0, socket_1.checkFamily)(options.family);
    if (options.sock !== undefined && options.sock !== null) {
        if (host != null || port != null)
            throw new TypeError('host/port and sock can not be specified at the same time');
        return adoptSocket(protocolFactory, options.sock, 'options.sock');
    }
    if (host === undefined || host === null)
        throw new TypeError('host and port must be given when sock is not');
    (0, errors_1.checkString)('host', host);
    (0, errors_1.checkPort)('port', port);
    let localHost = null;
    let localPort = 0;
    if (options.localAddr !== undefined && options.localAddr !== null) {
        if (!Array.isArray(options.localAddr))
            throw new TypeError('The "options.localAddr" argument must be a [host, port] array');
        localHost = (0, errors_1.checkString)('options.localAddr[0]', options.localAddr[0]);
        localPort = (0, errors_1.checkPort)('options.localAddr[1]', options.localAddr[1]);
    }
    const delay = options.happyEyeballsDelayMs == null ? null : (0, errors_1.checkDuration)('options.happyEyeballsDelayMs', options.happyEyeballsDelayMs);
    const interleave = options.interleave == null ? null : (0, errors_1.checkInteger)('options.interleave', options.interleave, 0, 1024);
    (0, loop_1.retain)(); // a pending connect keeps the process alive, as a connecting net.Socket does
    const id = native_1.native.connect(host, port, family, localHost, localPort, delay, interleave);
    return new Promise((resolve, reject) => {
        (0, events_1.register)(id, {
            _onEvent(kind, a, b) {
                if (kind !== 5 /* EventKind.Connected */ && kind !== 6 /* EventKind.ConnectFailed */)
                    return;
                (0, events_1.unregister)(id);
                (0, loop_1.release)();
                if (kind === 6 /* EventKind.ConnectFailed */) {
                    reject((0, errors_1.systemError)(a, b, host, port));
                    return;
                }
                try {
                    resolve(StreamTransport._start(id, protocolFactory, null));
                }
                catch (exc) {
                    reject(exc);
                }
            },
        });
    });
}
/** @internal Wraps a connected stream socket descriptor (asyncio's `sock=`). */
async function adoptSocket(protocolFactory, fd, name, owner = null) {
    (0, errors_1.checkInteger)(name, fd, 0, 0x7fffffff);
    const id = native_1.native.adopt(fd, false, true);
    if (id < 0)
        throw (0, errors_1.systemError)(id, 'adopt');
    return StreamTransport._start(id, protocolFactory, owner);
}
/**
 * Wraps an accepted (connected) socket descriptor in a transport, as asyncio's
 * `connect_accepted_socket`. The transport owns the descriptor.
 */
async function connectAcceptedSocket(protocolFactory, fd, options = {}) {
    (0, errors_1.checkFunction)('protocolFactory', protocolFactory);
    (0, errors_1.checkObject)('options', options);
    rejectSsl(options ?? {});
    return adoptSocket(protocolFactory, fd, 'fd');
}
//# sourceMappingURL=stream.js.map