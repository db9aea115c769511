import { EgressError, type EgressFailureKind } from '../egress/egress-error.js';
import { Problem, type ProblemCode, type ProviderAnswer } from '../problem.js';
import {
  type AssertionFacts,
  assertionRefusalHint,
  dpopRefusalHint,
  type RefusalContext,
  refusedDpopClaim,
  type SentProofFacts,
} from './assertion-diagnosis.js';
import { JWT_BEARER_GRANT_TYPE, type KeyFacts } from './client-config.js';
import { OAuthError, type ResponseFacts } from './oauth-error.js';
import { hostOf } from './request-timeout.js';
import { shorten } from './shorten.js';
import { parseBearerChallenge } from './www-authenticate.js';

/** Where in the life of an authentication a failure happened. */
export type DiagnosisStep = 'token' | 'authorize' | 'refresh' | 'api' | 'discovery' | 'revocation';

/** What was configured, in the clear and safe to show: URLs, names, scopes — never secrets. */
export interface DiagnosisContext {
  tokenUrl?: string | undefined;
  redirectUri?: string | undefined;
  clientAuthMethod?: string | undefined;
  grantType?: string | undefined;
  scope?: string | undefined;
  audience?: string | undefined;
  audienceParam?: string | undefined;
  /** The connector's base URL, for `api` steps. */
  baseUrl?: string | undefined;
  /**
   * For a 401 from the API: until when (ms since the epoch) Grantry does not force new tokens for
   * the authentication, because fresh ones were refused too.
   */
  tokenRefreshPausedUntil?: number | null | undefined;
  /**
   * For a refusal from the API of a static credential (docs/api.md "Static credentials"): its kind
   * and where it was sent ("header X-API-Key"), never its value.
   */
  staticCredential?: { kind: 'api_key' | 'basic' | 'bearer'; sentAs: string } | undefined;
  step?: DiagnosisStep | undefined;
  /** A signed assertion went with the refused request (client authentication or the grant itself). */
  assertion?: { facts: AssertionFacts; refusal: RefusalContext } | undefined;
  /** A DPoP proof went with the refused request (RFC 9449). */
  dpopProof?: { sent: SentProofFacts; providerDate: string | null; receivedAt: number } | undefined;
  /** Key facts (a rotation under way, the JWKS URL, the client certificate's fingerprint). */
  keyFacts?: KeyFacts | undefined;
}

const STATIC_KIND_NAMES = { api_key: 'API key', basic: 'Basic credentials', bearer: 'bearer token' } as const;

/** What to check when an API refuses a static credential, by kind: it was sent exactly as saved. */
const STATIC_REFUSAL_HINTS = {
  api_key:
    'Check the key itself (revoked, expired, or for another environment such as test vs live), the name of the header or query parameter the API reads it from, and the prefix it expects before the key (some want none, some "Bearer" or "Token").',
  basic:
    "Check the username and password. Many APIs want an API token as the password rather than the account password, or the key as the username with an empty password: see the API's documentation.",
  bearer:
    'Check that the token is still valid (static tokens get revoked or expire) and the header prefix the API expects (Bearer, Token, or none).',
} as const;

/** Every code {@link diagnose} and {@link diagnoseApiResponse} can produce, for docs/errors.md. */
export const DIAGNOSIS_CODES = [
  'invalid_client',
  'invalid_grant',
  'invalid_scope',
  'invalid_redirect_uri',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_request',
  'invalid_target',
  'access_denied',
  'token_fetch_failed',
  'invalid_dpop_proof',
  'upstream_unauthorized',
  'upstream_forbidden',
  'egress_denied',
  'insecure_url',
  'upstream_failed',
] as const satisfies readonly ProblemCode[];

export type DiagnosisCode = (typeof DIAGNOSIS_CODES)[number];

/**
 * The general advice per code. {@link diagnose} words a sharper hint when it knows more (the grant,
 * the configured URI, the failure kind); this table is what docs/errors.md is checked against.
 */
