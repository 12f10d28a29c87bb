"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.Server = void 0;
exports.createServer = createServer;
// Listening sockets: `createServer` and asyncio's `Server` object.
const errors_1 = require("./errors");
const events_1 = require("./events");
const loop_1 = require("./loop");
const native_1 = require("./native");
const socket_1 = require("./socket");
const stream_1 = require("./stream");
/**
 * A listening server, as asyncio's `Server`. `close()` stops listening and leaves accepted
 * connections open; `waitClosed()` resolves once it is closed and every connection is gone.
 *
 * ```ts
 * await using server = await createServer(() => new EchoProtocol(), '127.0.0.1', 8888);
 * await server.serveForever();
 * ```
 */
class Server {
    /** @internal */ _id;
    #protocolFactory;
    #sockets;
    #clients = new Set();
    #serving = false;
    #closed = false;
    #closedWaiters = [];
    #emptyWaiters = [];
    /** @internal */
    constructor(id, protocolFactory) {
        this._id = id;
        this.#protocolFactory = protocolFactory;
        this.#sockets = native_1.native.serverFds(id).map((fd) => new socket_1.TransportSocket(fd, () => !this.#closed));
        (0, events_1.register)(id, this);
    }
    /** @internal */
    _onEvent(kind, a) {
        if (kind !== 7 /* EventKind.Accepted */)
            return;
        if (this.#closed) {
            native_1.native.abort(a);
            return;
        }
        try {
            const [t] = stream_1.StreamTransport._start(a, this.#protocolFactory, this);
            this.#clients.add(t);
        }
        catch (exc) {
            (0, loop_1.getRunningLoop)().callExceptionHandler({ message: 'Exception in the protocol factory of a server', exception: exc, server: this });
        }
    }
    /** @internal A connection this server accepted has closed. */
    _detach(t) {
        this.#clients.delete(t);
        this.#wakeup();
    }
    #wakeup() {
        if (!this.#closed || this.#clients.size > 0)
            return;
        const waiters = this.#emptyWaiters;
        this.#emptyWaiters = [];
        for (const w of waiters)
            w();
    }
    get sockets() {
        return this.#closed ? [] : [...this.#sockets];
    }
    getLoop() {
        return (0, loop_1.getRunningLoop)();
    }
    isServing() {
        return this.#serving;
    }
    /** Starts accepting connections; idempotent. */
    async startServing() {
        if (this.#closed)
            throw new Error('Server is closed');
        if (this.#serving)
            return;
        this.#serving = true;
        (0, loop_1.retain)();
        native_1.native.startServing(this._id);
    }
    /** Starts serving if needed and resolves once the server is closed. */
    async serveForever() {
        if (this.#closed)
            return;
        await this.startServing();
        await new Promise((resolve) => this.#closedWaiters.push(resolve));
    }
    /** Stops listening. Accepted connections stay open (see `closeClients`/`abortClients`). */
    close() {
        if (this.#closed)
            return;
        this.#closed = true;
        native_1.native.closeServer(this._id);
        (0, events_1.unregister)(this._id);
        if (this.#serving) {
            this.#serving = false;
            (0, loop_1.release)();
        }
        const waiters = this.#closedWaiters;
        this.#closedWaiters = [];
        for (const w of waiters)
            w();
        this.#wakeup();
    }
    /** Resolves once the server is closed and every connection it accepted is gone. */
    async waitClosed() {
        if (this.#closed && this.#clients.size === 0)
            return;
        await new Promise((resolve) => this.#emptyWaiters.push(resolve));
    }
    /** Closes every accepted connection (flushing each). */
    closeClients() {
        for (const t of [...this.#clients])
            t.close();
    }
    /** Aborts every accepted connection. */
    abortClients() {
        for (const t of [...this.#clients])
            t.abort();
    }
    /** `await using server = ...`: closes and waits, as `async with server:` does. */
    async [Symbol.asyncDispose]() {
        this.close();
        await this.waitClosed();
    }
    toString() {
        return `<Server id=${this._id} sockets=${this.#sockets.length}${this.#closed ? ' closed' : ''}>`;
    }
}
exports.Server = Server;
function hostList(host) {
    if (host === undefined || host === null || host === '')
        return [];
    if (typeof host === 'string')
        return [host];
    if (Array.isArray(host) && host.every((h) => typeof h === 'string'))
        return host.length === 0 ? [] : host;
    throw new TypeError('The "host" argument must be a string, an array of strings, or null');
}
/**
 * Listens on `host` (a name, an address, a list of them, or null for every interface) and `port`
 * (0: an ephemeral port), creating a protocol per accepted connection. Resolves to a `Server`.
 */
async function createServer(protocolFactory, host, port, options = {}) {
    (0, errors_1.checkFunction)('protocolFactory', protocolFactory);
    (0, errors_1.checkObject)('options', options);
    options ??= {};
    (0, stream_1.rejectSsl)(options);
    for (const k of ['reuseAddress', 'reusePort', 'keepAlive', 'startServing'])
        (0, errors_1.checkBoolean)(`options.${k}`, options[k]);
    const backlog = (0, errors_1.checkInteger)('options.backlog', options.backlog ?? 100, 0, 0x7fffffff);
    const keepAlive = options.keepAlive === true;
    let id;
    if (options.sock !== undefined && options.sock !== null) {
        if (host != null || port != null)
            throw new TypeError('host/port and sock can not be specified at the same time');
        (0, errors_1.checkInteger)('options.sock', options.sock, 0, 0x7fffffff);
        id = native_1.native.listenOn(options.sock, keepAlive);
        if (id < 0)
            throw (0, errors_1.systemError)(id, 'listen');
    }
    else {
        const hosts = hostList(host);
        const p = (0, errors_1.checkPort)('port', port ?? 0);
        const family = (0, socket_1.checkFamily)(options.family);
        id = native_1.native.listen(hosts, p, family, backlog, options.reuseAddress ?? true, options.reusePort ?? false, keepAlive);
        if (id < 0)
            throw (0, errors_1.systemError)(id, 'listen', hosts.join(',') || undefined, p);
    }
    const server = new Server(id, protocolFactory);
    if (options.startServing ?? true)
        await server.startServing();
    return server;
}
//# sourceMappingURL=server.js.map