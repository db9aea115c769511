import { retryAfterMs } from '../egress/retry-after.js';
import type { ProviderAnswer } from '../problem.js';
import { isHeaderSafeValue } from './header-value.js';
import { OAuthError, problemCodeForProviderError, type ResponseFacts } from './oauth-error.js';
import { shorten } from './shorten.js';
import { tokenLifetimeSeconds } from './token-lifetime.js';
import type { TokenSet } from './token-set.js';

/** A token endpoint answer, read in full. */
export interface RawTokenResponse {
  status: number;
  contentType: string | null;
  bodyText: string;
  headers?: Headers | undefined;
}

/** How an answer is read. */
export interface ReadOptions {
  /**
   * Cuts what the request sent (secrets, in every encoding) out of every text taken from the answer
   * (secret-redaction.ts). Applied before texts are shortened, so a secret cut in two by the length
   * limit cannot show half of itself.
   */
  redact?: ((text: string) => string) | undefined;
}

type Redact = (text: string) => string;

const KEEP: Redact = (text) => text;

type Fields = Record<string, unknown>;

type ParsedBody =
  | { kind: 'fields'; fields: Fields }
  | { kind: 'html'; title: string | undefined }
  | { kind: 'empty' }
  | { kind: 'unknown' };

const MAX_DESCRIPTION_LENGTH = 500;

/**
 * The longest `token_type` and `scope` kept from a token response. Both are stored with the token
 * and shown; a provider's string is never stored unbounded. Registered token types are short words
 * (Bearer, DPoP, N_A); 2 KiB of scope is dozens of scopes, URL-shaped ones (Google) included.
 * Longer ones are refused, not cut: a truncated scope would misstate what the token may do.
 */
export const MAX_TOKEN_TYPE_LENGTH = 40;
export const MAX_SCOPE_LENGTH = 2048;
/**
 * The longest access and refresh token kept. An access token goes in a header on every call, and
 * most servers refuse a header line past 8–16 KiB; the largest real tokens (Entra ID JWTs with
 * group claims) stay well under this. Without it, a hostile provider could have a token response's
 * 10 MiB (the egress cap) stored and sent on every call.
 */
export const MAX_TOKEN_LENGTH = 32 * 1024;

/**
 * The one tolerant reader of token endpoint responses (RFC 6749 §5.1 success, §5.2 error). Real
 * providers deviate from the RFC in ways a strict client refuses, so the body decides, not the
 * headers:
 * - JSON is recognised by its content whatever the content type (`text/javascript`, `text/plain`,
 *   `application/json; charset=…`); form-encoded bodies too (GitHub without `Accept`, old Facebook).
 * - `expires_in` may be a string (Azure AD v1) or absent (Salesforce, Zendesk → null); it is clamped
 *   to [0, one year] (token-lifetime.ts): 0 or less is "expires now", never "never".
 * - An `access_token` that cannot go in an HTTP header (CR, LF, other controls, above Latin-1) is
 *   refused here, as the provider's fault, rather than stored and failing every API call later.
 * - `token_type` may be lower case (Keycloak) or absent.
 * - An `error` field is an error whatever the status, HTTP 200 included (GitHub, Slack).
 *
 * Throws {@link OAuthError}; its message and facts never include body text other than an HTML title.
 */
export function parseTokenResponse(response: RawTokenResponse, options: ReadOptions = {}): TokenSet {
  try {
    return parseOrThrow(response, options.redact ?? KEEP);
  } catch (error) {
    // RFC 9110 §10.2.3: a busy provider (429, 503) may say when to come back; retries honour it.
    const retryAfter = retryAfterSeconds(response.headers?.get('retry-after') ?? null);
    if (error instanceof OAuthError && retryAfter !== undefined) error.facts.retryAfterSeconds = retryAfter;
    throw error;
  }
}

/** Seconds from a Retry-After header (delay-seconds or an HTTP-date), or undefined. */
export function retryAfterSeconds(header: string | null, now = Date.now()): number | undefined {
  const ms = retryAfterMs(header ?? undefined, now);
  return ms === null ? undefined : Math.ceil(ms / 1000);
}

function parseOrThrow(response: RawTokenResponse, redact: Redact): TokenSet {
  const { status } = response;
  const contentType = mediaType(response.contentType);
  const body = parseBody(response.bodyText, contentType);
  if (body.kind === 'fields') {
    const providerError = oauthErrorOf(body.fields, status, contentType, redact);
    if (providerError !== null) throw providerError;
  }
  if (status >= 200 && status < 300 && body.kind === 'fields') {
    const accessToken = body.fields.access_token;
    if (typeof accessToken === 'string' && accessToken.length > 0) {
      if (!isHeaderSafeValue(accessToken)) throw unsafeAccessToken(status, contentType);
      const tokenSet = tokenSetOf(accessToken, body.fields);
      const oversized = oversizedField(tokenSet);
      if (oversized !== null) throw refusedField(status, contentType, oversized);
      return tokenSet;
    }
  }
  throw unusable(response, contentType, body, redact);
}

