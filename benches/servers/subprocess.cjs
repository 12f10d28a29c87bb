// The subprocess case's runner: not a network server but the process under test, which spawns
// children when the harness asks on stdin, then answers `RESULT {json}` on stdout:
//   spawn N C     run `true` N times, C at a time, each waited for (exit seen, pipes closed)
//   pipe BYTES    one `cat`: write BYTES into its stdin in 64 KiB chunks with flow control, read
//                 all of it back from its stdout, wait for its exit
// --impl protoloop: subprocessExec with a SubprocessProtocol; --impl node: child_process.spawn.
// Prints `LISTENING 0` (no port) so the harness starts it like any server; exits when stdin closes.
'use strict';
const path = require('node:path');
const { CHUNK, listening, stdinLines } = require('./common.cjs');

const impl = process.argv[process.argv.indexOf('--impl') + 1];
const chunk = Buffer.alloc(CHUNK, 'x');

let run;
if (impl === 'protoloop') {
  const { DEVNULL, SubprocessProtocol, subprocessExec } = require(path.join(__dirname, '..', '..', 'dist', 'cjs', 'index.js'));
  // connectionLost comes after the exit and every pipe's close: the child is done with.
  class Wait extends SubprocessProtocol {
    constructor(done) {
      super();
      this.done = done;
    }
    connectionLost() {
      this.done();
    }
  }
  const once = () =>
    new Promise((resolve, reject) => {
      subprocessExec(() => new Wait(resolve), 'true', [], { stdin: DEVNULL, stdout: DEVNULL, stderr: DEVNULL }).catch(reject);
    });
  class Cat extends SubprocessProtocol {
    received = 0;
    paused = false;
    constructor(total, done) {
      super();
      this.total = total;
      this.left = total;
      this.done = done;
    }
    connectionMade(transport) {
      this.stdin = transport.getPipeTransport(0);
      this.pump();
    }
    pauseWriting() {
      this.paused = true;
    }
    resumeWriting() {
      this.paused = false;
      this.pump();
    }
    pump() {
      while (!this.paused && this.left > 0) {
        const n = Math.min(this.left, CHUNK);
        this.left -= n;
        this.stdin.write(n === CHUNK ? chunk : chunk.subarray(0, n));
      }
      if (this.left === 0 && !this.stdin.isClosing()) this.stdin.close();
    }
    pipeDataReceived(fd, data) {
      this.received += data.length;
    }
    connectionLost() {
      this.done(this.received);
    }
  }
  run = {
    once,
    pipe: (total) =>
      new Promise((resolve, reject) => {
        subprocessExec(() => new Cat(total, resolve), 'cat', [], { stderr: DEVNULL }).catch(reject);
      }),
  };
} else if (impl === 'node') {
  const { spawn } = require('node:child_process');
  const once = () =>
    new Promise((resolve, reject) => {
      const child = spawn('true', [], { stdio: 'ignore' });
      child.on('error', reject);
      child.on('close', resolve);
    });
  const pipe = (total) =>
    new Promise((resolve, reject) => {
      const child = spawn('cat', [], { stdio: ['pipe', 'pipe', 'ignore'] });
      let received = 0;
      child.on('error', reject);
      child.stdout.on('data', (d) => {
        received += d.length;
      });
      child.on('close', () => resolve(received));
      let left = total;
      const pump = () => {
        while (left > 0) {
          const n = Math.min(left, CHUNK);
          left -= n;
          if (!child.stdin.write(n === CHUNK ? chunk : chunk.subarray(0, n))) {
            child.stdin.once('drain', pump);
            return;
          }
        }
        child.stdin.end();
      };
      pump();
    });
  run = { once, pipe };
} else {
  throw new Error(`unknown --impl ${impl}`);
}

async function spawnMany(n, concurrency) {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      await run.once();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

async function command(line) {
  const [what, ...rest] = line.split(' ');
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  let result;
  if (what === 'spawn') {
    const [n, c] = rest.map(Number);
    await spawnMany(n, c);
    result = { spawns: n };
  } else if (what === 'pipe') {
    const total = Number(rest[0]);
    const got = await run.pipe(total);
    if (got !== total) throw new Error(`cat gave back ${got} bytes of ${total}`);
    result = { bytes: total };
  } else throw new Error(`unknown command ${what}`);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return { ...result, seconds, cpu: { user: cpu.user / 1e6, sys: cpu.system / 1e6 } };
}

let queue = Promise.resolve();
stdinLines((line) => {
  queue = queue.then(() =>
    command(line).then(
      (r) => process.stdout.write(`RESULT ${JSON.stringify(r)}\n`),
      (e) => process.stdout.write(`RESULT ${JSON.stringify({ error: e.message })}\n`),
    ),
  );
});
listening(0);
