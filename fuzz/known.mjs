// Defects the fuzzer finds on main today whose fixes are under way (issue 22). While a defect is `open`
// the fuzzer does not generate the cases it explains (so CI stays green and finds what is new), and its
// example is skipped; when its fix lands, set `open: false`: the cases come back and the example (the
// fuzzer's shrunk case for it) runs in every `npm test` as a regression test.
// `npm run fuzz -- --known` runs the examples of the open ones and says which still reproduce.
import { PROTOTYPE_KEYS } from './values.mjs';

/** The values String() cannot convert (the default exception handler and _fatalError call String()). */
const UNPRINTABLE = new Set(['nullproto', 'revoked', 'throwingToString', 'throwingGetter']);
const unprintable = (d) => Array.isArray(d) && UNPRINTABLE.has(d[0]);
const throwsUnprintable = (c) => c.behaviours?.some((b) => b.then[0] === 'throw' && unprintable(b.then[1])) || c.ops?.some((op) => op[2]?.[0] === 'throw' && unprintable(op[2][1]));
/** True when some description inside `x` (a case, or part of one) satisfies `pred`. */
const has = (x, pred) => Array.isArray(x) ? pred(x) || x.some((y) => has(y, pred)) : x !== null && typeof x === 'object' && Object.values(x).some((y) => has(y, pred));
const PROXIES = new Set(['proxyOfU8', 'revoked', 'throwingGetter']);
/** Every buffer description of a stream case: the protocol's, and those of the protocols set later. */
const bufferSpecs = (c) => [c.bufferSpec, ...(c.steps ?? []).concat((c.behaviours ?? []).flatMap((b) => b.ops)).filter((op) => op[0] === 'setProtocol').map((op) => op[1])].filter(Boolean);
const calls = (c, fn) => (c.calls ?? []).filter((k) => k.fn === fn);

