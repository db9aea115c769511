import { describe, expect, it } from 'vitest';
import { attentionReason, FAILING_FOR_MS, FAILURES_BEFORE_ATTENTION } from './attention-rules.js';

const MINUTE = 60_000;

describe('when an authentication needs a person', () => {
  it('needs one at once when it becomes needs_authorization or error', () => {
    expect(attentionReason('needs_authorization', { failures: 1, firstFailureAt: 0 }, 0)).toBe(
      'needs_authorization',
    );
    expect(attentionReason('error', { failures: 1, firstFailureAt: 0 }, 0)).toBe('error');
  });

  it('needs one when a refresh keeps failing: three failures in a row over five minutes', () => {
    expect(FAILURES_BEFORE_ATTENTION).toBe(3);
    expect(FAILING_FOR_MS).toBe(5 * MINUTE);
    const start = 1_000_000;
    expect(attentionReason('connected', { failures: 3, firstFailureAt: start }, start + 5 * MINUTE)).toBe(
      'refresh_failing',
    );
    // A burst of failures within seconds (a provider's blip, the token manager's quick retries).
    expect(
      attentionReason('connected', { failures: 10, firstFailureAt: start }, start + 4 * MINUTE),
    ).toBeNull();
    // Two failures, however far apart, are no streak.
    expect(
      attentionReason('connected', { failures: 2, firstFailureAt: start }, start + 60 * MINUTE),
    ).toBeNull();
    expect(attentionReason('ready', { failures: 5, firstFailureAt: null }, start)).toBeNull();
  });

  it('a failed keep-alive needs a person at once: nobody is calling to notice, and the refresh token is running out', () => {
    expect(attentionReason('connected', { failures: 1, firstFailureAt: 0 }, 0, true)).toBe(
      'keep_alive_failed',
    );
    // A status that says more wins: the refresh token was refused, or the grant itself failed.
    expect(attentionReason('needs_authorization', { failures: 1, firstFailureAt: 0 }, 0, true)).toBe(
      'needs_authorization',
    );
    expect(attentionReason('error', { failures: 1, firstFailureAt: 0 }, 0, true)).toBe('error');
    expect(attentionReason('connected', { failures: 1, firstFailureAt: 0 }, 0, false)).toBeNull();
  });
});
