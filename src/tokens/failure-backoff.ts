/**
 * How long the whole cluster leaves a provider alone after a failed token attempt. The failure is
 * stored (store `tokenFailures`) with the time of the next attempt, and every instance reads it
 * before it asks the provider, so N instances make the requests one would — not N times as many.
 *
 * The delay doubles with each failure in a row of the same configuration: transient failures
 * (network, 5xx, 429) start at one second and stop doubling at a minute; failures a retry cannot
 * fix (RFC 6749 §5.2 errors such as `invalid_client`, the egress policy, a refused refresh token)
 * start at five seconds and stop at five minutes. A person pressing Test is not held back
 * (`ignoreBackoff`), and any change to the authentication starts a new configuration generation,
 * which the stored failure does not apply to.
 */

/** Failures a retry cannot fix: backed off longer. */
export const PERMANENT_FAILURES: ReadonlySet<string> = new Set([
  'invalid_client',
  'invalid_grant',
  'invalid_scope',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_request',
  'invalid_target',
  'invalid_redirect_uri',
  'egress_denied',
  'insecure_url',
  'needs_authorization',
  'wrong_master_key',
]);

export interface BackoffSteps {
  /** The delay after the first failure. */
  firstMs: number;
  /** The longest delay. */
  maxMs: number;
}

export const TRANSIENT_BACKOFF: BackoffSteps = { firstMs: 1_000, maxMs: 60_000 };
export const PERMANENT_BACKOFF: BackoffSteps = { firstMs: 5_000, maxMs: 300_000 };

/** The steps that apply to a problem code. */
export function backoffStepsFor(code: string): BackoffSteps {
  return PERMANENT_FAILURES.has(code) ? PERMANENT_BACKOFF : TRANSIENT_BACKOFF;
}

/** The delay after the `attempts`-th failure in a row (1 for the first): firstMs · 2^(attempts−1), capped. */
export function failureBackoffMs(code: string, attempts: number): number {
  const { firstMs, maxMs } = backoffStepsFor(code);
  return Math.min(maxMs, firstMs * 2 ** Math.max(0, Math.min(attempts - 1, 30)));
}

/**
 * The most token attempts the cluster makes within `windowMs` of its first failed one, when every
 * attempt fails with `code`: the first at 0, the n+1-th no sooner than the sum of the first n
 * delays. (Each attempt is one request to the provider, except for 429/502/503/504 answers, which
 * the token manager retries twice within the attempt.)
 */
export function maxAttemptsWithin(code: string, windowMs: number): number {
  let attempts = 1;
  let at = 0;
  for (;;) {
    at += failureBackoffMs(code, attempts);
    if (at > windowMs) return attempts;
    attempts++;
  }
}
