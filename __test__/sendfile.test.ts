// sendfile(): sendfile(2) on TCP transports, order with write(), file position, bad arguments.
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Protocol, createConnection, createServer, getRunningLoop, sendfile, startTls, type Transport } from 'protoloop';
import { Recorder, portOf, waitFor } from './helpers';
import { makePki } from './tls-certs';

const SIZE = 100 << 20;
let dir: string;
let path: string;
let content: Buffer;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'protoloop-sendfile-'));
  path = join(dir, 'data.bin');
  content = Buffer.alloc(SIZE);
  for (let i = 0; i < SIZE; i += 4) content.writeUInt32LE(i * 2654435761 >>> 0, i);
  writeFileSync(path, content);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Serves one connection with `serve(transport)`, then closes; resolves to what a Node client read. */
async function serveOnce(serve: (t: Transport) => Promise<void>): Promise<Buffer> {
  const errors: unknown[] = [];
  const server = await createServer(
    () =>
      new (class extends Protocol {
        override connectionMade(t: Transport): void {
          serve(t).then(
            () => t.close(),
            (e) => {
              errors.push(e);
              t.abort();
            },
          );
        }
      })(),
    '127.0.0.1',
    0,
  );
  const parts: Buffer[] = [];
  await new Promise((resolve, reject) => {
    const c = net.connect(portOf(server), '127.0.0.1');
    c.on('data', (d) => parts.push(d));
    c.on('end', resolve);
    c.on('error', reject);
  });
  server.close();
  if (errors.length > 0) throw errors[0];
  return Buffer.concat(parts);
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** The byte at the file position of `fd`, or null at end of file (reads advance the position by one). */
function byteAtPosition(fd: number): number | null {
  const b = Buffer.alloc(1);
  return readSync(fd, b, 0, 1, null) === 1 ? b[0] : null;
}

describe('sendfile', () => {
  it('sends a 100 MiB file byte-exact and leaves the position at its end', async () => {
    const fd = openSync(path, 'r');
    let sent = -1;
    const got = await serveOnce(async (t) => {
      sent = await sendfile(t, fd);
      expect(t.getExtraInfo('stats').bytesWritten).toBe(SIZE);
    });
    expect(sent).toBe(SIZE);
    expect(got.length).toBe(SIZE);
    expect(sha(got)).toBe(sha(content));
    expect(byteAtPosition(fd)).toBe(null);
    closeSync(fd);
  });

  it('sends a range (offset, count) and leaves the position after it', async () => {
    const fd = openSync(path, 'r');
    const offset = 12345;
    const count = 3 << 20;
    const got = await serveOnce(async (t) => {
      expect(await sendfile(t, fd, offset, count)).toBe(count);
    });
    expect(got.equals(content.subarray(offset, offset + count))).toBe(true);
    expect(byteAtPosition(fd)).toBe(content[offset + count]);
    closeSync(fd);
  });

  it('accepts a FileHandle and a count past the end of the file', async () => {
    const { open } = await import('node:fs/promises');
    const handle = await open(path, 'r');
    const got = await serveOnce(async (t) => {
      expect(await getRunningLoop().sendfile(t, handle, SIZE - 100, 1 << 20)).toBe(100);
    });
    expect(got.equals(content.subarray(SIZE - 100))).toBe(true);
    await handle.close();
  });

  it('keeps order with writes before, during and after it', async () => {
    const fd = openSync(path, 'r');
    const got = await serveOnce(async (t) => {
      t.setWriteBufferLimits(0); // pauseWriting at once; sendfile must still wait for the queue
      t.write(Buffer.alloc(1 << 20, 'h'));
      const pending = sendfile(t, fd, 0, 2 << 20);
      t.write(Buffer.from('during'));
      await pending;
      t.write(Buffer.from('after'));
    });
    const want = Buffer.concat([Buffer.alloc(1 << 20, 'h'), content.subarray(0, 2 << 20), Buffer.from('duringafter')]);
    expect(got.length).toBe(want.length);
    expect(got.equals(want)).toBe(true);
    closeSync(fd);
  });

  it('sends a write made right after the call behind the file, with nothing queued before', async () => {
    const fd = openSync(path, 'r');
    const got = await serveOnce(async (t) => {
      const pending = sendfile(t, fd, 0, 1000);
      t.write(Buffer.from('behind'));
      await pending;
    });
    expect(got.equals(Buffer.concat([content.subarray(0, 1000), Buffer.from('behind')]))).toBe(true);
    closeSync(fd);
  });

  it('rejects bad arguments naming them', async () => {
    const fd = openSync(path, 'r');
    await serveOnce(async (t) => {
      await expect(sendfile(t, fd, 0, 0)).rejects.toThrow(RangeError);
      await expect(sendfile(t, fd, -1)).rejects.toThrow(/"offset"/);
      await expect(sendfile(t, 'file' as unknown as number)).rejects.toThrow(TypeError);
      await expect(sendfile({} as Transport, fd)).rejects.toThrow(/"transport"/);
      await expect(sendfile(t, fd, 0, null, { fallback: 'no' as unknown as boolean })).rejects.toThrow(/"options.fallback"/);
    });
    closeSync(fd);
  });

  it('a sendfile queued before startTls settles with its count: the file goes out plain, then the handshake', async () => {
    const pki = makePki();
    const N = 100_000;
    // The peer reads N plain bytes, then is a TLS server on the same socket and echoes.
    let plain = Buffer.alloc(0);
    const server = net.createServer((s) => {
      const onData = (d: Buffer) => {
        plain = Buffer.concat([plain, d]);
        if (plain.length < N) return;
        s.off('data', onData);
        s.pause();
        if (plain.length > N) s.unshift(plain.subarray(N));
        const secure = new tls.TLSSocket(s, { isServer: true, cert: pki.serverCert, key: pki.serverKey });
        secure.on('error', () => {});
        secure.pipe(secure);
      };
      s.on('data', onData);
      s.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const rec = new Recorder();
    const [t] = await createConnection(() => rec, '127.0.0.1', (server.address() as net.AddressInfo).port);
    const fd = openSync(path, 'r');
    const sent = sendfile(t, fd, 0, N);
    const secure = await startTls(t, rec, { ca: pki.caCert }, { serverHostname: 'localhost' });
    // Its completion once went to the retired plain transport, and this promise never settled.
    expect(await sent).toBe(N);
    expect(plain.subarray(0, N).equals(content.subarray(0, N))).toBe(true);
    secure.write(Buffer.from('over TLS'));
    await waitFor(() => rec.received.toString() === 'over TLS');
    secure.close();
    await rec.lost;
    closeSync(fd);
    server.close();
    pki.cleanup();
  }, 10_000);
});
