#!/usr/bin/env node
// The benchmark harness: protoloop against Node's net, raw tokio, a C epoll server and Python's
// asyncio/uvloop, driven by one Rust load generator. `npm run bench -- --help` lists the options.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

import { cases } from './cases/index.mjs';
import { BENCH, ROOT, buildAll } from './lib/build.mjs';
import { allPeers } from './lib/peers.mjs';
import { ServerProcess } from './lib/proc.mjs';
import { renderChart } from './lib/chart.mjs';
import { consoleBlock, evaluateGoals, markdown, summarize, textTable } from './lib/report.mjs';

const HELP = `npm run bench [-- options]

  --quick               about a minute: shorter runs, 3 rounds, 64 MiB bulk, 2,000 idle connections
  --only LIST           cases or case/variant ids, comma-separated (echo, bulk, churn, memory, echo/1KiB-x32)
  --peers LIST          peers to run (default: every installed one): protoloop, node-net, tokio, c-epoll,
                        asyncio, uvloop, and the optional protoloop-io2 (PROTOLOOP_IO_THREADS=2),
                        protoloop-enginewrite (PROTOLOOP_WRITE_PATH=engine), protoloop-copy and
                        protoloop-spliceall (PROTOLOOP_SPLICE=0 and =always: forwardTo never or
                        always through splice(2)) and protoloop-alt (the
                        addon at $PROTOLOOP_ALT_ADDON: another build of protoloop, in the same run)
  --size LIST           echo message sizes: 1k,10k,100k        --conns LIST   echo connections: 1,32,256
  --duration S          seconds per measured echo/churn run (default 1; --quick 0.2)
  --rounds N            measured rounds per peer, after one warm-up (default 5; --quick 3)
  --bulk-mib N          bytes per bulk run, in MiB (default 1024; --quick 64)
  --idle-conns N        connections of the memory case (default 10000; --quick 2000)
  --client-threads N    load generator threads for echo (default 1)
  --no-syscalls         do not count the server's system calls per request (echo × 1 connection;
                        counted with perf stat's raw_syscalls:sys_enter when perf can count here)
  --install-peers       pip install uvloop, apt-get install nginx libnginx-mod-stream haproxy (proxy case), when missing
  --out NAME            write benches/results/NAME.{json,svg,md} (default: latest)
  --readme              also put the table and chart into README.md's Benchmarks section

The figure of issue 2 (32 connections echoing 1 KiB for 10 s, protoloop vs Node net):
  npm run bench -- --only echo --size 1k --conns 32 --duration 10 --peers protoloop,node-net --out issue2`;

function parseArgs(argv) {
  const o = { quick: false, installPeers: false, readme: false, out: 'latest' };
  const list = (v) => v.split(',').map((x) => x.trim()).filter(Boolean);
  const bytes = (v) => {
    const m = /^(\d+(?:\.\d+)?)\s*(k|kib|m|mib)?$/i.exec(v);
    if (!m) throw new Error(`bad size ${v}`);
    const unit = (m[2] ?? '').toLowerCase();
    return Math.round(Number(m[1]) * (unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1 << 20 : 1));
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--help': case '-h': console.log(HELP); process.exit(0);
      case '--quick': o.quick = true; break;
      case '--install-peers': o.installPeers = true; break;
      case '--readme': o.readme = true; break;
      case '--only': o.only = list(val()); break;
      case '--peers': o.peers = list(val()); break;
      case '--size': o.sizes = list(val()).map(bytes); break;
      case '--conns': o.conns = list(val()).map(Number); break;
      case '--duration': o.seconds = Number(val()); break;
      case '--rounds': o.rounds = Number(val()); break;
      case '--bulk-mib': o.bulkBytes = Number(val()) * (1 << 20); break;
      case '--idle-conns': o.idleConns = Number(val()); break;
      case '--client-threads': o.clientThreads = Number(val()); break;
      case '--no-syscalls': o.syscalls = false; break;
      case '--out': o.out = val(); break;
      default: throw new Error(`unknown option ${a} (see --help)`);
    }
  }
  return o;
}

