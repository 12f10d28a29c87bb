// fast-check arbitraries of whole cases, one family per scenario.
import fc from 'fast-check';
import { anyDesc, hostileDesc, numberDesc, stringDesc, thrownDesc } from './values.mjs';

const seed = fc.integer({ min: 1, max: 1 << 30 });
/** Write sizes: mostly small, sometimes over the 64 KiB high-water mark. */
const size = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 2000 }) }, { weight: 1, arbitrary: fc.integer({ min: 60_000, max: 300_000 }) });

/** The buffer getBuffer() returns: engine memory, plain views, or something that must fail the transport. */
const bufferSpec = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.constantFrom('alloc', 'u8', 'buffer', 'sab', 'offset'), fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 70_000 }))) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('detachLater'), fc.integer({ min: 1, max: 5000 })) },
  { weight: 1, arbitrary: fc.oneof(hostileDesc, anyDesc, fc.constant(['u8', 0])) },
);

/** Operations every transport kind has: setWriteBufferLimits with any numbers, getExtraInfo with any key. */
const limitsOp = fc.tuple(fc.constant('limits'), fc.oneof(numberDesc, fc.constant(['null'])), fc.oneof(numberDesc, fc.constant(['null'])));
const extraOp = fc.tuple(fc.constant('extra'), fc.oneof(stringDesc, hostileDesc));
/** A short pause between steps from outside. */
const waitStep = fc.tuple(fc.constant('wait'), fc.integer({ min: 0, max: 30 }));

/** What the protocol or the test does with a stream transport. */
export const streamOp = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.constant('write'), size, seed) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('writeOdd'), fc.oneof(anyDesc, hostileDesc)) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('writelines'), fc.array(size, { maxLength: 4 }), seed) },
  { weight: 3, arbitrary: fc.constantFrom(['pause'], ['resume']) },
  { weight: 1, arbitrary: fc.constantFrom(['writeEof'], ['close'], ['abort']) },
  { weight: 1, arbitrary: limitsOp },
  { weight: 1, arbitrary: extraOp },
  { weight: 1, arbitrary: fc.tuple(fc.constant('setProtocol'), bufferSpec) },
);

/** Steps from outside: the transport's operations, the peer's, and short waits. */
const streamStep = fc.oneof(
  { weight: 5, arbitrary: streamOp },
  { weight: 4, arbitrary: fc.tuple(fc.constant('peerWrite'), size, seed) },
  { weight: 1, arbitrary: fc.constantFrom(['peerEnd'], ['peerDestroy']) },
  { weight: 2, arbitrary: waitStep },
);

/** What a callback does after its ops: nothing, throw any value, or return any value. */
const callbackThen = fc.oneof({ weight: 2, arbitrary: fc.constant(['none']) }, { weight: 2, arbitrary: fc.tuple(fc.constant('throw'), thrownDesc) }, { weight: 1, arbitrary: fc.tuple(fc.constant('return'), anyDesc) });

/** A behaviour (subject.mjs): on its nth call (0: every call), callback `cb` runs `ops`, then `then`. */
function behaviourOf(callbacks, op, then) {
  return fc.record({
    cb: fc.constantFrom(...callbacks),
    nth: fc.integer({ min: 0, max: 3 }),
    ops: fc.array(op, { maxLength: 3 }),
    then,
  });
}

const PLAIN_CALLBACKS = ['connectionMade', 'dataReceived', 'eofReceived', 'pauseWriting', 'resumeWriting', 'connectionLost'];
const BUFFERED_CALLBACKS = ['connectionMade', 'getBuffer', 'bufferUpdated', 'eofReceived', 'pauseWriting', 'resumeWriting', 'connectionLost'];

function behaviour(callbacks, throws) {
  const then = throws
    ? fc.oneof({ weight: 2, arbitrary: fc.constant(['none']) }, { weight: 3, arbitrary: fc.tuple(fc.constant('throw'), thrownDesc) }, { weight: 2, arbitrary: fc.tuple(fc.constant('return'), anyDesc) })
    : fc.oneof(fc.constant(['none']), fc.tuple(fc.constant('return'), anyDesc));
  return behaviourOf(callbacks, streamOp, then);
}

/** A stream case: which peer and protocol, how the protocol behaves, and the steps from outside. */
export function streamCase({ kinds = ['plain', 'buffered'], throws = true, maxSteps = 12, maxBehaviours = 3 } = {}) {
  return fc.record({
    peer: fc.constantFrom('node-server', 'node-client', 'own', 'unix', 'socketpair'),
    kind: fc.constantFrom(...kinds),
    shape: fc.constantFrom('class', 'plain', 'nullproto'),
    handler: throws ? fc.constantFrom('recording', 'recording', 'default', 'throwing') : fc.constant('recording'),
    handlerThrows: thrownDesc,
    bufferSpec,
    behaviours: fc.array(kinds.length === 1 && kinds[0] === 'buffered' ? behaviour(BUFFERED_CALLBACKS, throws) : behaviour(PLAIN_CALLBACKS, throws), { maxLength: maxBehaviours }),
    steps: fc.array(streamStep, { maxLength: maxSteps }),
  });
}

