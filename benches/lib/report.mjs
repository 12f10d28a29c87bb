// From runs to rows (median, min-max, ratio to the baseline, CPU of both sides), goals, and the
// tables: console text and the Markdown the README embeds.
import { max, median, min } from './stats.mjs';

/** The load generator counts as the limit when it kept this share of its threads busy. */
const CLIENT_BOUND = 0.9;

/** One row per metric of `variant`: every peer's median, spread, CPU and ratio to the baseline. */
export function summarize(c, variant, peers, runs, s) {
  const baseline = peers.find((p) => p.baseline)?.name;
  return (variant.metrics ?? c.metrics).map((metric) => {
    const row = {
      case: c.name,
      variant: variant.id,
      label: variant.label,
      metric: metric.key,
      unit: metric.label,
      higherIsBetter: metric.higherIsBetter,
      peers: {},
    };
    for (const p of peers) {
      const ok = runs[p.name].filter((r) => !r.error);
      const vals = ok.map((r) => r.metrics[metric.key]).filter((v) => typeof v === 'number' && Number.isFinite(v));
      const errors = runs[p.name].filter((r) => r.error).map((r) => r.error);
      if (vals.length === 0) {
        row.peers[p.name] = errors.length ? { error: errors[0] } : null;
        continue;
      }
      const share = (k) => {
        const xs = ok.filter((r) => r[k] != null && r.seconds > 0).map((r) => r[k] / r.seconds);
        return xs.length ? +median(xs).toFixed(3) : null;
      };
      const clientCpu = share('clientCpu');
      row.peers[p.name] = {
        median: median(vals),
        min: min(vals),
        max: max(vals),
        runs: vals,
        serverCpu: share('serverCpu'),
        clientCpu,
        clientBound: clientCpu != null && clientCpu >= CLIENT_BOUND * s.clientThreads,
        // Server CPU per request, connection or MiB: steadier than throughput on a busy machine.
        serverUsPerUnit: metric.higherIsBetter && share('serverCpu') != null ? +((share('serverCpu') / median(vals)) * 1e6).toFixed(2) : null,
        // System calls of the server (every thread) per request, where the case counts them.
        syscallsPerUnit: (() => {
          const xs = ok.map((r) => r.syscallsPerUnit).filter((v) => typeof v === 'number');
          return xs.length ? +median(xs).toFixed(2) : null;
        })(),
        extra: ok.map((r) => r.extra).filter(Boolean),
        errors: errors.length || undefined,
      };
    }
    const base = baseline && row.peers[baseline]?.median;
    for (const p of peers) {
      const e = row.peers[p.name];
      if (e && !e.error && base) e.ratio = e.median / base;
    }
    return row;
  });
}

/** Whether protoloop met each goal its cases set, as a ratio in the same run. */
export function evaluateGoals(cases, rows) {
  const out = [];
  for (const row of rows) {
    const c = cases.find((x) => x.name === row.case);
    const goals = c.goals?.[row.variant] ?? c.goals?.['*'] ?? [];
    for (const g of goals) {
      if (g.metric && g.metric !== row.metric) continue;
      const mine = row.peers[g.peer ?? 'protoloop'];
      const other = row.peers[g.vs];
      const want = g.atLeast != null ? `>= ${g.atLeast}x` : `<= ${g.atMost}x`;
      const goal = { case: row.case, variant: row.variant, label: row.label, metric: row.unit, peer: g.peer ?? 'protoloop', vs: g.vs, want };
      if (!mine?.median || !other?.median) {
        out.push({ ...goal, ratio: null, met: null });
        continue;
      }
      const ratio = mine.median / other.median;
      out.push({ ...goal, ratio: +ratio.toFixed(3), met: g.atLeast != null ? ratio >= g.atLeast : ratio <= g.atMost });
    }
  }
  return out;
}

export function fmt(v, unit) {
  if (v == null || !Number.isFinite(v)) return 'n/a';
  if (/MiB|KiB/.test(unit) && !unit.endsWith('/s')) return v.toFixed(1);
  return Math.round(v).toLocaleString('en-US');
}

function perUnit(e, row) {
  return e.serverUsPerUnit == null ? '-' : `${e.serverUsPerUnit.toFixed(1)} µs/${row.unit.split('/')[0]}`;
}

const pct = (x) => (x == null ? '-' : `${Math.round(x * 100)}%`);

/** What the console shows as each variant finishes. */
export function consoleBlock(rows, peers, s) {
  const lines = [];
  for (const row of rows) {
    const n = Math.max(0, ...Object.values(row.peers).map((e) => e?.runs?.length ?? 0));
    lines.push(`\n${row.case} ${row.label}: ${row.unit}, median of ${n} [min-max], ratio to Node net, CPU of server / client`);
    for (const p of peers) {
      const e = row.peers[p.name];
      const name = p.label.padEnd(26);
      if (!e) lines.push(`  ${name}n/a`);
      else if (e.error) lines.push(`  ${name}failed: ${e.error}`);
      else
        lines.push(
          `  ${name}${fmt(e.median, row.unit).padStart(10)}  [${fmt(e.min, row.unit)}-${fmt(e.max, row.unit)}]`.padEnd(60) +
            `${e.ratio != null ? `${e.ratio.toFixed(2)}x` : ''}`.padStart(7) +
            (e.serverCpu != null ? `   cpu ${pct(e.serverCpu)} / ${pct(e.clientCpu)}, server ${perUnit(e, row)}` : '') +
            (e.syscallsPerUnit != null ? `, ${e.syscallsPerUnit.toFixed(2)} syscalls/${row.unit.split('/')[0]}` : '') +
            (e.clientBound ? '  (client-bound)' : ''),
        );
    }
  }
  return lines.join('\n');
}