function settingsFrom(o) {
  const q = o.quick;
  return {
    quick: q,
    seconds: o.seconds ?? (q ? 0.2 : 1),
    warmupSeconds: q ? 0.1 : 0.3,
    rounds: o.rounds ?? (q ? 3 : 5),
    bulkBytes: o.bulkBytes ?? (q ? 64 : 1024) * (1 << 20),
    idleConns: o.idleConns ?? (q ? 2000 : 10_000),
    memoryRounds: o.rounds ? Math.min(o.rounds, 3) : q ? 1 : 3,
    soakRounds: o.rounds ? Math.min(o.rounds, 3) : 1,
    soakSeconds: q ? 5 : 20,
    clientThreads: o.clientThreads ?? 1,
    syscalls: o.syscalls ?? true,
    sizes: o.sizes,
    conns: o.conns,
  };
}

const sh = (cmd, args) => {
  try {
    return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return null;
  }
};

function machine(peers) {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const commit = sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']);
  const dirty = sh('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no']);
  return {
    cpu: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism?.() ?? os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / (1 << 30)),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    rustc: sh('rustc', ['-V']),
    gcc: sh('gcc', ['-dumpfullversion']),
    python: peers.find((p) => p.name === 'asyncio')?.version ?? null,
    uvloop: peers.find((p) => p.name === 'uvloop')?.version ?? null,
    protoloop: commit ? `${commit}${dirty ? ' (modified)' : ''}` : null,
    loadavgAtStart: os.loadavg().map((x) => +x.toFixed(2)),
    nofileHard: Number(sh('/bin/sh', ['-c', 'ulimit -Hn'])) || null,
  };
}

