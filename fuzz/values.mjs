// Odd values as plain JSON descriptions, so that a case can cross into the child process that runs it, be
// printed when it fails, and shrink: fast-check generates and shrinks the descriptions, `materialize`
// turns one into the value the library is called with (a NaN, a revoked Proxy, an object String() cannot
// convert...). A description is an array: [kind, ...parts].
import fc from 'fast-check';

/** Names of Object.prototype members: a lookup in a plain object finds them. */
export const PROTOTYPE_KEYS = ['constructor', '__proto__', 'hasOwnProperty', 'toString', 'valueOf', 'isPrototypeOf', 'propertyIsEnumerable', 'toLocaleString', '__defineGetter__'];

const SPECIAL_NUMBERS = ['NaN', 'Infinity', '-Infinity', '-0', '1e308', '-1e308', '1e23', '5e-324', '4294967296', '4294967295', '2147483648', '2147483647', '9007199254740993', '-1', '0', '0.5', '1.5', '65536', '-2147483649', '18446744073709551616'];

/** Numbers: ordinary, huge, negative, fractional and non-finite. */
export const numberDesc = fc.oneof(
  fc.constantFrom(...SPECIAL_NUMBERS).map((s) => ['num', s]),
  fc.integer({ min: -1000, max: 100_000 }).map((n) => ['num', String(n)]),
  fc.double().map((d) => ['num', Object.is(d, -0) ? '-0' : String(d)]),
);

/** Strings, with NULs, prototype member names, empty and long ones. */
export const stringDesc = fc.oneof(
  fc.constantFrom(...PROTOTYPE_KEYS).map((s) => ['str', s]),
  fc.constantFrom('', '\0', 'a\0b', '\0abstract', '127.0.0.1', '::1', 'localhost', '0.0.0.0', '256.1.1.1', 'SIGTERM', 'SIGNOPE', 'peername', 'socket', '/', '/nonexistent/x').map((s) => ['str', s]),
  fc.string({ maxLength: 12 }).map((s) => ['str', s]),
  fc.integer({ min: 100, max: 5000 }).map((n) => ['longstr', n]),
);

/** Values that break code which converts, inspects or copies what it was given. */
export const hostileDesc = fc.constantFrom(
  ['nullproto'], // Object.create(null): String() throws
  ['revoked'], // a revoked Proxy: every operation throws
  ['throwingToString'], // toString/valueOf/Symbol.toPrimitive throw
  ['throwingGetter'], // every property read throws
  ['proxyOfU8'], // a Proxy of a Uint8Array: passes instanceof, fails internal slot access
  ['sym'],
  ['bigint'],
  ['fn'],
  ['detachedU8'], // a Uint8Array whose ArrayBuffer was transferred away
);

const leafDesc = fc.oneof(
  { weight: 3, arbitrary: numberDesc },
  { weight: 3, arbitrary: stringDesc },
  { weight: 2, arbitrary: hostileDesc },
  { weight: 1, arbitrary: fc.constantFrom(['null'], ['undef'], ['true'], ['false'], ['emptyObj'], ['emptyArr'], ['u8', 0], ['u8', 3], ['date']) },
);

/** Any value, up to two levels of arrays and objects (with prototype member names as keys). */
export const anyDesc = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leafDesc, tie('arr'), tie('obj')),
  arr: fc.array(tie('value'), { maxLength: 3 }).map((xs) => ['arr', xs]),
  obj: fc
    .array(fc.tuple(fc.oneof(fc.constantFrom(...PROTOTYPE_KEYS), fc.string({ maxLength: 6 })), tie('value')), { maxLength: 3 })
    .map((kv) => ['obj', kv]),
})).value;

/** What a thrown value can be: Errors, primitives, and values the exception handler cannot print. */
export const thrownDesc = fc.oneof(
  fc.constantFrom(['error', 'boom'], ['typeError', 'bad'], ['undef'], ['null'], ['nullproto'], ['revoked'], ['throwingToString'], ['throwingGetter'], ['errorWithNullProtoCause']),
  numberDesc,
  stringDesc,
);

/** Turns a description into the value. */
export function materialize(d) {
  switch (d[0]) {
    case 'num':
      return d[1] === '-0' ? -0 : Number(d[1]);
    case 'str':
      return d[1];
    case 'longstr':
      return 'x'.repeat(d[1]);
    case 'null':
      return null;
    case 'undef':
      return undefined;
    case 'true':
      return true;
    case 'false':
      return false;
    case 'emptyObj':
      return {};
    case 'emptyArr':
      return [];
    case 'u8':
      return new Uint8Array(d[1]);
    case 'date':
      return new Date(0);
    case 'nullproto':
      return Object.create(null);
    case 'revoked': {
      const { proxy, revoke } = Proxy.revocable({}, {});
      revoke();
      return proxy;
    }
    case 'throwingToString':
      return {
        toString() {
          throw new Error('toString refused');
        },
        valueOf() {
          throw new Error('valueOf refused');
        },
        [Symbol.toPrimitive]() {
          throw new Error('toPrimitive refused');
        },
      };
    case 'throwingGetter':
      return new Proxy(
        {},
        {
          get() {
            throw new Error('property read refused');
          },
          has() {
            throw new Error('has refused');
          },
          getPrototypeOf() {
            throw new Error('getPrototypeOf refused');
          },
        },
      );
    case 'proxyOfU8':
      return new Proxy(new Uint8Array(16), {});
    case 'sym':
      return Symbol('fuzz');
    case 'bigint':
      return 12345678901234567890n;
    case 'fn':
      return () => {};
    case 'detachedU8': {
      const u = new Uint8Array(16);
      structuredClone(u.buffer, { transfer: [u.buffer] });
      return u;
    }
    case 'error':
      return new Error(d[1]);
    case 'typeError':
      return new TypeError(d[1]);
    case 'errorWithNullProtoCause':
      return new Error('outer', { cause: Object.create(null) });
    case 'arr':
      return d[1].map(materialize);
    case 'obj': {
      const o = {};
      // defineProperty: an own '__proto__' key, not a prototype change.
      for (const [k, v] of d[1]) Object.defineProperty(o, k, { value: materialize(v), enumerable: true, configurable: true, writable: true });
      return o;
    }
    case 'lit':
      return d[1];
    default:
      throw new Error(`unknown value description ${JSON.stringify(d)}`);
  }
}

/** Deterministic bytes for a (length, seed) pair: both sides of a check can build the same payload. */
export function bytesOf(len, seed) {
  const b = Buffer.allocUnsafe(len);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 255;
  }
  return b;
}

/** A description for printing: values that String() cannot convert are named, not converted. */
export function show(v) {
  try {
    if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
    if (typeof v === 'bigint') return `${v}n`;
    if (typeof v === 'function') return v.name ? `[function ${v.name}]` : '[function]';
    if (typeof v === 'symbol' || typeof v !== 'object' || v === null) return String(v);
    if (v instanceof Error) return `${v.constructor.name}(${JSON.stringify(v.message)}${v.code ? `, code ${v.code}` : ''})`;
    return Object.prototype.toString.call(v);
  } catch {
    return '<unprintable>';
  }
}
