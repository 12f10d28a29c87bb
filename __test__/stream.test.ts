import { createHash } from 'node:crypto';
import * as net from 'node:net';
import { describe, expect, it } from 'vitest';
import { createConnection, createServer, Protocol, type Transport } from 'protoloop';
import { Recorder, portOf, waitFor } from './helpers';

describe('TCP against Node net', () => {
  it('a protoloop client talks to a Node net echo server', async () => {
    const server = net.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const rec = new Recorder();
    const [t, p] = await createConnection(() => rec, '127.0.0.1', port);
    expect(p).toBe(rec);
    expect(t.getExtraInfo('peername')).toEqual(['127.0.0.1', port]);
    t.write(Buffer.from('hello'));
    await waitFor(() => rec.received.length === 5);
    expect(rec.received.toString()).toBe('hello');
    t.close();
    expect(await rec.lost).toBe(null);
    expect(rec.calls[0]).toBe('connectionMade');
    expect(rec.calls.at(-1)).toBe('connectionLost');
    server.close();
  });
});

describe('server close with connections still queued', () => {
  it('leaves no stream behind when connections were accepted just before close()', async () => {
    const { openHandles } = await import('../bindings/node/index.js');
    const before = openHandles();
    for (let round = 0; round < 20; round++) {
      const server = await createServer(() => new Protocol(), '127.0.0.1', 0);
      const port = portOf(server);
      const peers = Array.from({ length: 10 }, () => net.connect(port, '127.0.0.1').on('error', () => {}));
      await Promise.all(peers.map((p) => new Promise((r) => p.once('connect', r))));
      // Accepted events may still be queued when the server closes.
      server.close();
      server.abortClients();
      for (const p of peers) p.destroy();
    }
    await waitFor(() => openHandles() === before, 10_000, 'engine handles to return to their count');
  });
});
