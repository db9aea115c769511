import { describe, expect, it } from 'vitest';
import { type RefreshFacts, shouldRefresh } from './should-refresh.js';

const DAY = 24 * 60 * 60 * 1000;
const NOW = 1_800_000_000_000;

function facts(overrides: Partial<RefreshFacts> = {}): RefreshFacts {
  return {
    tokens: { obtainedAt: NOW - 46 * DAY, hasRefreshToken: true },
    keepAliveMs: 45 * DAY,
    failure: null,
    ...overrides,
  };
}

describe('shouldRefresh', () => {
  it('refreshes a refresh token that sat unused for the keep-alive period, from that moment on', () => {
    expect(shouldRefresh(facts(), NOW)).toEqual({ should: true, reason: 'refresh_token_idle' });
    const exactly = facts({ tokens: { obtainedAt: NOW - 45 * DAY, hasRefreshToken: true } });
    expect(shouldRefresh(exactly, NOW)).toEqual({ should: true, reason: 'refresh_token_idle' });
    expect(shouldRefresh(exactly, NOW - 1)).toEqual({ should: false, reason: 'used_recently' });
  });

  it('leaves alone a refresh token used within the period (another instance just refreshed it)', () => {
    const fresh = facts({ tokens: { obtainedAt: NOW - 1_000, hasRefreshToken: true } });
    expect(shouldRefresh(fresh, NOW)).toEqual({ should: false, reason: 'used_recently' });
  });

  it('does nothing without tokens, without a refresh token, or without a keep-alive', () => {
    expect(shouldRefresh(facts({ tokens: null }), NOW).reason).toBe('no_tokens');
    expect(shouldRefresh(facts({ tokens: { obtainedAt: 0, hasRefreshToken: false } }), NOW).reason).toBe(
      'no_refresh_token',
    );
    expect(shouldRefresh(facts({ keepAliveMs: null }), NOW).reason).toBe('keep_alive_off');
  });

  it('waits for the back-off of a failed attempt to run out, then tries again', () => {
    const failing = facts({ failure: { nextAttemptAt: NOW + 60_000 } });
    expect(shouldRefresh(failing, NOW)).toEqual({ should: false, reason: 'backing_off' });
    expect(shouldRefresh(failing, NOW + 60_000)).toEqual({ should: true, reason: 'refresh_token_idle' });
  });
});
