import type { OAuthClientConfig, TokenRequestOptions } from '../client-config.js';
import { requestToken } from '../token-request.js';
import type { TokenSet } from '../token-set.js';

/**
 * Refreshing an Access Token, RFC 6749 §6. The scope is not sent: omitted means "the scope originally
 * granted" (§6), which avoids an `invalid_scope` when the provider narrowed it. The audience (or
 * RFC 8707 §2.2 `resource`) is sent again. The answer may carry a new refresh token (rotation) or
 * none, in which case the caller keeps the old one (`refreshToken: null`).
 */
export function refreshTokenGrant(
  config: OAuthClientConfig,
  refreshToken: string,
  options: TokenRequestOptions,
): Promise<TokenSet> {
  return requestToken(
    config,
    { grantType: 'refresh_token', parameters: { refresh_token: refreshToken }, includeScope: false },
    options,
    { step: 'refresh' },
  );
}
