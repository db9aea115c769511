import { describe, expect, it } from 'vitest';
import { failureBackoffMs, maxAttemptsWithin } from './failure-backoff.js';

describe('failureBackoffMs', () => {
  it('doubles from one second up to a minute for failures that may pass', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 50].map((n) => failureBackoffMs('token_fetch_failed', n))).toEqual([
      1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000,
    ]);
  });

  it('doubles from five seconds up to five minutes for failures a retry cannot fix', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 1_000].map((n) => failureBackoffMs('invalid_client', n))).toEqual([
      5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000,
    ]);
  });
});

describe('maxAttemptsWithin', () => {
  it('counts the attempts a cluster can make in a window, from the schedule', () => {
    // Transient: attempts at 0, 1, 3, 7, 15, 31, 63 s, then every 60 s (123, 183 … 3543 s: 58 more in an hour).
    expect(maxAttemptsWithin('token_fetch_failed', 0)).toBe(1);
    expect(maxAttemptsWithin('token_fetch_failed', 999)).toBe(1);
    expect(maxAttemptsWithin('token_fetch_failed', 1_000)).toBe(2);
    expect(maxAttemptsWithin('token_fetch_failed', 10_000)).toBe(4);
    expect(maxAttemptsWithin('token_fetch_failed', 60_000)).toBe(6);
    expect(maxAttemptsWithin('token_fetch_failed', 3_600_000)).toBe(7 + 58);
    // Permanent: attempts at 0, 5, 15, 35, 75 … seconds.
    expect(maxAttemptsWithin('invalid_client', 14_999)).toBe(2);
    expect(maxAttemptsWithin('invalid_client', 15_000)).toBe(3);
  });
});
