/**
 * What an HTTP answer says about trying again, read in one place for every outbound call (token
 * endpoints and connector APIs alike).
 */

/**
 * Statuses that say "not now" rather than "no": 429 Too Many Requests (RFC 6585 §4), 502 Bad
 * Gateway, 503 Service Unavailable and 504 Gateway Timeout (RFC 9110 §15.6.3–15.6.5). A request
 * that may be repeated can be sent again after a pause.
 */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);

/** RFC 9110 §10.2.3 Retry-After: delay-seconds or an HTTP-date, in ms from `now`; null when absent or unreadable. */
export function retryAfterMs(value: string | undefined, now = Date.now()): number | null {
  if (value === undefined) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}
