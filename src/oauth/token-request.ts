import { EgressError } from '../egress/egress-error.js';
import { applyClientAuthentication } from './client-authentication.js';
import {
  DEFAULT_TOKEN_TIMEOUT_MS,
  isProtocolParameter,
  type OAuthClientConfig,
  type TokenRequestOptions,
} from './client-config.js';
import { type DiagnosisContext, diagnose } from './diagnosis.js';
import { OAuthError } from './oauth-error.js';
import {
  SECRET_PARAMETERS,
  type SecretRedaction,
  secretRedaction,
  sentSecretsOf,
} from './secret-redaction.js';
import { parseTokenResponse } from './token-response.js';
import type { TokenSet } from './token-set.js';

/** The grant-specific part of a token request (RFC 6749 §4.1.3, §4.3.2, §4.4.2, §6). */
export interface TokenGrantRequest {
  grantType: string;
  /** Protocol parameters of this grant, e.g. `code` and `redirect_uri`. */
  parameters: Record<string, string>;
  /** Whether the configured scope is sent: yes for new grants, no for a code exchange or a refresh. */
  includeScope: boolean;
}

export interface PreparedTokenRequest {
  url: string;
  body: URLSearchParams;
  headers: Headers;
}

/**
 * Builds the POST to the token endpoint. Precedence, lowest first: `extraTokenParams` (protocol names
 * dropped), the audience under its configured name, the scope, the grant's own parameters, then
 * client authentication, so nothing configured as "extra" can replace what the protocol sets.
 */
export async function prepareTokenRequest(
  config: OAuthClientConfig,
  request: TokenGrantRequest,
): Promise<PreparedTokenRequest> {
  const body = new URLSearchParams();
  for (const [name, value] of Object.entries(config.extraTokenParams ?? {})) {
    if (!isProtocolParameter(name)) body.set(name, value);
  }
  if (config.audience !== undefined && config.audience !== '')
    body.set(config.audienceParam, config.audience);
  if (request.includeScope && config.scope !== undefined && config.scope !== '')
    body.set('scope', config.scope);
  for (const [name, value] of Object.entries(request.parameters)) body.set(name, value);
  body.set('grant_type', request.grantType);
  const headers = new Headers({
    accept: 'application/json',
    'content-type': 'application/x-www-form-urlencoded',
  });
  await applyClientAuthentication(config, body, headers);
  return { url: config.tokenUrl, body, headers };
}

/**
 * Sends a token request and reads the answer with the tolerant parser. Network failures surface as
 * the `EgressError` of the fetch in use; the per-request timeout becomes an `EgressError` of kind
 * `timeout`; a caller's own abort is rethrown unchanged. Everything read from an error answer has the
 * secrets this request sent cut out, in every encoding (secret-redaction.ts).
 */
export async function sendTokenRequest(
  prepared: PreparedTokenRequest,
  options: TokenRequestOptions,
  redaction: SecretRedaction,
): Promise<TokenSet> {
  const { status, contentType, bodyText, headers } = await postForm(prepared, options);
  return parseTokenResponse({ status, contentType, bodyText, headers }, { redact: redaction.text });
}

/**
 * The grant functions' common path: send, parse, and turn any failure into a diagnosed `Problem`
 * whose message and hint fit this grant. A provider may echo the request in its error (the body,
 * the Basic header): every value we sent (secret, password, code, verifier, refresh token, the Basic
 * credentials) is cut out of every text of the problem, in every form it was sent in.
 */
export async function requestToken(
  config: OAuthClientConfig,
  request: TokenGrantRequest,
  options: TokenRequestOptions,
  context: Pick<DiagnosisContext, 'step' | 'redirectUri'>,
): Promise<TokenSet> {
  // What we mean to send, until the request is built and says exactly what it carries.
  let redaction = secretRedaction({
    values: SECRET_PARAMETERS.flatMap((name) => request.parameters[name] ?? []),
    client: config,
  });
  try {
    const prepared = await prepareTokenRequest(config, request);
    redaction = secretRedaction(sentSecretsOf(prepared.body, prepared.headers, config));
    return await sendTokenRequest(prepared, options, redaction);
  } catch (error) {
    if (isCallerAbort(error, options.signal)) throw error;
    throw redaction.problem(
      diagnose(error, {
        ...context,
        tokenUrl: config.tokenUrl,
        clientAuthMethod: config.clientAuthMethod,
        grantType: request.grantType,
        scope: config.scope,
        audience: config.audience,
        audienceParam: config.audienceParam,
      }),
    );
  }
}

export interface FormResponse {
  status: number;
  contentType: string | null;
  bodyText: string;
  headers: Headers;
}

/** POSTs a form with the request timeout; shared by the token and revocation requests. */
export async function postForm(
  prepared: PreparedTokenRequest,
  options: TokenRequestOptions,
): Promise<FormResponse> {
  const timeout = AbortSignal.timeout(options.timeoutMs ?? DEFAULT_TOKEN_TIMEOUT_MS);
  const signal = options.signal === undefined ? timeout : AbortSignal.any([timeout, options.signal]);
  try {
    const response = await options.fetch(prepared.url, {
      method: 'POST',
      headers: prepared.headers,
      body: prepared.body.toString(),
      redirect: 'manual',
      signal,
    });
    const bodyText = await response.text();
    return {
      status: response.status,
      contentType: response.headers.get('content-type'),
      bodyText,
      headers: response.headers,
    };
  } catch (error) {
    if (timeout.aborted && options.signal?.aborted !== true && !(error instanceof EgressError)) {
      throw new EgressError('timeout', hostOf(prepared.url), 'The endpoint did not answer in time.', {
        cause: error,
      });
    }
    throw error;
  }
}

function isCallerAbort(error: unknown, signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true && !(error instanceof EgressError) && !(error instanceof OAuthError);
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '';
  }
}
