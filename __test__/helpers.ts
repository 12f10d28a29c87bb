// Shared test helpers: a recording protocol, Node peers, waiting for conditions, descriptor counting.
import { spawn } from 'node:child_process';
import { fstatSync, readdirSync, readlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as net from 'node:net';
import { Protocol, type Transport } from 'protoloop';
import { expect } from 'vitest';

/** Records every callback in order, with the bytes received. */
export class Recorder extends Protocol {
  transport!: Transport;
  calls: string[] = [];
  chunks: Buffer[] = [];
  lostExc: Error | null | undefined = undefined;
  eofResult: boolean | undefined = undefined;
  readonly lost: Promise<Error | null>;
  readonly made: Promise<void>;
  readonly eof: Promise<void>;
  #lost!: (e: Error | null) => void;
  #made!: () => void;
  #eof!: () => void;

  constructor() {
    super();
    this.lost = new Promise((r) => (this.#lost = r));
    this.made = new Promise((r) => (this.#made = r));
    this.eof = new Promise((r) => (this.#eof = r));
  }
  override connectionMade(t: Transport): void {
    this.transport = t;
    this.calls.push('connectionMade');
    this.#made();
  }
  override dataReceived(data: Buffer): void {
    this.calls.push('dataReceived');
    this.chunks.push(Buffer.from(data));
  }
  override eofReceived(): boolean | void {
    this.calls.push('eofReceived');
    this.#eof();
    return this.eofResult;
  }
  override pauseWriting(): void {
    this.calls.push('pauseWriting');
  }
  override resumeWriting(): void {
    this.calls.push('resumeWriting');
  }
  override connectionLost(exc: Error | null): void {
    this.calls.push('connectionLost');
    this.lostExc = exc;
    this.#lost(exc);
  }
  get received(): Buffer {
    return Buffer.concat(this.chunks);
  }
  /** The calls without the (arbitrarily split) dataReceived repeats. */
  get shape(): string[] {
    return this.calls.filter((c, i) => c !== 'dataReceived' || this.calls[i - 1] !== 'dataReceived');
  }
}

/** Writes back whatever it receives. */
export class Echo extends Protocol {
  transport!: Transport;
  override connectionMade(t: Transport): void {
    this.transport = t;
  }
  override dataReceived(data: Buffer): void {
    this.transport.write(data);
  }
}

export async function waitFor(cond: () => boolean, timeoutMs = 20_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Whether Linux abstract Unix names are available: on Linux, unless the suite runs over the addon built
 * with the engine's portable backend (`npm run test:portable` sets PROTOLOOP_PORTABLE=1), which stands
 * in for macOS, where there are none.
 */
export const abstractUnixNames = process.platform === 'linux' && process.env.PROTOLOOP_PORTABLE !== '1';

/** Whether forwards between plain sockets splice (Linux), unless the portable backend is under test. */
export const splices = process.platform === 'linux' && process.env.PROTOLOOP_PORTABLE !== '1';

/** The addon protoloop loaded (the portable build under `npm run test:portable`), for what only it tells. */
export const addon = createRequire(import.meta.url)(process.env.PROTOLOOP_NATIVE_LIBRARY_PATH ?? '../bindings/node/index.js') as {
  openHandles(): number;
  requireFeature(feature: string): void;
};

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** This process's descriptors: `/proc/self/fd` on Linux, `/dev/fd` on macOS. */
const FD_DIR = process.platform === 'linux' ? '/proc/self/fd' : '/dev/fd';

export function openFds(): number {
  return readdirSync(FD_DIR).length;
}

/** Every open descriptor as "fd -> target"; pipes and sockets carry their inode, so a reused number shows. */
export function fdSnapshot(): Set<string> {
  const out = new Set<string>();
  for (const fd of readdirSync(FD_DIR)) {
    // null: closed between the listing and the look (the listing's own descriptor, for one)
    const target = fdTarget(Number(fd));
    if (target !== null) out.add(`${fd} -> ${target}`);
  }
  return out;
}

/** What descriptor `fd` is open on ("socket:[inode]", a path), or null when it is closed. */
export function fdTarget(fd: number): string | null {
  try {
    if (process.platform === 'linux') return readlinkSync(`/proc/self/fd/${fd}`);
    // macOS has no links to read in /dev/fd: the device and inode tell descriptors apart as well.
    const s = fstatSync(fd);
    return `${s.dev}:${s.ino}`;
  } catch {
    return null;
  }
}

/**
 * The descriptors open now that were not open at `before`. Counting alone misleads both ways: a descriptor
 * something else closes meanwhile (a worker, an earlier test's straggler) hides a leak or fails a clean run.
 */
export function newFds(before: Set<string>): string[] {
  return [...fdSnapshot()].filter((e) => !before.has(e));
}

/** Waits for every descriptor opened since `before` to close (they go as engine tasks end), then asserts it. */
export async function expectNoNewFds(before: Set<string>, timeoutMs = 5000): Promise<void> {
  await waitFor(() => newFds(before).length === 0, timeoutMs).catch(() => {});
  expect(newFds(before)).toEqual([]);
}

export function portOf(server: { sockets: { getsockname(): unknown }[] }, i = 0): number {
  return (server.sockets[i].getsockname() as [string, number])[1];
}

/** A Node `net` server on an ephemeral loopback port; `sockets` fills as peers connect. */
export async function nodeServer(
  onConnection: (s: net.Socket) => void = () => {},
  opts: net.ServerOpts = {},
  host = '127.0.0.1',
): Promise<{ server: net.Server; port: number; sockets: net.Socket[]; next(): Promise<net.Socket>; close(): Promise<void> }> {
  const sockets: net.Socket[] = [];
  const waiting: Array<(s: net.Socket) => void> = [];
  const server = net.createServer(opts, (s) => {
    s.on('error', () => {});
    sockets.push(s);
    onConnection(s);
    waiting.shift()?.(s);
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  const port = (server.address() as net.AddressInfo).port;
  let taken = 0;
  return {
    server,
    port,
    sockets,
    next: () => (taken < sockets.length ? Promise.resolve(sockets[taken++]) : new Promise((r) => waiting.push((s) => (taken++, r(s))))),
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/** Connects a Node `net` client; resolves once connected. */
export function nodeConnect(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, host, () => resolve(s));
    s.once('error', reject);
  });
}

/** Everything a Node socket receives until it ends. */
export function readAll(s: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  s.on('data', (d) => chunks.push(d));
  return new Promise((resolve, reject) => {
    s.on('end', () => resolve(Buffer.concat(chunks)));
    s.on('error', reject);
  });
}

/** A port nothing listens on (bound, then released). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, host, r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** The built package's ES module entry, for scripts run in a fresh Node. */
export const entry = new URL('../dist/esm/index.mjs', import.meta.url).pathname;

/**
 * Runs an ES module snippet (with the package imported as `pl`) in a fresh Node, with `env` added to
 * this process's environment; resolves with its exit code, output and wall time.
 */
export function runScript(
  code: string,
  timeoutMs = 15_000,
  env: Record<string, string> = {},
): Promise<{ status: number | null; signal: string | null; out: string; err: string; ms: number }> {
  const start = Date.now();
  const child = spawn(process.execPath, ['--input-type=module', '-e', `import * as pl from ${JSON.stringify(entry)};\n${code}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) =>
    child.on('exit', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, out, err, ms: Date.now() - start });
    }),
  );
}
