// fast-check arbitraries of whole cases, one family per scenario.
import fc from 'fast-check';
import { anyDesc, hostileDesc, numberDesc, stringDesc, thrownDesc } from './values.mjs';

const seed = fc.integer({ min: 1, max: 1 << 30 });
/** Write sizes: mostly small, sometimes over the 64 KiB high-water mark. */
const size = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 2000 }) }, { weight: 1, arbitrary: fc.integer({ min: 60_000, max: 300_000 }) });

/** What the protocol or the test does with a stream transport. */
export const streamOp = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.constant('write'), size, seed) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('writeOdd'), fc.oneof(anyDesc, hostileDesc)) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('writelines'), fc.array(size, { maxLength: 4 }), seed) },
  { weight: 3, arbitrary: fc.constantFrom(['pause'], ['resume']) },
  { weight: 1, arbitrary: fc.constantFrom(['writeEof'], ['close'], ['abort']) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('limits'), fc.oneof(numberDesc, fc.constant(['null'])), fc.oneof(numberDesc, fc.constant(['null']))) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('extra'), fc.oneof(stringDesc, hostileDesc)) },
);

/** Steps from outside: the transport's operations, the peer's, and short waits. */
const streamStep = fc.oneof(
  { weight: 5, arbitrary: streamOp },
  { weight: 4, arbitrary: fc.tuple(fc.constant('peerWrite'), size, seed) },
  { weight: 1, arbitrary: fc.constantFrom(['peerEnd'], ['peerDestroy']) },
  { weight: 2, arbitrary: fc.tuple(fc.constant('wait'), fc.integer({ min: 0, max: 30 })) },
);

const PLAIN_CALLBACKS = ['connectionMade', 'dataReceived', 'eofReceived', 'pauseWriting', 'resumeWriting', 'connectionLost'];
const BUFFERED_CALLBACKS = ['connectionMade', 'getBuffer', 'bufferUpdated', 'eofReceived', 'pauseWriting', 'resumeWriting', 'connectionLost'];

function behaviour(callbacks, throws) {
  const then = throws
    ? fc.oneof({ weight: 2, arbitrary: fc.constant(['none']) }, { weight: 3, arbitrary: fc.tuple(fc.constant('throw'), thrownDesc) }, { weight: 2, arbitrary: fc.tuple(fc.constant('return'), anyDesc) })
    : fc.oneof(fc.constant(['none']), fc.tuple(fc.constant('return'), anyDesc));
  return fc.record({
    cb: fc.constantFrom(...callbacks),
    nth: fc.integer({ min: 0, max: 3 }),
    ops: fc.array(streamOp, { maxLength: 3 }),
    then,
  });
}

/** The buffer getBuffer() returns: engine memory, plain views, or something that must fail the transport. */
const bufferSpec = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.constantFrom('alloc', 'u8', 'buffer', 'sab', 'offset'), fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 70_000 }))) },
  { weight: 1, arbitrary: fc.tuple(fc.constant('detachLater'), fc.integer({ min: 1, max: 5000 })) },
  { weight: 1, arbitrary: fc.oneof(hostileDesc, anyDesc, fc.constant(['u8', 0])) },
);

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
