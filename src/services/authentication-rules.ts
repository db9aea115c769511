import { isProtocolParameter } from '../oauth/client-config.js';
import { isHeaderSafeValue } from '../oauth/header-value.js';
import type { FieldError } from '../problem.js';
import type { AuthenticationSettings } from '../store/contract.js';
import type { AuthenticationDraft } from './authentication-draft.js';
import {
  AUTHENTICATION_TYPES,
  type AuthenticationType,
  allFields,
  appliesTo,
  type FieldSpec,
  fieldsOf,
  GRANT_LABELS,
  type GrantType,
  isRequired,
  KINDS,
  kindsWithField,
} from './catalogue/index.js';
import {
  type AllowHttp,
  checkUrl,
  escapePointer,
  HEADER_NAME,
  hasControlCharacters,
  type RuleResult,
} from './field-checks.js';

/**
 * The rules of an authentication as it will be stored, read off the catalogue: which fields its
 * kind and grant take, which are required, and what each type of value must look like. The schema
 * has already checked JSON types and lengths; these are the rules a schema cannot say.
 */
export function checkAuthenticationDraft(draft: AuthenticationDraft, allowHttp: AllowHttp): RuleResult {
  const errors: FieldError[] = [];
  let insecure = 0;
  // Without a valid type (the schema reports it), the rules of the kind the fields point at still
  // run, so that the person sees every other problem in the same answer.
  const type = draft.type ?? likelyType(draft);
  const kind = KINDS[type];
  const grant = draft.grantType;
  const fields = fieldsOf(type);
  const own = new Set(fields.map((field) => field.name));

  for (const name of draft.changedImmutable) {
    errors.push({ path: `/${name}`, message: 'cannot change after create; create another authentication' });
  }
  for (const name of draft.refusedClears) {
    const field = fields.find((candidate) => candidate.name === name);
    errors.push({
      path: `/${name}`,
      message:
        field === undefined
          ? 'is not a field of this authentication'
          : field.immutable === true
            ? 'cannot change after create'
            : `is required${requiredFor(field)}; it cannot be cleared`,
    });
  }
  for (const name of [...Object.keys(draft.values), ...Object.keys(draft.givenSecrets)]) {
    if (own.has(name) || !allFields().some((field) => field.name === name)) continue;
    const kinds = kindsWithField(name).map((type) => KINDS[type].label);
    errors.push({
      path: `/${name}`,
      message: `does not apply to ${kind.label} authentications (only to ${kinds.join(', ')}); remove it`,
    });
  }

  for (const field of kind.fields as readonly FieldSpec[]) {
    const value =
      field.name === 'grantType'
        ? draft.grantType
        : field.type === 'secret'
          ? draft.givenSecrets[field.name]
          : draft.values[field.name];
    const present = value !== undefined || (field.type === 'secret' && draft.storedSecrets.has(field.name));
    if (!appliesTo(field, grant)) {
      if (value !== undefined) {
        errors.push({
          path: `/${field.name}`,
          message: `applies only to the ${grantLabels(field)} grant; remove it`,
        });
      }
      continue;
    }
    if (isRequired(field, grant) && (!present || value === '')) {
      errors.push({ path: `/${field.name}`, message: `is required${requiredFor(field)}` });
      continue;
    }
    if (value === undefined) continue;
    // An optional field sent empty is cleared, like `null` (a form's emptied input).
    if (value === '' && field.default === undefined) continue;
    const problem = valueProblem(field, value, allowHttp, draft);
    if (problem !== null) {
      if (problem.insecure) insecure++;
      errors.push(...problem.errors);
    }
  }
  if (draft.name === undefined || draft.name === '') errors.push({ path: '/name', message: 'is required' });
  if (draft.type === undefined) errors.push({ path: '/type', message: 'is required' });
  if (typeof draft.name === 'string' && hasControlCharacters(draft.name)) {
    errors.push({ path: '/name', message: 'must not contain control characters (such as line breaks)' });
  }
  errors.push(...kindRules(draft));
  return { errors, onlyInsecureUrls: errors.length > 0 && insecure === errors.length };
}

/** The kind whose fields a request without a valid type mostly carries (OAuth 2.0 when none stands out). */
function likelyType(draft: AuthenticationDraft): AuthenticationType {
  const given = new Set([...Object.keys(draft.values), ...Object.keys(draft.givenSecrets)]);
  let best: AuthenticationType = 'oauth2';
  let bestCount = 0;
  for (const type of AUTHENTICATION_TYPES) {
    const count = (KINDS[type].fields as readonly FieldSpec[]).filter((field) =>
      given.has(field.name),
    ).length;
    if (count > bestCount) {
      best = type;
      bestCount = count;
    }
  }
  return best;
}

