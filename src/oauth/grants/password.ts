import type { OAuthClientConfig, TokenRequestOptions } from '../client-config.js';
import { requestToken } from '../token-request.js';
import type { TokenSet } from '../token-set.js';

export interface ResourceOwnerCredentials {
  username: string;
  password: string;
}

/**
 * Resource Owner Password Credentials Grant, RFC 6749 §4.3 (§4.3.2 request: `username`, `password`,
 * scope). A refused username or password comes back as `invalid_grant` (§5.2) and is diagnosed so.
 */
export function passwordGrant(
  config: OAuthClientConfig,
  credentials: ResourceOwnerCredentials,
  options: TokenRequestOptions,
): Promise<TokenSet> {
  return requestToken(
    config,
    {
      grantType: 'password',
      parameters: { username: credentials.username, password: credentials.password },
      includeScope: true,
    },
    options,
    { step: 'token' },
  );
}
