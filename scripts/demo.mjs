// `npm run demo`: the spec's TCP echo server and client examples against each other, with a transcript.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

const port = process.env.PORT ?? '8888';
const example = (name) => new URL(`../dist/examples/${name}.js`, import.meta.url).pathname;

function run(name, tag) {
  const child = spawn(process.execPath, [example(name)], { env: { ...process.env, PORT: port }, stdio: ['ignore', 'pipe', 'inherit'] });
  let rest = '';
  child.stdout.on('data', (d) => {
    const lines = (rest + d).split('\n');
    rest = lines.pop();
    for (const l of lines) console.log(`${tag} ${l}`);
  });
  return child;
}

/** Waits until something listens on the port, without connecting (a probe would show in the transcript). */
async function listening() {
  const hexPort = Number(port).toString(16).toUpperCase().padStart(4, '0');
  for (let i = 0; i < 200; i++) {
    const table = readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1);
    // Columns: sl, local_address (hex ip:port), rem_address, st (0A = LISTEN), ...
    if (table.some((l) => { const f = l.trim().split(/\s+/); return f[1]?.endsWith(`:${hexPort}`) && f[3] === '0A'; })) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`the echo server did not listen on 127.0.0.1:${port}`);
}

console.log(`protoloop demo: TCP echo server and client on 127.0.0.1:${port}\n`);
const server = run('tcp-echo-server', '[server]');
await listening();
const client = run('tcp-echo-client', '[client]');
const code = await new Promise((resolve) => client.on('exit', resolve));
await new Promise((r) => setTimeout(r, 100));
server.kill('SIGINT');
await new Promise((resolve) => server.on('exit', resolve));
console.log(code === 0 ? '\ndemo finished: the client exited by itself once the server closed the connection' : `\nclient failed (${code})`);
process.exit(code);
