import type { OAuthClientConfig, TokenRequestOptions } from '../client-config.js';
import { requestToken } from '../token-request.js';
import type { TokenSet } from '../token-set.js';

/**
 * Client Credentials Grant, RFC 6749 §4.4: the client asks for a token on its own behalf
 * (§4.4.2 request with the configured scope and audience; §4.4.3 response, no refresh token expected).
 * Failures are diagnosed `Problem`s.
 */
export function clientCredentialsGrant(
  config: OAuthClientConfig,
  options: TokenRequestOptions,
): Promise<TokenSet> {
  return requestToken(
    config,
    { grantType: 'client_credentials', parameters: {}, includeScope: true },
    options,
    { step: 'token' },
  );
}