export const DIAGNOSIS_HINTS: Readonly<Record<DiagnosisCode, string>> = {
  invalid_client:
    'Check the Client ID and Client Secret. If they are right, the provider may expect them elsewhere: try the other clientAuthMethod (client_secret_basic or client_secret_post).',
  invalid_grant:
    'The provider refused the grant: check the username and password; for authorization codes, authorize again (codes are single-use and short-lived); for a refused refresh token, reconnect.',
  invalid_scope:
    'The provider does not allow the requested scope for this client: request only the scopes the client is granted, the minimum the API needs.',
  invalid_redirect_uri:
    "Register Grantry's redirect URI at the provider exactly as shown on the authentication (redirectUri).",
  unauthorized_client:
    "The client is not allowed this grant type at the provider: enable it in the client's settings there.",
  unsupported_grant_type:
    'The provider does not support this grant type (or not for this client): enable it there, or choose another grant type.',
  invalid_request:
    'The provider found the request malformed: read its description; a provider-specific parameter may be missing (set it in extraTokenParams).',
  invalid_target:
    'The provider refused the requested audience/resource: check the audience value and audienceParam (audience or resource).',
  access_denied:
    'Access was denied by the user or the provider: authorize again and approve the requested access.',
  token_fetch_failed:
    "Check the Token URL: it must be the provider's token endpoint (not a web page), reachable from Grantry over https.",
  invalid_dpop_proof:
    'The server refused the DPoP proof: the hint names the claim (htu: the URL the server sees; iat: the clock; nonce; jwk: the key the token is bound to).',
  upstream_unauthorized:
    'The API refused a freshly fetched token: it probably expects a different audience or scope, or the token was revoked.',
  upstream_forbidden:
    'The API understood the token but refuses the operation: add the missing scope or grant the client/user the permission.',
  egress_denied:
    'The destination address is forbidden by the egress policy (GRANTRY_EGRESS): use a public address or change the policy.',
  insecure_url: 'Use an https URL (http is only allowed for loopback with GRANTRY_ALLOW_HTTP=loopback).',
  upstream_failed:
    "The API could not be reached: check the connector's base URL and the network path from Grantry.",
};

/**
 * Turns any failure of an OAuth step into the docs/api.md error shape with a hint that says what to do.
 * Provider answers keep their `provider` details; network failures (`EgressError`) are worded by kind;
 * a `Problem` that is not about the provider passes through unchanged.
 */
export function diagnose(error: unknown, context: DiagnosisContext = {}): Problem {
  if (error instanceof OAuthError) return diagnoseProviderAnswer(error, context);
  if (error instanceof EgressError) return diagnoseEgress(error.kind, error.host, context, error);
  if (error instanceof Problem) return error;
  const kind = networkFailureKind(error);
  if (kind !== null) return diagnoseEgress(kind, hostOf(endpointOf(context)), context, error);
  const code: DiagnosisCode = usesTokenEndpoint(context) ? 'token_fetch_failed' : 'upstream_failed';
  return new Problem(code, `The ${endpointName(context)} request failed unexpectedly.`, {
    hint: DIAGNOSIS_HINTS[code],
    cause: error,
  });
}

