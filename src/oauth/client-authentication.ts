import { type AuthorizationServer, type Client, ClientSecretBasic, ClientSecretPost } from 'oauth4webapi';
import type { ClientAuthMethod } from './client-config.js';

export interface ClientCredentials {
  clientId: string;
  clientSecret: string;
  clientAuthMethod: ClientAuthMethod;
}

/**
 * Adds client authentication to a token, revocation or introspection request (RFC 6749 §2.3.1).
 *
 * `client_secret_basic`: `Authorization: Basic base64(formUrlEncode(id) ":" formUrlEncode(secret))`.
 * The form-urlencoding step is what §2.3.1 requires and what many clients skip; without it a secret
 * containing `:` or `%` is read wrongly by a conforming server. With Basic the body carries no
 * `client_id`: some servers refuse a request that authenticates twice.
 *
 * `client_secret_post`: `client_id` and `client_secret` in the form body.
 *
 * oauth4webapi implements both exactly; the server object is not consulted by either method.
 */
export async function applyClientAuthentication(
  credentials: ClientCredentials,
  body: URLSearchParams,
  headers: Headers,
): Promise<void> {
  const authenticate =
    credentials.clientAuthMethod === 'client_secret_post'
      ? ClientSecretPost(credentials.clientSecret)
      : ClientSecretBasic(credentials.clientSecret);
  body.delete('client_id');
  body.delete('client_secret');
  await authenticate(UNUSED_SERVER, clientOf(credentials), body, headers);
}

/** The oauth4webapi client record for these credentials. */
export function clientOf(credentials: Pick<ClientCredentials, 'clientId'>): Client {
  return { client_id: credentials.clientId };
}

const UNUSED_SERVER: AuthorizationServer = { issuer: 'urn:grantry:unused' };
