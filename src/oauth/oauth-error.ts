import { Problem, type ProblemCode, type ProviderAnswer } from '../problem.js';

/**
 * Why a token (or revocation) response could not be used although the request got an answer. Kept
 * separately from the message so the diagnosis can word a hint for the exact case.
 */
export type ResponseFailureReason =
  | 'oauth_error' // the body carried an OAuth `error` (RFC 6749 §5.2), whatever the HTTP status
  | 'provider_error' // an error the protocol does not define (`server_error`, a JSON error object…)
  | 'html' // an HTML page, whatever the content type said
  | 'empty' // no body at all
  | 'not_found' // 404 without an OAuth error
  | 'redirect' // 3xx: token requests never follow redirects
  | 'http_status' // another non-2xx status without an OAuth error
  | 'no_access_token' // 2xx, parsable, but no usable `access_token`
  | 'unsafe_access_token' // 2xx with an `access_token` that cannot be sent in an HTTP header
  | 'oversized_field' // 2xx with a `token_type` or `scope` longer than Grantry keeps (see `field`)
  | 'not_oauth'; // 2xx with a body that is neither JSON nor form-encoded

/** Short facts about a refused response that are safe to show: never body text beyond an HTML title. */
export interface ResponseFacts {
  reason: ResponseFailureReason;
  /** Media type only, without parameters. */
  contentType?: string;
  /** The `<title>` of an HTML answer, shortened. */
  htmlTitle?: string;
  /** Origin and path of a redirect target, without query or fragment. */
  location?: string;
  /** What a 429/503 answer said in Retry-After, in seconds. */
  retryAfterSeconds?: number;
  /**
   * When the answer refused the client's authentication: the methods of sending the client secret
   * that were tried, in order (two when `auto` tried Basic and then the body).
   */
  clientAuthMethods?: string[];
  /** For `oversized_field`: which field, how long it was, and the most Grantry accepts. */
  field?: { name: 'token_type' | 'scope' | 'access_token' | 'refresh_token'; length: number; limit: number };
}

export type OAuthProblemCode = Extract<
  ProblemCode,
  | 'invalid_client'
  | 'invalid_grant'
  | 'invalid_scope'
  | 'invalid_redirect_uri'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_request'
  | 'invalid_target'
  | 'access_denied'
  | 'token_fetch_failed'
  | 'invalid_dpop_proof'
>;

/**
 * A provider answered, and the answer was an error or unusable. `provider` holds what it said (status,
 * OAuth `error`, description, URI); `facts` says why a non-OAuth answer was refused.
 */
export class OAuthError extends Problem {
  declare readonly provider: ProviderAnswer;
  declare readonly code: OAuthProblemCode;
  readonly facts: ResponseFacts;

  constructor(
    code: OAuthProblemCode,
    message: string,
    options: { provider: ProviderAnswer; facts: ResponseFacts; hint?: string | undefined; cause?: unknown },
  ) {
    super(code, message, { provider: options.provider, hint: options.hint, cause: options.cause });
    this.name = 'OAuthError';
    this.facts = options.facts;
  }
}

/**
 * Maps a provider's `error` value to our code. RFC 6749 §5.2 and §4.1.2.1 codes and RFC 8707
 * `invalid_target` pass through; well-known provider-specific spellings are folded into them.
 */
export function problemCodeForProviderError(error: string, errorDescription?: string): OAuthProblemCode {
  switch (error) {
    case 'invalid_client':
    case 'invalid_grant':
    case 'invalid_scope':
    case 'unauthorized_client':
    case 'unsupported_grant_type':
    case 'invalid_target':
    case 'access_denied':
      return error;
    case 'invalid_request':
      // Many providers (Azure AD, Okta, Keycloak) report a redirect URI mismatch as invalid_request.
      return errorDescription !== undefined && /redirect[\s_-]?ur[il]/i.test(errorDescription)
        ? 'invalid_redirect_uri'
        : 'invalid_request';
    case 'redirect_uri_mismatch': // Google, GitHub
    case 'invalid_redirect_uri':
    case 'bad_redirect_uri': // Slack
      return 'invalid_redirect_uri';
    case 'incorrect_client_credentials': // GitHub
    case 'invalid_client_id': // Slack
    case 'bad_client_secret': // Slack
      return 'invalid_client';
    case 'bad_verification_code': // GitHub
    case 'invalid_code': // Slack
    case 'invalid_refresh_token': // Slack
      return 'invalid_grant';
    case 'unsupported_response_type':
      return 'unauthorized_client';
    // RFC 9449 §5, §8: a refused proof; a nonce asked for again after the one retry with a nonce.
    case 'invalid_dpop_proof':
    case 'use_dpop_nonce':
      return 'invalid_dpop_proof';
    default:
      return 'token_fetch_failed';
  }
}
