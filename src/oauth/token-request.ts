import { EgressError } from '../egress/egress-error.js';
import type { AssertionFacts } from './assertion-diagnosis.js';
import type { SentClientAssertion } from './client-assertion.js';
import { applyClientAuthentication } from './client-authentication.js';
import {
  DEFAULT_TOKEN_TIMEOUT_MS,
  isProtocolParameter,
  type OAuthClientConfig,
  type TokenRequestOptions,
} from './client-config.js';
import { type DiagnosisContext, diagnose } from './diagnosis.js';
import { dpopProof, type SentProof } from './dpop.js';
import { OAuthError } from './oauth-error.js';
import { requestTimeout } from './request-timeout.js';
import { SECRET_PARAMETERS, secretRedaction, sentSecretsOf } from './secret-redaction.js';
import { parseTokenResponse } from './token-response.js';
import type { TokenSet } from './token-set.js';

/** The grant-specific part of a token request (RFC 6749 §4.1.3, §4.3.2, §4.4.2, §6). */
export interface TokenGrantRequest {
  grantType: string;
  /** Protocol parameters of this grant, e.g. `code` and `redirect_uri`. */
  parameters: Record<string, string>;
  /** Whether the configured scope is sent: yes for new grants, no for a code exchange or a refresh. */
  includeScope: boolean;
  /**
   * A signed assertion that is the grant itself (RFC 7523 §2.1), made anew for every attempt: a
   * retry (a DPoP nonce) must not replay its `jti`.
   */
  assertion?: () => { assertion: string; sent: Omit<AssertionFacts, 'method'> };
}

export interface PreparedTokenRequest {
  url: string;
  body: URLSearchParams;
  headers: Headers;
  /** What a client assertion or a grant assertion said, for the diagnosis of a refusal. */
  assertion?: AssertionFacts | undefined;
  /** What the DPoP proof said (RFC 9449), when one was added. */
  proof?: SentProof | undefined;
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
  let assertion: AssertionFacts | undefined;
  if (request.assertion !== undefined) {
    const made = request.assertion();
    body.set('assertion', made.assertion);
    assertion = { method: 'jwt_bearer', ...made.sent };
  }
  body.set('grant_type', request.grantType);
  const headers = new Headers({
    accept: 'application/json',
    'content-type': 'application/x-www-form-urlencoded',
  });
  const clientAssertion = await applyClientAuthentication(config, body, headers);
  if (clientAssertion !== null) assertion ??= assertionFacts(config.clientAuthMethod, clientAssertion);
  let proof: SentProof | undefined;
  if (config.dpop !== undefined) {
    const made = dpopProof(config.dpop.key, {
      method: 'POST',
      url: config.tokenUrl,
      nonce: config.dpop.nonces.get(config.dpop.jkt, config.tokenUrl),
    });
    headers.set('dpop', made.proof);
    proof = made.sent;
  }
  return { url: config.tokenUrl, body, headers, assertion, proof };
}

function assertionFacts(method: string, sent: SentClientAssertion): AssertionFacts {
  return {
    method: method === 'client_secret_jwt' ? 'client_secret_jwt' : 'private_key_jwt',
    alg: sent.alg,
    kid: sent.kid,
    audience: sent.audience,
    issuedAt: sent.issuedAt,
    expiresAt: sent.expiresAt,
  };
}

/**
 * The grant functions' common path: send, parse, and turn any failure into a diagnosed `Problem`
 * whose message and hint fit this grant. Network failures surface as the `EgressError` of the fetch
 * in use; the per-request timeout becomes an `EgressError` of kind `timeout`; a caller's own abort is
 * rethrown unchanged. A provider may echo the request in its error (the body,
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
  let prepared: PreparedTokenRequest | undefined;
  let answer: FormResponse | undefined;
  let receivedAt = Date.now();
  // The timeout covers both attempts below, not each: the caller's time is the caller's to divide.
  const deadline = receivedAt + (options.timeoutMs ?? DEFAULT_TOKEN_TIMEOUT_MS);
  try {
    // RFC 9449 §8: a `use_dpop_nonce` refusal carries the nonce to use; one more attempt with it,
    // the whole request made anew (a fresh proof, and a fresh assertion: its jti may not repeat).
    for (let attempt = 0; ; attempt++) {
      prepared = await prepareTokenRequest(config, request);
      redaction = secretRedaction(sentSecretsOf(prepared.body, prepared.headers, config));
      answer = await postForm(prepared, { ...options, timeoutMs: Math.max(1, deadline - Date.now()) });
      receivedAt = Date.now();
      const learned =
        config.dpop === undefined
          ? null
          : config.dpop.nonces.learn(config.dpop.jkt, config.tokenUrl, answer.headers);
      try {
        return parseTokenResponse(answer, { redact: redaction.text });
      } catch (error) {
        const retry =
          attempt === 0 &&
          learned !== null &&
          error instanceof OAuthError &&
          error.provider.error === 'use_dpop_nonce';
        if (!retry) throw error;
      }
    }
  } catch (error) {
    if (isCallerAbort(error, options.signal)) throw error;
    const refusal = await refusalContext(config, error, prepared, answer, receivedAt);
    throw redaction.problem(
      diagnose(error, {
        ...context,
        tokenUrl: config.tokenUrl,
        clientAuthMethod: config.clientAuthMethod,
        grantType: request.grantType,
        scope: config.scope,
        audience: config.audience,
        audienceParam: config.audienceParam,
        ...refusal,
      }),
    );
  }
}

/**
 * What a refusal of a signed request needs explaining with: what the assertion and the DPoP proof
 * said, the provider's Date header, and — looked up only now — what its metadata says.
 */
async function refusalContext(
  config: OAuthClientConfig,
  error: unknown,
  prepared: PreparedTokenRequest | undefined,
  answer: FormResponse | undefined,
  receivedAt: number,
): Promise<Partial<DiagnosisContext>> {
  if (!(error instanceof OAuthError) || prepared === undefined) return {};
  const providerDate = answer?.headers.get('date') ?? null;
  const context: Partial<DiagnosisContext> = { keyFacts: config.keyFacts };
  if (prepared.proof !== undefined && config.dpop !== undefined) {
    context.dpopProof = { sent: { ...prepared.proof, alg: config.dpop.key.alg }, providerDate, receivedAt };
  }
  if (prepared.assertion !== undefined) {
    const metadata = await config.metadata?.().catch(() => null);
    context.assertion = {
      facts: prepared.assertion,
      refusal: {
        providerDate,
        receivedAt,
        issuer: metadata?.issuer ?? null,
        allowedAlgs: metadata?.clientAssertionAlgs ?? null,
        nextKid: config.keyFacts?.nextKid ?? null,
        retiringKid: config.keyFacts?.retiringKid ?? null,
        jwksUri: config.keyFacts?.jwksUri ?? null,
      },
    };
  }
  return context;
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
  const timeout = requestTimeout(prepared.url, options);
  try {
    const response = await options.fetch(prepared.url, {
      method: 'POST',
      headers: prepared.headers,
      body: prepared.body.toString(),
      redirect: 'manual',
      signal: timeout.signal,
    });
    const bodyText = await response.text();
    return {
      status: response.status,
      contentType: response.headers.get('content-type'),
      bodyText,
      headers: response.headers,
    };
  } catch (error) {
    throw timeout.failure(error);
  }
}

function isCallerAbort(error: unknown, signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true && !(error instanceof EgressError) && !(error instanceof OAuthError);
}
