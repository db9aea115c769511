import { type AuthorizationServer, type Client, ClientSecretBasic, ClientSecretPost } from 'oauth4webapi';
import { Problem } from '../problem.js';
import { addClientAssertion, clientAssertion, type SentClientAssertion } from './client-assertion.js';
import type { ClientAuthMethod, SigningKey } from './client-config.js';

export interface ClientCredentials {
  clientId: string;
  clientSecret: string;
  clientAuthMethod: ClientAuthMethod;
  /** The token URL: the default `aud` of a client assertion, also at the revocation endpoint. */
  tokenUrl?: string | undefined;
  clientAssertionAudience?: string | undefined;
  /** `private_key_jwt`: the key that signs. */
  signingKey?: SigningKey | undefined;
}

/**
 * Adds client authentication to a token, revocation or introspection request. Returns what a client
 * assertion said, for the diagnosis of a refusal; null for the other methods.
 *
 * `client_secret_basic` (RFC 6749 §2.3.1): `Authorization: Basic base64(formUrlEncode(id) ":"
 * formUrlEncode(secret))`. The form-urlencoding step is what §2.3.1 requires and what many clients
 * skip; without it a secret containing `:` or `%` is read wrongly by a conforming server. With Basic
 * the body carries no `client_id`: some servers refuse a request that authenticates twice.
 * `client_secret_post`: `client_id` and `client_secret` in the form body. oauth4webapi implements
 * both exactly; the server object is not consulted by either method.
 *
 * `client_secret_jwt`, `private_key_jwt` (RFC 7523 §2.2, OpenID Connect Core §9): a fresh assertion
 * for this very request (client-assertion.ts), with `aud` the token URL unless configured otherwise
 * — also at the revocation endpoint, as §9 says the audience is the token endpoint.
 *
 * `tls_client_auth`, `self_signed_tls_client_auth` (RFC 8705 §2): the TLS connection authenticates
 * (the caller's fetch presents the certificate); the body names the client (`client_id` is REQUIRED
 * there, §2). `none` (RFC 6749 §2.1 public clients): the `client_id` only — or nothing at all when
 * there is no client id (a JWT-bearer grant whose assertion is the only proof, RFC 7523 §3.1).
 */
export async function applyClientAuthentication(
  credentials: ClientCredentials,
  body: URLSearchParams,
  headers: Headers,
): Promise<SentClientAssertion | null> {
  body.delete('client_id');
  body.delete('client_secret');
  body.delete('client_assertion');
  body.delete('client_assertion_type');
  switch (credentials.clientAuthMethod) {
    case 'client_secret_basic':
    case 'client_secret_post': {
      const authenticate =
        credentials.clientAuthMethod === 'client_secret_post'
          ? ClientSecretPost(credentials.clientSecret)
          : ClientSecretBasic(credentials.clientSecret);
      await authenticate(UNUSED_SERVER, clientOf(credentials), body, headers);
      return null;
    }
    case 'client_secret_jwt':
    case 'private_key_jwt': {
      const { assertion, sent } = clientAssertion(
        { clientId: credentials.clientId, audience: assertionAudience(credentials) },
        credentials.clientAuthMethod === 'client_secret_jwt'
          ? { signer: { alg: 'HS256', secret: credentials.clientSecret } }
          : signerOf(credentials.signingKey),
      );
      addClientAssertion(body, credentials.clientId, assertion);
      return sent;
    }
    case 'tls_client_auth':
    case 'self_signed_tls_client_auth':
    case 'none':
      if (credentials.clientId !== '') body.set('client_id', credentials.clientId);
      return null;
  }
}

/** The `aud` of a client assertion: as configured, else the token URL. */
export function assertionAudience(
  credentials: Pick<ClientCredentials, 'clientAssertionAudience' | 'tokenUrl'>,
): string {
  const configured = credentials.clientAssertionAudience;
  if (configured !== undefined && configured !== '') return configured;
  return credentials.tokenUrl ?? '';
}

function signerOf(key: SigningKey | undefined) {
  if (key === undefined) {
    throw new Problem('validation_failed', 'private_key_jwt needs a private key, and none is stored.', {
      hint: 'Set generateKey, or give privateKey (and register the public key at the provider).',
      errors: [{ path: '/privateKey', message: 'is required with clientAuthMethod private_key_jwt' }],
    });
  }
  return {
    signer: { alg: key.alg, key: key.key },
    kid: key.kid,
    x5t: key.x5t,
    x5tS256: key.x5tS256,
  };
}

/** The oauth4webapi client record for these credentials. */
export function clientOf(credentials: Pick<ClientCredentials, 'clientId'>): Client {
  return { client_id: credentials.clientId };
}

const UNUSED_SERVER: AuthorizationServer = { issuer: 'urn:grantry:unused' };
