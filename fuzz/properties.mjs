// The fuzzer's properties: each generates cases for one scenario and runs every case in a child process
// (fuzz/runner.mjs). `checkProperty` is what both `npm run fuzz` and __test__/fuzz.test.ts call.
import fc from 'fast-check';
import { argsCase, datagramCase, loopCase, pipeCase, streamCase, subprocessCase, workerCase } from './arbitraries.mjs';
import { excludedBy } from './known.mjs';
import { runCase, stderrTail } from './runner.mjs';

/** name, the scenario it runs, its cases, and the number of runs of the default (CI) budget. */
export const properties = [
  // Every export and transport method with generated arguments.
  { name: 'arguments', scenario: 'args', arbitrary: argsCase, runs: 30 },
  // Protocol callbacks that throw anything, return anything, and re-enter the transport.
  { name: 'stream-callbacks', scenario: 'stream', arbitrary: streamCase({ kinds: ['plain'], throws: true, maxSteps: 6, maxBehaviours: 3 }), runs: 20 },
  // Call sequences over a connection (write, pause, resume, writeEof, close, abort, limits, the peer's side).
  { name: 'stream-sequence', scenario: 'stream', arbitrary: streamCase({ throws: false, maxSteps: 20, maxBehaviours: 2 }), runs: 20 },
  // BufferedProtocol: what getBuffer() returns, and pausing or throwing around bufferUpdated.
  { name: 'buffered', scenario: 'stream', arbitrary: streamCase({ kinds: ['buffered'], throws: true, maxSteps: 10, maxBehaviours: 3 }), runs: 20 },
  // Datagram endpoints (UDP, AF_UNIX) against Node's dgram and protoloop's own endpoints.
  { name: 'datagram', scenario: 'datagram', arbitrary: datagramCase, runs: 20 },
  // Pipe transports over FIFOs, the other end a Node socket (a writer, or a reader that may go away).
  { name: 'pipe', scenario: 'pipe', arbitrary: pipeCase, runs: 15 },
  // Child processes with pipes: stdin writes and EOF, paused output, signals, throwing callbacks.
  { name: 'subprocess', scenario: 'subprocess', arbitrary: subprocessCase, runs: 15 },
  // The loop: callSoon and Futures with callbacks that throw or return anything, in any order.
  { name: 'loop', scenario: 'loop', arbitrary: loopCase, runs: 20 },
  // Worker threads that use protoloop and then end (terminated, returning, process.exit()).
  { name: 'worker', scenario: 'worker', arbitrary: workerCase, runs: 8 },
];

/**
 * Runs `prop` for `runs` cases from `seed` (replaying `path` when given). Cases that an open known
 * defect explains are not generated unless `includeKnown`. Shrinking a failure stops after `shrinkMs`,
 * keeping the smallest failing case found so far. Throws fast-check's report (seed, path, the shrunk
 * counterexample, what broke) when a case fails; resolves to the number of cases run otherwise.
 */
export async function checkProperty(prop, { seed, runs = prop.runs, path, includeKnown = false, shrinkMs = 60_000, env = {}, log = () => {} }) {
  let ran = 0;
  let firstFailure = 0;
  const arbitrary = includeKnown ? prop.arbitrary : prop.arbitrary.filter((c) => excludedBy(prop.scenario, c) === null);
  const property = fc.asyncProperty(arbitrary, async (c) => {
    if (firstFailure && Date.now() - firstFailure > shrinkMs) fc.pre(false); // enough shrinking: keep the smallest so far
    ran++;
    const r = await runCase(prop.scenario, c, { env });
    if (!r.ok) {
      firstFailure ||= Date.now();
      log(`  failing case ${JSON.stringify(c)}\n    ${r.problems.join('\n    ')}`);
      const e = new Error(`${r.problems.join('\n')}\n--- the child's stderr (last lines) ---\n${stderrTail(r.stderr)}`);
      e.stack = e.message; // the report is about the case, not about where the runner noticed
      throw e;
    }
  });
  await fc.assert(property, { seed, numRuns: runs, path, maxSkipsPerRun: 1000, endOnFailure: path !== undefined, includeErrorInReport: true });
  return ran;
}