// ---- argument cases ----

const lit = (...vals) => fc.constantFrom(...vals.map((v) => ['lit', v]));
const odd = fc.oneof(numberDesc, stringDesc, hostileDesc, anyDesc);
/** Mostly a valid value, sometimes an odd one: odd values must get past the earlier arguments. */
const arg = (valid, oddValue = odd) => fc.oneof({ weight: 3, arbitrary: valid }, { weight: 1, arbitrary: oddValue });
const num = (...valid) => fc.oneof(lit(...valid), numberDesc);
/** An options object: some of `fields`, each valid or odd; now and then not an object at all. */
const opts = (fields) =>
  fc.oneof(
    { weight: 6, arbitrary: fc.record(Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, k === 'sock' ? v : arg(v)])), { requiredKeys: [] }).map((o) => ['opts', Object.entries(o)]) },
    { weight: 1, arbitrary: odd },
  );
const pf = (kind) =>
  fc.oneof(
    { weight: 8, arbitrary: fc.constant(['pf', 'ok', kind]) },
    { weight: 1, arbitrary: fc.tuple(fc.constant('pf'), fc.constant('returns'), fc.constant(kind), fc.oneof(numberDesc, stringDesc, fc.constantFrom(['null'], ['undef'], ['nullproto'], ['revoked'], ['throwingGetter'], ['emptyObj']))) },
    { weight: 1, arbitrary: fc.tuple(fc.constant('pf'), fc.constant('throws'), fc.constant(kind), thrownDesc) },
    { weight: 1, arbitrary: odd },
  );
const host = lit('127.0.0.1', 'localhost', '::1', null);
const port = fc.oneof(fc.constant(['ctx', 'port']), num(0));
/** Milliseconds: valid ones, and the extremes where a conversion to a Duration overflows. */
const duration = fc.oneof(num(1, 100, 60_000), fc.constantFrom('1e308', '1e23', '1.7976931348623157e308', '9007199254740992', '1e12').map((s) => ['num', s]));
const bool = lit(true, false);
const tlsOpts = { ssl: fc.oneof(lit(true, null), fc.constant(['opts', [['rejectUnauthorized', ['lit', false]]]])), serverHostname: lit('localhost', null), sslHandshakeTimeoutMs: duration, sslShutdownTimeoutMs: duration };
/** Descriptors the case made (a file, /dev/null, a directory, FIFO ends, a socket, a live transport's, a closed one). */
const ownFd = fc.constantFrom(...['file', 'devnull', 'dir', 'fifoR', 'fifoW', 'sockA', 'closedFd', 'transportFd'].map((n) => ['ctx', n]));
/** An odd value for a descriptor position: never a small number, which would be the runner's own descriptor. */
const oddFd = odd.filter((d) => !(d[0] === 'num' && Number.isInteger(Number(d[1])) && Number(d[1]) >= 0 && Number(d[1]) < 1024));
const fd = fc.oneof({ weight: 3, arbitrary: ownFd }, { weight: 1, arbitrary: oddFd });
const stdio = fc.oneof(lit(-1, -2, -3, null), ownFd); // PIPE, STDOUT, DEVNULL, inherit, descriptors
const bytes = fc.oneof(fc.constant(['u8', 3]), fc.constant(['lit', 'text']), odd);
const signal = fc.oneof(lit('SIGTERM', 'SIGUSR1', 0, 15, 'SIGNOPE', 'sigterm', 'TERM'), stringDesc, numberDesc);
const extraKey = fc.oneof(stringDesc, hostileDesc);

