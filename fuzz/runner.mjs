// The parent side of a fuzz case: runs it in a fresh Node (fuzz/child.mjs) and turns what the child
// did into a verdict. A case passes when the child reported no broken invariant, exited with status 0
// and exited by itself within a bound after its work was done.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const child = fileURLToPath(new URL('./child.mjs', import.meta.url));

/** Bounds: the scenario's own work (it waits at most a few seconds for anything), then the exit. */
export const CASE_MS = 12_000;
export const EXIT_MS = 5_000;

/**
 * Runs `scenario` with `c` in a child process; resolves to `{ ok, problems, stderr }` where `problems`
 * lists every broken invariant (crash, hang, no exit, the child's own findings).
 */
export function runCase(scenario, c, { env = {} } = {}) {
  const p = spawn(process.execPath, [child, scenario, JSON.stringify(c)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let out = '';
  let err = '';
  let report = null;
  let exitTimer = null;
  let timedOut = null;
  p.stdout.on('data', (d) => {
    out += d;
    const line = out.split('\n').find((l) => l.startsWith('{"done"'));
    if (line && report === null) {
      report = JSON.parse(line);
      clearTimeout(caseTimer);
      exitTimer = setTimeout(() => {
        timedOut = `the process did not exit by itself within ${EXIT_MS} ms after its work was done (something keeps it alive)`;
        p.kill('SIGKILL');
      }, EXIT_MS);
    }
  });
  p.stderr.on('data', (d) => {
    if (err.length < 20_000) err += d;
  });
  const caseTimer = setTimeout(() => {
    timedOut = `the case did not finish within ${CASE_MS} ms (a hang: a promise or callback that never comes)`;
    p.kill('SIGKILL');
  }, CASE_MS);
  return new Promise((resolve) =>
    p.on('exit', (status, signal) => {
      clearTimeout(caseTimer);
      clearTimeout(exitTimer);
      const problems = [];
      if (timedOut) problems.push(timedOut);
      else if (signal) problems.push(`the process died of ${signal}`);
      else if (status !== 0) problems.push(`the process exited with status ${status}${/uncaught|Error/i.test(err) ? ' (uncaught exception)' : ''}`);
      if (report) problems.push(...report.violations);
      else if (!timedOut && !signal && status === 0) problems.push('the process exited before its case was done');
      resolve({ ok: problems.length === 0, problems, stderr: err });
    }),
  );
}

/** The last lines of a child's stderr that explain a crash (the exception handler's prints are noise). */
export function stderrTail(stderr, lines = 12) {
  const all = stderr.split('\n').filter((l) => l.trim() !== '');
  return all.slice(-lines).join('\n');
}
