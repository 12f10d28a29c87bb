// The spec's TCP echo examples, compiled to dist/examples, run against each other as child processes.
import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePort } from './helpers';

const example = (name: string) => new URL(`../dist/examples/${name}.js`, import.meta.url).pathname;

interface Run {
  child: ChildProcess;
  lines: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
}

function run(name: string, port: number): Run {
  const child = spawn(process.execPath, [example(name)], { env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let rest = '';
  let err = '';
  child.stdout!.on('data', (d) => {
    const parts = (rest + d).split('\n');
    rest = parts.pop()!;
    lines.push(...parts);
  });
  child.stderr!.on('data', (d) => (err += d));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  return { child, lines, exit, stderr: () => err };
}

/** Runs the client until one run gets through (the server may still be starting up). */
async function runClient(port: number): Promise<Run> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const c = run('tcp-echo-client', port);
    const { code } = await c.exit;
    if (code === 0) return c;
    expect(c.stderr()).toContain('ECONNREFUSED');
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the echo client never got through');
}

describe('examples', () => {
  it('tcp-echo-client against tcp-echo-server: the spec transcript', async () => {
    const port = await freePort();
    const server = run('tcp-echo-server', port);
    try {
      const client = await runClient(port);
      expect(client.lines).toEqual([
        'Data sent: "Hello World!"',
        'Data received: "Hello World!"',
        'The server closed the connection',
      ]);
      expect(client.stderr()).toBe('');
      await new Promise<void>((r) => {
        const check = () => (server.lines.length >= 4 ? r() : setTimeout(check, 10));
        check();
      });
      expect(server.lines[0]).toMatch(/^Connection from \["127\.0\.0\.1",\d+\]$/);
      expect(server.lines.slice(1)).toEqual(['Data received: "Hello World!"', 'Send: "Hello World!"', 'Close the client socket']);
      // A second client is served the same way: the server keeps serving.
      const again = await runClient(port);
      expect(again.lines).toHaveLength(3);
    } finally {
      server.child.kill('SIGTERM');
    }
    const { code } = await server.exit;
    expect(code).toBe(0);
    expect(server.stderr()).toBe('');
  });

  it('tcp-echo-server answers a Node net client; tcp-echo-client talks to a Node net echo server', async () => {
    const port = await freePort();
    const server = run('tcp-echo-server', port);
    try {
      let reply = '';
      for (let attempt = 0; ; attempt++) {
        try {
          reply = await new Promise<string>((resolve, reject) => {
            const s = net.connect(port, '127.0.0.1');
            let got = '';
            s.on('connect', () => s.write('from node'));
            s.on('data', (d) => (got += d));
            s.on('end', () => resolve(got));
            s.on('error', reject);
          });
          break;
        } catch (e) {
          if (attempt > 100) throw e;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      expect(reply).toBe('from node');
    } finally {
      server.child.kill('SIGTERM');
    }
    await server.exit;

    const echo = net.createServer((s) => {
      s.on('data', (d) => s.end(d));
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const client = run('tcp-echo-client', (echo.address() as net.AddressInfo).port);
    expect((await client.exit).code).toBe(0);
    expect(client.lines).toEqual(['Data sent: "Hello World!"', 'Data received: "Hello World!"', 'The server closed the connection']);
    echo.close();
  });
});
