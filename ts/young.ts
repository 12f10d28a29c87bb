// Keeps received bytes out of full garbage collections. Every engine batch reaches JavaScript in fresh
// memory (a Buffer of its own, or, when small, a share of a fresh 64 KiB slab), which V8 counts as
// external; V8 frees the dead ones in the next scavenge, and starts a
// mark-compact (a full collection) once external memory grew 64 MiB since the last. Receiving allocates
// almost nothing on the JavaScript heap, so on Node 24 and later (V8 13.6 raised the young generation's
// cap, and with it the young ArrayBuffer bytes that start a scavenge of their own) the limit came first:
// 3 mark-compacts per 256 MiB received, as for Node's own `net` sockets. So after every 32 MiB of fresh
// Buffers, unless the application's own allocations scavenged meanwhile, this fills what is left of the
// young generation (about 2 MiB of throwaway arrays), and the scavenge that follows frees the dead
// Buffers. `node benches/receive-gc.mjs` on Node 24: 3 mark-compacts per 256 MiB and 195 ms CPU before,
// none and 132 ms after; Node 20 and 22 scavenge by themselves and see almost no nudge (README,
// "Garbage collection of received bytes").
import { getHeapSpaceStatistics } from 'node:v8';

/** Fresh bytes between looks at the young generation: half the 64 MiB that starts a mark-compact. */
const EVERY = 32 << 20;
/** 64 KiB arrays: each under V8's largest object of the young generation (128 KiB). */
const SLOTS = 8192;

let fresh = 0;
/** The young generation's bytes in use at the last look: fewer now means it was scavenged since. */
let usedAtLastLook = 0;
/** Where the throwaway arrays go, so that no optimizer drops their allocation. */
const throwaway: { last: unknown } = { last: null };

/** Counts `bytes` of fresh Buffers handed to JavaScript; every 32 MiB makes sure a scavenge came. */
export function freshBytes(bytes: number): void {
  fresh += bytes;
  if (fresh < EVERY) return;
  fresh = 0;
  const young = newSpace();
  if (young === undefined) return;
  if (young.space_used_size >= usedAtLastLook) {
    for (let left = young.space_available_size + SLOTS * 8; left > 0; left -= SLOTS * 8) throwaway.last = new Array(SLOTS);
    throwaway.last = null;
  }
  usedAtLastLook = newSpace()?.space_used_size ?? 0;
}

function newSpace(): { space_used_size: number; space_available_size: number } | undefined {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
}
