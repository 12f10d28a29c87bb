// What every Node server of the benchmark shares: the command line (`--port P --mode echo|sink|source
// --total N`), the start-up line the harness waits for, and the control channel on stdin: a line
// `mem` answers `MEM {json}` (after a full GC when run with --expose-gc), and the end of stdin ends
// the process, so that no server outlives the harness.
'use strict';

const CHUNK = 64 * 1024;

function parseArgs(argv = process.argv.slice(2)) {
  const get = (k, d) => {
    const i = argv.indexOf(k);
    return i >= 0 ? argv[i + 1] : d;
  };
  return { port: Number(get('--port', '0')), mode: get('--mode', 'echo'), total: Number(get('--total', '0')) };
}

function listening(port) {
  process.stdout.write(`LISTENING ${port}\n`);
}

/** Calls `onLine` with each non-empty line read from stdin; the end of stdin ends the process. */
function stdinLines(onLine) {
  let pending = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (s) => {
    pending += s;
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl).trim();
      pending = pending.slice(nl + 1);
      if (line) onLine(line);
    }
  });
  process.stdin.on('end', () => process.exit(0));
}

function control() {
  stdinLines((line) => {
    if (line === 'mem') {
      if (typeof global.gc === 'function') global.gc();
      const m = process.memoryUsage();
      process.stdout.write(`MEM ${JSON.stringify({ rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers })}\n`);
    }
  });
  process.on('SIGTERM', () => process.exit(0));
}

module.exports = { CHUNK, parseArgs, listening, control, stdinLines };
