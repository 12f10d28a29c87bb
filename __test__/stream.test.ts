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
