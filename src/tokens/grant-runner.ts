import type {
  ClientAuthMethod,
  MetadataLookup,
  OAuthClientConfig,
  TokenRequestOptions,
} from '../oauth/client-config.js';
import type { DpopNonces } from '../oauth/dpop.js';
import { authorizationCodeGrant } from '../oauth/grants/authorization-code.js';
import { clientCredentialsGrant } from '../oauth/grants/client-credentials.js';
import { jwtBearerGrant } from '../oauth/grants/jwt-bearer.js';
import { passwordGrant } from '../oauth/grants/password.js';
import { refreshTokenGrant } from '../oauth/grants/refresh-token.js';
import type { TokenSet } from '../oauth/token-set.js';
import type { AuthenticationRecord } from '../store/contract.js';
import { dpopBindingOf, keyFactsOf, signingKeyOf } from './authentication-keys.js';
import { oauthOf } from './oauth-settings.js';
import type { AuthenticationSecrets } from './sealed-columns.js';

/**
 * Turns a stored authentication into the protocol's client configuration and runs a grant.
 * The only place where the token lifecycle touches the protocol functions.
 *
 * `method` is how to send the client secret this time; it matters for `auto` only (detection picks
 * it), and without one `auto` sends Basic, the method every server must support (RFC 6749 §2.3.1).
 * `context` is what the token lifecycle adds for keys: where DPoP nonces are kept, the provider's
 * metadata (looked up only to explain a refusal), the authentication's JWKS URL.
 */
export function clientConfigOf(
  record: AuthenticationRecord,
  secrets: AuthenticationSecrets,
  method?: ClientAuthMethod,
  context: GrantContext = {},
): OAuthClientConfig {
  const s = oauthOf(record).settings;
  const config: OAuthClientConfig = {
    tokenUrl: s.tokenUrl,
    clientId: s.clientId,
    clientSecret: secrets.clientSecret,
    clientAuthMethod: s.clientAuthMethod === 'auto' ? (method ?? 'client_secret_basic') : s.clientAuthMethod,
    audienceParam: s.audienceParam,
  };
  if (s.audience !== undefined) config.audience = s.audience;
  if (s.scope !== undefined) config.scope = s.scope;
  if (s.extraTokenParams !== undefined) config.extraTokenParams = s.extraTokenParams;
  if (s.authorizationUrl !== undefined) config.authorizationUrl = s.authorizationUrl;
  if (s.extraAuthorizationParams !== undefined) config.extraAuthorizationParams = s.extraAuthorizationParams;
  if (s.pkce !== undefined) config.pkce = s.pkce;
  if (s.revocationUrl !== undefined) config.revocationUrl = s.revocationUrl;
  if (s.clientAssertionAudience !== undefined) config.clientAssertionAudience = s.clientAssertionAudience;
  if (s.assertion !== undefined) config.assertion = s.assertion;
  const keys = secrets.keys;
  if (keys.current !== null) config.signingKey = signingKeyOf(keys);
  if (s.dpop === true && context.dpopNonces !== undefined) {
    config.dpop = dpopBindingOf(keys, context.dpopNonces);
  }
  if (context.metadata !== undefined) config.metadata = context.metadata;
  config.keyFacts = keyFactsOf(keys, context.jwksUri ?? null);
  return config;
}

/** What the token lifecycle adds to a client configuration (see {@link clientConfigOf}). */
export interface GrantContext {
  dpopNonces?: DpopNonces | undefined;
  metadata?: MetadataLookup | undefined;
  jwksUri?: string | null | undefined;
}

export type GrantRun =
  | { kind: 'initial' }
  | { kind: 'refresh'; refreshToken: string }
  | { kind: 'code'; code: string; codeVerifier: string | null; redirectUri: string };

export async function runGrant(
  record: AuthenticationRecord,
  secrets: AuthenticationSecrets,
  run: GrantRun,
  options: TokenRequestOptions,
  method?: ClientAuthMethod,
  context: GrantContext = {},
): Promise<TokenSet> {
  const config = clientConfigOf(record, secrets, method, context);
  if (run.kind === 'refresh') return refreshTokenGrant(config, run.refreshToken, options);
  if (run.kind === 'code') {
    return authorizationCodeGrant(
      config,
      run.codeVerifier === null
        ? { code: run.code, redirectUri: run.redirectUri }
        : { code: run.code, codeVerifier: run.codeVerifier, redirectUri: run.redirectUri },
      options,
    );
  }
  switch (oauthOf(record).grantType) {
    case 'client_credentials':
      return clientCredentialsGrant(config, options);
    case 'password':
      return passwordGrant(
        config,
        { username: record.settings.username ?? '', password: secrets.password ?? '' },
        options,
      );
    case 'jwt_bearer':
      return jwtBearerGrant(config, options);
    case 'authorization_code':
      throw new Error('An authorization_code authentication gets its first tokens from the consent flow.');
  }
}
