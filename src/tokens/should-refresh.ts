/**
 * Whether an authentication needs a background refresh now, as a pure function of what is stored
 * (the way Nango decides with `shouldRefreshCredentials`): no I/O, no clock of its own, so every
 * rule is a unit test with a fake time. The keep-alive scheduler asks it twice: once through the
 * store's due query, which finds the candidates, and again under the refresh lock with the rows
 * re-read — where another instance that has just refreshed makes the answer "no".
 *
 * Today it decides the keep-alive: a refresh token that sat unused for `keepAliveMs` is refreshed,
 * so a provider that expires idle refresh tokens (Microsoft: 90 days, Xero: 60…) never sees it idle
 * long enough. Access-token expiry is decided on the call path (refresh-schedule.ts).
 */
export interface RefreshFacts {
  /** The stored tokens of the current configuration, or null when there are none. */
  tokens: { obtainedAt: number; hasRefreshToken: boolean } | null;
  /** How long the refresh token may sit unused (`keepAliveDays`), or null: no keep-alive. */
  keepAliveMs: number | null;
  /** The back-off of the last failed attempt of the current configuration, or null. */
  failure: { nextAttemptAt: number } | null;
}

export type RefreshReason =
  /** Nothing to refresh: never connected, or a person must connect again. */
  | 'no_tokens'
  /** The provider issued no refresh token: nothing can be kept alive. */
  | 'no_refresh_token'
  | 'keep_alive_off'
  /** The last attempt failed and the cluster's back-off has not run out. */
  | 'backing_off'
  /** The refresh token was used (or issued) within `keepAliveMs`: someone else kept it alive. */
  | 'used_recently'
  /** The refresh token has sat unused for `keepAliveMs`: refresh it before the provider expires it. */
  | 'refresh_token_idle';

export interface RefreshDecision {
  should: boolean;
  reason: RefreshReason;
}

export function shouldRefresh(facts: RefreshFacts, now: number): RefreshDecision {
  if (facts.tokens === null) return { should: false, reason: 'no_tokens' };
  if (!facts.tokens.hasRefreshToken) return { should: false, reason: 'no_refresh_token' };
  if (facts.keepAliveMs === null) return { should: false, reason: 'keep_alive_off' };
  if (facts.failure !== null && now < facts.failure.nextAttemptAt)
    return { should: false, reason: 'backing_off' };
  if (now - facts.tokens.obtainedAt < facts.keepAliveMs) return { should: false, reason: 'used_recently' };
  return { should: true, reason: 'refresh_token_idle' };
}