export const KNOWN = [
  {
    id: 'repro-03/04/06: unprintable thrown value',
    open: false, // fixed on main (issue 22)
    what: 'a protocol callback throws a value String() cannot convert: the library throws inside its error path (crash from the held-events path, no exit after connectionLost, no close after connectionMade)',
    excludes: (scenario, c) => throwsUnprintable(c),
    example: {
      scenario: 'stream',
      case: { peer: 'node-server', kind: 'plain', shape: 'class', handler: 'default', bufferSpec: ['u8', 1], behaviours: [{ cb: 'connectionLost', nth: 0, ops: [], then: ['throw', ['nullproto']] }], steps: [] },
    },
  },
  {
    id: 'nan-message',
    open: false, // fixed on main (issue 22)
    what: 'README smaller list: a NaN where an integer is expected says "must be a number. Received number"',
    excludes: (scenario, c) =>
      (scenario === 'args' && has(c, (d) => d[0] === 'num' && d[1] === 'NaN')) ||
      (c.steps ?? []).concat((c.behaviours ?? []).flatMap((b) => b.ops)).some((op) => op[0] === 'limits' && has(op, (d) => d[0] === 'num' && d[1] === 'NaN')),
    example: { scenario: 'args', case: { calls: [{ fn: 'getsockopt', args: [['num', 'NaN'], ['lit', 1]] }] } },
  },
  {
    id: 'devnull-eperm',
    open: false, // fixed on main (issue 22)
    what: 'README smaller list: connectReadPipe/connectWritePipe on /dev/null is refused with EPERM (syscall "open") and closes the caller\'s descriptor',
    excludes: (scenario, c) => scenario === 'args' && [...calls(c, 'connectReadPipe'), ...calls(c, 'connectWritePipe')].some((k) => has(k, (d) => d[0] === 'ctx' && d[1] === 'devnull')),
    example: { scenario: 'args', case: { calls: [{ fn: 'connectReadPipe', args: [['pf', 'ok', 'stream'], ['ctx', 'devnull']] }] } },
  },
  {
    id: 'factory-result-unchecked',
    open: false, // fixed on main (issue 22)
    what: 'README smaller list: subprocessExec, connectReadPipe (and connectWritePipe) accept a protocol factory that returns 5',
    excludes: (scenario, c) => scenario === 'args' && ['subprocessExec', 'subprocessShell', 'connectReadPipe', 'connectWritePipe'].some((fn) => calls(c, fn).some((k) => k.args[0]?.[0] === 'pf' && k.args[0][1] === 'returns')),
    example: { scenario: 'args', case: { calls: [{ fn: 'connectWritePipe', args: [['pf', 'returns', 'stream', ['num', '5']], ['ctx', 'sockA']] }] } },
  },
  {
    id: 'new: failed factory closes the given socket',
    open: false, // fixed on main (issue 22)
    what: 'found by the fuzzer: createConnection({ sock }) and connectAcceptedSocket with a protocol factory that throws (or returns a non-object) reject, yet close the caller\'s descriptor (connectReadPipe/connectWritePipe leave it open; asyncio calls the factory before it touches the socket)',
    excludes: (scenario, c) => scenario === 'args' && (c.calls ?? []).some((k) => k.args[0]?.[0] === 'pf' && k.args[0][1] !== 'ok' && has(k, (d) => d[0] === 'ctx')),
    example: { scenario: 'args', case: { calls: [{ fn: 'connectAcceptedSocket', args: [['pf', 'throws', 'stream', ['error', 'boom']], ['ctx', 'sockA'], ['lit', {}]] }] } },
  },
  {
    id: 'repro-14: prototype keys',
    open: false, // fixed on main (issue 22)
    what: 'getExtraInfo and sendSignal look names up in plain objects: Object.prototype members (constructor, __proto__, hasOwnProperty, toString...) are found',
    excludes: (scenario, c) => has(c, (d) => d[0] === 'str' && PROTOTYPE_KEYS.includes(d[1])),
    example: { scenario: 'args', case: { calls: [{ fn: 'getExtraInfo', args: [['str', 'constructor']] }] } },
  },
  {
    id: 'new: protocol whose property reads throw',
    open: false, // fixed on main (issue 22)
    what: 'found by the fuzzer: a protocol object whose property reads throw (setProtocol(revoked Proxy), or a factory returning one) makes _callProtocol throw outside its guard (the method lookup p?.[method] precedes the try): "internal error while dispatching an event", release() is skipped and the process never exits',
    excludes: (scenario, c) => scenario === 'args' && (c.calls ?? []).some((k) => (k.fn === 'setProtocol' && has(k, (d) => d[0] === 'revoked' || d[0] === 'throwingGetter')) || (k.args[0]?.[0] === 'pf' && k.args[0][1] === 'returns' && (k.args[0][3][0] === 'revoked' || k.args[0][3][0] === 'throwingGetter'))),
    example: { scenario: 'args', case: { calls: [{ fn: 'setProtocol', args: [['revoked']] }] } },
  },
  {
    id: 'repro-01/02: huge durations',
    open: false, // fixed on main (issue 22)
    what: 'a finite but huge happyEyeballsDelayMs, sslHandshakeTimeoutMs or sslShutdownTimeoutMs passes validation and a Rust panic (Duration::from_secs_f64) aborts the process',
    excludes: (scenario, c) => scenario === 'args' && has(c, (d) => d[0] === 'opts' && d[1].some(([k, v]) => /Ms$/.test(k) && v[0] === 'num' && Number.isFinite(Number(v[1])) && Number(v[1]) > 1e15)),
    example: { scenario: 'args', case: { calls: [{ fn: 'createConnection', args: [['pf', 'ok', 'stream'], ['lit', '127.0.0.1'], ['ctx', 'port'], ['opts', [['happyEyeballsDelayMs', ['num', '1e308']]]]] }] } },
  },
  {
    id: 'repro-13: detached getBuffer view',
    open: false, // fixed on main (issue 22)
    what: 'the getBuffer() view\'s ArrayBuffer is detached before bytes arrive: the chunk is dropped and the connection ends with connectionLost(null)',
    excludes: (scenario, c) => scenario === 'stream' && c.kind === 'buffered' && bufferSpecs(c).some((b) => b[0] === 'detachLater'),
    example: { scenario: 'stream', case: { peer: 'node-server', kind: 'buffered', shape: 'class', handler: 'recording', bufferSpec: ['detachLater', 1], behaviours: [], steps: [['peerWrite', 1, 1]] } },
  },
  {
    id: 'repro-07: getBuffer returns a Proxy',
    open: false, // fixed on main (issue 22)
    what: 'getBuffer() returns a Proxy (of a Uint8Array, revoked, or with throwing traps): the library inspects it outside the protocol-call guard; connecting rejects, the transport is never closed, no exit',
    excludes: (scenario, c) =>
      scenario === 'stream' && c.kind === 'buffered' && (bufferSpecs(c).some((b) => PROXIES.has(b[0])) || c.behaviours.some((b) => b.cb === 'getBuffer' && b.then[0] === 'return' && PROXIES.has(b.then[1][0]))),
    example: { scenario: 'stream', case: { peer: 'node-server', kind: 'buffered', shape: 'class', handler: 'recording', bufferSpec: ['proxyOfU8'], behaviours: [], steps: [['peerWrite', 10, 1]] } },
  },
  {
    id: 'new: exception handler throws an unprintable value',
    open: false, // fixed on main (issue 22)
    what: 'found by the fuzzer: a custom exception handler (setExceptionHandler) that throws a value String() or instanceof cannot handle: callExceptionHandler passes it to the default handler, which throws inside the library (connecting rejects with that value, the transport is left open)',
    excludes: (scenario, c) => c.handler === 'throwing' && unprintable(c.handlerThrows),
    example: { scenario: 'stream', case: { peer: 'node-server', kind: 'buffered', shape: 'class', handler: 'throwing', handlerThrows: ['throwingGetter'], bufferSpec: ['nullproto'], behaviours: [], steps: [] } },
  },
  {
    id: 'new: Proxy of a Uint8Array as data',
    open: false, // fixed on main (issue 22)
    what: 'found by the fuzzer: write()/writelines() given new Proxy(new Uint8Array(n), {}) throw V8\'s "Method get TypedArray.prototype.length called on incompatible receiver", DatagramTransport.sendto() the addon\'s Error "Get TypedArray info failed" (code InvalidArg): not a TypeError naming "data"',
    excludes: (scenario, c) =>
      (c.steps ?? []).concat((c.behaviours ?? []).flatMap((b) => b.ops)).some((op) => (op[0] === 'writeOdd' || op[0] === 'sendOdd') && has(op, (d) => d[0] === 'proxyOfU8')) ||
      ['write', 'writelines', 'sendto'].some((fn) => calls(c, fn).some((k) => has(k, (d) => d[0] === 'proxyOfU8'))),
    example: { scenario: 'args', case: { calls: [{ fn: 'sendto', args: [['proxyOfU8'], ['udpAddr']] }] } },
  },
  {
    id: 'unix-datagram-nul',
    open: false, // fixed on main (issue 22)
    what: 'README smaller list: an AF_UNIX datagram path with an interior NUL is accepted and silently truncated',
    excludes: (scenario, c) => scenario === 'datagram' && c.peer === 'unix' && has(c, (d) => (d[0] === 'str' || d[0] === 'lit') && typeof d[1] === 'string' && d[1].indexOf('\0') > 0),
    example: { scenario: 'datagram', case: { peer: 'unix', connected: false, shape: 'class', handler: 'recording', handlerThrows: ['error', 'boom'], behaviours: [], steps: [['sendto', 10, 1, ['lit', 'a\0b']]] } },
  },
  {
    id: 'pipe-setprotocol-detaches',
    open: false, // fixed on main (issue 22)
    what: 'README smaller list: subprocess.getPipeTransport(n).setProtocol(x) detaches that pipe from its SubprocessTransport, which never finishes (no connectionLost, no exit)',
    excludes: (scenario, c) => scenario === 'subprocess' && (c.steps ?? []).concat((c.behaviours ?? []).flatMap((b) => b.ops)).some((op) => op[0] === 'setPipeProtocol'),
    example: { scenario: 'subprocess', case: { program: 'cat', shape: 'class', handler: 'recording', handlerThrows: ['null'], behaviours: [], steps: [['setPipeProtocol', 0]] } },
  },
  {
    id: 'done-callback-throw',
    open: false, // fixed on main (issue 22)
    what: 'README smaller list: a Future.addDoneCallback callback that throws crashes the process (uncaught); asyncio sends it to the exception handler, as callSoon does',
    excludes: (scenario, c) => scenario === 'loop' && c.ops.some((op) => op[0] === 'addDoneCallback' && op[2][0] === 'throw'),
    example: { scenario: 'loop', case: { handler: 'recording', ops: [['addDoneCallback', 0, ['throw', ['error', 'boom']]]] } },
  },
  {
    id: 'new: Future.cancel(msg) converts msg',
    open: false, // fixed on main (issue 22)
    what: 'found by the fuzzer: Future.cancel(msg) with a msg that String() cannot convert (Object.create(null), a Symbol, an object whose toString returns an object) throws "Cannot convert object to primitive value" and leaves the future pending; asyncio keeps any msg as the CancelledError\'s argument',
    excludes: (scenario, c) => scenario === 'loop' && c.ops.some((op) => op[0] === 'cancel' && !['str', 'longstr', 'num', 'undef', 'null', 'true', 'false', 'bigint', 'error', 'typeError', 'errorWithNullProtoCause', 'date', 'u8', 'emptyArr'].includes(op[2][0])),
    example: { scenario: 'loop', case: { handler: 'recording', ops: [['cancel', 0, ['nullproto']]] } },
  },
  {
    id: 'repro-09: pauseReading in bufferUpdated (copy path)',
    open: false, // fixed on main (issue 22)
    what: 'pauseReading() inside bufferUpdated on the copy path (a plain Uint8Array from getBuffer) lets the rest of the chunk through in more bufferUpdated calls',
    excludes: (scenario, c) => scenario === 'stream' && c.kind === 'buffered' && bufferSpecs(c).some((b) => !['alloc', 'sab'].includes(b[0])) && c.behaviours.some((b) => b.cb === 'bufferUpdated' && b.ops.some((op) => op[0] === 'pause')),
    example: { scenario: 'stream', case: { peer: 'node-server', kind: 'buffered', shape: 'class', handler: 'recording', bufferSpec: ['u8', 1], behaviours: [{ cb: 'bufferUpdated', nth: 0, ops: [['pause']], then: ['none'] }], steps: [['peerWrite', 2, 1]] } },
  },
  {
    id: 'new: pipe write after close() throws',
    open: false, // fixed on main (issue 22)
    what: 'found by the fuzzer: a pipe WriteTransport (connectWritePipe, a subprocess\'s stdin) throws "Cannot call write() after writeEof()" on write() after close() (the user never called writeEof); the API says a write after close() is dropped, as stream transports do and asyncio does',
    excludes: (scenario, c) => (scenario === 'subprocess' || scenario === 'pipe') && has(c, (d) => d[0] === 'close' || d[0] === 'abort') && has(c, (d) => d[0] === 'write'),
    example: { scenario: 'subprocess', case: { program: 'cat', shape: 'class', handler: 'recording', handlerThrows: ['null'], behaviours: [], steps: [['close'], ['write', 10, 1]] } },
  },
  {
    id: 'new: setProtocol calls getBuffer inside itself',
    open: false, // fixed on main (issue 22)
    what: 'found by the fuzzer (threads reactor): StreamTransport.setProtocol(p) calls p.getBuffer() synchronously, inside setProtocol (asyncio never runs a protocol callback inside a transport call); a BufferedProtocol that switches protocols from getBuffer recurses until setProtocol throws RangeError "Maximum call stack size exceeded"',
    excludes: (scenario, c) => scenario === 'stream' && c.kind === 'buffered' && c.behaviours.some((b) => b.cb === 'getBuffer' && b.ops.some((op) => op[0] === 'setProtocol')),
    example: { scenario: 'stream', case: { peer: 'node-server', kind: 'buffered', shape: 'class', handler: 'recording', bufferSpec: ['alloc', 1], behaviours: [{ cb: 'getBuffer', nth: 0, ops: [['setProtocol', ['alloc', 1]]], then: ['none'] }], steps: [] } },
  },
  {
    id: 'repro-08: adopting an owned descriptor closes it',
    open: false, // fixed on main (issue 22)
    what: 'handing a descriptor a live transport owns to createConnection({ sock }), connectAcceptedSocket, connectReadPipe/connectWritePipe, createServer({ sock }) or createDatagramEndpoint({ sock }) fails with EEXIST, yet closes it',
    excludes: (scenario, c) => scenario === 'args' && has(c, (d) => d[0] === 'ctx' && d[1] === 'transportFd'),
    example: { scenario: 'args', case: { calls: [{ fn: 'connectAcceptedSocket', args: [['pf', 'ok', 'stream'], ['ctx', 'transportFd'], ['lit', {}]] }] } },
  },
  {
    id: 'new: getExtraInfo(key String() cannot convert)',
    open: false, // fixed on main (issue 22)
    what: 'found by the fuzzer (still there after the repro-14 fix): getExtraInfo(Object.create(null)), getExtraInfo(a revoked Proxy) or a Proxy of a Uint8Array throw V8\'s TypeError "Cannot convert object to primitive value" (or "... called on incompatible receiver") from the key lookup, not a TypeError naming "name" (or the default, as for any unknown key)',
    excludes: (scenario, c) =>
      ['getExtraInfo', 'datagramExtra', 'subprocessExtra'].some((fn) => calls(c, fn).some((k) => unprintable(k.args[0]) || PROXIES.has(k.args[0][0]))) ||
      (c.steps ?? []).concat((c.behaviours ?? []).flatMap((b) => b.ops)).some((op) => op[0] === 'extra' && (unprintable(op[1]) || PROXIES.has(op[1][0]))),
    example: { scenario: 'args', case: { calls: [{ fn: 'getExtraInfo', args: [['nullproto']] }] } },
  },
  {
    id: 'new: getBuffer after eofReceived',
    open: false, // fixed on main (issue 22)
    what: 'found by the fuzzer: on a half-open stream (eofReceived returned true), setProtocol(another BufferedProtocol) (from a protocol that received into a plain Uint8Array to one with an allocBuffer) makes the transport call the new protocol\'s getBuffer(), though no byte can come after EOF (asyncio never calls get_buffer after eof_received)',
    excludes: (scenario, c) => scenario === 'stream' && c.kind === 'buffered' && bufferSpecs(c).length > 1 && c.behaviours.some((b) => b.cb === 'eofReceived' && b.then[0] === 'return'),
    example: { scenario: 'stream', case: { peer: 'node-server', kind: 'buffered', shape: 'class', handler: 'recording', bufferSpec: ['u8', 1], behaviours: [{ cb: 'eofReceived', nth: 0, ops: [], then: ['return', ['true']] }], steps: [['peerEnd'], ['wait', 20], ['setProtocol', ['alloc', 1]]] } },
  },
  {
    id: 'new: setProtocol inside getBuffer lends the old protocol\'s buffer to the new one',
    open: false, // fixed on main (issue 22)
    what: 'found by the fuzzer (seed 1622531101): a getBuffer() that calls setProtocol(x) and returns its buffer had that buffer lent for x, and x got a bufferUpdated for a buffer it never handed out',
    excludes: (scenario, c) => scenario === 'stream' && c.kind === 'buffered' && c.behaviours.some((b) => b.cb === 'getBuffer' && b.ops.some((op) => op[0] === 'setProtocol')),
    example: { scenario: 'stream', case: { peer: 'node-server', kind: 'buffered', shape: 'class', handler: 'recording', handlerThrows: ['error', 'boom'], bufferSpec: ['alloc', 1], behaviours: [{ cb: 'getBuffer', nth: 0, ops: [['setProtocol', ['nullproto']]], then: ['none'] }], steps: [['peerWrite', 60000, 1]] } },
  },
];

/** The open known defect that explains case `c` of `scenario`, or null. */
export function excludedBy(scenario, c) {
  for (const k of KNOWN) if (k.open && k.excludes(scenario, c)) return k.id;
  return null;
}