function diagnoseProviderAnswer(error: OAuthError, context: DiagnosisContext): OAuthError {
  const { provider, facts } = error;
  const said = providerSaid(provider);
  let message: string;
  let hint: string;
  switch (error.code) {
    case 'invalid_client':
      if (context.assertion !== undefined && context.assertion.facts.method !== 'jwt_bearer') {
        message = `The provider refused the client assertion (${context.assertion.facts.method})${said}.`;
        hint = assertionRefusalHint(context.assertion.facts, context.assertion.refusal);
      } else {
        message = `The provider rejected the client credentials${said}.`;
        hint = invalidClientHint(context, facts);
      }
      break;
    case 'invalid_grant':
      if (context.assertion?.facts.method === 'jwt_bearer') {
        message = `The provider refused the JWT-bearer assertion${said}.`;
        hint = assertionRefusalHint(context.assertion.facts, context.assertion.refusal);
      } else {
        ({ message, hint } = invalidGrant(context, said));
      }
      break;
    case 'invalid_dpop_proof': {
      const claim =
        provider.error === 'use_dpop_nonce' ? 'nonce' : refusedDpopClaim(provider.errorDescription);
      message = `The ${endpointName(context)} refused the DPoP proof${claim === null ? '' : `'s ${claim}`}${said}.`;
      hint =
        context.dpopProof === undefined
          ? DIAGNOSIS_HINTS.invalid_dpop_proof
          : dpopRefusalHint(claim, context.dpopProof.sent, {
              where: endpointName(context),
              providerDate: context.dpopProof.providerDate,
              receivedAt: context.dpopProof.receivedAt,
            });
      break;
    }
    case 'invalid_scope': {
      const scope = context.scope === undefined || context.scope === '' ? null : context.scope;
      message =
        scope === null
          ? `The provider refused the request's scope${said}.`
          : `The provider does not allow the scope "${scope}" for this client${said}.`;
      hint =
        scope === null
          ? 'No scope was sent and the provider wants one: set scope to what the API needs.'
          : `The provider does not allow scope "${scope}" for this client: request the minimum the API needs, and check which scopes the client is granted at the provider.`;
      break;
    }
    case 'invalid_redirect_uri':
      message = `The provider does not accept the redirect URI${said}.`;
      hint =
        context.redirectUri === undefined
          ? DIAGNOSIS_HINTS.invalid_redirect_uri
          : `Register exactly this redirect URI at the provider: ${context.redirectUri}`;
      break;
    case 'unauthorized_client':
      message = `The client is not allowed to use ${grantName(context)} at the provider${said}.`;
      hint =
        context.grantType === JWT_BEARER_GRANT_TYPE
          ? 'The provider does not let this issuer get tokens this way, or not for the requested scopes: for a Google service account acting as a user (assertion.sub), an administrator must grant it domain-wide delegation for exactly these scopes in the Google Workspace Admin console; for Salesforce, the user in sub must be pre-authorized for the connected app.'
          : `The client is not allowed this grant at the provider: enable ${grantName(context)} for this client in the provider's settings.`;
      break;
    case 'unsupported_grant_type':
      message = `The provider does not support ${grantName(context)}${said}.`;
      hint = `The client is not allowed this grant at the provider, or the provider lacks it: enable ${grantName(context)} there, or choose another grant type.`;
      break;
    case 'invalid_request':
      message = `The provider rejected the request as malformed${said}.`;
      hint =
        provider.errorDescription === undefined
          ? DIAGNOSIS_HINTS.invalid_request
          : `The provider says: "${provider.errorDescription}". Add or fix what it names (provider-specific parameters go in extraTokenParams).`;
      break;
    case 'invalid_target': {
      const audience = context.audience ?? '';
      const param = context.audienceParam ?? 'audience';
      message = `The provider refused the requested ${param === 'resource' ? 'resource' : 'audience'}${said}.`;
      hint = `The provider does not accept ${param}=${audience === '' ? '(none)' : `"${audience}"`}${describe(provider)}: check the audience value, and whether the provider expects it as "audience" or "resource" (audienceParam).`;
      break;
    }
    case 'access_denied':
      message = `Access was denied${said}.`;
      hint =
        context.step === 'authorize'
          ? `Authorize again and approve the requested access${describe(provider)}.`
          : `The provider denied access${describe(provider)}: check that this client and user may use the requested scope and audience.`;
      break;
    default:
      ({ message, hint } = tokenFetchFailed(facts, provider, context));
  }
  return new OAuthError(error.code, message, { provider, facts, hint, cause: error.cause });
}

const METHOD_WORDS: Readonly<Record<string, string>> = {
  client_secret_basic: 'in an HTTP Basic Authorization header',
  client_secret_post: 'in the request body',
};

/** The client authentication methods a refused request used: from the answer's facts, else the configuration. */
function methodsTried(context: DiagnosisContext, facts: ResponseFacts): string[] {
  if (facts.clientAuthMethods !== undefined && facts.clientAuthMethods.length > 0)
    return facts.clientAuthMethods;
  return context.clientAuthMethod === undefined || context.clientAuthMethod === 'auto'
    ? []
    : [context.clientAuthMethod];
}

