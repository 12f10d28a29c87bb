// What holds whatever the input: a panic in the addon stays an Error of the call that hit it.
import { describe, expect, it } from 'vitest';
import { runScript } from './helpers';

describe('the addon boundary', () => {
  it('a panic inside a native call reaches JavaScript as an Error, and the process lives on', async () => {
    // Bad input is refused before it can panic; this is the last resort for a bug (a panic unwinding
    // into Node aborts the process).
    const r = await runScript(`
      import { createRequire } from 'node:module';
      const native = createRequire(import.meta.url)(${JSON.stringify(process.env.PROTOLOOP_NATIVE_LIBRARY_PATH ?? new URL('../bindings/node/index.js', import.meta.url).pathname)});
      try { native._panicForTest('boom'); } catch (e) { console.log(e instanceof Error, e.message); }
      const [t] = await pl.createConnection(() => new pl.Protocol(), '127.0.0.1', 1).catch((e) => [e.code]);
      console.log('still running', t);
    `);
    expect(r.signal).toBe(null);
    expect(r.status).toBe(0);
    expect(r.out).toMatch(/^true .*boom/);
    expect(r.out).toContain('still running ECONNREFUSED');
  });
});
