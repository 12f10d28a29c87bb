"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.TransportSocket = exports.constants = void 0;
exports.toAddress = toAddress;
exports.checkFamily = checkFamily;
// `TransportSocket` (what `getExtraInfo('socket')` returns), socket constants and address tuples.
const errors_1 = require("./errors");
const native_1 = require("./native");
/** Socket option and address-family numbers of this platform (`AF_*`, `SOL_*`, `SO_*`, `TCP_*` ...). */
exports.constants = Object.freeze(native_1.native.socketConstants());
/** An engine address as asyncio shows it: `[host, port]`, `[host, port, flowinfo, scopeId]`, a path. */
function toAddress(a) {
    if (a === null)
        return null;
    if (a.family === exports.constants.AF_INET)
        return [a.host, a.port];
    if (a.family === exports.constants.AF_INET6)
        return [a.host, a.port, a.flowinfo, a.scopeId];
    return a.host;
}
/** `options.family`: 0 (any), `AF_INET` or `AF_INET6`. */
function checkFamily(family) {
    if (family === undefined || family === null)
        return 0;
    (0, errors_1.checkInteger)('options.family', family, 0, 0xffff);
    if (family !== 0 && family !== exports.constants.AF_INET && family !== exports.constants.AF_INET6) {
        throw new RangeError(`The value of "options.family" must be 0, AF_INET or AF_INET6. Received ${family}`);
    }
    return family;
}
// getsockopt reports failures below this offset (a negative errno shifted by 2^40), so that
// negative option values stay readable.
const GETSOCKOPT_ERROR = -(2 ** 40);
/**
 * A view of a transport's socket, as asyncio's `TransportSocket`: addresses and options, but no I/O
 * (the engine owns the descriptor). Calls fail with `EBADF` once the transport is closed.
 */
class TransportSocket {
    fd;
    isOpen;
    family;
    type;
    proto;
    /** @internal */
    constructor(fd, isOpen) {
        this.fd = fd;
        this.isOpen = isOpen;
        const [family, type, proto] = native_1.native.socketKind(fd) ?? [0, 0, 0];
        this.family = family;
        this.type = type;
        this.proto = proto;
    }
    #check(syscall) {
        if (!this.isOpen())
            throw (0, errors_1.systemError)(9 /* EBADF */, syscall);
    }
    getsockname() {
        this.#check('getsockname');
        const a = toAddress(native_1.native.sockname(this.fd));
        if (a === null)
            throw (0, errors_1.systemError)(9, 'getsockname');
        return a;
    }
    getpeername() {
        this.#check('getpeername');
        const a = toAddress(native_1.native.peername(this.fd));
        if (a === null)
            throw (0, errors_1.systemError)(107 /* ENOTCONN */, 'getpeername');
        return a;
    }
    /** An integer option, e.g. `getsockopt(constants.IPPROTO_TCP, constants.TCP_NODELAY)`. */
    getsockopt(level, option) {
        (0, errors_1.checkInteger)('level', level, 0, 0x7fffffff);
        (0, errors_1.checkInteger)('option', option, 0, 0x7fffffff);
        this.#check('getsockopt');
        const v = native_1.native.getsockopt(this.fd, level, option);
        if (v <= GETSOCKOPT_ERROR / 2)
            throw (0, errors_1.systemError)(v - GETSOCKOPT_ERROR, 'getsockopt');
        return v;
    }
    /** Sets an integer (or boolean) option. */
    setsockopt(level, option, value) {
        (0, errors_1.checkInteger)('level', level, 0, 0x7fffffff);
        (0, errors_1.checkInteger)('option', option, 0, 0x7fffffff);
        const v = typeof value === 'boolean' ? Number(value) : (0, errors_1.checkInteger)('value', value, -0x80000000, 0x7fffffff);
        this.#check('setsockopt');
        const r = native_1.native.setsockopt(this.fd, level, option, v);
        if (r < 0)
            throw (0, errors_1.systemError)(r, 'setsockopt');
    }
    toString() {
        return `<TransportSocket fd=${this.fd} family=${this.family} type=${this.type} proto=${this.proto}>`;
    }
}
exports.TransportSocket = TransportSocket;
//# sourceMappingURL=socket.js.map