/**
 * What to do about a refused client: with both ways of sending the secret tried (`auto`), only the
 * credentials themselves are left to check; with one, the other way is worth a try — unless the
 * provider's metadata is why only one was tried.
 */
function invalidClientHint(context: DiagnosisContext, facts: ResponseFacts): string {
  switch (context.clientAuthMethod) {
    case 'tls_client_auth':
      return `The provider did not accept the client certificate (tls_client_auth, RFC 8705 §2.1): it must be issued by a CA the provider trusts, and its subject (or SAN) must be the one registered for the client${certificateNamed(context)}. Check the Client ID too, and that the provider asks for client certificates at the Token URL (some use a separate mTLS endpoint).`;
    case 'self_signed_tls_client_auth':
      return `The provider did not accept the client certificate (self_signed_tls_client_auth, RFC 8705 §2.2): register this very certificate (or its public key in the client's JWKS) at the provider${certificateNamed(context)}. Check the Client ID too, and that the provider asks for client certificates at the Token URL (some use a separate mTLS endpoint).`;
    case 'none':
      return 'The provider wants this client to authenticate (clientAuthMethod none sends only the Client ID): choose the method the client is registered with at the provider.';
  }
  const tried = methodsTried(context, facts);
  if (tried.includes('client_secret_basic') && tried.includes('client_secret_post')) {
    return 'Grantry sent the Client ID and Client Secret both ways — in an HTTP Basic Authorization header (client_secret_basic) and in the request body (client_secret_post) — and the provider refused both: check the Client ID and Client Secret, and that the client is enabled at the provider.';
  }
  const used = tried[0] ?? 'client_secret_basic';
  if (context.clientAuthMethod === 'auto') {
    return `Check the Client ID and Client Secret. The provider's metadata lists only ${used} among the ways it accepts them, so Grantry sent them only ${METHOD_WORDS[used] ?? `with ${used}`}.`;
  }
  const other = used === 'client_secret_post' ? 'client_secret_basic' : 'client_secret_post';
  return `Check the Client ID and Client Secret. If they are right, the provider may expect them ${METHOD_WORDS[other]}: set the client authentication method (clientAuthMethod, under Advanced) to ${other}, or to auto to let Grantry find out.`;
}

function certificateNamed(context: DiagnosisContext): string {
  const fingerprint = context.keyFacts?.certificateSha256;
  return fingerprint === null || fingerprint === undefined
    ? ''
    : ` (the one Grantry sent has the SHA-256 fingerprint ${fingerprint})`;
}

function invalidGrant(context: DiagnosisContext, said: string): { message: string; hint: string } {
  if (context.step === 'refresh' || context.grantType === 'refresh_token') {
    return {
      message: `The provider refused the refresh token${said}.`,
      hint: 'The refresh token was revoked, expired or already used: reconnect the authentication (authorize again) to get new tokens.',
    };
  }
  switch (context.grantType) {
    case 'password':
      return {
        message: `The provider refused the username or password${said}.`,
        hint: 'Check the username and password, and that this user may sign in with the password grant (no MFA, not locked).',
      };
    case 'authorization_code':
      return {
        message: `The provider refused the authorization code${said}.`,
        hint: `The code expired or was already used, or the redirect URI or PKCE verifier differs from the authorization request: authorize again${context.redirectUri === undefined ? '' : ` (redirect URI ${context.redirectUri})`}.`,
      };
    default:
      return {
        message: `The provider refused the grant${said}.`,
        hint: "Check the client's settings at the provider, the audience and the scope.",
      };
  }
}

