import { describe, expect, it } from 'vitest';
import { EXPIRED_ON_ARRIVAL_REUSE_MS, refreshSchedule } from './refresh-schedule.js';

describe('refreshSchedule', () => {
  it('refreshes a 1-hour token about a minute early, and never uses its last 5 seconds', () => {
    const s = refreshSchedule(0, 3_600_000, () => 0);
    expect(s.refreshAt).toBe(3_540_000);
    expect(s.hardExpiresAt).toBe(3_595_000);
  });

  it('refreshes a 4-second token only in its last tenth, not on every call', () => {
    const s = refreshSchedule(0, 4_000, () => 0);
    expect(s.refreshAt).toBe(3_600);
    expect(s.hardExpiresAt).toBe(3_800);
  });

  it('adds at most 20 % jitter to the margin', () => {
    const s = refreshSchedule(0, 3_600_000, () => 0.999999);
    expect(s.refreshAt).toBeGreaterThan(3_600_000 - 72_001);
    expect(s.refreshAt).toBeLessThan(3_540_000);
  });

  it('reuses a token that arrived already expired (expires_in 0 or less) for a while, instead of at once', () => {
    for (const random of [() => 0, () => 0.999999]) {
      const s = refreshSchedule(1_000, 1_000, random);
      expect(s.refreshAt).toBe(1_000 + EXPIRED_ON_ARRIVAL_REUSE_MS);
      expect(s.hardExpiresAt).toBe(1_000 + EXPIRED_ON_ARRIVAL_REUSE_MS);
    }
    expect(EXPIRED_ON_ARRIVAL_REUSE_MS).toBeGreaterThanOrEqual(10_000);
    // Only for tokens that arrived expired: a one-second token is still refreshed by its lifetime.
    expect(refreshSchedule(0, 1_000, () => 0)).toEqual({ refreshAt: 900, hardExpiresAt: 950 });
  });
});
