// Checks shared by the scenarios: what an error thrown at a user must look like, and the extra-info keys
// a transport knows.
import { show } from './values.mjs';

/** Messages that come from inside the library or the addon, not from a check naming the argument. */
const INTERNAL = /Cannot read propert|incompatible receiver|TypedArray info|Cannot set propert|is not a function|is not iterable|Cannot convert|Maximum call stack|internal error|Expected|InvalidArg|GenericFailure|napi|panicked|undefined \(reading/i;

/**
 * An error thrown or rejected at the user must be an Error with a message that says what was wrong: not
 * an engine or V8 message leaking out, and not "must be a number. Received number" for a NaN.
 * Returns a description of what is wrong with it, or null.
 */
export function unclearError(e) {
  if (!(e instanceof Error)) return `threw ${show(e)}, not an Error`;
  const m = String(e.message);
  if (INTERNAL.test(m) || (e.code && /Expected|InvalidArg|GenericFailure/.test(e.code))) return `an internal error leaked: ${show(e)}`;
  const same = /must be (?:of type |an? )(\w+)\. Received (?:type )?(\w+)/.exec(m);
  if (same && same[1].toLowerCase() === same[2].toLowerCase()) return `an error that contradicts itself: ${show(e)}`;
  return null;
}

/** getExtraInfo names of asyncio and protoloop; any other name gives the default. */
export const EXTRA_KEYS = new Set(['peername', 'sockname', 'socket', 'stats', 'compression', 'cipher', 'peercert', 'sslcontext', 'ssl_object', 'pipe', 'subprocess']);

/**
 * Calls `getExtraInfo(key, DEFAULT)` and checks the answer: a name that is not an extra-info key gives
 * the default (asyncio's dict.get); a key that is not a string may be refused with a clear TypeError.
 */
export function checkExtraInfo(t, key, fail, where) {
  const DEFAULT = { default: true };
  let v;
  try {
    v = t.getExtraInfo(key, DEFAULT);
  } catch (e) {
    if (typeof key === 'string') fail(`getExtraInfo(${show(key)}) ${where} threw ${show(e)} instead of returning the default`);
    else {
      const why = unclearError(e);
      if (why) fail(`getExtraInfo(${show(key)}) ${where}: ${why}`);
    }
    return;
  }
  if (typeof key === 'string' && !EXTRA_KEYS.has(key) && v !== DEFAULT) fail(`getExtraInfo(${show(key)}) ${where} returned ${show(v)}, not the default`);
}
