/**
 * When to refresh a token before it expires. The margin adapts to the lifetime — the smaller of
 * 60 s and a tenth of the lifetime — so a 4-second token is not refreshed on every call and a
 * 1-hour token is not used in its last seconds. Up to 20 % jitter spreads the refreshes of many
 * instances (and many authentications) instead of lining them up on the same millisecond.
 */
export interface RefreshSchedule {
  /** From here on a refresh starts in the background; callers still get the current token. */
  refreshAt: number;
  /** From here on callers wait for a new token: the current one may expire in flight. */
  hardExpiresAt: number;
}

/**
 * How long a token that arrived already expired (`expires_in` 0 or negative: "expires now") is still
 * handed out. Such a provider is either wrong about the lifetime (the token works) or issues tokens
 * no API accepts; either way asking it again on every call cannot help, and would turn each API call
 * into a token request — a storm at the provider under load. So the token just fetched is reused for
 * this long: every caller on every instance (the window is computed from the stored row, which all
 * instances read) gets it, and the provider is asked at most once per authentication per window. If
 * the API does refuse the token, the 401 rule still fetches a fresh one for that call, as for any token.
 */
export const EXPIRED_ON_ARRIVAL_REUSE_MS = 30_000;

export function refreshSchedule(
  obtainedAt: number,
  expiresAt: number,
  random: () => number = Math.random,
): RefreshSchedule {
  if (expiresAt <= obtainedAt) {
    const reuseUntil = obtainedAt + EXPIRED_ON_ARRIVAL_REUSE_MS;
    return { refreshAt: reuseUntil, hardExpiresAt: reuseUntil };
  }
  const lifetime = expiresAt - obtainedAt;
  const margin = Math.min(60_000, lifetime / 10) * (1 + 0.2 * random());
  // Time for a request carrying the token to reach the API: 5 s, or a twentieth of short lifetimes.
  const inFlight = Math.min(5_000, lifetime / 20);
  return { refreshAt: expiresAt - margin, hardExpiresAt: expiresAt - inFlight };
}
