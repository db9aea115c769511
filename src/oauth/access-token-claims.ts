/**
 * Reads the claims of an access token that is a JWT (RFC 9068, or any compact JWS, RFC 7515 §7.1),
 * to explain why an API refused it. Nothing is verified: the token is Grantry's own, just received
 * from the provider, and what is read here is only ever compared and worded, never trusted for a
 * decision. Opaque tokens (most providers' default) read as null.
 *
 * Only the claims that explain a refusal are kept — audience, scope, issuer and the times. Claims
 * about the person (`sub`, `email`, `name`…) are never read out, so they cannot reach a hint, a
 * log or an event.
 */
export interface AccessTokenClaims {
  /** `iss` */
  issuer?: string;
  /** `aud`, always as a list (RFC 7519 §4.1.3 allows a string or an array). */
  audiences?: string[];
  /** `scope` (RFC 8693 §4.2, space-separated) or `scp` (Azure AD, Okta: a string or an array). */
  scopes?: string[];
  /** `exp`, `nbf`, `iat`: seconds since the epoch. */
  expiresAt?: number;
  notBefore?: number;
  issuedAt?: number;
}

/** Larger tokens are not read: no provider issues them, and a garbage one must stay cheap. */
const MAX_TOKEN_LENGTH = 16 * 1024;
const MAX_VALUES = 20;
const MAX_VALUE_LENGTH = 200;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** The claims of a compact JWS access token, or null for anything else. Never throws. */
export function readAccessTokenClaims(token: string): AccessTokenClaims | null {
  if (token.length > MAX_TOKEN_LENGTH) return null;
  const parts = token.split('.');
  // Three parts: a JWS. Five would be a JWE, whose payload is encrypted for the API, not for us.
  if (parts.length !== 3) return null;
  const [header, payload] = parts as [string, string, string];
  if (!BASE64URL.test(header) || !BASE64URL.test(payload)) return null;
  const head = jsonObject(header);
  if (head === null || typeof head.alg !== 'string') return null;
  const body = jsonObject(payload);
  if (body === null) return null;

  const claims: AccessTokenClaims = {};
  if (typeof body.iss === 'string') claims.issuer = clean(body.iss);
  const audiences = strings(body.aud);
  if (audiences !== undefined) claims.audiences = audiences;
  const scopes = strings(typeof body.scope === 'string' ? body.scope.split(' ') : body.scp);
  if (scopes !== undefined) claims.scopes = scopes;
  if (isTime(body.exp)) claims.expiresAt = body.exp;
  if (isTime(body.nbf)) claims.notBefore = body.nbf;
  if (isTime(body.iat)) claims.issuedAt = body.iat;
  return claims;
}

function jsonObject(part: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

/** A string (space-separated when it is a scope) or an array of strings, as a short clean list. */
function strings(value: unknown): string[] | undefined {
  const list = typeof value === 'string' ? value.split(' ') : Array.isArray(value) ? value : undefined;
  if (list === undefined) return undefined;
  const kept = list
    .filter((item): item is string => typeof item === 'string')
    .map(clean)
    .filter((item) => item !== '');
  return kept.length === 0 ? undefined : [...new Set(kept)].slice(0, MAX_VALUES);
}

function isTime(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 && value < 1e11;
}

/** Text that can go into a sentence: no control characters, no quotes to break out of, short. */
function clean(value: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point.
  const text = value.replace(/[\u0000-\u001f\u007f"\\]/g, '').trim();
  return text.length <= MAX_VALUE_LENGTH ? text : `${text.slice(0, MAX_VALUE_LENGTH - 1)}…`;
}
