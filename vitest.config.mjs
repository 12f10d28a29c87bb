import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Tests run against the built package (dist/), loaded by Node itself rather than transformed, exactly
// as a user's `import ... from 'protoloop'` would load it.
export default defineConfig({
  resolve: { alias: { protoloop: fileURLToPath(new URL('./dist/esm/index.mjs', import.meta.url)) } },
  test: {
    include: ['__test__/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    server: { deps: { external: [/\/dist\//] } },
  },
});
