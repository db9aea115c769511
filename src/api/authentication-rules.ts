import { isProtocolParameter } from '../oauth/client-config.js';
import type { FieldError } from '../problem.js';
import type { AuthenticationSettings, GrantType } from '../store/contract.js';
import type { AuthenticationCreate } from './schemas.js';
import { checkUrl, escapePointer, hasControlCharacters } from './validation.js';

/**
 * The product page's rules per grant type (SEED-oauth-2.0.md "Required fields"), applied to the
 * authentication as it will be stored (for a PATCH: the stored one with the patch applied).
 */

/** Everything a grant may have, merged from the stored authentication and the request. */
export interface AuthenticationDraft extends Partial<Omit<AuthenticationCreate, 'type'>> {
  type?: string;
  /** True when a secret is already stored (PATCH without it keeps it). */
  clientSecretStored?: boolean;
  passwordStored?: boolean;
}

const ONLY_FOR: Array<[keyof AuthenticationDraft, GrantType, string]> = [
  ['authorizationUrl', 'authorization_code', 'Authorization Code'],
  ['extraAuthorizationParams', 'authorization_code', 'Authorization Code'],
  ['pkce', 'authorization_code', 'Authorization Code'],
  ['username', 'password', 'Password'],
  ['password', 'password', 'Password'],
];

export interface RuleResult {
  errors: FieldError[];
  /** True when every problem is an http URL where https is required (answer `insecure_url`). */
  onlyInsecureUrls: boolean;
}

export function checkAuthenticationRules(
  draft: AuthenticationDraft,
  allowHttp: 'off' | 'loopback',
): RuleResult {
  const errors: FieldError[] = [];
  let insecure = 0;
  const grant = draft.grantType;

  for (const [field, onlyGrant, label] of ONLY_FOR) {
    if (grant !== undefined && grant !== onlyGrant && draft[field] !== undefined) {
      errors.push({ path: `/${field}`, message: `applies only to the ${label} grant; remove it` });
    }
  }
  if (grant === 'authorization_code' && !draft.authorizationUrl) {
    errors.push({ path: '/authorizationUrl', message: 'is required for the Authorization Code grant' });
  }
  if (grant === 'password') {
    if (!draft.username) errors.push({ path: '/username', message: 'is required for the Password grant' });
    if (!draft.password && !draft.passwordStored) {
      errors.push({ path: '/password', message: 'is required for the Password grant' });
    }
  }
  if (!draft.clientSecret && !draft.clientSecretStored) {
    errors.push({ path: '/clientSecret', message: 'is required' });
  }

  for (const field of ['tokenUrl', 'authorizationUrl', 'revocationUrl'] as const) {
    const value = draft[field];
    if (typeof value !== 'string') continue;
    const result = checkUrl(value, allowHttp);
    if (result.rule === 'ok') continue;
    if (result.rule === 'insecure') insecure++;
    errors.push({ path: `/${field}`, message: result.message ?? 'is invalid' });
  }

  for (const field of ['name', 'clientId', 'audience', 'scope', 'username', 'headerPrefix'] as const) {
    const value = draft[field];
    if (typeof value === 'string' && hasControlCharacters(value)) {
      errors.push({
        path: `/${field}`,
        message: 'must not contain control characters (such as line breaks)',
      });
    }
  }
  for (const field of ['clientSecret', 'password'] as const) {
    const value = draft[field];
    if (typeof value === 'string' && /[\r\n\0]/.test(value)) {
      errors.push({ path: `/${field}`, message: 'must not contain line breaks or NUL characters' });
    }
  }
  if (
    typeof draft.headerPrefix === 'string' &&
    draft.headerPrefix !== '' &&
    !/^[!-~]+$/.test(draft.headerPrefix)
  ) {
    errors.push({
      path: '/headerPrefix',
      message: 'must be one word of visible ASCII characters, such as Bearer',
    });
  }
  if (typeof draft.scope === 'string' && /[^\x21\x23-\x5b\x5d-\x7e ]/.test(draft.scope)) {
    // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), separated by spaces.
    errors.push({
      path: '/scope',
      message: 'must be space-separated scope tokens (no quotes or backslashes)',
    });
  }

  checkExtraParams(draft.extraTokenParams, '/extraTokenParams', errors);
  checkExtraParams(draft.extraAuthorizationParams, '/extraAuthorizationParams', errors);

  return { errors, onlyInsecureUrls: errors.length > 0 && insecure === errors.length };
}

function checkExtraParams(
  params: Record<string, string> | undefined,
  path: string,
  errors: FieldError[],
): void {
  if (params === undefined || typeof params !== 'object' || params === null) return;
  const entries = Object.entries(params);
  if (entries.length > 50) errors.push({ path, message: 'may have at most 50 parameters' });
  for (const [key, value] of entries) {
    const at = `${path}/${escapePointer(key)}`;
    if (key === '' || hasControlCharacters(key)) {
      errors.push({ path: at, message: 'parameter names must be non-empty, without control characters' });
    } else if (isProtocolParameter(key)) {
      errors.push({
        path: at,
        message: `"${key}" is a protocol parameter that Grantry sets; it cannot be overridden`,
      });
    }
    if (typeof value === 'string' && hasControlCharacters(value)) {
      errors.push({ path: at, message: 'must not contain control characters' });
    }
  }
}

