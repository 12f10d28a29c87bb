// Pipe transports over real descriptors: FIFOs made with mkfifo, fed and drained by other processes.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants as fsc, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connectReadPipe, connectWritePipe, Protocol, ReadTransport, Transport, WriteTransport } from 'protoloop';
import { Recorder, expectNoNewFds, fdSnapshot, fdTarget, waitFor } from './helpers';

const dir = mkdtempSync(join(tmpdir(), 'protoloop-pipe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

function fifo(): string {
  const path = join(dir, `fifo${n++}`);
  const r = spawnSync('mkfifo', [path]);
  if (r.status !== 0) throw new Error(`mkfifo failed: ${r.stderr}`);
  return path;
}

/** Opens the read end without waiting for a writer. */
function openRead(path: string): number {
  return openSync(path, fsc.O_RDONLY | fsc.O_NONBLOCK);
}

/** Opens the write end once a reader has it open (a FIFO refuses a non-blocking writer before). */
async function openWrite(path: string): Promise<number> {
  for (;;) {
    try {
      return openSync(path, fsc.O_WRONLY | fsc.O_NONBLOCK);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENXIO') throw e;
      await new Promise((r) => setTimeout(r, 2));
    }
  }
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A child process that hashes whatever arrives on `path` and prints the hex digest and byte count. */
function hashingReader(path: string): Promise<string> {
  const code = `import hashlib,sys\nh=hashlib.sha256();n=0\nwith open(sys.argv[1],'rb') as f:\n  for c in iter(lambda: f.read(65536), b''):\n    h.update(c);n+=len(c)\nprint(h.hexdigest(), n)`;
  const child = spawn('python3', ['-c', code, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  return new Promise((resolve) => child.on('close', () => resolve(out.trim())));
}

describe('connectReadPipe', () => {
  it('reads 64 MiB that another process writes into a FIFO, then EOF closes it', async () => {
    const path = fifo();
    const data = randomBytes(64 << 20);
    const file = join(dir, 'payload');
    writeFileSync(file, data);
    const rec = new Recorder();
    const [t, p] = await connectReadPipe(() => rec, openRead(path));
    expect(p).toBe(rec);
    expect(t).toBeInstanceOf(ReadTransport);
    expect(t).not.toBeInstanceOf(WriteTransport);
    expect(t).not.toBeInstanceOf(Transport);
    expect(typeof t.getExtraInfo('pipe')).toBe('number');
    const writer = spawn('sh', ['-c', `cat "${file}" > "${path}"`], { stdio: 'inherit' });
    const writerClosed = new Promise((r) => writer.on('close', r));
    let size = 0;
    const hash = createHash('sha256');
    rec.dataReceived = (d: Buffer) => {
      size += d.length;
      hash.update(d);
    };
    expect(await rec.lost).toBe(null);
    expect(size).toBe(data.length);
    expect(hash.digest('hex')).toBe(sha(data));
    // EOF on a pipe always closes, whatever eofReceived returns (asyncio's read pipe).
    expect(rec.calls).toEqual(['connectionMade', 'eofReceived', 'connectionLost']);
    expect(t.isClosing()).toBe(true);
    await writerClosed;
  });

  it('pausing really stops reading: the writer side fills up, and resuming delivers everything', async () => {
    const path = fifo();
    const rec = new Recorder();
    const [rt] = await connectReadPipe(() => rec, openRead(path));
    const wrec = new Recorder();
    const [wt] = await connectWritePipe(() => wrec, await openWrite(path));
    rt.pauseReading();
    expect(rt.isReading()).toBe(false);
    const data = randomBytes(4 << 20);
    wt.write(data);
    expect(wrec.calls).toContain('pauseWriting');
    // Give the engine every chance to read; nothing may arrive and the writer must stay backed up.
    await new Promise((r) => setTimeout(r, 100));
    expect(rec.chunks.length).toBe(0);
    expect(wt.getWriteBufferSize()).toBeGreaterThan(data.length - 1024 * 1024);
    rt.resumeReading();
    rt.resumeReading(); // idempotent
    await waitFor(() => rec.received.length === data.length, 20_000, 'all bytes');
    expect(sha(rec.received)).toBe(sha(data));
    await waitFor(() => wrec.calls.includes('resumeWriting'));
    wt.close();
    expect(await wrec.lost).toBe(null);
    expect(await rec.lost).toBe(null);
  });

  it('refuses regular files and bad arguments, leaving the descriptor to its owner', async () => {
    const file = join(dir, 'regular');
    writeFileSync(file, 'x');
    const fd = openSync(file, 'r');
    await expect(connectReadPipe(() => new Protocol(), fd)).rejects.toThrow(TypeError);
    await expect(connectWritePipe(() => new Protocol(), fd)).rejects.toThrow(/pipe, socket or character device/);
    closeSync(fd); // still ours: not closed by the failed calls
    await expect(connectReadPipe(() => new Protocol(), -1)).rejects.toThrow(RangeError);
    await expect(connectReadPipe(() => new Protocol(), '3' as any)).rejects.toThrow(TypeError);
    await expect(connectReadPipe('nope' as any, 0)).rejects.toThrow(/protocolFactory/);
    await expect(connectReadPipe(() => new Protocol(), 99999)).rejects.toMatchObject({ code: 'EBADF' });
  });

  it('refuses a descriptor a live pipe transport owns with EEXIST, and leaves it to that transport', async () => {
    const path = fifo();
    const rfd = openRead(path);
    const rec = new Recorder();
    const [rt] = await connectReadPipe(() => rec, rfd);
    const file = fdTarget(rfd);
    for (const connect of [connectReadPipe, connectWritePipe]) {
      const err = await connect(() => new Protocol(), rfd).catch((e) => e);
      expect(err).toMatchObject({ code: 'EEXIST', syscall: 'epoll_ctl' });
      expect(err.message).toContain(`descriptor ${rfd} already belongs`);
      expect(fdTarget(rfd)).toBe(file); // not closed
    }
    // The owner still reads it, and closes it itself.
    const wfd = await openWrite(path);
    writeFileSync(wfd, 'still mine');
    closeSync(wfd);
    await rec.lost;
    expect(rec.received.toString()).toBe('still mine');
    expect(rt.isClosing()).toBe(true);
  });

  it('refuses /dev/null (no poller can watch it) naming the call that said so, and leaves the descriptor open', async () => {
    const fd = openSync('/dev/null', 'r');
    const file = fdTarget(fd);
    await expect(connectReadPipe(() => new Protocol(), fd)).rejects.toMatchObject({ code: 'EPERM', syscall: 'epoll_ctl' });
    expect(fdTarget(fd)).toBe(file);
    closeSync(fd); // still ours
  });
});

describe('connectWritePipe', () => {
  it('writes 64 MiB into a FIFO that another process hashes, with flow control', async () => {
    const path = fifo();
    const hashed = hashingReader(path);
    const rec = new Recorder();
    const [t] = await connectWritePipe(() => rec, await openWrite(path));
    expect(t).toBeInstanceOf(WriteTransport);
    expect(t).not.toBeInstanceOf(ReadTransport);
    expect(t.canWriteEof()).toBe(true);
    const hash = createHash('sha256');
    const chunk = randomBytes(1 << 20);
    let left = 64;
    let paused = false;
    rec.pauseWriting = () => void (paused = true);
    await new Promise<void>((done) => {
      const pump = () => {
        while (left > 0 && !paused) {
          t.write(chunk);
          hash.update(chunk);
          left--;
        }
        if (left === 0) done();
      };
      rec.resumeWriting = () => {
        paused = false;
        pump();
      };
      pump();
    });
    t.writeEof();
    expect(t.isClosing()).toBe(true);
    expect(() => t.write(Buffer.from('late'))).toThrow(/writeEof/);
    expect(await rec.lost).toBe(null);
    expect(t.getWriteBufferSize()).toBe(0);
    expect(await hashed).toBe(`${hash.digest('hex')} ${64 << 20}`);
  });

  it('gets connectionLost with EPIPE when the reader goes away while bytes are queued', async () => {
    const path = fifo();
    const reader = spawn('head', ['-c', '1000', path], { stdio: ['ignore', 'ignore', 'inherit'] });
    const readerClosed = new Promise((r) => reader.on('close', r));
    const rec = new Recorder();
    const [t] = await connectWritePipe(() => rec, await openWrite(path));
    t.write(randomBytes(8 << 20));
    const exc = (await rec.lost) as NodeJS.ErrnoException;
    expect(exc).toBeInstanceOf(Error);
    expect(exc.code).toBe('EPIPE');
    expect(exc.syscall).toBe('write');
    expect(rec.calls.at(-1)).toBe('connectionLost');
    t.write(Buffer.from('dropped')); // after loss: dropped, no throw
    await readerClosed;
  });

  it('notices an idle pipe losing its reader (asyncio: connectionLost(null))', async () => {
    const path = fifo();
    const reader = spawn('head', ['-c', '3', path], { stdio: ['ignore', 'pipe', 'inherit'] });
    const readerClosed = new Promise((r) => reader.on('close', r));
    let out = '';
    reader.stdout.on('data', (d) => (out += d));
    const rec = new Recorder();
    const [t] = await connectWritePipe(() => rec, await openWrite(path));
    t.write(Buffer.from('abc'));
    expect(await rec.lost).toBe(null);
    await readerClosed;
    expect(out).toBe('abc');
  });

  it('abort drops the buffer and reports connectionLost(null) later, never inside abort()', async () => {
    const path = fifo();
    const rfd = openRead(path);
    const rec = new Recorder();
    const [t] = await connectWritePipe(() => rec, await openWrite(path));
    t.write(randomBytes(1 << 20));
    expect(t.getWriteBufferSize()).toBeGreaterThan(0);
    t.abort();
    expect(rec.calls).not.toContain('connectionLost');
    expect(await rec.lost).toBe(null);
    closeSync(rfd);
  });
});

describe('pipe descriptors', () => {
  it('do not leak over 1,000 open/close cycles of each kind', async () => {
    const path = fifo();
    const cycle = async () => {
      const r = new Recorder();
      const w = new Recorder();
      const [rt] = await connectReadPipe(() => r, openRead(path));
      const [wt] = await connectWritePipe(() => w, await openWrite(path));
      wt.write(Buffer.from('x'));
      wt.close();
      await w.lost;
      await r.lost; // EOF after the writer closed
      expect(r.received.toString()).toBe('x');
      expect(rt.isClosing()).toBe(true);
    };
    await cycle();
    const before = fdSnapshot();
    for (let i = 0; i < 1000; i++) await cycle();
    // A pipe's descriptor closes as its engine task ends, just after its close is reported.
    await expectNoNewFds(before);
  });
});