function tokenFetchFailed(
  facts: ResponseFacts,
  provider: ProviderAnswer,
  context: DiagnosisContext,
): { message: string; hint: string } {
  const endpoint = endpointName(context);
  const url = endpointOf(context);
  const urlName = urlNameOf(context);
  const status = provider.status ?? 0;
  switch (facts.reason) {
    case 'html':
      return {
        message: `The ${endpoint} answered HTTP ${status} with an HTML page${facts.htmlTitle === undefined ? '' : ` titled "${facts.htmlTitle}"`} instead of an OAuth response.`,
        hint: `The URL is probably a web page (a sign-in page or documentation), not the ${endpoint}: check the ${urlName}${inUrl(url)}; the provider's documentation or discovery metadata names the right one.`,
      };
    case 'not_found':
      return {
        message: `The ${endpoint} answered HTTP 404 Not Found.`,
        hint: `Check the ${urlName} path${inUrl(url)}: the server exists but has nothing at that path.`,
      };
    case 'redirect':
      return {
        message: `The ${endpoint} answered HTTP ${status}, a redirect${facts.location === undefined ? '' : ` to ${facts.location}`}.`,
        hint: `Grantry does not follow redirects on OAuth requests: set the ${urlName} to the final endpoint URL${facts.location === undefined ? '' : ` (probably ${facts.location})`}.`,
      };
    case 'empty':
      return {
        message: `The ${endpoint} answered HTTP ${status} with an empty body.`,
        // A bare 401 is how some servers refuse the client's authentication (RFC 6749 §5.2).
        hint:
          status === 401
            ? httpStatusHint(status, urlName, url, methodsTried(context, facts))
            : `Check the ${urlName}${inUrl(url)}, and the grant type and its required fields.`,
      };
    case 'no_access_token':
      return {
        message: `The ${endpoint} answered HTTP ${status} without an access_token.`,
        hint: `Check the ${urlName}${inUrl(url)}, the grant type and its required fields; some providers need an audience or a provider-specific parameter (extraTokenParams).`,
      };
    case 'unsafe_access_token':
      return {
        message: `The ${endpoint} answered HTTP ${status} with an access token that cannot be sent in an HTTP header: it contains a line break, a control character or a character outside Latin-1.`,
        hint: `Grantry refuses such a token rather than send a broken Authorization header. Check the ${urlName}${inUrl(url)}: it must be the provider's token endpoint; if it is, the provider issued a malformed token: report it to the provider.`,
      };
    case 'oversized_field': {
      const field = facts.field ?? { name: 'token_type', length: 0, limit: 0 };
      return {
        message: `The ${endpoint} answered HTTP ${status} with a ${field.name} of ${field.length} characters; Grantry accepts at most ${field.limit}, and refused the token rather than store it.`,
        hint:
          field.name === 'token_type'
            ? `A token type is a short word (Bearer, DPoP). Check the ${urlName}${inUrl(url)}: it must be the provider's token endpoint; if it is, the provider answered a malformed token response: report it to the provider.`
            : field.name === 'scope'
              ? `The provider listed more granted scope than Grantry keeps. Request fewer scopes (scope) if the client holds that many; otherwise check the ${urlName}${inUrl(url)}, and report the malformed answer to the provider.`
              : `No API accepts a header that long, and real providers' tokens are far shorter. Check the ${urlName}${inUrl(url)}: it must be the provider's token endpoint; if it is, request fewer scopes or claims (scope), or report the malformed answer to the provider.`,
      };
    }
    case 'not_oauth':
      return {
        message: `The ${endpoint} answered HTTP ${status} with a body that is not an OAuth response${facts.contentType === undefined ? '' : ` (${facts.contentType})`}.`,
        hint: `Check the ${urlName}${inUrl(url)}: it must be the provider's OAuth ${endpoint}.`,
      };
    case 'provider_error': {
      const temporary = provider.error === 'temporarily_unavailable' || provider.error === 'server_error';
      return {
        message: `The provider answered with an error${providerSaid(provider)}.`,
        hint: temporary
          ? 'The provider reports a temporary problem on its side: try again later.'
          : `Read the provider's description${describe(provider)}, and check the grant type and its fields.`,
      };
    }
    default:
      return {
        message: `The ${endpoint} answered HTTP ${status} without an OAuth error.`,
        hint: httpStatusHint(status, urlName, url, methodsTried(context, facts)),
      };
  }
}