function requiredFor(field: FieldSpec): string {
  return Array.isArray(field.required)
    ? ` for the ${grantLabels({ ...field, grants: field.required })} grant`
    : '';
}

function grantLabels(field: FieldSpec): string {
  return (field.grants ?? []).map((grant) => GRANT_LABELS[grant]).join(' or ');
}

/** What is wrong with one value of a field, by the field's type. */
function valueProblem(
  field: FieldSpec,
  value: unknown,
  allowHttp: AllowHttp,
  draft: AuthenticationDraft,
): { errors: FieldError[]; insecure?: boolean } | null {
  const at = `/${field.name}`;
  const one = (message: string) => ({ errors: [{ path: at, message }] });
  if (typeof value === 'string') {
    switch (field.type) {
      case 'url': {
        const result = checkUrl(value, allowHttp);
        if (result.rule === 'ok') return null;
        return { ...one(result.message ?? 'is invalid'), insecure: result.rule === 'insecure' };
      }
      case 'secret':
        if (field.headerValue === true && !isHeaderSafeValue(value)) {
          return one(
            'must contain only characters an HTTP header can carry (visible ASCII, spaces, Latin-1): no line breaks, control characters or emoji',
          );
        }
        return /[\r\n\0]/.test(value) ? one('must not contain line breaks or NUL characters') : null;
      case 'headerPrefix':
        return value !== '' && !/^[!-~]+$/.test(value)
          ? one('must be one word of visible ASCII characters, such as Bearer')
          : null;
      case 'headerName':
        if (draft.values.apiKeyIn === 'query') {
          return value === '' || hasControlCharacters(value)
            ? one('must be a parameter name without control characters')
            : null;
        }
        return HEADER_NAME.test(value)
          ? null
          : one('must be a valid HTTP header name (letters, digits, - and _)');
      case 'scope':
        // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), separated by spaces.
        return /[^\x21\x23-\x5b\x5d-\x7e ]/.test(value)
          ? one('must be space-separated scope tokens (no quotes or backslashes)')
          : null;
      default:
        return hasControlCharacters(value)
          ? one('must not contain control characters (such as line breaks)')
          : null;
    }
  }
  if (field.type === 'parameters' && typeof value === 'object' && value !== null) {
    return parameterProblems(value as Record<string, string>, at);
  }
  if (field.type === 'integer' && typeof value === 'number') {
    const { minimum = Number.MIN_SAFE_INTEGER, maximum = Number.MAX_SAFE_INTEGER } = field;
    return value < minimum || value > maximum
      ? one(`must be a whole number from ${minimum} to ${maximum}`)
      : null;
  }
  return null;
}

function parameterProblems(params: Record<string, string>, path: string): { errors: FieldError[] } | null {
  const errors: FieldError[] = [];
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
    if (hasControlCharacters(value))
      errors.push({ path: at, message: 'must not contain control characters' });
  }
  return errors.length === 0 ? null : { errors };
}

/** Rules between fields of one kind. */
function kindRules(draft: AuthenticationDraft): FieldError[] {
  if (draft.type === 'api_key' && draft.values.apiKeyIn === 'query' && draft.values.apiKeyPrefix) {
    return [{ path: '/apiKeyPrefix', message: 'applies only to a key sent in a header; remove it' }];
  }
  return [];
}

/** The fields whose change alters the token request, from the catalogue. */
export function tokenShapingFields(draft: Pick<AuthenticationDraft, 'type'>): string[] {
  if (draft.type === undefined) return [];
  return (KINDS[draft.type].fields as readonly FieldSpec[])
    .filter((f) => f.shapesToken === true)
    .map((f) => f.name);
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
 * would send there (docs/api.md "PATCH"): otherwise anyone holding an admin key — or a stolen one — could
 * re-point the token URL at their own server and collect the stored client secret, password or
 * refresh token on the next call, which write-only secrets exist to prevent. Returns the problems
 * (one per missing secret, naming the moved endpoints) and the endpoints that moved, in which case
 * the stored tokens are dropped whatever else happens.
 */
export function checkCredentialDestinations(
  stored: AuthenticationSettings,
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
