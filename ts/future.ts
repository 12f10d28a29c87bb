// asyncio's Future: a result that arrives later, awaitable like a Promise.
import { CancelledError, InvalidStateError, checkFunction, safeString } from './errors';
import { callbackName, getRunningLoop } from './loop';

type State = 'pending' | 'finished' | 'cancelled';

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
export class Future<T = unknown> implements PromiseLike<T> {
  #state: State = 'pending';
  #result: T | undefined;
  #exception: unknown;
  #callbacks: Array<(f: Future<T>) => void> = [];
  #promise: Promise<T> | undefined;
  #resolve?: (v: T) => void;
  #reject?: (e: unknown) => void;

  done(): boolean {
    return this.#state !== 'pending';
  }

  cancelled(): boolean {
    return this.#state === 'cancelled';
  }

  /** The result; throws the exception if there is one, `InvalidStateError` if not done yet. */
  result(): T {
    if (this.#state === 'pending') throw new InvalidStateError('Result is not set.');
    if (this.#state === 'cancelled' || this.#exception !== undefined) throw this.#exception;
    return this.#result as T;
  }

  /** The exception, or `null` when the future completed with a result. */
  exception(): unknown {
    if (this.#state === 'pending') throw new InvalidStateError('Exception is not set.');
    if (this.#state === 'cancelled') throw this.#exception;
    return this.#exception ?? null;
  }

  setResult(value: T): void {
    this.#complete('finished', value, undefined);
  }

  setException(exc: unknown): void {
    if (exc === undefined || exc === null) throw new TypeError('The "exc" argument must be an error');
    this.#complete('finished', undefined, exc);
  }

  /** Cancels a pending future; returns false when it was already done. */
  cancel(msg?: string): boolean {
    if (this.#state !== 'pending') return false;
    // Any message is kept (asyncio keeps it as the error's argument); the text is what it says.
    const exc = new CancelledError(msg === undefined || msg === null ? 'The future was cancelled' : safeString(msg));
    this.#complete('cancelled', undefined, exc);
    return true;
  }

  addDoneCallback(fn: (future: Future<T>) => void): void {
    checkFunction('fn', fn);
    if (this.#state === 'pending') this.#callbacks.push(fn);
    else this.#schedule(fn);
  }

  /** Removes every registration of `fn`; returns how many were removed. */
  removeDoneCallback(fn: (future: Future<T>) => void): number {
    const before = this.#callbacks.length;
    this.#callbacks = this.#callbacks.filter((c) => c !== fn);
    return before - this.#callbacks.length;
  }

  then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: any) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.#asPromise().then(onfulfilled, onrejected);
  }

  #asPromise(): Promise<T> {
    if (!this.#promise) {
      this.#promise = new Promise<T>((resolve, reject) => {
        this.#resolve = resolve;
        this.#reject = reject;
      });
      if (this.#state !== 'pending') this.#settlePromise();
    }
    return this.#promise;
  }

  #settlePromise(): void {
    if (this.#exception !== undefined) this.#reject?.(this.#exception);
    else this.#resolve?.(this.#result as T);
  }

  #complete(state: State, result: T | undefined, exception: unknown): void {
    if (this.#state !== 'pending') throw new InvalidStateError(`invalid state: the future is already ${this.#state}`);
    this.#state = state;
    this.#result = result;
    this.#exception = exception;
    this.#settlePromise();
    const callbacks = this.#callbacks;
    this.#callbacks = [];
    for (const fn of callbacks) this.#schedule(fn);
  }

  /** Runs a done callback soon; what it throws goes to the loop's exception handler, as asyncio's `call_soon`. */
  #schedule(fn: (f: Future<T>) => void): void {
    queueMicrotask(() => {
      try {
        fn(this);
      } catch (exc) {
        getRunningLoop().callExceptionHandler({ message: `Exception in callback ${callbackName(fn)}`, exception: exc, future: this });
      }
    });
  }
}
