/** How the client authenticates at the token endpoint (RFC 6749 §2.3.1). */
export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post';

/** The token request parameter that carries `audience`: Auth0-style `audience`, or RFC 8707 `resource`. */
export type AudienceParam = 'audience' | 'resource';

/**
 * One OAuth 2.0 client as the protocol needs it: endpoints, credentials and the shape of the token
 * request. Secrets are in the clear here; callers decrypt them just before a request.
 */
export interface OAuthClientConfig {
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  clientAuthMethod: ClientAuthMethod;
  audience?: string | undefined;
  audienceParam: AudienceParam;
  /** Space-separated, sent exactly as given (RFC 6749 §3.3). */
  scope?: string | undefined;
  /** Added to every token request; never overrides a protocol parameter. */
  extraTokenParams?: Record<string, string> | undefined;
  authorizationUrl?: string | undefined;
  /** Added to the authorization URL; never overrides a protocol parameter. */
  extraAuthorizationParams?: Record<string, string> | undefined;
  /** RFC 7636 with S256; on unless explicitly false. */
  pkce?: boolean | undefined;
  revocationUrl?: string | undefined;
}

/** Every outbound call goes through this; in production it is `Egress.fetch` (no redirects, policy). */
export type OAuthFetch = typeof globalThis.fetch;

export interface TokenRequestOptions {
  fetch: OAuthFetch;
  /** Whole request including the body; default {@link DEFAULT_TOKEN_TIMEOUT_MS}. */
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

export const DEFAULT_TOKEN_TIMEOUT_MS = 15_000;

/**
 * Parameters that belong to the protocol (RFC 6749 §4, §6; RFC 7636). Caller-supplied extra parameters
 * (`extraTokenParams`, `extraAuthorizationParams`) may never set them: a configured extra must not be
 * able to swap the grant, the redirect URI or the client identity. The API validation reuses this list.
 */
export const PROTOCOL_PARAMETERS = [
  'grant_type',
  'code',
  'redirect_uri',
  'client_id',
  'client_secret',
  'refresh_token',
  'code_verifier',
  'username',
  'password',
  'scope',
  'state',
  'response_type',
  'code_challenge',
  'code_challenge_method',
] as const;

export type ProtocolParameter = (typeof PROTOCOL_PARAMETERS)[number];

const protocolParameterSet: ReadonlySet<string> = new Set(PROTOCOL_PARAMETERS);

export function isProtocolParameter(name: string): boolean {
  return protocolParameterSet.has(name.toLowerCase());
}
