import type { ConfiguredClientAuthMethod } from '../oauth/client-auth-detection.js';
import { Problem } from '../problem.js';
import type { AuthenticationRecord, AuthenticationSettings, GrantType } from '../store/contract.js';

/** An OAuth 2.0 authentication's settings with the fields the protocol needs always present. */
export interface OAuthSettings extends AuthenticationSettings {
  tokenUrl: string;
  clientId: string;
  headerPrefix: string;
  audienceParam: 'audience' | 'resource';
  clientAuthMethod: ConfiguredClientAuthMethod;
}

export interface OAuthView {
  grantType: GrantType;
  settings: OAuthSettings;
}

/**
 * The OAuth 2.0 reading of a stored authentication. The services store every default, so the
 * fallbacks here only cover records written by hand; a static credential (API key, Basic, Bearer)
 * has no token lifecycle and is refused with a clear problem rather than a confusing request.
 */
export function oauthOf(record: AuthenticationRecord): OAuthView {
  if (record.type !== 'oauth2' || record.grantType === null) {
    throw new Problem(
      'not_supported',
      'This authentication is a static credential: it has no token to fetch.',
      {
        hint: 'Static credentials (API key, Basic, Bearer) are sent as they are on every call; test them through a connector.',
      },
    );
  }
  const s = record.settings;
  return {
    grantType: record.grantType,
    settings: {
      ...s,
      tokenUrl: s.tokenUrl ?? '',
      clientId: s.clientId ?? '',
      headerPrefix: s.headerPrefix ?? 'Bearer',
      audienceParam: s.audienceParam ?? 'audience',
      clientAuthMethod: s.clientAuthMethod ?? 'client_secret_basic',
    },
  };
}
