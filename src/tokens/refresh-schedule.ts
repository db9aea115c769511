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

export function refreshSchedule(
  obtainedAt: number,
  expiresAt: number,
  random: () => number = Math.random,
): RefreshSchedule {
  const lifetime = Math.max(0, expiresAt - obtainedAt);
  const margin = Math.min(60_000, lifetime / 10) * (1 + 0.2 * random());
  // Time for a request carrying the token to reach the API: 5 s, or a twentieth of short lifetimes.
  const inFlight = Math.min(5_000, lifetime / 20);
  return { refreshAt: expiresAt - margin, hardExpiresAt: expiresAt - inFlight };
}
