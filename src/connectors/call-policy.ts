import type { EgressFailureKind } from '../egress/egress-error.js';
import { RETRYABLE_STATUSES } from '../egress/retry-after.js';
import { parseBearerChallenge } from '../oauth/www-authenticate.js';

/**
 * The rules the call pipeline follows between attempts, as values: what is retried, which
 * redirects are followed, which bodies can be sent twice, and which refusals earn a fresh
 * credential. Execute and the proxy differ only in the values they pass.
 */

/** When a call is sent again after an attempt that did not work out. */
export interface RetryPolicy {
  /** Retries after the first attempt. */
  readonly retries: number;
  /** First backoff; doubles per retry, with jitter (half fixed, half random). */
  readonly baseDelayMs: number;
  /** A Retry-After longer than this is not waited for: the answer is returned as data. */
  readonly maxRetryAfterMs: number;
  /** Statuses worth another attempt of an idempotent call; empty when statuses are always data. */
  readonly statuses: ReadonlySet<number>;
}

/**
 * Execute: connection failures that are safe to repeat, and 429/502/503/504 for idempotent
 * methods, honouring Retry-After up to 5 s.
 */
export const EXECUTE_RETRY: RetryPolicy = {
  retries: 2,
  baseDelayMs: 200,
  maxRetryAfterMs: 5_000,
  statuses: RETRYABLE_STATUSES,
};

/**
 * The proxy: connection failures that are safe to repeat, with the same backoff as execute. An
 * answer is the caller's, whatever its status: a transparent proxy passes a 503 and its
 * Retry-After through rather than deciding for its caller how long to wait.
 */
export const PROXY_RETRY: RetryPolicy = {
  retries: 2,
  baseDelayMs: 200,
  maxRetryAfterMs: 0,
  statuses: new Set(),
};

/** RFC 9110 §9.2.2: a repeat has the same effect, so a request whose fate is unknown may be sent again. */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);

/**
 * Connection failures where the request never left Grantry: no connection was made, so nothing
 * reached the API and any method may be sent again.
 */
const NOTHING_SENT: ReadonlySet<EgressFailureKind> = new Set(['refused', 'unreachable']);
/**
 * The connection broke while the request was on its way or being answered (a reused keep-alive
 * connection the server had just closed, a reset): the API may have acted on it, so only an
 * idempotent method goes again.
 */
const FATE_UNKNOWN: ReadonlySet<EgressFailureKind> = new Set(['reset']);

/**
 * Whether a connection failure of `kind` may be answered by sending the call again. Never for a
 * timeout (the deadline is spent), a refused destination (egress policy, https rule), DNS or TLS
 * failures (they do not pass within a call), and never when the body cannot be sent twice.
 */
export function isSafeToRetry(kind: EgressFailureKind, method: string, replayable: boolean): boolean {
  if (!replayable) return false;
  return NOTHING_SENT.has(kind) || (FATE_UNKNOWN.has(kind) && IDEMPOTENT_METHODS.has(method));
}

/** The backoff before retry number `retry` (0-based): base · 2^retry, the upper half random. */
export function backoffMs(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  const base = policy.baseDelayMs * 2 ** retry;
  return Math.round(base / 2 + random() * (base / 2));
}

/** Which redirects the pipeline follows itself (any other 3xx is the caller's answer). */
export interface RedirectPolicy {
  /** Methods whose redirects are followed (RFC 9110 §15.4: safe to repeat at the new target). */
  readonly methods: ReadonlySet<string>;
  readonly maxRedirects: number;
}

/**
 * Execute follows redirects of GET and HEAD, at most five, carrying credentials only while the
 * target stays below the connector's base URL (RFC 9110 §15.4).
 */
export const FOLLOW_REDIRECTS: RedirectPolicy = { methods: new Set(['GET', 'HEAD']), maxRedirects: 5 };

/** The proxy passes every 3xx to its caller unchanged: redirects are the caller's business. */
export const PASS_REDIRECTS_THROUGH: RedirectPolicy = { methods: new Set(), maxRedirects: 0 };

/**
 * Body replay. A request body can be sent again (a retry, a fresh credential after a refusal)
 * only if Grantry holds it: execute bodies always are (they arrive as JSON); a proxied body is
 * read into memory up to this size, and streamed straight through beyond it (or when chunked),
 * in which case the call gets one attempt.
 */
export const REPLAYABLE_BODY_BYTES = 64 * 1024;

export type ProxiedBodyHandling = 'none' | 'buffer' | 'stream';

/** How the proxy carries a request body, from its framing (RFC 9112 §6.3). */
export function proxiedBodyHandling(
  contentLength: string | undefined,
  chunked: boolean,
): ProxiedBodyHandling {
  if (chunked) return 'stream';
  if (contentLength === undefined || contentLength === '0') return 'none';
  return Number(contentLength) > REPLAYABLE_BODY_BYTES ? 'stream' : 'buffer';
}

/** The statuses a connector's `refreshOn` may list (docs/api.md "Connectors"). */
export type RefreshStatus = 401 | 403;
export const DEFAULT_REFRESH_ON: readonly RefreshStatus[] = [401];

/**
 * Whether an answer refuses the credential in a way a fresh one may fix, given the connector's
 * `refreshOn`. A 401 says the token is not (or no longer) valid (RFC 6750 §3.1 invalid_token). A
 * 403 usually says the token is fine but lacks a right, and then a new token changes nothing —
 * yet some APIs answer every bad token with a bare 403 (Django OAuth Toolkit's stock protection
 * sends no WWW-Authenticate at all), so a connector may list 403 too. A 403 that names
 * `insufficient_scope` in its Bearer challenge (RFC 6750 §3.1) never counts: the same client gets
 * the same scope.
 */
export function refusesCredential(
  status: number,
  wwwAuthenticate: string | string[] | undefined,
  refreshOn: ReadonlySet<number>,
): boolean {
  if (status !== 401 && status !== 403) return false;
  if (!refreshOn.has(status)) return false;
  const header = Array.isArray(wwwAuthenticate) ? wwwAuthenticate.join(', ') : wwwAuthenticate;
  // RFC 9449 §7.1, §9: the proof was refused (or a nonce asked for again), not the token: a new
  // token would be refused the same way.
  if (isDpopProofRefusal(header)) return false;
  if (status === 401) return true;
  return parseBearerChallenge(header)?.error !== 'insufficient_scope';
}

/** A `DPoP` challenge refusing the proof rather than the token (`invalid_dpop_proof`, `use_dpop_nonce`). */
export function isDpopProofRefusal(wwwAuthenticate: string | undefined): boolean {
  const error = parseBearerChallenge(wwwAuthenticate, 'dpop')?.error;
  return error === 'invalid_dpop_proof' || error === 'use_dpop_nonce';
}
