// For cases whose servers are not the stream servers of servers/ (a dgram socket, a TLS server, a
// child-process runner, a proxy): the same peers (same names, so the same columns of the table), started
// with the case's own script. `table` maps a peer name to its command line; peers not in it sit out.
import { join } from 'node:path';
import { BENCH } from './build.mjs';

export const SERVERS = join(BENCH, 'servers');

/**
 * `table[name]` is `{ args, cmd?, label?, env? }`, args after the command; other fields are kept. The
 * optional protoloop peers (protoloop-io2, ...) run protoloop's entry with their own env.
 */
export function casePeers(selected, table) {
  const out = [];
  for (const p of selected) {
    // Another checkout's tree has its own case scripts, which this table does not name.
    if (p.altTree) continue;
    const own = table[p.name];
    const t = own ?? (p.name.startsWith('protoloop-') ? table.protoloop : undefined);
    if (!t) continue;
    // A variant borrows protoloop's command line but keeps its own label.
    out.push({ ...p, ...t, label: own ? (t.label ?? p.label) : p.label, env: { ...(p.env ?? {}), ...(t.env ?? {}) } });
  }
  return out;
}

/** The figures of a loadgen run in the shape `measure()` returns. */
export function fromLoadgen(r, metrics, extra) {
  return {
    metrics,
    seconds: r.seconds,
    clientCpu: r.client_cpu.user + r.client_cpu.sys,
    serverCpu: r.server_cpu ? r.server_cpu.user + r.server_cpu.sys : null,
    extra,
  };
}