/**
 * Reads an OAuth error answer (RFC 6749 §5.2, RFC 7009 §2.2.1) for endpoints whose success carries no
 * token, like revocation. Returns the error to throw, or null when the body holds no OAuth error.
 */
export function oauthErrorOfResponse(
  response: RawTokenResponse,
  options: ReadOptions = {},
): OAuthError | null {
  const contentType = mediaType(response.contentType);
  const body = parseBody(response.bodyText, contentType);
  if (body.kind !== 'fields') return null;
  return oauthErrorOf(body.fields, response.status, contentType, options.redact ?? KEEP);
}

/** Why a non-success answer without an OAuth error is unusable, as an error to throw. */
export function unusableResponse(response: RawTokenResponse, options: ReadOptions = {}): OAuthError {
  const contentType = mediaType(response.contentType);
  return unusable(response, contentType, parseBody(response.bodyText, contentType), options.redact ?? KEEP);
}

function unusable(
  response: RawTokenResponse,
  contentType: string | undefined,
  body: ParsedBody,
  redact: Redact,
): OAuthError {
  const { status } = response;
  const provider: ProviderAnswer = { status };
  const facts: ResponseFacts = { reason: 'http_status' };
  if (contentType !== undefined) facts.contentType = contentType;
  if (body.kind === 'html') {
    facts.reason = 'html';
    if (body.title !== undefined) facts.htmlTitle = shorten(redact(body.title), 80);
  } else if (status >= 300 && status < 400) {
    facts.reason = 'redirect';
    const location = safeLocation(response.headers?.get('location') ?? null, redact);
    if (location !== undefined) facts.location = location;
  } else if (status === 404) {
    facts.reason = 'not_found';
  } else if (body.kind === 'empty') {
    facts.reason = 'empty';
  } else if (status >= 200 && status < 300) {
    facts.reason = body.kind === 'fields' ? 'no_access_token' : 'not_oauth';
  }
  return new OAuthError('token_fetch_failed', factualMessage(facts, status), { provider, facts });
}

/** The field of a token set longer than Grantry keeps, or null. */
function oversizedField(tokenSet: TokenSet): NonNullable<ResponseFacts['field']> | null {
  if (tokenSet.accessToken.length > MAX_TOKEN_LENGTH) {
    return { name: 'access_token', length: tokenSet.accessToken.length, limit: MAX_TOKEN_LENGTH };
  }
  if (tokenSet.refreshToken !== null && tokenSet.refreshToken.length > MAX_TOKEN_LENGTH) {
    return { name: 'refresh_token', length: tokenSet.refreshToken.length, limit: MAX_TOKEN_LENGTH };
  }
  if (tokenSet.tokenType.length > MAX_TOKEN_TYPE_LENGTH) {
    return { name: 'token_type', length: tokenSet.tokenType.length, limit: MAX_TOKEN_TYPE_LENGTH };
  }
  if (tokenSet.scope !== null && tokenSet.scope.length > MAX_SCOPE_LENGTH) {
    return { name: 'scope', length: tokenSet.scope.length, limit: MAX_SCOPE_LENGTH };
  }
  return null;
}

/** Only the field's name and length are told, never its text. */
function refusedField(
  status: number,
  contentType: string | undefined,
  field: NonNullable<ResponseFacts['field']>,
): OAuthError {
  const facts: ResponseFacts = { reason: 'oversized_field', field };
  if (contentType !== undefined) facts.contentType = contentType;
  return new OAuthError('token_fetch_failed', factualMessage(facts, status), { provider: { status }, facts });
}

/** The token itself is never quoted: only that it cannot be sent. */
function unsafeAccessToken(status: number, contentType: string | undefined): OAuthError {
  const facts: ResponseFacts = { reason: 'unsafe_access_token' };
  if (contentType !== undefined) facts.contentType = contentType;
  return new OAuthError('token_fetch_failed', factualMessage(facts, status), {
    provider: { status },
    facts,
  });
}

function factualMessage(facts: ResponseFacts, status: number): string {
  const what = facts.contentType === undefined ? '' : ` (${facts.contentType})`;
  switch (facts.reason) {
    case 'html':
      return `The endpoint answered HTTP ${status} with an HTML page${what}, not a token response.`;
    case 'redirect':
      return `The endpoint answered HTTP ${status}, a redirect; token requests do not follow redirects.`;
    case 'not_found':
      return 'The endpoint answered HTTP 404 Not Found.';
    case 'empty':
      return `The endpoint answered HTTP ${status} with an empty body.`;
    case 'no_access_token':
      return `The endpoint answered HTTP ${status} without an access_token.`;
    case 'unsafe_access_token':
      return `The endpoint answered HTTP ${status} with an access token that cannot be sent in an HTTP header.`;
    case 'oversized_field':
      return `The endpoint answered HTTP ${status} with a ${facts.field?.name} of ${facts.field?.length} characters; Grantry accepts at most ${facts.field?.limit}.`;
    case 'not_oauth':
      return `The endpoint answered HTTP ${status} with a body that is neither JSON nor form-encoded${what}.`;
    default:
      return `The endpoint answered HTTP ${status} without an OAuth error${what}.`;
  }
}