function cell(e, row) {
  if (!e) return 'n/a';
  if (e.error) return 'failed';
  const r = e.ratio != null ? ` (${e.ratio.toFixed(2)}x)` : '';
  return `${fmt(e.median, row.unit)}${r}${e.clientBound ? ' †' : ''}`;
}

/** The summary table: one line per case variant and metric, one column per peer. */
export function textTable(result) {
  const head = ['case', 'variant', 'unit', ...result.peers.map((p) => p.label)];
  const body = result.rows.map((row) => [row.case, row.label, row.unit, ...result.peers.map((p) => cell(row.peers[p.name], row))]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const out = [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)];
  out.push('', 'median of the measured rounds (ratio to Node net); † the load generator was the limit (>= 90% of its core busy)');
  for (const g of result.goals) {
    const verdict = g.met == null ? 'not measured' : g.met ? 'met' : 'MISSED';
    out.push(`goal ${g.case} ${g.label} ${g.metric}: ${g.peer ?? 'protoloop'} ${g.want} ${g.vs}: ${g.ratio ?? '-'}x ${verdict}`);
  }
  for (const n of result.notes) out.push(`note: ${n}`);
  return out.join('\n');
}

/** The Markdown the README embeds: machine, summary table, chart, goals, per-peer detail. */
export function markdown(result, chartPath) {
  const m = result.machine;
  const s = result.settings;
  const out = [];
  out.push(
    `Measured ${result.generatedAt.slice(0, 16).replace('T', ' ')} UTC on ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.kernel}; ` +
      `Node ${m.node}, ${m.rustc}, gcc ${m.gcc}, Python ${m.python ?? '-'}${m.uvloop ? `, uvloop ${m.uvloop}` : ''}; ` +
      `protoloop ${m.protoloop}. Load average ${m.loadavgAtStart.join(' ')} at the start, ${m.loadavgAtEnd.join(' ')} at the end ` +
      `(other work shared the machine). \`${result.command}\`, ${result.wallSeconds} s.`,
  );
  out.push('');
  out.push(`![protoloop against its peers, as ratios to Node net](${chartPath})`);
  out.push('');
  out.push(`| case | variant | unit | ${result.peers.map((p) => p.label).join(' | ')} |`);
  out.push(`|---|---|---|${result.peers.map(() => '---:|').join('')}`);
  for (const row of result.rows) {
    out.push(`| ${row.case} | ${row.label} | ${row.unit} | ${result.peers.map((p) => cell(row.peers[p.name], row)).join(' | ')} |`);
  }
  out.push('');
  out.push(
    `Median of ${s.rounds} rounds after a warm-up (memory: ${s.memoryRounds} fresh servers), peers taking turns; ` +
      `in brackets the ratio to Node net (for memory, lower is better). † the load generator, not the server, was the limit ` +
      `(it kept >= 90% of its core busy).`,
  );
  if (result.goals.length) {
    out.push('');
    out.push('| goal | protoloop vs | wanted | measured | |');
    out.push('|---|---|---|---:|---|');
    for (const g of result.goals) {
      const verdict = g.met == null ? 'not measured' : g.met ? 'met' : '**missed**';
      out.push(`| ${g.case} ${g.label}, ${g.metric} | ${g.peer && g.peer !== 'protoloop' ? `${g.peer}: ` : ''}${g.vs} | ${g.want} | ${g.ratio == null ? '-' : `${g.ratio.toFixed(2)}x`} | ${verdict} |`);
    }
  }
  for (const n of result.notes) out.push('', `Note: ${n}`);
  out.push('');
  out.push('<details><summary>Every peer: median, min-max, CPU of the server and of the load generator (share of one core)</summary>');
  out.push('');
  out.push('| case | variant | peer | median | min-max | vs Node | server CPU | server CPU per unit | server syscalls per unit | client CPU |');
  out.push('|---|---|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const row of result.rows) {
    for (const p of result.peers) {
      const e = row.peers[p.name];
      if (!e || e.error) {
        out.push(`| ${row.case} | ${row.label} | ${p.label} | ${e?.error ? 'failed' : 'n/a'} | | | | | | |`);
        continue;
      }
      out.push(
        `| ${row.case} | ${row.label} | ${p.label} | ${fmt(e.median, row.unit)} ${row.unit} | ${fmt(e.min, row.unit)}-${fmt(e.max, row.unit)} | ` +
          `${e.ratio != null ? e.ratio.toFixed(2) + 'x' : '-'} | ${pct(e.serverCpu)} | ${perUnit(e, row)} | ${e.syscallsPerUnit ?? '-'} | ${pct(e.clientCpu)}${e.clientBound ? ' †' : ''} |`,
      );
    }
  }
  out.push('');
  out.push('</details>');
  out.push('');
  return out.join('\n');
}
