// The benchmark harness: its server scripts do what the table says they do (a benchmark of a wrong
// server proves nothing), and its report turns runs into the right medians, ratios and flags.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';

// @ts-ignore plain ESM modules of the harness, without types
import { evaluateGoals, summarize } from '../benches/lib/report.mjs';
// @ts-ignore plain ESM modules of the harness, without types
import { renderChart } from '../benches/lib/chart.mjs';

const servers = join(__dirname, '..', 'benches', 'servers');
const hasPython = spawnSync('python3', ['-c', 'import asyncio'], { stdio: 'ignore' }).status === 0;

const children: ChildProcessWithoutNullStreams[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.stdin.end();
});

async function startServer(cmd: string, args: string[], mode: string, total = 0): Promise<[number, ChildProcessWithoutNullStreams]> {
  const child = spawn(cmd, [...args, '--port', '0', '--mode', mode, '--total', String(total)], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  expect(first).toMatch(/^LISTENING \d+$/);
  return [Number(first.split(' ')[1]), child];
}

/** Connects, sends `send` (then half-closes if `end`), and collects everything until the server closes. */
function exchange(port: number, send: Buffer, end: boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = net.connect(port, '127.0.0.1', () => {
      sock.write(send);
      if (end) sock.end();
    });
    sock.on('data', (d) => chunks.push(d));
    sock.on('close', () => resolve(Buffer.concat(chunks)));
    sock.on('error', reject);
  });
}

/** Echo: sends `msg` and resolves with exactly `msg.length` bytes read back, then closes. */
function echoOnce(port: number, msg: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const sock = net.connect(port, '127.0.0.1', () => sock.write(msg));
    sock.on('data', (d) => {
      chunks.push(d);
      got += d.length;
      if (got >= msg.length) {
        sock.end();
        resolve(Buffer.concat(chunks));
      }
    });
    sock.on('error', reject);
  });
}

const peers: Array<[string, string, string[], boolean]> = [
  ['protoloop', process.execPath, [join(servers, 'protoloop.cjs')], true],
  ['node-net', process.execPath, [join(servers, 'node-net.cjs')], true],
  ['asyncio', 'python3', [join(servers, 'asyncio_server.py')], hasPython],
];

describe.each(peers)('benchmark server %s', (_name, cmd, args, available) => {
  it.skipIf(!available)('echoes a 100 KiB message byte for byte', async () => {
    const [port] = await startServer(cmd, args, 'echo');
    const msg = Buffer.alloc(100 * 1024);
    for (let i = 0; i < msg.length; i++) msg[i] = (i * 7) & 0xff;
    const back = await echoOnce(port, msg);
    expect(createHash('sha256').update(back).digest('hex')).toBe(createHash('sha256').update(msg).digest('hex'));
  });

  it.skipIf(!available)('sends exactly --total bytes in source mode, then closes', async () => {
    const total = 3 * 1024 * 1024 + 17;
    const [port] = await startServer(cmd, args, 'source', total);
    const got = await exchange(port, Buffer.alloc(0), false);
    expect(got.length).toBe(total);
  });

  it.skipIf(!available)('reads everything in both sink modes and closes at the client EOF', async () => {
    for (const mode of ['sink', 'sink-buffered']) {
      const [port] = await startServer(cmd, args, mode);
      const got = await exchange(port, Buffer.alloc(5 * 1024 * 1024, 1), true);
      expect(got.length).toBe(0);
    }
  });

  it.skipIf(!available)('exits when its stdin closes', async () => {
    const [, child] = await startServer(cmd, args, 'echo');
    const exited = new Promise((r) => child.once('exit', r));
    child.stdin.end();
    await exited;
  });
});

describe('benchmark report', () => {
  const c = { name: 'echo', metrics: [{ key: 'rps', label: 'req/s', higherIsBetter: true }], goals: { v: [{ vs: 'node-net', atLeast: 2 }] } };
  const peerList = [{ name: 'protoloop', label: 'protoloop' }, { name: 'node-net', label: 'Node net', baseline: true }];
  const run = (rps: number, client = 0.5) => ({ metrics: { rps }, seconds: 1, clientCpu: client, serverCpu: 0.8 });
  const runs = {
    protoloop: [run(300), run(100), run(200), { error: 'boom' }, run(250)],
    'node-net': [run(100, 0.95), run(90, 0.95), run(110, 0.95)],
  };
  const rows = summarize(c, { id: 'v', label: 'variant' }, peerList, runs, { clientThreads: 1 });

  it('takes medians of the runs that worked, their spread, and the ratio to Node net', () => {
    const p = rows[0].peers.protoloop;
    expect([p.median, p.min, p.max, p.errors]).toEqual([225, 100, 300, 1]);
    expect(p.ratio).toBeCloseTo(2.25);
    expect(p.serverUsPerUnit).toBeCloseTo((0.8 / 225) * 1e6, 1);
  });

  it('flags runs where the load generator was the limit', () => {
    expect(rows[0].peers.protoloop.clientBound).toBe(false);
    expect(rows[0].peers['node-net'].clientBound).toBe(true);
  });

  it('checks goals as ratios in the same run', () => {
    const [g] = evaluateGoals([c], rows);
    expect(g).toMatchObject({ vs: 'node-net', want: '>= 2x', met: true });
    expect(g.ratio).toBeCloseTo(2.25);
  });

  it('draws a bar per peer and cuts bars past 4x', () => {
    const far = summarize(c, { id: 'v', label: 'variant' }, peerList, { protoloop: [run(1000)], 'node-net': [run(100)] }, { clientThreads: 1 });
    const svg: string = renderChart({
      peers: peerList,
      rows: [...rows, ...far],
      machine: { cpu: 'cpu', cores: 2, node: 'v20' },
      generatedAt: new Date().toISOString(),
      settings: { rounds: 5 },
    });
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg.match(/<rect [^>]*height="10"/g)?.length).toBe(4 + peerList.length); // 4 bars + legend
    expect(svg).toContain('10.00 (cut)');
  });
});