function httpStatusHint(
  status: number,
  urlName: string,
  url: string | undefined,
  methodsTried: readonly string[] = [],
): string {
  if (status === 401 && methodsTried.length > 1) {
    return `The endpoint refused the request without saying why, with the Client ID and Client Secret sent both ways (${methodsTried.join(' and ')}): check them, and the ${urlName}${inUrl(url)}.`;
  }
  if (status === 401 || status === 403) {
    return `The endpoint refused the request without saying why: check the Client ID and Client Secret and the clientAuthMethod, and the ${urlName}${inUrl(url)}.`;
  }
  if (status === 405) return `The URL does not accept POST: check the ${urlName}${inUrl(url)}.`;
  if (status === 429) return 'The provider is rate limiting Grantry: try again later.';
  if (status >= 500)
    return 'The provider had a failure on its side: try again later; if it persists, contact the provider.';
  return `Check the ${urlName}${inUrl(url)}, and the grant type and its required fields.`;
}

function diagnoseEgress(
  kind: EgressFailureKind,
  host: string,
  context: DiagnosisContext,
  cause: unknown,
): Problem {
  if (kind === 'denied') {
    return new Problem(
      'egress_denied',
      `The egress policy forbids connecting to ${host || 'this address'}.`,
      {
        hint: DIAGNOSIS_HINTS.egress_denied,
        cause,
      },
    );
  }
  if (kind === 'insecure_url') {
    return new Problem('insecure_url', `The ${endpointName(context)} URL is not https.`, {
      hint: DIAGNOSIS_HINTS.insecure_url,
      cause,
    });
  }
  const code: DiagnosisCode = usesTokenEndpoint(context) ? 'token_fetch_failed' : 'upstream_failed';
  const endpoint = endpointName(context);
  const urlName =
    context.step === 'api'
      ? "connector's base URL"
      : endpoint === 'token endpoint'
        ? 'Token URL'
        : `${endpoint} URL`;
  const at = host === '' ? '' : ` ${host}`;
  const words: Record<
    Exclude<EgressFailureKind, 'denied' | 'insecure_url'>,
    { message: string; hint: string }
  > = {
    dns: {
      message: `The host${at} could not be resolved (DNS).`,
      hint: `Check the host name in the ${urlName}.`,
    },
    refused: {
      message: `The connection to${at} was refused.`,
      hint: `Check the host and port in the ${urlName}; the service may be down.`,
    },
    unreachable: {
      message: `The host${at} is unreachable.`,
      hint: `Check the host in the ${urlName}, and that Grantry's network (firewall, proxy) can reach it.`,
    },
    tls: {
      message: `The TLS handshake with${at} failed: the certificate is not trusted or does not match the host.`,
      hint: `If the server uses a private or corporate CA, give Grantry the CA certificate with NODE_EXTRA_CA_CERTS (at start-up); otherwise check that the host name in the ${urlName} matches the certificate.`,
    },
    timeout: {
      message: `The ${endpoint} at${at} did not answer in time.`,
      hint: `Check the ${urlName} and that the server is reachable from Grantry, then try again.`,
    },
    reset: {
      message: `The connection to${at} closed before the answer was complete.`,
      hint: 'Try again; if it keeps happening, check proxies or TLS interception between Grantry and the server.',
    },
    too_large: {
      message: `The answer from${at} was larger than allowed.`,
      hint: `Check the ${urlName}: it probably points at a web page or a file, not the ${endpoint}.`,
    },
    other: {
      message: `The request to${at} failed.`,
      hint: `Check the ${urlName} and the network path from Grantry.`,
    },
  };
  const { message, hint } = words[kind];
  return new Problem(code, message, { hint, cause });
}

/**
 * The API step (RFC 6750 §3): the upstream answered 401 or 403 although the token was fresh. Reads the
 * Bearer challenge to say whether audience, scope or revocation is the likely cause. Returns null for
 * other statuses, which are data, not errors.
 */