/** Fields whose change alters the token request: cached tokens are dropped when one changes. */
export const TOKEN_SHAPING_FIELDS = [
  'grantType',
  'authorizationUrl',
  'tokenUrl',
  'clientId',
  'clientSecret',
  'audience',
  'audienceParam',
  'scope',
  'username',
  'password',
  'clientAuthMethod',
  'extraTokenParams',
  'extraAuthorizationParams',
  'pkce',
] as const;

/** The non-secret settings of a valid draft, with defaults applied. */
export function settingsFromDraft(draft: AuthenticationDraft): AuthenticationSettings {
  const settings: AuthenticationSettings = {
    tokenUrl: draft.tokenUrl ?? '',
    clientId: draft.clientId ?? '',
    headerPrefix: draft.headerPrefix ?? 'Bearer',
    audienceParam: draft.audienceParam ?? 'audience',
    clientAuthMethod: draft.clientAuthMethod ?? 'client_secret_basic',
  };
  if (draft.authorizationUrl !== undefined) settings.authorizationUrl = draft.authorizationUrl;
  if (draft.audience !== undefined && draft.audience !== '') settings.audience = draft.audience;
  if (draft.scope !== undefined && draft.scope.trim() !== '')
    settings.scope = draft.scope.trim().replace(/ +/g, ' ');
  if (draft.username !== undefined) settings.username = draft.username;
  if (draft.extraAuthorizationParams !== undefined)
    settings.extraAuthorizationParams = draft.extraAuthorizationParams;
  if (draft.extraTokenParams !== undefined) settings.extraTokenParams = draft.extraTokenParams;
  if (draft.grantType === 'authorization_code') settings.pkce = draft.pkce ?? true;
  if (draft.revocationUrl !== undefined && draft.revocationUrl !== '')
    settings.revocationUrl = draft.revocationUrl;
  return settings;
}

/** Endpoints that receive a secret, a token, or a person's consent: where credentials go. */
const CREDENTIAL_ENDPOINTS = ['tokenUrl', 'authorizationUrl', 'revocationUrl'] as const;
type CredentialEndpoint = (typeof CREDENTIAL_ENDPOINTS)[number];
type CredentialEndpointUrls = { [K in CredentialEndpoint]?: string | undefined };

/**
 * Where each credential endpoint sends what it receives, as an origin. Revocation falls back to the
 * token URL's origin when none is configured: that is where the issuer's own revocation endpoint is
 * looked up, so configuring one on another origin moves the refresh token somewhere new.
 */
function credentialOrigins(settings: CredentialEndpointUrls): Record<CredentialEndpoint, string | null> {
  const tokenOrigin = originOf(settings.tokenUrl);
  return {
    tokenUrl: tokenOrigin,
    authorizationUrl: originOf(settings.authorizationUrl),
    revocationUrl: originOf(settings.revocationUrl) ?? tokenOrigin,
  };
}

function originOf(url: string | undefined): string | null {
  if (url === undefined || url === '') return null;
  try {
    return new URL(url).origin;
  } catch {
    return null;
  }
}

/**
 * A PATCH that moves a credential endpoint to another origin must prove it knows the secrets it
 * would send there (API.md "PATCH"): otherwise anyone holding an admin key — or a stolen one — could
 * re-point the token URL at their own server and collect the stored client secret, password or
 * refresh token on the next call, which write-only secrets exist to prevent. Returns the problems
 * (one per missing secret, naming the moved endpoints) and whether any endpoint moved, in which case
 * the stored tokens are dropped whatever else happens.
 */
export function checkCredentialDestinations(
  stored: CredentialEndpointUrls,
  next: CredentialEndpointUrls,
  grantType: GrantType | undefined,
  given: { clientSecret?: string | undefined; password?: string | undefined },
): { errors: FieldError[]; moved: CredentialEndpoint[] } {
  const before = credentialOrigins(stored);
  const after = credentialOrigins(next);
  const moved = CREDENTIAL_ENDPOINTS.filter(
    (endpoint) =>
      after[endpoint] !== null && before[endpoint] !== null && after[endpoint] !== before[endpoint],
  );
  // An endpoint that had no origin before (an authorizationUrl added with a switch to Authorization
  // Code) moves credentials too when it is on an origin the authentication never talked to.
  for (const endpoint of CREDENTIAL_ENDPOINTS) {
    if (before[endpoint] === null && after[endpoint] !== null) {
      const known = new Set(Object.values(before).filter((origin) => origin !== null));
      if (!known.has(after[endpoint])) moved.push(endpoint);
    }
  }
  if (moved.length === 0) return { errors: [], moved };
  const where = moved
    .map((endpoint) => `${endpoint} (${before[endpoint] ?? 'none'} → ${after[endpoint]})`)
    .join(', ');
  const errors: FieldError[] = [];
  if (given.clientSecret === undefined || given.clientSecret === '') {
    errors.push({
      path: '/clientSecret',
      message: `is required in the same request when ${where} moves to another origin: send the client secret again`,
    });
  }
  if (grantType === 'password' && (given.password === undefined || given.password === '')) {
    errors.push({
      path: '/password',
      message: `is required in the same request when ${where} moves to another origin: send the password again`,
    });
  }
  return { errors, moved };
}
