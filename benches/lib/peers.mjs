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
    {
      name: 'protoloop-threads',
      label: 'protoloop (I/O thread)',
      cmd: node,
      args: ['--expose-gc', join(servers, 'protoloop.cjs')],
      env: { PROTOLOOP_REACTOR: 'threads' },
      jsHeap: true,
      optional: true,
    },
    {
      name: 'protoloop-io2',
      label: 'protoloop (2 I/O threads)',
      cmd: node,
      args: ['--expose-gc', join(servers, 'protoloop.cjs')],
      env: { PROTOLOOP_REACTOR: 'threads', PROTOLOOP_IO_THREADS: '2' },
      jsHeap: true,
      optional: true,
    },
    {
      // Two builds side by side: build the other one, copy its .node somewhere, and point this at it.
      name: 'protoloop-alt',
      label: 'protoloop (alt build)',
      cmd: node,
      args: ['--expose-gc', join(servers, 'protoloop.cjs')],
      env: { NAPI_RS_NATIVE_LIBRARY_PATH: process.env.PROTOLOOP_ALT_ADDON ?? '' },
      missing: process.env.PROTOLOOP_ALT_ADDON ? null : 'set PROTOLOOP_ALT_ADDON to the .node file of the other build',
      jsHeap: true,
      optional: true,
    },
    {
      name: 'protoloop-enginewrite',
      label: 'protoloop (writes on the I/O thread)',
      cmd: node,
      args: ['--expose-gc', join(servers, 'protoloop.cjs')],
      env: { PROTOLOOP_WRITE_PATH: 'engine' },
      jsHeap: true,
      optional: true,
    },
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
