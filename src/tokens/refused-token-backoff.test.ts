import { describe, expect, it } from 'vitest';
import { RefusedTokenBackoff } from './refused-token-backoff.js';
import type { CachedToken } from './token-manager.js';

function token(version: number, generation = 1, authId = 'auth_1'): CachedToken {
  return {
    authId,
    authorization: `Bearer t${version}`,
    accessToken: `t${version}`,
    tokenType: 'Bearer',
    scope: null,
    obtainedAt: 0,
    expiresAt: null,
    refreshAt: Number.POSITIVE_INFINITY,
    hardExpiresAt: Number.POSITIVE_INFINITY,
    hasRefreshToken: false,
    version,
    generation,
    dpop: false,
  };
}

function setUp() {
  let now = 1_000_000;
  const backoff = new RefusedTokenBackoff({ clock: () => now, firstPauseMs: 1_000, maxPauseMs: 4_000 });
  return { backoff, advance: (ms: number) => (now += ms), now: () => now };
}

describe('RefusedTokenBackoff', () => {
  it('lets a first 401 force a refresh, and pauses when the fresh token is refused too', () => {
    const { backoff, now } = setUp();
    expect(backoff.refused(token(1), false)).toBeNull();
    backoff.replaced(token(2));
    const until = backoff.refused(token(2), true);
    expect(until).toBe(now() + 1_000);
    expect(backoff.pausedUntil(token(2))).toBe(until);
    // Every 401 during the pause is told the same end, whatever token it carried.
    expect(backoff.refused(token(2), false)).toBe(until);
    expect(backoff.refused(token(1), false)).toBe(until);
  });

  it("starts the pause when a background refresh's token is refused by a later call, soon", () => {
    const { backoff, advance } = setUp();
    backoff.replaced(token(2));
    advance(500);
    expect(backoff.refused(token(2), false)).not.toBeNull();
  });

  it('does not hold a token refused long after it was forced against that refresh', () => {
    const { backoff, advance } = setUp();
    backoff.replaced(token(2));
    advance(61_000);
    expect(backoff.refused(token(2), false)).toBeNull();
  });

  it('ends: after the pause a 401 may force one fresh token again; the next pause is longer, up to the cap', () => {
    const { backoff, advance, now } = setUp();
    expect(backoff.refused(token(2), true)).toBe(now() + 1_000);
    advance(1_000);
    expect(backoff.pausedUntil(token(2))).toBeNull();
    expect(backoff.refused(token(2), false)).toBeNull();
    expect(backoff.refused(token(3), true)).toBe(now() + 2_000);
    advance(2_000);
    expect(backoff.refused(token(4), true)).toBe(now() + 4_000);
    advance(4_000);
    expect(backoff.refused(token(5), true)).toBe(now() + 4_000);
    // Long after the last pause, a new incident starts short again.
    advance(10_000);
    expect(backoff.refused(token(6), true)).toBe(now() + 1_000);
  });

  it('forgets on a configuration change: forget(), or a token of another generation', () => {
    const { backoff } = setUp();
    backoff.refused(token(2), true);
    backoff.forget('auth_1');
    expect(backoff.pausedUntil(token(2))).toBeNull();
    backoff.refused(token(3), true);
    expect(backoff.pausedUntil(token(1, 2))).toBeNull();
    expect(backoff.refused(token(1, 2), false)).toBeNull();
  });

  it('keeps authentications apart', () => {
    const { backoff } = setUp();
    backoff.refused(token(2), true);
    expect(backoff.pausedUntil(token(2, 1, 'auth_2'))).toBeNull();
  });
});
