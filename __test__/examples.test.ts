// The spec's TCP echo examples, compiled to dist/examples, run against each other as child processes.
import { spawn, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
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

function run(name: string, port: number, args: string[] = []): Run {
  const child = spawn(process.execPath, [example(name), ...args], { env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
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
async function runClient(port: number, name = 'tcp-echo-client'): Promise<Run> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const c = run(name, port);
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

  it('tcp-echo-client-streams against tcp-echo-server-streams: the transcript of asyncio\'s streams docs', async () => {
    const port = await freePort();
    const server = run('tcp-echo-server-streams', port);
    try {
      const client = await runClient(port, 'tcp-echo-client-streams');
      expect(client.stderr()).toBe('');
      expect(client.lines).toEqual(['Send: "Hello World!"', 'Received: "Hello World!"', 'Close the connection']);
      await new Promise<void>((r) => {
        const check = () => (server.lines.length >= 4 ? r() : setTimeout(check, 10));
        check();
      });
      expect(server.lines[0]).toBe(`Serving on ["127.0.0.1",${port}]`);
      expect(server.lines[1]).toMatch(/^Received "Hello World!" from \["127\.0\.0\.1",\d+\]$/);
      expect(server.lines.slice(2)).toEqual(['Send: "Hello World!"', 'Close the connection']);
      // The streams server keeps serving, a Node net client too.
      const reply = await new Promise<string>((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => s.write('from node'));
        let got = '';
        s.on('data', (d) => (got += d));
        s.on('end', () => resolve(got));
        s.on('error', reject);
      });
      expect(reply).toBe('from node');
    } finally {
      server.child.kill('SIGTERM');
    }
    expect((await server.exit).code).toBe(0);
    expect(server.stderr()).toBe('');
  });

  it('http-over-protoloop: Node\'s http server on protoloop connections answers Node\'s http client, then exits on its own', async () => {
    const port = await freePort();
    const once = run('http-over-protoloop', port);
    const { code } = await once.exit;
    expect(once.stderr()).toBe('');
    expect(code).toBe(0);
    expect(once.lines[0]).toBe(`HTTP on protoloop at http://127.0.0.1:${port}/`);
    expect(once.lines[1]).toMatch(/^Hello from Node's http on protoloop: GET \/hello from 127\.0\.0\.1:\d+$/);

    // --serve: a plain Node http client (Node's own sockets) with keep-alive.
    const serving = run('http-over-protoloop', port, ['--serve']);
    try {
      await new Promise<void>((r) => {
        const check = () => (serving.lines.length >= 1 ? r() : setTimeout(check, 10));
        check();
      });
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      for (const path of ['/a', '/b']) {
        const body = await new Promise<string>((resolve, reject) => {
          http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
            let t = '';
            res.on('data', (d) => (t += d));
            res.on('end', () => resolve(t));
          }).on('error', reject);
        });
        expect(body).toMatch(new RegExp(`^Hello from Node's http on protoloop: GET ${path} from 127\\.0\\.0\\.1:\\d+\\n$`));
      }
      agent.destroy();
    } finally {
      serving.child.kill('SIGTERM');
    }
    expect((await serving.exit).code).toBe(0);
  });
});
