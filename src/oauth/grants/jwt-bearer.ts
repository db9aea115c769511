import { randomBytes } from 'node:crypto';
import { type JwsHeader, type JwsKey, signJws } from '../../keys/jws.js';
import { Problem } from '../../problem.js';
import { JWT_BEARER_GRANT_TYPE, type OAuthClientConfig, type TokenRequestOptions } from '../client-config.js';
import { requestToken } from '../token-request.js';
import type { TokenSet } from '../token-set.js';

export { JWT_BEARER_GRANT_TYPE };

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

/** The assertion's claims as configured: `iss` defaults to the client id, `aud` to the token URL. */
export function configuredClaims(
  config: Pick<OAuthClientConfig, 'assertion' | 'clientId' | 'tokenUrl'>,
): JwtBearerClaims {
  const { iss, sub, aud, ...extra } = config.assertion ?? {};
  return {
    iss: iss !== undefined && iss !== '' ? iss : config.clientId,
    sub,
    aud: aud !== undefined && aud !== '' ? aud : config.tokenUrl,
    extra,
  };
}

/**
 * JWT Bearer Token grant, RFC 7523 §2.1: the assertion is the grant (`grant_type` and `assertion`),
 * signed anew for every request with the authentication's key, with the configured scope as a
 * parameter when there is one (§2.1 allows it; Google reads the scope from the assertion's claims
 * instead) and the client authentication the authentication is set to (often `none`: the assertion
 * proves who asks, §3.1).
 */
export function jwtBearerGrant(config: OAuthClientConfig, options: TokenRequestOptions): Promise<TokenSet> {
  const key = config.signingKey;
  if (key === undefined) {
    throw new Problem('validation_failed', 'The JWT Bearer grant needs a private key, and none is stored.', {
      hint: 'Give serviceAccountJson or privateKey, or set generateKey and register the public key at the provider.',
      errors: [{ path: '/privateKey', message: 'is required with the JWT Bearer grant' }],
    });
  }
  const claims = configuredClaims(config);
  return requestToken(
    config,
    {
      grantType: JWT_BEARER_GRANT_TYPE,
      parameters: {},
      includeScope: true,
      assertion: () => jwtBearerAssertion(claims, { signer: { alg: key.alg, key: key.key }, kid: key.kid }),
    },
    options,
    { step: 'token' },
  );
}