function selectCases(only) {
  if (!only) return cases.map((c) => ({ c, variants: null }));
  const out = [];
  for (const c of cases) {
    const hits = only.filter((x) => x === c.name || x.startsWith(`${c.name}/`));
    if (hits.length === 0) continue;
    const all = hits.includes(c.name);
    out.push({ c, variants: all ? null : hits.map((h) => h.slice(c.name.length + 1)) });
  }
  const known = new Set(cases.map((c) => c.name));
  for (const x of only) if (!known.has(x.split('/')[0])) throw new Error(`unknown case ${x} (cases: ${[...known].join(', ')})`);
  return out;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const s = settingsFrom(opts);
  const log = (m) => console.log(`[bench] ${m}`);
  const t0 = Date.now();
  buildAll({ log, installPeers: opts.installPeers });

  const notes = [];
  const known = allPeers();
  for (const n of opts.peers ?? []) if (!known.some((p) => p.name === n)) throw new Error(`unknown peer ${n}`);
  const wanted = known.filter((p) => (opts.peers ? opts.peers.includes(p.name) : !p.optional));
  for (const p of wanted.filter((p) => p.missing)) notes.push(`${p.label} skipped: ${p.missing}.`);
  const peers = wanted.filter((p) => !p.missing);
  const m = machine(known);
  if (m.nofileHard && m.nofileHard < s.idleConns + 64) {
    notes.push(`memory case: ${s.idleConns} connections need more descriptors than the hard limit (${m.nofileHard}); ran ${m.nofileHard - 64}. Raise it with \`ulimit -Hn\` (as root) or /etc/security/limits.conf.`);
    s.idleConns = m.nofileHard - 64;
  }
  log(`${m.cpu}, ${m.cores} cores, Node ${m.node}, ${m.rustc}; load average ${m.loadavgAtStart.join(' ')}`);
  log(`peers: ${peers.map((p) => p.name).join(', ')}${notes.length ? '' : ''}`);
  for (const n of notes) log(n);

  const rows = [];
  const columns = [...peers]; // the table's columns: every peer, plus peers only some cases bring
  for (const { c, variants: only } of selectCases(opts.only)) {
    // A case may prepare shared state (certificates, a file, an upstream server) and bring its own
    // peers: `peers(selected, s)` maps the selected peers to the ones it runs (same name, same column).
    try {
      await c.setup?.(s, { log, note: (m) => (notes.push(m), log(m)) });
    } catch (e) {
      notes.push(`${c.name} skipped: its setup failed (${e.message}).`);
      log(notes.at(-1));
      continue;
    }
    const peers = c.peers ? c.peers(columns.filter((p) => !p.caseOnly), s) : columns.filter((p) => !p.caseOnly);
    peers.forEach((p, i) => {
      if (columns.some((q) => q.name === p.name)) return;
      const after = columns.findIndex((q) => q.name === peers[i - 1]?.name); // next to its sibling
      columns.splice(after + 1, 0, { ...p, caseOnly: true });
    });
    let variants = c.variants(s);
    if (only) variants = variants.filter((v) => only.includes(v.id));
    const servers = new Map(); // reused across the variants of one case, one per peer and mode
    const serverFor = async (peer, variant) => {
      const mode = variant.server ?? c.server;
      const key = `${peer.name}|${mode.mode}|${mode.total ?? 0}`;
      if (c.freshServer) return new ServerProcess(peer, mode.mode, mode.total ?? 0).ready();
      if (!servers.has(key)) servers.set(key, new ServerProcess(peer, mode.mode, mode.total ?? 0).ready());
      return servers.get(key);
    };
    const once = async (peer, variant, warmup) => {
      let server;
      try {
        server = await serverFor(peer, variant);
        return await c.measure({ s, variant, server, peer, warmup });
      } catch (e) {
        log(`${c.name}/${variant.id} ${peer.name}: ${e.message}`);
        return { error: e.message };
      } finally {
        if (c.freshServer && server) await server.stop();
      }
    };
    for (const variant of variants) {
      const runs = Object.fromEntries(peers.map((p) => [p.name, []]));
      // A peer without the variant's feature (TLS in a raw tokio proxy) sits it out: n/a in the table.
      const playing = peers.filter((p) => !c.skip?.(p, variant));
      if (c.warmup !== false) for (const p of playing) await once(p, variant, true);
      const rounds = c.rounds ? c.rounds(s) : s.rounds;
      // Peers take turns (A B C A B C ...), so that a burst of noise on a shared machine hits all.
      for (let r = 0; r < rounds; r++) for (const p of playing) runs[p.name].push(await once(p, variant, false));
      const made = summarize(c, variant, peers, runs, s);
      rows.push(...made);
      console.log(consoleBlock(made, peers, s));
    }
    for (const sp of servers.values()) await (await sp.catch(() => null))?.stop();
    await c.teardown?.();
    log(`${c.name} done at ${Math.round((Date.now() - t0) / 1000)} s`);
  }

  const goals = evaluateGoals(cases, rows);
  const result = {
    generatedAt: new Date().toISOString(),
    wallSeconds: Math.round((Date.now() - t0) / 1000),
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    machine: { ...m, loadavgAtEnd: os.loadavg().map((x) => +x.toFixed(2)) },
    settings: s,
    peers: columns.map(({ name, label, env }) => ({ name, label, env })),
    notes,
    rows,
    goals,
  };
  const dir = join(BENCH, 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${opts.out}.json`), JSON.stringify(result, null, 2) + '\n');
  writeFileSync(join(dir, `${opts.out}.svg`), renderChart(result));
  const md = markdown(result, `${opts.out}.svg`); // beside the .md
  writeFileSync(join(dir, `${opts.out}.md`), md);
  console.log('\n' + textTable(result));
  if (opts.readme) {
    const readme = join(ROOT, 'README.md');
    const text = readFileSync(readme, 'utf8');
    const [start, end] = ['<!-- bench:start -->', '<!-- bench:end -->'];
    const i = text.indexOf(start);
    const j = text.indexOf(end);
    if (i < 0 || j < i) throw new Error(`README.md has no ${start} ... ${end} block`);
    const readmeMd = markdown(result, `benches/results/${opts.out}.svg`);
    writeFileSync(readme, text.slice(0, i + start.length) + '\n' + readmeMd + text.slice(j));
    log('README.md updated');
  }
  log(`wrote benches/results/${opts.out}.{json,svg,md} in ${result.wallSeconds} s`);
  process.exit(0);
}

main().catch((e) => {
  console.error(`[bench] ${e.stack ?? e}`);
  process.exit(1);
});