function oauthErrorOf(
  fields: Fields,
  status: number,
  contentType: string | undefined,
  redact: Redact,
): OAuthError | null {
  const { error } = fields;
  const facts: ResponseFacts = { reason: 'oauth_error' };
  if (contentType !== undefined) facts.contentType = contentType;
  if (typeof error === 'string' && error.length > 0) {
    const provider: ProviderAnswer = { status, error: shorten(redact(error), 100) };
    const description = fields.error_description;
    if (typeof description === 'string' && description.length > 0) {
      provider.errorDescription = shorten(redact(description), MAX_DESCRIPTION_LENGTH);
    }
    const uri = fields.error_uri;
    if (typeof uri === 'string' && uri.length > 0)
      provider.errorUri = shorten(redact(uri), MAX_DESCRIPTION_LENGTH);
    const code = problemCodeForProviderError(provider.error ?? '', provider.errorDescription);
    if (code === 'token_fetch_failed') facts.reason = 'provider_error';
    const detail = provider.errorDescription === undefined ? '' : `: ${provider.errorDescription}`;
    return new OAuthError(code, `The provider answered "${provider.error}"${detail}`, { provider, facts });
  }
  // Some APIs answer `{"error": {"code": …, "message": …}}` (Google APIs, Microsoft Graph style).
  if (error !== null && typeof error === 'object' && !Array.isArray(error)) {
    const nested = error as Fields;
    const provider: ProviderAnswer = { status };
    const nestedCode = nested.code ?? nested.status;
    if (typeof nestedCode === 'string' && nestedCode.length > 0)
      provider.error = shorten(redact(nestedCode), 100);
    if (typeof nested.message === 'string' && nested.message.length > 0) {
      provider.errorDescription = shorten(redact(nested.message), MAX_DESCRIPTION_LENGTH);
    }
    facts.reason = 'provider_error';
    return new OAuthError(
      'token_fetch_failed',
      `The provider answered HTTP ${status} with an error object.`,
      {
        provider,
        facts,
      },
    );
  }
  return null;
}

function tokenSetOf(accessToken: string, fields: Fields): TokenSet {
  return {
    accessToken,
    tokenType: nonEmptyString(fields.token_type) ?? 'Bearer',
    expiresIn: tokenLifetimeSeconds(fields.expires_in) ?? tokenLifetimeSeconds(fields.expires),
    refreshToken: nonEmptyString(fields.refresh_token),
    scope: scopeOf(fields.scope),
    idToken: nonEmptyString(fields.id_token),
  };
}

function nonEmptyString(value: unknown): string | null {
  return typeof value === 'string' && value.length > 0 ? value : null;
}

function scopeOf(value: unknown): string | null {
  if (typeof value === 'string') return value;
  // A few providers (Strava-like) answer an array; RFC 6749 §3.3 is space-delimited.
  if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return value.join(' ');
  return null;
}

function parseBody(bodyText: string, contentType: string | undefined): ParsedBody {
  const text = bodyText.replace(/^\uFEFF/, '').trim();
  if (text.length === 0) return { kind: 'empty' };
  if (text.startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
        return { kind: 'fields', fields: parsed as Fields };
      }
    } catch {
      return { kind: 'unknown' };
    }
    return { kind: 'unknown' };
  }
  if (text.startsWith('<')) return { kind: 'html', title: htmlTitle(text) };
  const looksFormEncoded = /^[A-Za-z0-9_.~%+-]+=[^\s<>]*$/.test(text);
  if (
    looksFormEncoded &&
    (contentType === 'application/x-www-form-urlencoded' || /(^|&)(access_token|error)=/.test(text))
  ) {
    return { kind: 'fields', fields: Object.fromEntries(new URLSearchParams(text)) };
  }
  return { kind: 'unknown' };
}

function htmlTitle(text: string): string | undefined {
  const match = /<title[^>]*>([^<]{1,300})<\/title>/i.exec(text.slice(0, 20_000));
  if (match?.[1] === undefined) return undefined;
  const title = match[1]
    .replace(/\p{Cc}+/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  // Shortened where it is shown, after redaction.
  return title.length === 0 ? undefined : title;
}

/** The media type alone, lower case and restricted to token characters, so it is safe to show. */
export function mediaType(contentType: string | null | undefined): string | undefined {
  if (contentType === null || contentType === undefined) return undefined;
  const type = (contentType.split(';')[0] ?? '').trim().toLowerCase();
  if (!/^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(type)) return undefined;
  return shorten(type, 100);
}

function safeLocation(location: string | null, redact: Redact): string | undefined {
  if (location === null) return undefined;
  try {
    const url = new URL(location);
    return shorten(redact(`${url.origin}${url.pathname}`), 200);
  } catch {
    return undefined;
  }
}
