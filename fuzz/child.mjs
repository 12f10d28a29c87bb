// Runs one fuzz case in this process: `node fuzz/child.mjs <scenario> <case as JSON>`.
//
// The case runs here and not in the test runner so that a crash (an abort, a segfault, an uncaught
// exception) or a hang is observed by the parent as a failure of this case. The child checks what it
// can see from inside (callback order, bytes, errors, descriptors back to their set) and prints one JSON
// line { done, violations }; then it does nothing more: the process must exit by itself, which the
// parent checks (an open transport or server left behind keeps it alive).
import { readdirSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import * as pl from '../dist/esm/index.mjs';
import { scenarios } from './scenarios.mjs';

const [name, json] = process.argv.slice(2);
const scenario = scenarios[name];
if (!scenario) {
  console.error(`unknown scenario ${name}; known: ${Object.keys(scenarios).join(', ')}`);
  process.exit(2);
}

function fdSnapshot() {
  const out = new Set();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      out.add(`${fd} -> ${readlinkSync(`/proc/self/fd/${fd}`)}`);
    } catch {
      // the listing's own descriptor, closed by now
    }
  }
  return out;
}
const newFds = (before) => [...fdSnapshot()].filter((e) => !before.has(e));

const violations = [];
const ctx = {
  pl,
  /** Records a broken invariant; the case fails with every message recorded. */
  fail(msg) {
    if (!violations.includes(msg)) violations.push(msg);
  },
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  tick: () => new Promise((r) => setImmediate(r)),
  /** Resolves when `promise` settles or after `ms`, whichever is first; the bound keeps nothing alive. */
  within(promise, ms) {
    let timer;
    const bound = new Promise((r) => (timer = setTimeout(r, ms)).unref());
    return Promise.race([promise, bound]).finally(() => clearTimeout(timer));
  },
  /** Waits for `cond` (polling), at most `ms`; resolves to whether it came true. */
  async waitFor(cond, ms = 3000) {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) return false;
      await new Promise((r) => setTimeout(r, 5));
    }
    return true;
  },
};

// libuv opens /dev/null once, with the first stream handle of the process (its EMFILE reserve): open it
// before the snapshot, so that it does not count as a descriptor the case left open.
await new Promise((r) => {
  const srv = net.createServer().listen(0, '127.0.0.1', () => srv.close(r));
});
const before = fdSnapshot();
await scenario(JSON.parse(json), ctx);
// Descriptors go as engine tasks end, shortly after the last connectionLost.
await ctx.waitFor(() => newFds(before).length === 0, 3000);
const leaked = newFds(before);
if (leaked.length > 0) ctx.fail(`descriptors not closed after everything was closed: ${leaked.join(', ')}`);
process.stdout.write(`${JSON.stringify({ done: true, violations })}\n`);
