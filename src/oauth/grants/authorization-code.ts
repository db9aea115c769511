import {
  AuthorizationResponseError,
  calculatePKCECodeChallenge,
  generateRandomCodeVerifier,
  generateRandomState,
  validateAuthResponse,
} from 'oauth4webapi';
import { Problem, type ProviderAnswer } from '../../problem.js';
import { clientOf } from '../client-authentication.js';
import { isProtocolParameter, type OAuthClientConfig, type TokenRequestOptions } from '../client-config.js';
import { diagnose } from '../diagnosis.js';
import { OAuthError, problemCodeForProviderError } from '../oauth-error.js';
import { shorten } from '../shorten.js';
import { requestToken } from '../token-request.js';
import type { TokenSet } from '../token-set.js';

export interface AuthorizationCodeExchange {
  code: string;
  /** The RFC 7636 verifier whose challenge went into the authorization URL. */
  codeVerifier?: string | undefined;
  /** Must be identical to the one in the authorization request (RFC 6749 §4.1.3). */
  redirectUri: string;
}

/**
 * Access Token Request with an authorization code, RFC 6749 §4.1.3 (+ RFC 7636 §4.5 `code_verifier`).
 * The scope is not sent: it was requested in the authorization request. The audience / `resource`
 * (RFC 8707 §2.2) is sent again.
 */
export function authorizationCodeGrant(
  config: OAuthClientConfig,
  exchange: AuthorizationCodeExchange,
  options: TokenRequestOptions,
): Promise<TokenSet> {
  const parameters: Record<string, string> = { code: exchange.code, redirect_uri: exchange.redirectUri };
  if (exchange.codeVerifier !== undefined) parameters.code_verifier = exchange.codeVerifier;
  return requestToken(config, { grantType: 'authorization_code', parameters, includeScope: false }, options, {
    step: 'token',
    redirectUri: exchange.redirectUri,
  });
}

export interface AuthorizationRequest {
  redirectUri: string;
  state: string;
  /** RFC 7636 S256 challenge; sent with `code_challenge_method=S256`. */
  codeChallenge?: string | undefined;
}

/**
 * The Authorization Request URL, RFC 6749 §4.1.1: `response_type=code`, `client_id`, `redirect_uri`,
 * `scope`, `state`, plus RFC 7636 §4.3 `code_challenge` (S256) and the audience (`audience`, or RFC 8707
 * `resource`). Query parameters already in the configured URL are kept (some providers put a tenant
 * or policy there); `extraAuthorizationParams` are added but can never replace a protocol parameter.
 */
export function buildAuthorizationUrl(config: OAuthClientConfig, request: AuthorizationRequest): URL {
  if (config.authorizationUrl === undefined || config.authorizationUrl === '') {
    throw new Problem('validation_failed', 'The authorization URL is missing.', {
      errors: [{ path: '/authorizationUrl', message: 'required for the authorization_code grant' }],
    });
  }
  const url = new URL(config.authorizationUrl);
  const query = url.searchParams;
  for (const [name, value] of Object.entries(config.extraAuthorizationParams ?? {})) {
    if (!isProtocolParameter(name)) query.set(name, value);
  }
  if (config.audience !== undefined && config.audience !== '')
    query.set(config.audienceParam, config.audience);
  query.set('response_type', 'code');
  query.set('client_id', config.clientId);
  query.set('redirect_uri', request.redirectUri);
  if (config.scope !== undefined && config.scope !== '') query.set('scope', config.scope);
  else query.delete('scope');
  query.set('state', request.state);
  if (request.codeChallenge === undefined) {
    query.delete('code_challenge');
    query.delete('code_challenge_method');
  } else {
    query.set('code_challenge', request.codeChallenge);
    query.set('code_challenge_method', 'S256');
  }
  return url;
}

export interface PkcePair {
  codeVerifier: string;
  codeChallenge: string;
  codeChallengeMethod: 'S256';
}

/** A fresh RFC 7636 verifier (§4.1, 43 chars of 32 random bytes) and its S256 challenge (§4.2). */
export async function createPkcePair(): Promise<PkcePair> {
  const codeVerifier = generateRandomCodeVerifier();
  return {
    codeVerifier,
    codeChallenge: await calculatePKCECodeChallenge(codeVerifier),
    codeChallengeMethod: 'S256',
  };
}