/** One call per export or method, its arguments generated position by position. */
const CALLS = {
  createConnection: fc.tuple(pf('stream'), arg(host), arg(port), opts({ sock: fd, family: num(0, 2, 10), localAddr: fc.constant(['lit', ['127.0.0.1', 0]]), happyEyeballsDelayMs: duration, interleave: num(1, 2), ...tlsOpts })),
  createServer: fc.tuple(pf('stream'), arg(host), arg(num(0)), opts({ sock: fd, family: num(0, 2), backlog: num(1, 100), reuseAddress: bool, reusePort: bool, keepAlive: bool, startServing: bool, sslHandshakeTimeoutMs: duration })),
  createUnixConnection: fc.tuple(pf('stream'), arg(fc.constant(['ctx', 'unixPath'])), opts({ sock: fd, ...tlsOpts })),
  createUnixServer: fc.tuple(pf('stream'), arg(fc.oneof(fc.constant(['ctx', 'unixPath']), lit('\0protoloop-fuzz-abstract'))), opts({ sock: fd, backlog: num(1), startServing: bool, cleanupSocket: bool })),
  createDatagramEndpoint: fc.tuple(
    pf('datagram'),
    opts({ localAddr: fc.oneof(lit(['127.0.0.1', 0], ['::1', 0])), remoteAddr: fc.oneof(fc.constant(['udpAddr'])), family: num(0, 2, 10, 1), reuseAddress: bool, reusePort: bool, allowBroadcast: bool, proto: num(0, 17), sock: fd }),
  ),
  connectAcceptedSocket: fc.tuple(pf('stream'), arg(fd, oddFd), opts({ sslHandshakeTimeoutMs: duration })),
  connectReadPipe: fc.tuple(pf('stream'), arg(fd, oddFd)),
  connectWritePipe: fc.tuple(pf('stream'), arg(fd, oddFd)),
  subprocessExec: fc.tuple(pf('subprocess'), arg(lit('/bin/true', '/bin/echo', '/nonexistent')), arg(fc.oneof(lit([], ['a', 'b']), fc.constant(['list', [['str', 'a\0b']]]))), opts({ stdin: stdio, stdout: stdio, stderr: stdio, cwd: lit('/', '/nonexistent'), env: lit({ A: '1' }, {}), startNewSession: bool, processGroup: num(0) })),
  subprocessShell: fc.tuple(pf('subprocess'), arg(lit('true', 'echo hi', 'exit 3')), opts({ stdin: stdio, stdout: stdio, stderr: stdio })),
  allocBuffer: fc.tuple(arg(num(1, 65536))),
  sendfile: fc.tuple(arg(fd, oddFd), arg(num(0, 10)), arg(fc.oneof(lit(null, 5), numberDesc)), opts({ fallback: bool })),
  startTls: fc.tuple(arg(fc.oneof(lit(true), fc.constant(['opts', [['rejectUnauthorized', ['lit', false]]]]))), opts({ serverSide: bool, serverHostname: lit('localhost'), sslHandshakeTimeoutMs: duration, sslShutdownTimeoutMs: duration })),
  write: fc.tuple(bytes),
  writelines: fc.tuple(fc.oneof(fc.constant(['list', [['u8', 3]]]), fc.array(bytes, { maxLength: 3 }).map((xs) => ['list', xs]), odd)),
  setWriteBufferLimits: fc.tuple(arg(num(0, 1000)), arg(num(0, 10))),
  setProtocol: fc.tuple(odd),
  forwardTo: fc.tuple(odd, opts({ highWater: num(1000), lowWater: num(10) })),
  getExtraInfo: fc.tuple(extraKey),
  getsockopt: fc.tuple(arg(num(1, 6)), arg(num(1, 9))),
  setsockopt: fc.tuple(arg(num(1, 6)), arg(num(1, 9)), arg(fc.oneof(lit(1, true), numberDesc))),
  sendto: fc.tuple(bytes, arg(fc.oneof(fc.constant(['udpAddr']), lit(null, ['127.0.0.1', 9], ['::1', 9, 0, 0], '/tmp/x')))),
  datagramExtra: fc.tuple(extraKey),
  sendSignal: fc.tuple(signal),
  getPipeTransport: fc.tuple(arg(num(0, 1, 2))),
  subprocessExtra: fc.tuple(extraKey),
  callSoon: fc.tuple(odd),
  setExceptionHandler: fc.tuple(odd),
  futureSetException: fc.tuple(odd),
};

/** A case of the args scenario: a few calls, each with its arguments. */
export const argsCase = fc.record({
  calls: fc.array(
    fc.oneof(...Object.entries(CALLS).map(([fn, a]) => a.map((args) => ({ fn, args })))),
    { minLength: 1, maxLength: 4 },
  ),
});

// ---- datagram cases ----

const datagramSize = fc.integer({ min: 1, max: 2000 });
const DATAGRAM_CALLBACKS = ['connectionMade', 'datagramReceived', 'errorReceived', 'pauseWriting', 'resumeWriting', 'connectionLost'];
/** Where a sendto goes: the peer, no address (connected endpoints), or an odd address. */
const sendAddress = fc.oneof({ weight: 6, arbitrary: fc.constant(['peer']) }, { weight: 2, arbitrary: fc.constant(['none']) }, { weight: 2, arbitrary: fc.oneof(odd, lit(['127.0.0.1', 0], ['127.0.0.1', 9], ['::1', 9], '/nonexistent/sock', 'a\0b', [])) });
const datagramOp = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.constant('sendto'), datagramSize, seed, sendAddress) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('sendOdd'), fc.oneof(anyDesc, hostileDesc)) },
  { weight: 3, arbitrary: fc.constantFrom(['pause'], ['resume']) },
  { weight: 1, arbitrary: fc.constantFrom(['close'], ['abort']) },
  { weight: 1, arbitrary: limitsOp },
  { weight: 1, arbitrary: extraOp },
);