export function diagnoseApiResponse(
  status: number,
  wwwAuthenticate: string | null | undefined,
  context: DiagnosisContext = {},
): Problem | null {
  if (status !== 401 && status !== 403) return null;
  const dpopChallenge = parseBearerChallenge(wwwAuthenticate, 'dpop');
  const challenge = parseBearerChallenge(wwwAuthenticate) ?? dpopChallenge;
  const provider: ProviderAnswer = { status };
  if (challenge?.error !== undefined) provider.error = shorten(challenge.error, 100);
  if (challenge?.errorDescription !== undefined)
    provider.errorDescription = shorten(challenge.errorDescription, 500);
  if (challenge?.errorUri !== undefined) provider.errorUri = shorten(challenge.errorUri, 500);
  if (wwwAuthenticate !== null && wwwAuthenticate !== undefined && wwwAuthenticate !== '') {
    provider.wwwAuthenticate = shorten(wwwAuthenticate, 500);
  }
  // RFC 9449 §7.1, §9: the API refused the proof, not the token — or wants a nonce again after the one retry.
  const dpopError = dpopChallenge?.error;
  if (dpopError === 'invalid_dpop_proof' || dpopError === 'use_dpop_nonce') {
    const claim =
      dpopError === 'use_dpop_nonce' ? 'nonce' : refusedDpopClaim(dpopChallenge?.errorDescription);
    return new Problem(
      'invalid_dpop_proof',
      `The API refused the DPoP proof${claim === null ? '' : `'s ${claim}`} (${dpopError}${describe(provider)}).`,
      {
        hint:
          context.dpopProof === undefined
            ? DIAGNOSIS_HINTS.invalid_dpop_proof
            : dpopRefusalHint(claim, context.dpopProof.sent, {
                where: 'API',
                providerDate: context.dpopProof.providerDate,
                receivedAt: context.dpopProof.receivedAt,
              }),
        provider,
      },
    );
  }
  const audience =
    context.audience === undefined || context.audience === ''
      ? 'No audience is configured; many APIs only accept tokens issued for them: set audience.'
      : `The configured audience is "${context.audience}"${context.audienceParam === undefined ? '' : ` (sent as ${context.audienceParam})`}: check it is the one this API expects.`;
  // Shown inside parentheses and after a colon: a bare word, never "((none))".
  const scope = context.scope === undefined || context.scope === '' ? 'none' : `"${context.scope}"`;
  const fixed = context.staticCredential;
  if (fixed !== undefined) {
    // Sent as saved: nothing to refresh, no retry; say what was sent and what to check.
    const what = STATIC_KIND_NAMES[fixed.kind];
    const said = challenge?.error === undefined ? '' : ` (${challenge.error})`;
    if (status === 401) {
      return new Problem(
        'upstream_unauthorized',
        `The API answered 401 Unauthorized to the ${what} (sent as ${fixed.sentAs})${said}.`,
        {
          hint: `${STATIC_REFUSAL_HINTS[fixed.kind]} Grantry does not retry: the same ${what} would be sent again.`,
          provider,
        },
      );
    }
    return new Problem('upstream_forbidden', `The API answered 403 Forbidden to the ${what}${said}.`, {
      hint: `The API accepted who is calling but refuses this operation: give the ${what}'s account or key the permission (or scope) the operation needs.`,
      provider,
    });
  }
  if (status === 401) {
    const said = challenge?.error === undefined ? '' : ` (${challenge.error}${describe(provider)})`;
    // While forced refreshes are paused, a call is not retried with a fresh token: the wording must
    // not claim this call's token was fresh, only that fresh ones were refused too (which started the pause).
    const pausedUntil = context.tokenRefreshPausedUntil;
    const paused = pausedUntil !== null && pausedUntil !== undefined;
    const pause = refreshPauseSentence(pausedUntil);
    const hint =
      challenge?.error === 'invalid_token'
        ? `The API says the token is invalid${paused ? '' : ' although it was just issued'}: it was issued for another audience or scope, or revoked. ${audience} Configured scope: ${scope}.${pause}`
        : `The API refused ${paused ? 'the token' : 'a freshly fetched token'}. ${audience} Also check the scope (${scope}) and the header prefix the API expects.${pause}`;
    return new Problem(
      'upstream_unauthorized',
      paused
        ? `The API answered 401 Unauthorized${said}: it refuses this authentication's tokens, fresh ones too.`
        : `The API answered 401 Unauthorized even with a fresh token${said}.`,
      { hint, provider },
    );
  }
  const needed = challenge?.scope;
  const hint =
    challenge?.error === 'insufficient_scope' || needed !== undefined
      ? needed === undefined
        ? `The token lacks a scope the API needs (insufficient_scope): add it to the scope (currently ${scope}) and make sure the provider grants it to this client.`
        : `Add the scope "${needed}" to the authentication's scope (currently ${scope}), and make sure the provider grants it to this client.`
      : DIAGNOSIS_HINTS.upstream_forbidden;
  const said = challenge?.error === undefined ? '' : ` (${challenge.error})`;
  return new Problem('upstream_forbidden', `The API answered 403 Forbidden${said}.`, { hint, provider });
}

