// The SVG chart of a run: one group of bars per table row, one bar per peer, the length being how
// much better than Node net the peer did (its ratio; for lower-is-better metrics such as memory, Node's
// figure over the peer's), so that every case reads the same way: longer is better, 1 is Node.

const COLORS = {
  protoloop: '#e4572e',
  'protoloop-threads': '#7b2cbf',
  'protoloop-io2': '#f2a541',
  'protoloop-enginewrite': '#c9184a',
  'node-net': '#8c8c8c',
  tokio: '#4c78a8',
  'c-epoll': '#54a24b',
  asyncio: '#b279a2',
  uvloop: '#9d755d',
  'protoloop-forward': '#b8336a',
};

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function renderChart(result) {
  const peers = result.peers;
  const rows = result.rows;
  const bar = 10;
  const gap = 2;
  const groupGap = 14;
  const left = 290;
  const right = 95;
  const width = 1000;
  const plotW = width - left - right;
  const top = 78;
  const goodness = (row, e) => {
    if (!e || e.error || e.ratio == null || !Number.isFinite(e.ratio) || e.ratio <= 0) return null;
    return row.higherIsBetter ? e.ratio : 1 / e.ratio;
  };
  let maxR = 1;
  for (const row of rows) for (const p of peers) maxR = Math.max(maxR, goodness(row, row.peers[p.name]) ?? 0);
  // Past 4x the bars are cut (with their figure printed), so that one far-out peer (a C server's
  // memory) does not flatten every other bar.
  const CAP = 4;
  const scaleMax = Math.min(CAP, Math.ceil(maxR * 2) / 2);
  const x = (r) => left + (r / scaleMax) * plotW;
  const groupH = peers.length * (bar + gap) - gap;
  const height = top + rows.length * (groupH + groupGap) + 40;

  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="11">`);
  out.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  out.push(`<text x="12" y="20" font-size="15" font-weight="bold">protoloop benchmarks: each peer relative to Node net (longer is better)</text>`);
  const m = result.machine;
  out.push(`<text x="12" y="38" fill="#444">${esc(`${m.cpu}, ${m.cores} cores; Node ${m.node}; ${result.generatedAt.slice(0, 16).replace('T', ' ')} UTC; median of ${result.settings.rounds} rounds`)}</text>`);
  out.push(`<text x="12" y="54" fill="#444">${esc('Throughput: peer ÷ Node. Memory: Node ÷ peer. Dashed line: Node net (1.0). † load generator was the limit.')}</text>`);
  // Legend.
  let lx = left;
  for (const p of peers) {
    out.push(`<rect x="${lx}" y="62" width="10" height="10" fill="${COLORS[p.name] ?? '#333'}"/>`);
    out.push(`<text x="${lx + 14}" y="71">${esc(p.label)}</text>`);
    lx += 22 + p.label.length * 6.5;
  }
  // Grid.
  const bottom = height - 30;
  for (let r = 0; r <= scaleMax + 1e-9; r += scaleMax > 4 ? 1 : 0.5) {
    out.push(`<line x1="${x(r)}" y1="${top - 4}" x2="${x(r)}" y2="${bottom}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${x(r)}" y="${bottom + 14}" text-anchor="middle" fill="#666">${r}x</text>`);
  }
  out.push(`<line x1="${x(1)}" y1="${top - 4}" x2="${x(1)}" y2="${bottom}" stroke="#555" stroke-dasharray="4 3"/>`);

  let y = top;
  for (const row of rows) {
    out.push(`<text x="${left - 8}" y="${y + groupH / 2 - 2}" text-anchor="end" font-weight="bold">${esc(`${row.case}: ${row.label}`)}</text>`);
    out.push(`<text x="${left - 8}" y="${y + groupH / 2 + 11}" text-anchor="end" fill="#666">${esc(row.unit)}</text>`);
    peers.forEach((p, i) => {
      const e = row.peers[p.name];
      const g = goodness(row, e);
      const by = y + i * (bar + gap);
      if (g == null) {
        out.push(`<text x="${left + 4}" y="${by + bar - 1}" fill="#999" font-size="9">${esc(p.label)}: ${e?.error ? 'failed' : 'n/a'}</text>`);
        return;
      }
      const cut = g > scaleMax;
      const end = x(Math.min(g, scaleMax));
      out.push(`<rect x="${left}" y="${by}" width="${Math.max(1, end - left).toFixed(1)}" height="${bar}" fill="${COLORS[p.name] ?? '#333'}"><title>${esc(`${p.label}: ${e.median.toFixed(1)} ${row.unit}`)}</title></rect>`);
      if (cut) out.push(`<path d="M${end - 9},${by - 1} l4,${bar + 2} m3,${-bar - 2} l4,${bar + 2}" stroke="#fff" stroke-width="2"/>`);
      out.push(`<text x="${(end + 4).toFixed(1)}" y="${by + bar - 1}" font-size="9" fill="#333">${g.toFixed(2)}${cut ? ' (cut)' : ''}${e.clientBound ? ' †' : ''}</text>`);
    });
    y += groupH + groupGap;
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