/** An unguessable `state` value (RFC 6749 §10.12), 32 random bytes. */
export function createState(): string {
  return generateRandomState();
}

export interface AuthorizationStart {
  authorizationUrl: URL;
  /** Store it with the flow; the callback must carry it back unchanged. */
  state: string;
  /** Store it with the flow for the code exchange; null when PKCE is off for this client. */
  codeVerifier: string | null;
}

/**
 * Starts an authorization-code flow: a fresh `state`, a PKCE pair unless `config.pkce` is false
 * (RFC 7636 S256, on by default; OAuth 2.0 Security BCP §2.1.1), and the authorization URL.
 */
export async function startAuthorization(
  config: OAuthClientConfig,
  redirectUri: string,
): Promise<AuthorizationStart> {
  const state = createState();
  if (config.pkce === false) {
    return {
      authorizationUrl: buildAuthorizationUrl(config, { redirectUri, state }),
      state,
      codeVerifier: null,
    };
  }
  const { codeVerifier, codeChallenge } = await createPkcePair();
  return {
    authorizationUrl: buildAuthorizationUrl(config, { redirectUri, state, codeChallenge }),
    state,
    codeVerifier,
  };
}

export interface CallbackExpectations {
  /** The `state` this flow stored when it built the authorization URL. */
  state: string;
  /** The issuer, when known (discovery): then an `iss` parameter must name it (RFC 9207 §2.4). */
  issuer?: string | null | undefined;
  /** The issuer's `authorization_response_iss_parameter_supported`: then `iss` is required. */
  issParameterSupported?: boolean | undefined;
  clientId: string;
  redirectUri?: string | undefined;
}

/**
 * Validates the redirect back from the authorization endpoint (RFC 6749 §4.1.2, §4.1.2.1; RFC 9207
 * mix-up defence) with oauth4webapi, and returns the code. A wrong `state` or `iss` is
 * `invalid_state`; an `error=` redirect becomes the provider's own code, diagnosed for the `authorize`
 * step (`access_denied`, `invalid_scope`, …).
 */
export function validateAuthorizationCallback(
  parameters: URLSearchParams,
  expected: CallbackExpectations,
): { code: string } {
  const known = expected.issuer !== undefined && expected.issuer !== null && expected.issuer !== '';
  const checked = new URLSearchParams(parameters);
  // Without a known issuer there is nothing to compare `iss` with; the stored `state` still binds it.
  if (!known) checked.delete('iss');
  const server = {
    issuer: known ? (expected.issuer as string) : 'urn:grantry:unknown-issuer',
    authorization_response_iss_parameter_supported: known && expected.issParameterSupported === true,
  };
  let validated: URLSearchParams;
  try {
    validated = validateAuthResponse(server, clientOf(expected), checked, expected.state);
  } catch (error) {
    if (error instanceof AuthorizationResponseError) {
      const provider: ProviderAnswer = { error: shorten(error.error, 100) };
      if (error.error_description !== undefined)
        provider.errorDescription = shorten(error.error_description, 500);
      const uri = parameters.get('error_uri');
      if (uri !== null && uri !== '') provider.errorUri = shorten(uri, 500);
      const code = problemCodeForProviderError(error.error, error.error_description);
      const oauthError = new OAuthError(code, `The provider answered "${provider.error}".`, {
        provider,
        facts: { reason: code === 'token_fetch_failed' ? 'provider_error' : 'oauth_error' },
      });
      throw diagnose(oauthError, { step: 'authorize', redirectUri: expected.redirectUri });
    }
    const aboutIssuer = error instanceof Error && error.message.includes('"iss"');
    throw new Problem(
      'invalid_state',
      aboutIssuer
        ? 'The authorization response did not come from the expected issuer.'
        : 'The authorization response does not belong to a flow started here (state mismatch).',
      {
        hint: 'Start the authorization again from Grantry, in one browser tab.',
        cause: error,
      },
    );
  }
  const code = validated.get('code');
  if (code === null || code === '') {
    throw new Problem('invalid_request', 'The authorization response carries no code.', {
      hint: 'Start the authorization again; if it repeats, check the authorization URL and the client settings at the provider.',
    });
  }
  return { code };
}
