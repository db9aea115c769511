import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

describe('GRANTRY_EXECUTE_BUFFER_LIMIT', () => {
  it('defaults to 256 MiB and reads a byte count', () => {
    expect(loadConfig({}).executeBufferLimitBytes).toBe(256 * 1024 * 1024);
    expect(loadConfig({ GRANTRY_EXECUTE_BUFFER_LIMIT: '10485760' }).executeBufferLimitBytes).toBe(10485760);
  });

  it('refuses a limit below GRANTRY_EXECUTE_MAX_BODY: one full answer could never be read', () => {
    expect(() => loadConfig({ GRANTRY_EXECUTE_BUFFER_LIMIT: String(1024 * 1024) })).toThrow(ConfigError);
    expect(() => loadConfig({ GRANTRY_EXECUTE_BUFFER_LIMIT: 'lots' })).toThrow(
      /GRANTRY_EXECUTE_BUFFER_LIMIT/,
    );
    expect(
      loadConfig({ GRANTRY_EXECUTE_BUFFER_LIMIT: '2048', GRANTRY_EXECUTE_MAX_BODY: '2048' })
        .executeBufferLimitBytes,
    ).toBe(2048);
  });
});