/** The sentence a 401 hint ends with while forced refreshes are paused (RefusedTokenBackoff), or ''. */
export function refreshPauseSentence(pausedUntil: number | null | undefined): string {
  return pausedUntil === null || pausedUntil === undefined
    ? ''
    : ` Grantry is not fetching new tokens for this authentication until ${new Date(pausedUntil).toISOString()} because fresh tokens were refused too; changing the authentication ends this pause.`;
}

function usesTokenEndpoint(context: DiagnosisContext): boolean {
  return (
    context.step === undefined ||
    context.step === 'token' ||
    context.step === 'refresh' ||
    context.step === 'authorize'
  );
}

function endpointName(context: DiagnosisContext): string {
  switch (context.step) {
    case 'api':
      return 'API';
    case 'discovery':
      return 'metadata endpoint';
    case 'revocation':
      return 'revocation endpoint';
    default:
      return 'token endpoint';
  }
}

/** The configured field a person should look at, by the name the UI gives it. */
function urlNameOf(context: DiagnosisContext): string {
  switch (context.step) {
    case 'api':
      return "connector's base URL";
    case 'discovery':
      return 'issuer URL';
    case 'revocation':
      return 'revocation URL';
    default:
      return 'Token URL';
  }
}

function endpointOf(context: DiagnosisContext): string | undefined {
  return context.step === 'api' ? context.baseUrl : context.tokenUrl;
}

function grantName(context: DiagnosisContext): string {
  if (context.grantType === JWT_BEARER_GRANT_TYPE) return 'the JWT-bearer grant (RFC 7523)';
  return context.grantType === undefined ? 'this grant type' : `the ${context.grantType} grant`;
}

function providerSaid(provider: ProviderAnswer): string {
  if (provider.error === undefined) return '';
  return ` (${provider.error}${describe(provider)})`;
}

function describe(provider: ProviderAnswer): string {
  return provider.errorDescription === undefined ? '' : `: "${provider.errorDescription}"`;
}

function inUrl(url: string | undefined): string {
  return url === undefined ? '' : ` (${url})`;
}

const NETWORK_ERROR_KINDS: Record<string, EgressFailureKind> = {
  ENOTFOUND: 'dns',
  EAI_AGAIN: 'dns',
  ECONNREFUSED: 'refused',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
  EHOSTDOWN: 'unreachable',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
  UND_ERR_SOCKET: 'reset',
  ETIMEDOUT: 'timeout',
  UND_ERR_CONNECT_TIMEOUT: 'timeout',
  UND_ERR_HEADERS_TIMEOUT: 'timeout',
  UND_ERR_BODY_TIMEOUT: 'timeout',
};

/**
 * A fetch that is not Egress (tests, scripts) rejects with `TypeError('fetch failed')` and the system
 * error as `cause`; classify it the way Egress would.
 */
function networkFailureKind(error: unknown): EgressFailureKind | null {
  if (error instanceof DOMException && error.name === 'TimeoutError') return 'timeout';
  if (!(error instanceof TypeError) || !(error.cause instanceof Error)) return null;
  const cause = error.cause as Error & { code?: unknown };
  const code = typeof cause.code === 'string' ? cause.code : '';
  const known = NETWORK_ERROR_KINDS[code];
  if (known !== undefined) return known;
  if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/i.test(code)) return 'tls';
  return 'other';
}
