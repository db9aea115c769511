import { randomBytes } from 'node:crypto';
import { type JwsHeader, type JwsKey, signJws } from '../../keys/jws.js';
import type { OAuthClientConfig, TokenRequestOptions } from '../client-config.js';
import { requestToken } from '../token-request.js';
import type { TokenSet } from '../token-set.js';

/** RFC 7523 §2.1: the grant type URI of a JWT used as an authorization grant. */
export const JWT_BEARER_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/**
 * How long a JWT-bearer assertion is valid. Google accepts at most an hour after `iat`; Salesforce
 * wants `exp` within three minutes: two minutes suits both, and the assertion is used at once.
 */
export const JWT_BEARER_LIFETIME_SECONDS = 120;

/** The claims that Grantry sets itself and an `assertion` map may not: times and the JWT id. */
export const RESERVED_ASSERTION_CLAIMS = ['exp', 'iat', 'nbf', 'jti'] as const;

export interface JwtBearerClaims {
  /** Who issues the assertion: a Google service account's email, a Salesforce consumer key. */
  iss: string;
  /** Whom the token is for: the user of Google domain-wide delegation, a Salesforce username. */
  sub?: string | undefined;
  /** Who must accept it: the token endpoint (Google), or what the provider names (Salesforce's login URL). */
  aud: string;
  /** Further claims as given (Google's `scope`); the reserved ones are ignored. */
  extra?: Readonly<Record<string, string>> | undefined;
}

export interface SentJwtBearerAssertion {
  alg: JwsKey['alg'];
  kid: string | undefined;
  audience: string;
  issuedAt: number;
  expiresAt: number;
}

/**
 * Signs the assertion of the JWT-bearer grant (RFC 7523 §3): `iss`, `sub` when given, `aud`, `iat`,
 * `exp` two minutes later, a fresh `jti`, and the extra claims. The key id goes in the header so the
 * provider finds the key (Google's `private_key_id`).
 */
export function jwtBearerAssertion(
  claims: JwtBearerClaims,
  signer: { signer: JwsKey; kid?: string | undefined },
  now: number = Date.now(),
): { assertion: string; sent: SentJwtBearerAssertion } {
  const iat = Math.floor(now / 1000);
  const exp = iat + JWT_BEARER_LIFETIME_SECONDS;
  const payload: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(claims.extra ?? {})) {
    if (!(RESERVED_ASSERTION_CLAIMS as readonly string[]).includes(name)) payload[name] = value;
  }
  payload.iss = claims.iss;
  if (claims.sub !== undefined && claims.sub !== '') payload.sub = claims.sub;
  payload.aud = claims.aud;
  payload.iat = iat;
  payload.exp = exp;
  payload.jti = randomBytes(16).toString('base64url');
  const header: JwsHeader = { typ: 'JWT' };
  if (signer.kid !== undefined) header.kid = signer.kid;
  return {
    assertion: signJws(header, payload, signer.signer),
    sent: { alg: signer.signer.alg, kid: signer.kid, audience: claims.aud, issuedAt: iat, expiresAt: exp },
  };
}

/**
 * JWT Bearer Token grant, RFC 7523 §2.1: the assertion is the grant (`grant_type` and `assertion`),
 * with the configured scope (§2.1 allows it; Google reads the scope from the assertion instead) and
 * the client authentication the authentication is set to (often `none`: the assertion proves who
 * asks, §3.1).
 */
export function jwtBearerGrant(
  config: OAuthClientConfig,
  assertion: string,
  options: TokenRequestOptions,
): Promise<TokenSet> {
  return requestToken(
    config,
    { grantType: JWT_BEARER_GRANT_TYPE, parameters: { assertion }, includeScope: true },
    options,
    { step: 'token' },
  );
}
