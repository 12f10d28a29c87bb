// The one event loop of the process (Node's), seen through asyncio's loop methods: futures,
// callSoon, the exception handler, and the reference count that keeps the process alive while
// transports and servers are open.
import { checkFunction, isError, safeString } from './errors';
import { Future } from './future';
import { native } from './native';

/** What an exception handler receives, as asyncio's `context` dict. */
export interface ExceptionContext {
  message: string;
  exception?: unknown;
  transport?: unknown;
  protocol?: unknown;
  [key: string]: unknown;
}

export type ExceptionHandler = (context: ExceptionContext, loop: EventLoop) => void;

/** A callback scheduled with `callSoon`; `cancel()` stops it if it has not run. */
export class Handle {
  #cancelled = false;
  constructor(private readonly immediate: NodeJS.Immediate) {}
  cancel(): void {
    this.#cancelled = true;
    clearImmediate(this.immediate);
  }
  cancelled(): boolean {
    return this.#cancelled;
  }
}

let alive = 0;

/**
 * Counts one more open transport, pending connect or serving server. While the count is above zero the
 * engine's wake-up keeps Node running; at zero the process may exit on its own.
 */
export function retain(): void {
  if (alive++ === 0) native.setAlive(true);
}

export function release(): void {
  if (alive <= 0) return;
  if (--alive === 0) native.setAlive(false);
}

export class EventLoop {
  #handler: ExceptionHandler | null = null;

  /** A new pending `Future`. */
  createFuture<T = unknown>(): Future<T> {
    return new Future<T>();
  }

  /** Runs `fn(...args)` on a later turn of the loop, in the order scheduled. */
  callSoon<A extends unknown[]>(fn: (...args: A) => void, ...args: A): Handle {
    checkFunction('fn', fn);
    return new Handle(
      setImmediate(() => {
        try {
          fn(...args);
        } catch (exc) {
          this.callExceptionHandler({ message: `Exception in callback ${callbackName(fn)}`, exception: exc });
        }
      }),
    );
  }

  /** The loop's clock in seconds (monotonic), as asyncio's `loop.time()`. */
  time(): number {
    return performance.now() / 1000;
  }

  setExceptionHandler(handler: ExceptionHandler | null): void {
    if (handler !== null) checkFunction('handler', handler);
    this.#handler = handler;
  }

  getExceptionHandler(): ExceptionHandler | null {
    return this.#handler;
  }

  /**
   * Prints the context to stderr, naming the transport and protocol. It never throws, whatever the
   * exception is (a protocol may throw `Object.create(null)` or a revoked Proxy): callers report
   * through it on their way to closing a transport.
   */
  defaultExceptionHandler(context: ExceptionContext): void {
    let text: string;
    try {
      const lines = [safeString(context.message || 'Unhandled exception in event loop')];
      for (const [k, v] of Object.entries(context)) {
        if (k === 'message' || k === 'exception') continue;
        lines.push(`${k}: ${describe(v)}`);
      }
      const exc = context.exception;
      if (exc !== undefined) lines.push(stackOf(exc) ?? safeString(exc));
      text = lines.join('\n');
    } catch {
      // The context itself refuses to be read (a Proxy passed to callExceptionHandler).
      text = `Unhandled exception in event loop (the context cannot be described: ${safeString(context)})`;
    }
    process.stderr.write(text + '\n');
  }

  /** Hands `context` to the handler set with `setExceptionHandler`, or the default one. Never throws. */
  callExceptionHandler(context: ExceptionContext): void {
    if (this.#handler === null) {
      this.defaultExceptionHandler(context);
      return;
    }
    try {
      this.#handler(context, this);
    } catch (exc) {
      // A failing handler must not hide the original problem (asyncio does the same).
      this.defaultExceptionHandler({ message: 'Unhandled error in exception handler', exception: exc, context });
      this.defaultExceptionHandler(context);
    }
  }
}

/** A value of the context in one line: `<Class id=N>` for objects, which may be anything a user made. */
function describe(v: unknown): string {
  if (v === null || (typeof v !== 'object' && typeof v !== 'function')) return safeString(v);
  try {
    const name = (v as object).constructor?.name ?? 'Object';
    const id = (v as { _id?: number })._id;
    return id === undefined ? `<${name}>` : `<${name} id=${id}>`;
  } catch {
    return `<${typeof v}>`;
  }
}

/** A callback's name for a message (a Proxy function may refuse to tell it). */
export function callbackName(fn: Function): string {
  try {
    return typeof fn.name === 'string' && fn.name !== '' ? fn.name : 'anonymous';
  } catch {
    return 'anonymous';
  }
}

function stackOf(exc: unknown): string | null {
  try {
    return isError(exc) && typeof exc.stack === 'string' && exc.stack !== '' ? exc.stack : null;
  } catch {
    return null;
  }
}

const theLoop = new EventLoop();

/** The loop of this process. There is one: Node's event loop. */
export function getRunningLoop(): EventLoop {
  return theLoop;
}
