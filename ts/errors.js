"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.CancelledError = exports.InvalidStateError = exports.ENOTFOUND = void 0;
exports.systemError = systemError;
exports.toBytes = toBytes;
exports.checkFunction = checkFunction;
exports.checkObject = checkObject;
exports.checkBoolean = checkBoolean;
exports.checkInteger = checkInteger;
exports.checkDuration = checkDuration;
exports.checkPort = checkPort;
exports.checkString = checkString;
// Node-style errors for everything the engine reports, and the argument checks of the public API.
const node_util_1 = require("node:util");
/** Not an errno: name resolution found nothing (`protoloop_engine::events::ENOTFOUND`). */
exports.ENOTFOUND = 0x7fff_0001;
const SYSCALLS = ['', 'read', 'write', 'connect', 'getaddrinfo', 'accept', 'shutdown'];
/**
 * Builds the error for an errno reported by the engine. `syscall` is a name or the engine's number
 * for it; `address`/`port` are added to the message as Node does (`connect ECONNREFUSED 127.0.0.1:1`).
 */
function systemError(errno, syscall, address, port) {
    const call = typeof syscall === 'number' ? SYSCALLS[syscall] ?? 'unknown' : syscall;
    let code;
    let nodeErrno;
    if (errno === exports.ENOTFOUND) {
        code = 'ENOTFOUND';
        nodeErrno = -3008; // libuv's UV_EAI_NONAME, what Node reports for ENOTFOUND
    }
    else {
        nodeErrno = -Math.abs(errno);
        try {
            code = (0, node_util_1.getSystemErrorName)(nodeErrno);
        }
        catch {
            code = `E${Math.abs(errno)}`;
        }
    }
    const where = address === undefined ? '' : port === undefined ? ` ${address}` : ` ${address}:${port}`;
    const err = new Error(`${call} ${code}${where}`);
    err.code = code;
    err.errno = nodeErrno;
    err.syscall = call;
    if (address !== undefined)
        err.address = address;
    if (port !== undefined)
        err.port = port;
    return err;
}
/** asyncio's `InvalidStateError`: a `Future` was completed twice or read too early. */
class InvalidStateError extends Error {
    name = 'InvalidStateError';
}
exports.InvalidStateError = InvalidStateError;
/** asyncio's `CancelledError`: what a cancelled `Future` rejects with. */
class CancelledError extends Error {
    name = 'CancelledError';
}
exports.CancelledError = CancelledError;
function typeError(name, expected, value) {
    const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
    return new TypeError(`The "${name}" argument must be ${expected}. Received ${got}`);
}
/** Bytes a caller hands in: any `ArrayBufferView` or `ArrayBuffer`, seen as a `Uint8Array`. */
function toBytes(name, data) {
    if (data instanceof Uint8Array)
        return data;
    if (ArrayBuffer.isView(data))
        return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (data instanceof ArrayBuffer || data instanceof SharedArrayBuffer)
        return new Uint8Array(data);
    if (typeof data === 'string') {
        throw new TypeError(`The "${name}" argument must be bytes (a Buffer, TypedArray, DataView or ArrayBuffer), not a string: ` +
            `encode it first, e.g. Buffer.from(text)`);
    }
    throw typeError(name, 'bytes (a Buffer, TypedArray, DataView or ArrayBuffer)', data);
}
function checkFunction(name, value) {
    if (typeof value !== 'function')
        throw typeError(name, 'a function', value);
}
function checkObject(name, value) {
    if (value !== undefined && value !== null && typeof value !== 'object')
        throw typeError(name, 'an object', value);
}
function checkBoolean(name, value) {
    if (value !== undefined && typeof value !== 'boolean')
        throw typeError(name, 'a boolean', value);
}
/** An integer in `[min, max]`; `TypeError` for a non-number, `RangeError` outside the range. */
function checkInteger(name, value, min, max) {
    if (typeof value !== 'number' || Number.isNaN(value))
        throw typeError(name, 'a number', value);
    if (!Number.isInteger(value) || value < min || value > max) {
        throw new RangeError(`The value of "${name}" is out of range. It must be an integer >= ${min} and <= ${max}. Received ${value}`);
    }
    return value;
}
/** A duration in milliseconds: a finite number >= 0. */
function checkDuration(name, value) {
    if (typeof value !== 'number' || Number.isNaN(value))
        throw typeError(name, 'a number', value);
    if (!Number.isFinite(value) || value < 0) {
        throw new RangeError(`The value of "${name}" is out of range. It must be a finite number >= 0. Received ${value}`);
    }
    return value;
}
function checkPort(name, value) {
    return checkInteger(name, value, 0, 65535);
}
function checkString(name, value) {
    if (typeof value !== 'string')
        throw typeError(name, 'a string', value);
    return value;
}
//# sourceMappingURL=errors.js.map