export const datagramCase = fc.record({
  peer: fc.constantFrom('dgram', 'own', 'unix'),
  connected: fc.boolean(),
  shape: fc.constantFrom('class', 'plain', 'nullproto'),
  handler: fc.constantFrom('recording', 'recording', 'default', 'throwing'),
  handlerThrows: thrownDesc,
  behaviours: fc.array(behaviourOf(DATAGRAM_CALLBACKS, datagramOp, callbackThen), { maxLength: 3 }),
  steps: fc.array(
    fc.oneof(
      { weight: 5, arbitrary: datagramOp },
      { weight: 4, arbitrary: fc.tuple(fc.constant('peerSend'), datagramSize, seed) },
      { weight: 2, arbitrary: waitStep },
    ),
    { maxLength: 14 },
  ),
});

// ---- subprocess cases ----

const SUBPROCESS_CALLBACKS = ['connectionMade', 'pipeDataReceived', 'pipeConnectionLost', 'processExited', 'pauseWriting', 'resumeWriting', 'connectionLost'];
const subprocessOp = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.constant('write'), size, seed) },
  { weight: 1, arbitrary: fc.constant(['writeEof']) },
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom('pause', 'resume'), fc.constantFrom(1, 2)) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('signal'), signal) },
  { weight: 1, arbitrary: fc.constantFrom(['kill'], ['close']) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('getPipe'), fc.oneof(numberDesc, stringDesc, hostileDesc)) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('setPipeProtocol'), fc.constantFrom(0, 1, 2)) },
  { weight: 1, arbitrary: extraOp },
);

export const subprocessCase = fc.record({
  program: fc.constantFrom('cat', 'sh'),
  shape: fc.constantFrom('class', 'plain'),
  handler: fc.constantFrom('recording', 'recording', 'default', 'throwing'),
  handlerThrows: thrownDesc,
  behaviours: fc.array(behaviourOf(SUBPROCESS_CALLBACKS, subprocessOp, callbackThen), { maxLength: 3 }),
  steps: fc.array(fc.oneof({ weight: 5, arbitrary: subprocessOp }, { weight: 2, arbitrary: waitStep }), { maxLength: 10 }),
});

// ---- loop cases ----

const fut = fc.integer({ min: 0, max: 2 });
export const loopCase = fc.record({
  handler: fc.constantFrom('recording', 'recording', 'default'),
  ops: fc.array(
    fc.oneof(
      fc.tuple(fc.constant('callSoon'), fc.constant(null), callbackThen),
      fc.tuple(fc.constant('cancelHandle'), fc.nat(5)),
      fc.tuple(fc.constant('addDoneCallback'), fut, callbackThen),
      fc.tuple(fc.constantFrom('setResult', 'setException', 'cancel'), fut, fc.oneof(anyDesc, thrownDesc, fc.constant(['undef']))),
      fc.tuple(fc.constantFrom('query', 'await'), fut),
      fc.constant(['tick']),
    ),
    { maxLength: 14 },
  ),
});

// ---- pipe cases ----

const pipeOp = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.constant('write'), size, seed) },
  { weight: 3, arbitrary: fc.constantFrom(['pause'], ['resume']) },
  { weight: 1, arbitrary: fc.constantFrom(['writeEof'], ['close'], ['abort']) },
  { weight: 1, arbitrary: limitsOp },
  { weight: 1, arbitrary: extraOp },
);
export const pipeCase = fc.record({
  direction: fc.constantFrom('read', 'write'),
  shape: fc.constantFrom('class', 'plain', 'nullproto'),
  handler: fc.constantFrom('recording', 'recording', 'default', 'throwing'),
  handlerThrows: thrownDesc,
  behaviours: fc.array(behaviour(PLAIN_CALLBACKS, true), { maxLength: 3 }),
  steps: fc.array(
    fc.oneof(
      { weight: 5, arbitrary: pipeOp },
      { weight: 4, arbitrary: fc.tuple(fc.constant('peerWrite'), size, seed) },
      { weight: 1, arbitrary: fc.constant(['peerEnd']) },
      { weight: 2, arbitrary: waitStep },
    ),
    { maxLength: 12 },
  ),
});

// ---- worker cases ----

export const workerCase = fc.record({
  uses: fc.array(fc.constantFrom('connect', 'server', 'subprocess', 'datagram', 'buffered'), { minLength: 1, maxLength: 3 }),
  flow: fc.boolean(),
  end: fc.constantFrom('terminate', 'return', 'exit'),
  delayMs: fc.integer({ min: 0, max: 50 }),
});
