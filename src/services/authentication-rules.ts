import { isProtocolParameter } from '../oauth/client-config.js';
import { RESERVED_ASSERTION_CLAIMS } from '../oauth/grants/jwt-bearer.js';
import { isHeaderSafeValue } from '../oauth/header-value.js';
import type { FieldError } from '../problem.js';
import type { AuthenticationSettings } from '../store/contract.js';
import type { AuthenticationDraft } from './authentication-draft.js';
import {
  AUTHENTICATION_TYPES,
  type AuthenticationType,
  allFields,
  appliesTo,
  appliesWith,
  describeConditions,
  type FieldSpec,
  fieldsOf,
  GRANT_LABELS,
  type GrantType,
  isRequired,
  KINDS,
  kindsWithField,
} from './catalogue/index.js';
import { SECRET_CLIENT_AUTH_METHODS } from './catalogue/oauth2.js';
import {
  type AllowHttp,
  BLANK_NAME,
  checkUrl,
  escapePointer,
  HEADER_NAME,
  hasControlCharacters,
  hasVisibleCharacter,
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
    if (!appliesWith(field, grant, draft.values, kind.fields as readonly FieldSpec[])) {
      if (value !== undefined && value !== '') {
        errors.push({
          path: `/${field.name}`,
          message: `applies only with ${describeConditions(field)}; remove it`,
        });
      }
      continue;
    }
    if (isRequired(field, grant) && (!present || value === '')) {
      errors.push({
        path: `/${field.name}`,
        message: `is required${requiredFor(field)}${requiredWith(field, draft)}`,
      });
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
  } else if (typeof draft.name === 'string' && draft.name !== '' && !hasVisibleCharacter(draft.name)) {
    errors.push({ path: '/name', message: BLANK_NAME });
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

/** Why a conditional field is required here: "with clientAuthMethod client_secret_basic", and what to do instead. */
function requiredWith(field: FieldSpec, draft: AuthenticationDraft): string {
  if (field.when === undefined) return '';
  const method = (draft.values.clientAuthMethod as string | undefined) ?? 'client_secret_basic';
  const condition = field.when.find((c) => c.field === 'clientAuthMethod');
  if (condition === undefined) return '';
  const advice =
    draft.grantType === 'jwt_bearer'
      ? ': with the JWT Bearer grant most providers authenticate no client (the assertion is the proof): set clientAuthMethod to none'
      : '';
  return ` with clientAuthMethod ${method}${advice}`;
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
      case 'pem':
        // biome-ignore lint/suspicious/noControlCharactersInRegex: line breaks and tabs are allowed, other controls are not.
        return /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(value)
          ? one('must be PEM text: no control characters other than line breaks')
          : null;
      case 'secret':
        if (field.multiline === true) {
          return /\0/.test(value) ? one('must not contain NUL characters') : null;
        }
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
    return field.name === 'assertion'
      ? claimProblems(value as Record<string, string>, at)
      : parameterProblems(value as Record<string, string>, at);
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

/** The claims of a JWT-bearer assertion: names, values, and none Grantry sets itself. */
function claimProblems(claims: Record<string, string>, path: string): { errors: FieldError[] } | null {
  const errors: FieldError[] = [];
  const entries = Object.entries(claims);
  if (entries.length > 50) errors.push({ path, message: 'may have at most 50 claims' });
  for (const [key, value] of entries) {
    const at = `${path}/${escapePointer(key)}`;
    if (key === '' || hasControlCharacters(key)) {
      errors.push({ path: at, message: 'claim names must be non-empty, without control characters' });
    } else if ((RESERVED_ASSERTION_CLAIMS as readonly string[]).includes(key)) {
      errors.push({ path: at, message: `"${key}" is set by Grantry on every assertion; remove it` });
    }
    if (hasControlCharacters(value))
      errors.push({ path: at, message: 'must not contain control characters' });
  }
  return errors.length === 0 ? null : { errors };
}

/** Rules between fields of one kind. */
function kindRules(draft: AuthenticationDraft): FieldError[] {
  // RFC 7617 §2: the user-id and password are joined by the first colon, so a user-id with one
  // would be split at the wrong place by every server.
  if (
    draft.type === 'basic' &&
    typeof draft.values.username === 'string' &&
    draft.values.username.includes(':')
  ) {
    return [
      {
        path: '/username',
        message:
          'must not contain ":" (RFC 7617: Basic authentication joins the username and password with a colon)',
      },
    ];
  }
  if (draft.type === 'api_key' && draft.values.apiKeyIn === 'query' && draft.values.apiKeyPrefix) {
    return [{ path: '/apiKeyPrefix', message: 'applies only to a key sent in a header; remove it' }];
  }
  if (draft.type === 'oauth2') return keyRules(draft);
  return [];
}

/** The rules of client authentication methods and keys (docs/keys.md) that no single field says. */
function keyRules(draft: AuthenticationDraft): FieldError[] {
  const errors: FieldError[] = [];
  const method = (draft.values.clientAuthMethod as string | undefined) ?? 'client_secret_basic';
  const clientId = draft.values.clientId;
  const noClientId = clientId === undefined || clientId === '';
  if (draft.grantType === 'jwt_bearer' && noClientId) {
    const assertion = (draft.values.assertion ?? {}) as Record<string, string>;
    if (method !== 'none') {
      errors.push({ path: '/clientId', message: `is required with clientAuthMethod ${method}` });
    } else if (assertion.iss === undefined || assertion.iss === '') {
      errors.push({
        path: '/assertion/iss',
        message:
          'is required (the assertion’s issuer: a service account’s email, a consumer key) unless clientId is set',
      });
    }
  }
  const generate = draft.values.generateKey === true;
  if (generate && draft.givenSecrets.privateKey !== undefined) {
    errors.push({
      path: '/generateKey',
      message: 'cannot be true with privateKey: either Grantry makes the key, or you give one',
    });
  }
  if (generate && method === 'tls_client_auth') {
    errors.push({
      path: '/generateKey',
      message:
        'cannot make a certificate a CA has issued: with tls_client_auth give privateKey and its certificate, or use self_signed_tls_client_auth with a key Grantry makes',
    });
  }
  return errors;
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
  given: {
    clientSecret?: string | undefined;
    password?: string | undefined;
    privateKey?: string | undefined;
  },
  credentials: { clientAuthMethod?: string | undefined; generateKey?: boolean | undefined } = {},
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
  const method = credentials.clientAuthMethod ?? 'client_secret_basic';
  const sendsSecret = (SECRET_CLIENT_AUTH_METHODS as readonly string[]).includes(method);
  // A signed assertion (private_key_jwt, the JWT-bearer grant) sent to a new origin could be replayed
  // at the provider before it expires: only someone who gives the key (or asks for a new one,
  // which the provider does not know yet) may send assertions somewhere new.
  const signs = method === 'private_key_jwt' || grantType === 'jwt_bearer';
  if (sendsSecret && (given.clientSecret === undefined || given.clientSecret === '')) {
    errors.push({
      path: '/clientSecret',
      message: `is required in the same request when ${where} moves to another origin: send the client secret again`,
    });
  }
  if (
    signs &&
    (given.privateKey === undefined || given.privateKey === '') &&
    credentials.generateKey !== true
  ) {
    errors.push({
      path: '/privateKey',
      message: `is required in the same request when ${where} moves to another origin: send the private key again, or generateKey: true for a new one (then register it at the provider)`,
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
