"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.Future = void 0;
// asyncio's Future: a result that arrives later, awaitable like a Promise.
const errors_1 = require("./errors");
/**
 * What `loop.createFuture()` returns: awaitable, completed once with `setResult`, `setException` or
 * `cancel`. Done callbacks run soon after completion, never inside the call that completed it.
 *
 * ```ts
 * const done = getRunningLoop().createFuture<boolean>();
 * setTimeout(() => done.setResult(true), 10);
 * await done; // true
 * ```
 */
class Future {
    #state = 'pending';
    #result;
    #exception;
    #callbacks = [];
    #promise;
    #resolve;
    #reject;
    done() {
        return this.#state !== 'pending';
    }
    cancelled() {
        return this.#state === 'cancelled';
    }
    /** The result; throws the exception if there is one, `InvalidStateError` if not done yet. */
    result() {
        if (this.#state === 'pending')
            throw new errors_1.InvalidStateError('Result is not set.');
        if (this.#state === 'cancelled' || this.#exception !== undefined)
            throw this.#exception;
        return this.#result;
    }
    /** The exception, or `null` when the future completed with a result. */
    exception() {
        if (this.#state === 'pending')
            throw new errors_1.InvalidStateError('Exception is not set.');
        if (this.#state === 'cancelled')
            throw this.#exception;
        return this.#exception ?? null;
    }
    setResult(value) {
        this.#complete('finished', value, undefined);
    }
    setException(exc) {
        if (exc === undefined || exc === null)
            throw new TypeError('The "exc" argument must be an error');
        this.#complete('finished', undefined, exc);
    }
    /** Cancels a pending future; returns false when it was already done. */
    cancel(msg) {
        if (this.#state !== 'pending')
            return false;
        this.#complete('cancelled', undefined, new errors_1.CancelledError(msg ?? 'The future was cancelled'));
        return true;
    }
    addDoneCallback(fn) {
        (0, errors_1.checkFunction)('fn', fn);
        if (this.#state === 'pending')
            this.#callbacks.push(fn);
        else
            queueMicrotask(() => fn(this));
    }
    /** Removes every registration of `fn`; returns how many were removed. */
    removeDoneCallback(fn) {
        const before = this.#callbacks.length;
        this.#callbacks = this.#callbacks.filter((c) => c !== fn);
        return before - this.#callbacks.length;
    }
    then(onfulfilled, onrejected) {
        return this.#asPromise().then(onfulfilled, onrejected);
    }
    #asPromise() {
        if (!this.#promise) {
            this.#promise = new Promise((resolve, reject) => {
                this.#resolve = resolve;
                this.#reject = reject;
            });
            if (this.#state !== 'pending')
                this.#settlePromise();
        }
        return this.#promise;
    }
    #settlePromise() {
        if (this.#exception !== undefined)
            this.#reject?.(this.#exception);
        else
            this.#resolve?.(this.#result);
    }
    #complete(state, result, exception) {
        if (this.#state !== 'pending')
            throw new errors_1.InvalidStateError(`invalid state: the future is already ${this.#state}`);
        this.#state = state;
        this.#result = result;
        this.#exception = exception;
        this.#settlePromise();
        const callbacks = this.#callbacks;
        this.#callbacks = [];
        for (const fn of callbacks)
            queueMicrotask(() => fn(this));
    }
}
exports.Future = Future;
//# sourceMappingURL=future.js.map