import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration suites start real servers (oidc-provider, Grantry, PostgreSQL, Chromium); two cores
    // here, so run files in forks with modest parallelism.
    pool: 'forks',
    maxWorkers: 2,
  },
});
