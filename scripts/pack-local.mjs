// `npm run pack:local`: builds the release addon and the TypeScript, then packs what a release would
// publish into dist/pack/ (dist/ itself holds the TypeScript build):
//   protoloop-<version>.tgz                 the root package, with its optionalDependencies filled in as
//                                           `napi pre-publish` fills them at publish time
//   protoloop-<platform>-<version>.tgz      one per npm/<platform> whose addon is in bindings/node
//                                           (on this machine: linux-x64-gnu)
// `--no-build` packs the current build as it is, `--out=<dir>` packs elsewhere (the package test uses
// both: rebuilding while other test files have dist/ and the addon loaded is not safe), `--addons=<dir>`
// takes the .node files from there instead of bindings/node (scripts/verify-arm64.mjs uses it).
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outArg = process.argv.find((a) => a.startsWith('--out='));
const out = outArg ? resolve(outArg.slice('--out='.length)) : join(root, 'dist', 'pack');
const addonsArg = process.argv.find((a) => a.startsWith('--addons='));
const addons = addonsArg ? resolve(addonsArg.slice('--addons='.length)) : join(root, 'bindings', 'node');
const stage = join(out, '.stage');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const run = (args, cwd = root) => execFileSync(npm, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
const readJson = (p) => JSON.parse(readFileSync(p, 'utf8'));

if (!process.argv.includes('--no-build')) execFileSync(npm, ['run', 'build'], { cwd: root, stdio: 'inherit' });

const pkg = readJson(join(root, 'package.json'));
const binaryName = pkg.napi.binaryName;
// Tarballs of an earlier version would be picked up by a glob in an install: remove only ours.
mkdirSync(out, { recursive: true });
for (const f of readdirSync(out)) if (f.startsWith(`${pkg.name}-`) && f.endsWith('.tgz')) rmSync(join(out, f));
rmSync(stage, { recursive: true, force: true });
mkdirSync(stage, { recursive: true });

function pack(dir) {
  const [info] = JSON.parse(run(['pack', '--json', '--pack-destination', out], dir));
  return info;
}

// Platform packages: the committed npm/<platform>/ (from `napi create-npm-dirs`) plus the addon.
const platforms = readdirSync(join(root, 'npm')).filter((p) => existsSync(join(root, 'npm', p, 'package.json')));
const packed = [];
for (const platform of platforms) {
  const addon = join(addons, `${binaryName}.${platform}.node`);
  if (!existsSync(addon)) continue;
  const meta = readJson(join(root, 'npm', platform, 'package.json'));
  if (meta.version !== pkg.version) throw new Error(`npm/${platform} is at ${meta.version}, the root at ${pkg.version}: run napi version`);
  const dir = join(stage, platform);
  cpSync(join(root, 'npm', platform), dir, { recursive: true });
  copyFileSync(addon, join(dir, `${binaryName}.${platform}.node`));
  packed.push(pack(dir));
}
if (packed.length === 0) throw new Error(`no addon in ${addons} matches a package in npm/: run npm run build:native`);

// Root package: exactly the files npm would publish from the repository, with the manifest a release
// publishes (optionalDependencies on every platform package, at this version).
const { files } = JSON.parse(run(['pack', '--dry-run', '--json']))[0];
const rootStage = join(stage, 'root');
for (const { path } of files) {
  if (path.endsWith('.node')) throw new Error(`the root package must not carry an addon (${path}): check "files" in package.json`);
  mkdirSync(dirname(join(rootStage, path)), { recursive: true });
  copyFileSync(join(root, path), join(rootStage, path));
}
const optionalDependencies = Object.fromEntries(platforms.map((p) => [`${pkg.name}-${p}`, pkg.version]));
writeFileSync(join(rootStage, 'package.json'), JSON.stringify({ ...pkg, optionalDependencies }, null, 2) + '\n');
packed.unshift(pack(rootStage));

rmSync(stage, { recursive: true, force: true });
for (const p of packed) console.log(`${relative(process.cwd(), join(out, p.filename))}  ${p.size} bytes packed, ${p.unpackedSize} unpacked, ${p.entryCount} files`);
