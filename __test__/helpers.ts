// Shared test helpers: a recording protocol, waiting for conditions, and descriptor counting.
import { readdirSync } from 'node:fs';
import { Protocol, type Transport } from 'protoloop';

/** Records every callback in order, with the bytes received. */
export class Recorder extends Protocol {
  transport!: Transport;
  calls: string[] = [];
  chunks: Buffer[] = [];
  lostExc: Error | null | undefined = undefined;
  eofResult: boolean | undefined = undefined;
  readonly lost: Promise<Error | null>;
  readonly made: Promise<void>;
  #lost!: (e: Error | null) => void;
  #made!: () => void;

  constructor() {
    super();
    this.lost = new Promise((r) => (this.#lost = r));
    this.made = new Promise((r) => (this.#made = r));
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
}

export async function waitFor(cond: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

export function portOf(server: { sockets: { getsockname(): unknown }[] }): number {
  return (server.sockets[0].getsockname() as [string, number])[1];
}
