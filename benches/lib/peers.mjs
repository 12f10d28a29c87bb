// The servers under test. Each runs in its own process with the same command line
// (`--port 0 --mode echo|sink|source --total N`) and prints `LISTENING <port>`; see benches/servers/.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { BENCH, BIN } from './build.mjs';

const node = process.execPath;
const servers = join(BENCH, 'servers');

function has(cmd, args) {
  try {
    return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() || 'yes';
  } catch {
    return null;
  }
}

/** A protoloop server with its own environment, run only when named in --peers. */
function variant(name, label, env, extra = {}) {
  return { name, label, cmd: node, args: ['--expose-gc', join(servers, 'protoloop.cjs')], env, jsHeap: true, optional: true, ...extra };
}

/**
 * Every peer the harness knows. `baseline` is the peer ratios are taken against; `optional` peers run
 * only when named in --peers (for experiments such as the engine's thread count).
 */
export function allPeers() {
  const python = has('python3', ['-c', 'import sys; print(sys.version.split()[0])']);
  const uvloop = python && has('python3', ['-c', 'import uvloop; print(uvloop.__version__)']);
  return [
    {
      name: 'protoloop',
      label: 'protoloop',
      cmd: node,
      args: ['--expose-gc', join(servers, 'protoloop.cjs')],
      jsHeap: true,
    },
    // Variants of protoloop, run only when named: the same server with other engine settings.
    variant('protoloop-threads', 'protoloop (I/O thread)', { PROTOLOOP_REACTOR: 'threads' }),
    variant('protoloop-io2', 'protoloop (2 I/O threads)', { PROTOLOOP_REACTOR: 'threads', PROTOLOOP_IO_THREADS: '2' }),
    // Two builds side by side: build the other one, copy its .node somewhere, and point this at it; or,
    // when the TypeScript changed too (or the interface between the two), copy the other checkout's
    // dist/, bindings/node/ (index.js and the .node), package.json and benches/servers/ into a directory
    // and point PROTOLOOP_ALT_TREE at it (the stream cases only: echo, bulk, churn, memory, soak).
    process.env.PROTOLOOP_ALT_TREE
      ? variant('protoloop-alt', 'protoloop (alt build)', {}, {
          args: ['--expose-gc', join(process.env.PROTOLOOP_ALT_TREE, 'benches', 'servers', 'protoloop.cjs')],
          altTree: true,
        })
      : variant('protoloop-alt', 'protoloop (alt build)', { NAPI_RS_NATIVE_LIBRARY_PATH: process.env.PROTOLOOP_ALT_ADDON ?? '' }, {
          missing: process.env.PROTOLOOP_ALT_ADDON ? null : 'set PROTOLOOP_ALT_ADDON (or PROTOLOOP_ALT_TREE) to the other build',
        }),
    variant('protoloop-enginewrite', 'protoloop (writes by the engine)', { PROTOLOOP_WRITE_PATH: 'engine' }),
    // forwardTo between plain sockets by the read/write loop only, or splice(2) for every read (the
    // proxy case's A/B against the default, which splices in bulk).
    variant('protoloop-copy', 'protoloop (no splice)', { PROTOLOOP_SPLICE: '0' }),
    variant('protoloop-spliceall', 'protoloop (splice every read)', { PROTOLOOP_SPLICE: 'always' }),
    // The server in worker threads sharing the port with reusePort (the memory case's heap is the main
    // thread's, which serves nothing here).
    variant('protoloop-workers1', 'protoloop (1 worker)', { PROTOLOOP_BENCH_WORKERS: '1' }, { jsHeap: false }),
    variant('protoloop-workers2', 'protoloop (2 workers, reusePort)', { PROTOLOOP_BENCH_WORKERS: '2' }, { jsHeap: false }),
    { name: 'node-net', label: 'Node net', cmd: node, args: ['--expose-gc', join(servers, 'node-net.cjs')], jsHeap: true, baseline: true },
    { name: 'tokio', label: 'raw tokio', cmd: join(BIN, 'release', 'tokio-server'), args: [] },
    { name: 'c-epoll', label: 'C epoll', cmd: join(BIN, 'c-epoll'), args: [] },
    {
      name: 'asyncio',
      label: 'asyncio',
      cmd: 'python3',
      args: [join(servers, 'asyncio_server.py')],
      version: python,
      missing: python ? null : 'python3 not found',
    },
    {
      name: 'uvloop',
      label: 'uvloop',
      cmd: 'python3',
      args: [join(servers, 'asyncio_server.py'), '--uvloop'],
      version: uvloop,
      missing: uvloop ? null : python ? 'uvloop is not installed (pass --install-peers to pip install it)' : 'python3 not found',
    },
  ];
}
