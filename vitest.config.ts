import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // One test CA per run, trusted through NODE_EXTRA_CA_CERTS by every worker and child process.
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration suites start real servers (oidc-provider, Grantry, PostgreSQL, Chromium); two cores
    // here, so run files in forks with modest parallelism.
    pool: 'forks',
    maxWorkers: 2,
  },
});
