import { randomBytes } from 'node:crypto';
import { type JwsHeader, type JwsKey, signJws } from '../keys/jws.js';

/**
 * Client authentication with a JWT (RFC 7523 §2.2 and §3; OpenID Connect Core 1.0 §9):
 * `client_secret_jwt` signs with HS256 and the client secret, `private_key_jwt` with the client's
 * private key. The assertion is sent as `client_assertion` with
 * `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
 *
 * Claims: `iss` and `sub` are the client id, `aud` the token endpoint (or what the authentication
 * sets as clientAssertionAudience, for providers that want their issuer), a fresh random `jti`
 * (providers refuse a replayed one), `iat` and `nbf` now, and a short `exp`. Nothing of the assertion
 * outlives the request: it is made for it and cut from anything the provider echoes.
 */

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/**
 * How long an assertion is valid. Short, because it is used at once: a minute is what oauth4webapi
 * uses, within every provider's limit (Microsoft Entra ID: 10 minutes; Okta: 1 hour).
 */
export const CLIENT_ASSERTION_LIFETIME_SECONDS = 60;

export interface ClientAssertionSigner {
  signer: JwsKey;
  /** The key id the provider finds the public key by (absent for HS256). */
  kid?: string | undefined;
  /**
   * Certificate thumbprints for providers that find the key by its certificate (Microsoft Entra ID
   * reads `x5t#S256`, older setups `x5t`; RFC 7515 §4.1.7–4.1.8).
   */
  x5t?: string | undefined;
  x5tS256?: string | undefined;
}

export interface ClientAssertionInput {
  clientId: string;
  audience: string;
  /** Milliseconds since the epoch; default now. */
  now?: number | undefined;
}

/** What a client assertion said, for the diagnosis of a refusal (no signature, nothing secret). */
export interface SentClientAssertion {
  alg: JwsKey['alg'];
  kid: string | undefined;
  audience: string;
  issuedAt: number;
  expiresAt: number;
}

/** Signs a client assertion; returns it with what it said. */
export function clientAssertion(
  input: ClientAssertionInput,
  signer: ClientAssertionSigner,
): { assertion: string; sent: SentClientAssertion } {
  const iat = Math.floor((input.now ?? Date.now()) / 1000);
  const exp = iat + CLIENT_ASSERTION_LIFETIME_SECONDS;
  const header: JwsHeader = { typ: 'JWT' };
  if (signer.kid !== undefined) header.kid = signer.kid;
  if (signer.x5tS256 !== undefined) header['x5t#S256'] = signer.x5tS256;
  if (signer.x5t !== undefined) header.x5t = signer.x5t;
  const assertion = signJws(
    header,
    {
      iss: input.clientId,
      sub: input.clientId,
      aud: input.audience,
      jti: randomBytes(32).toString('base64url'),
      iat,
      nbf: iat,
      exp,
    },
    signer.signer,
  );
  return {
    assertion,
    sent: {
      alg: signer.signer.alg,
      kid: signer.kid,
      audience: input.audience,
      issuedAt: iat,
      expiresAt: exp,
    },
  };
}

/**
 * Puts the assertion in a token, revocation or introspection request body (RFC 7521 §4.2). The
 * client id is sent too: RFC 7521 makes it optional, and several providers (Microsoft Entra ID among
 * them) look the client up by it before reading the assertion.
 */
export function addClientAssertion(body: URLSearchParams, clientId: string, assertion: string): void {
  body.delete('client_secret');
  body.set('client_id', clientId);
  body.set('client_assertion_type', CLIENT_ASSERTION_TYPE);
  body.set('client_assertion', assertion);
}
