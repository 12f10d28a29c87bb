// `npm run fuzz -- [--seed N] [--runs M] [--property NAME[,NAME]] [--path P] [--known] [--shrink-seconds S]`
//
// Runs the fuzzer's properties (fuzz/properties.mjs), each case in a child process. Without --seed a
// random seed is drawn and printed; the same seed replays the same cases, and a larger --runs widens the
// search from there. --path (from a failure's report) replays just the shrunk counterexample. --known
// also generates the cases of open known defects (fuzz/known.mjs) and first replays each one's example,
// saying whether it still reproduces. PROTOLOOP_REACTOR=threads runs the cases under the threads reactor.
import { parseArgs } from 'node:util';
import { KNOWN } from './known.mjs';
import { checkProperty, properties } from './properties.mjs';
import { runCase } from './runner.mjs';

const { values: opts } = parseArgsOrExit({
  options: {
    seed: { type: 'string' },
    runs: { type: 'string' },
    property: { type: 'string' },
    path: { type: 'string' },
    known: { type: 'boolean', default: false },
    'shrink-seconds': { type: 'string', default: '120' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

/** parseArgs, but a wrong option is a one-line message (and exit status 2), not a stack trace. */
function parseArgsOrExit(config) {
  try {
    return parseArgs(config);
  } catch (e) {
    console.error(`fuzz: ${e.message} (npm run fuzz -- --help)`);
    process.exit(2);
  }
}
if (opts.help) {
  // The usage is this file's opening comment.
  const { readFileSync } = await import('node:fs');
  const head = readFileSync(new URL(import.meta.url), 'utf8').split('\n');
  console.log(head.slice(0, head.findIndex((l) => !l.startsWith('//'))).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
  console.log(`properties: ${properties.map((p) => p.name).join(', ')}`);
  process.exit(0);
}
const numeric = (name) => {
  const v = Number(opts[name]);
  if (opts[name] !== undefined && !(Number.isInteger(v) && v >= 0)) {
    console.error(`--${name} must be a whole number, got ${JSON.stringify(opts[name])}`);
    process.exit(2);
  }
};
['seed', 'runs', 'shrink-seconds'].forEach(numeric);
const seed = opts.seed !== undefined ? Number(opts.seed) : Math.floor(Math.random() * 2 ** 31);
const wanted = opts.property?.split(',');
const selected = properties.filter((p) => !wanted || wanted.includes(p.name));
if (selected.length === 0) {
  console.error(`no property named ${opts.property}; there are: ${properties.map((p) => p.name).join(', ')}`);
  process.exit(2);
}

if (opts.known) {
  console.log('open known defects, by their examples:');
  for (const k of KNOWN.filter((k) => k.open)) {
    const r = await runCase(k.example.scenario, k.example.case);
    console.log(`  ${k.id}: ${r.ok ? 'NO LONGER REPRODUCES (set open: false in fuzz/known.mjs)' : `still reproduces: ${r.problems[0]}`}`);
  }
}

console.log(`fuzz: seed ${seed}, reactor ${process.env.PROTOLOOP_REACTOR ?? 'host'}; replay with: npm run fuzz -- --seed ${seed}${opts.runs ? ` --runs ${opts.runs}` : ''}${wanted ? ` --property ${wanted.join(',')}` : ''}`);
let failed = 0;
let total = 0;
for (const prop of selected) {
  const start = Date.now();
  const runs = opts.runs ? Number(opts.runs) : prop.runs;
  try {
    const n = await checkProperty(prop, { seed, runs, path: opts.path, includeKnown: opts.known, shrinkMs: Number(opts['shrink-seconds']) * 1000, log: (m) => console.log(m) });
    total += n;
    console.log(`ok   ${prop.name}: ${n} cases in ${((Date.now() - start) / 1000).toFixed(1)} s`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${prop.name} (replay: npm run fuzz -- --property ${prop.name} --seed ${seed} --runs ${runs})\n${e.message}\n`);
  }
}
console.log(`${total} passing cases; ${failed} of ${selected.length} properties failed`);
process.exitCode = failed ? 1 : 0;
