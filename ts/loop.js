"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.EventLoop = exports.Handle = void 0;
exports.retain = retain;
exports.release = release;
exports.getRunningLoop = getRunningLoop;
// The one event loop of the process (Node's), seen through asyncio's loop methods: futures,
// callSoon, the exception handler, and the reference count that keeps the process alive while
// transports and servers are open.
const errors_1 = require("./errors");
const future_1 = require("./future");
const native_1 = require("./native");
/** A callback scheduled with `callSoon`; `cancel()` stops it if it has not run. */
class Handle {
    immediate;
    #cancelled = false;
    constructor(immediate) {
        this.immediate = immediate;
    }
    cancel() {
        this.#cancelled = true;
        clearImmediate(this.immediate);
    }
    cancelled() {
        return this.#cancelled;
    }
}
exports.Handle = Handle;
let alive = 0;
/**
 * Counts one more open transport, pending connect or serving server. While the count is above zero the
 * engine's wake-up keeps Node running; at zero the process may exit on its own.
 */
function retain() {
    if (alive++ === 0)
        native_1.native.setAlive(true);
}
function release() {
    if (alive <= 0)
        return;
    if (--alive === 0)
        native_1.native.setAlive(false);
}
class EventLoop {
    #handler = null;
    /** A new pending `Future`. */
    createFuture() {
        return new future_1.Future();
    }
    /** Runs `fn(...args)` on a later turn of the loop, in the order scheduled. */
    callSoon(fn, ...args) {
        (0, errors_1.checkFunction)('fn', fn);
        return new Handle(setImmediate(() => {
            try {
                fn(...args);
            }
            catch (exc) {
                this.callExceptionHandler({ message: `Exception in callback ${fn.name || 'anonymous'}`, exception: exc });
            }
        }));
    }
    /** The loop's clock in seconds (monotonic), as asyncio's `loop.time()`. */
    time() {
        return performance.now() / 1000;
    }
    setExceptionHandler(handler) {
        if (handler !== null)
            (0, errors_1.checkFunction)('handler', handler);
        this.#handler = handler;
    }
    getExceptionHandler() {
        return this.#handler;
    }
    /** Prints the context to stderr, naming the transport and protocol. */
    defaultExceptionHandler(context) {
        const lines = [context.message || 'Unhandled exception in event loop'];
        for (const [k, v] of Object.entries(context)) {
            if (k === 'message' || k === 'exception')
                continue;
            lines.push(`${k}: ${describe(v)}`);
        }
        const exc = context.exception;
        if (exc !== undefined)
            lines.push(exc instanceof Error && exc.stack ? exc.stack : String(exc));
        process.stderr.write(lines.join('\n') + '\n');
    }
    callExceptionHandler(context) {
        if (this.#handler === null) {
            this.defaultExceptionHandler(context);
            return;
        }
        try {
            this.#handler(context, this);
        }
        catch (exc) {
            // A failing handler must not hide the original problem (asyncio does the same).
            this.defaultExceptionHandler({ message: 'Unhandled error in exception handler', exception: exc, context });
            this.defaultExceptionHandler(context);
        }
    }
}
exports.EventLoop = EventLoop;
function describe(v) {
    if (v === null || typeof v !== 'object')
        return String(v);
    const name = v.constructor?.name ?? 'Object';
    const id = v._id;
    return id === undefined ? `<${name}>` : `<${name} id=${id}>`;
}
const theLoop = new EventLoop();
/** The loop of this process. There is one: Node's event loop. */
function getRunningLoop() {
    return theLoop;
}
//# sourceMappingURL=loop.js.map