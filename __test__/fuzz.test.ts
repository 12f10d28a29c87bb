// The fuzzer (fuzz/), within the fixed budget of the test suite: each property runs its default number
// of cases (fuzz/properties.mjs) from a fixed seed, each case in a child process of its own, under the
// reactor this run uses. A failure prints fast-check's report: the seed, the path, the shrunk case and
// what broke; `npm run fuzz -- --property NAME --seed N --runs M` replays and widens it.
// FUZZ_SEED=<n> runs other cases than CI's; `npm run fuzz` runs longer, from a random seed.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
// @ts-ignore -- plain ES modules, shared with `npm run fuzz`
import { KNOWN } from '../fuzz/known.mjs';
// @ts-ignore
import { checkProperty, properties } from '../fuzz/properties.mjs';
// @ts-ignore
import { runCase } from '../fuzz/runner.mjs';

const seed = Number(process.env.FUZZ_SEED ?? 22);
// CI runs the suite again under other Node versions (scripts/node-versions.mjs, a Node from .cache/node)
// and over the portable build (test:portable): there every property runs a fifth of its cases, which
// keeps the fuzzer's share of CI at a few minutes while each of those runs still fuzzes every property.
const secondary = process.env.PROTOLOOP_NATIVE_LIBRARY_PATH !== undefined || process.execPath.includes('/.cache/node/');

describe(`fuzz (seed ${seed})`, () => {
  for (const prop of properties) {
    const runs = secondary ? Math.ceil(prop.runs / 5) : prop.runs;
    it(`${prop.name}: ${runs} cases`, async () => {
      await checkProperty(prop, { seed, runs, shrinkMs: 30_000 });
    }, 300_000);
  }
});

// The shrunk case of each defect the fuzzer found: skipped while its fix is under way (open: true in
// fuzz/known.mjs), a regression test once it is closed.
describe('defects the fuzzer found', () => {
  for (const k of KNOWN) {
    it.skipIf(k.open)(`${k.id}: ${k.what}`, async () => {
      const r = await runCase(k.example.scenario, k.example.case);
      expect(r.problems).toEqual([]);
    }, 30_000);
  }
});

describe('npm run fuzz', () => {
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [fileURLToPath(new URL('../fuzz/run.mjs', import.meta.url)), ...args], { encoding: 'utf8' });
  it('--help prints the usage and the properties, and exits 0', () => {
    const r = run('--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('npm run fuzz -- [--seed N]');
    expect(r.stdout).toContain(`properties: ${properties.map((p: { name: string }) => p.name).join(', ')}`);
  });
  it('a wrong option or number is one line naming it, and exit status 2', () => {
    for (const [args, said] of [[['--bogus'], "Unknown option '--bogus'"], [['--runs', 'x'], '--runs must be a whole number, got "x"']] as const) {
      const r = run(...args);
      expect(r.status).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(said);
    }
  });
});
