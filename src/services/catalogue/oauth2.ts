import type { FieldCondition, KindSpec } from './field-spec.js';

/** The client authentication methods that send the client secret (RFC 6749 §2.3.1, RFC 7523 §2.2 HS256). */
export const SECRET_CLIENT_AUTH_METHODS = [
  'auto',
  'client_secret_basic',
  'client_secret_post',
  'client_secret_jwt',
] as const;

/** The client authentication methods that use a key pair: a signed assertion, or mutual TLS (RFC 8705). */
export const KEY_CLIENT_AUTH_METHODS = [
  'private_key_jwt',
  'tls_client_auth',
  'self_signed_tls_client_auth',
] as const;

export const MTLS_CLIENT_AUTH_METHODS = ['tls_client_auth', 'self_signed_tls_client_auth'] as const;

/** The claims `assertion` names itself (docs/api.md): the others go in `assertion.claims`. */
export const ASSERTION_NAMED_CLAIMS = ['iss', 'sub', 'aud'] as const;

/** The JWT Bearer grant's assertion as the API answers it: `{"iss","sub","aud","claims"}`. */
export interface AssertionClaims {
  iss?: string;
  sub?: string;
  aud?: string;
  claims?: Record<string, string>;
}

/** The stored map of claims (one flat map, as signed) in the answer's shape. */
export function assertionOf(flat: Readonly<Record<string, string>>): AssertionClaims {
  const answer: AssertionClaims = {};
  const claims: Record<string, string> = {};
  for (const [name, value] of Object.entries(flat)) {
    if (name === 'iss' || name === 'sub' || name === 'aud') answer[name] = value;
    else claims[name] = value;
  }
  if (Object.keys(claims).length > 0) answer.claims = claims;
  return answer;
}

/** The answer's shape back to one flat map of claims (the console edits it as one list). */
export function flatAssertion(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null) return {};
  const flat: Record<string, string> = {};
  for (const [name, member] of Object.entries(value as Record<string, unknown>)) {
    if (name === 'claims' && typeof member === 'object' && member !== null) {
      for (const [claim, claimValue] of Object.entries(member as Record<string, unknown>))
        if (typeof claimValue === 'string') flat[claim] = claimValue;
    } else if (typeof member === 'string') {
      flat[name] = member;
    }
  }
  return flat;
}

/** An authentication uses a key pair of its own: a key-based client authentication, or the JWT-bearer grant. */
const USES_KEYS: readonly FieldCondition[] = [
  { field: 'clientAuthMethod', values: KEY_CLIENT_AUTH_METHODS },
  { field: 'grantType', values: ['jwt_bearer'] },
];

/** OAuth 2.0 with the three grants of the product page (SEED-oauth-2.0.md "Shared OAuth fields"). */
const fields = [
  {
    name: 'grantType',
    type: 'enum',
    label: 'Grant Type',
    options: [
      { value: 'client_credentials', label: 'Client Credentials' },
      { value: 'password', label: 'Password Grant' },
      { value: 'authorization_code', label: 'Authorization Code' },
      { value: 'jwt_bearer', label: 'JWT Bearer (RFC 7523)' },
    ],
    required: true,
    shapesToken: true,
  },
  {
    name: 'authorizationUrl',
    type: 'url',
    label: 'Authorization URL',
    help: "The provider's authorization endpoint, where a person signs in and consents.",
    placeholder: 'https://login.example.com/oauth2/authorize',
    grants: ['authorization_code'],
    required: ['authorization_code'],
    shapesToken: true,
  },
  {
    name: 'tokenUrl',
    type: 'url',
    label: 'Token URL',
    help: "The provider's token endpoint.",
    placeholder: 'https://login.example.com/oauth2/token',
    required: true,
    shapesToken: true,
  },
  {
    name: 'clientId',
    type: 'text',
    label: 'Client ID',
    help: 'With the JWT Bearer grant, needed only when the provider authenticates the client too; the assertion’s issuer defaults to it.',
    minLength: 1,
    maxLength: 500,
    required: true,
    optionalFor: ['jwt_bearer'],
    shapesToken: true,
  },
  {
    name: 'clientSecret',
    type: 'secret',
    label: 'Client Secret',
    minLength: 1,
    maxLength: 4000,
    required: true,
    when: [{ field: 'clientAuthMethod', values: SECRET_CLIENT_AUTH_METHODS }],
    shapesToken: true,
  },
  {
    name: 'serviceAccountJson',
    type: 'secret',
    label: 'Google service account key file',
    help: 'The JSON key file of a Google service account: it sets the Token URL, the assertion’s issuer and audience, and the private key with its id in one step. Read once, never answered.',
    maxLength: 20000,
    multiline: true,
    inputOnly: true,
    grants: ['jwt_bearer'],
    shapesToken: true,
  },
  {
    name: 'assertion',
    type: 'parameters',
    label: 'Assertion claims',
    help: 'The claims of the JWT Grantry signs for the JWT Bearer grant: iss (default: the Client ID), aud (default: the Token URL), sub (the user to act as, e.g. for Google domain-wide delegation), and any other claim such as Google’s scope. The API takes and answers {"iss","sub","aud","claims"} (docs/api.md). exp, iat, nbf and jti are set by Grantry.',
    grants: ['jwt_bearer'],
    shapesToken: true,
  },
  {
    name: 'headerPrefix',
    type: 'headerPrefix',
    label: 'Header Prefix',
    help: 'Sent as "Authorization: <prefix> <token>". Usually Bearer; empty sends the bare token.',
    maxLength: 100,
    default: 'Bearer',
  },
  {
    name: 'audience',
    type: 'text',
    label: 'Audience',
    help: 'The API the token is for, when the provider asks for one.',
    placeholder: 'https://api.example.com',
    maxLength: 2000,
    shapesToken: true,
  },
  {
    name: 'scope',
    type: 'scope',
    label: 'Scope',
    help: 'Space-separated. Ask for the least access the integration needs.',
    placeholder: 'read:invoices write:invoices',
    maxLength: 2000,
    shapesToken: true,
  },
  {
    name: 'username',
    type: 'text',
    label: 'Username',
    minLength: 1,
    maxLength: 500,
    grants: ['password'],
    required: ['password'],
    shapesToken: true,
  },
  {
    name: 'password',
    type: 'secret',
    label: 'Password',
    minLength: 1,
    maxLength: 4000,
    grants: ['password'],
    required: ['password'],
    shapesToken: true,
  },
  {
    name: 'clientAuthMethod',
    type: 'enum',
    label: 'Client authentication method',
    help: 'How the Client ID and Secret are sent to the token endpoint (RFC 6749 §2.3.1). Detect uses what the provider’s metadata lists, else tries the Basic header and, if the provider refuses the client, the request body once — and keeps what worked.',
    options: [
      { value: 'auto', label: 'Detect (Basic header, else request body)' },
      { value: 'client_secret_basic', label: 'HTTP Basic header (client_secret_basic)' },
      { value: 'client_secret_post', label: 'Request body (client_secret_post)' },
      { value: 'client_secret_jwt', label: 'JWT signed with the secret (client_secret_jwt)' },
      { value: 'private_key_jwt', label: 'JWT signed with a private key (private_key_jwt)' },
      { value: 'tls_client_auth', label: 'Mutual TLS, CA-issued certificate (tls_client_auth)' },
      {
        value: 'self_signed_tls_client_auth',
        label: 'Mutual TLS, self-signed certificate (self_signed_tls_client_auth)',
      },
      { value: 'none', label: 'None: a public client, or the JWT Bearer grant (none)' },
    ],
    default: 'client_secret_basic',
    formDefault: 'auto',
    advanced: true,
    shapesToken: true,
  },
  {
    name: 'signingAlg',
    type: 'enum',
    label: 'Signing algorithm',
    help: 'What Grantry signs assertions with, and the type of key it makes: RS256 or PS256 (RSA 2048), ES256 (P-256) or EdDSA (Ed25519).',
    options: [
      { value: 'RS256', label: 'RS256 (RSA)' },
      { value: 'PS256', label: 'PS256 (RSA-PSS)' },
      { value: 'ES256', label: 'ES256 (EC P-256)' },
      { value: 'EdDSA', label: 'EdDSA (Ed25519)' },
    ],
    default: 'RS256',
    when: USES_KEYS,
    advanced: true,
    shapesToken: true,
  },
  {
    name: 'generateKey',
    type: 'boolean',
    label: 'Let Grantry make the key pair',
    help: 'Grantry makes the key (and, for mutual TLS, a self-signed certificate); the private key never leaves it. Register the public key shown under Keys at the provider, or publish a JWKS. The API takes {"alg": "RS256" | "PS256" | "ES256" | "EdDSA"} (docs/api.md); true with signingAlg is the same.',
    default: false,
    when: USES_KEYS,
    advanced: true,
    shapesToken: true,
  },
  {
    name: 'privateKey',
    type: 'secret',
    label: 'Private key (PEM or JWK)',
    help: 'A key you already registered at the provider: PKCS#8 (or PKCS#1, SEC 1) PEM without a passphrase, or a private JWK; RSA of 2048 bits or more, EC P-256 or Ed25519. Write-only.',
    maxLength: 20000,
    multiline: true,
    keyMaterial: true,
    when: USES_KEYS,
    advanced: true,
    shapesToken: true,
  },
  {
    name: 'clientCertificate',
    type: 'pem',
    label: 'Certificate (PEM)',
    help: 'The certificate of the private key, then any intermediates: required for mutual TLS with an imported key; with private_key_jwt it adds x5t#S256 to the assertion (Microsoft Entra ID).',
    maxLength: 40000,
    keyMaterial: true,
    when: USES_KEYS,
    advanced: true,
    shapesToken: true,
  },
  {
    name: 'keyId',
    type: 'text',
    label: 'Key ID (kid)',
    help: 'The kid of an imported key, as the provider knows it (Google: the key file’s private_key_id). Default: the key’s RFC 7638 thumbprint.',
    maxLength: 200,
    keyMaterial: true,
    when: USES_KEYS,
    advanced: true,
    shapesToken: true,
  },
  {
    name: 'publishJwks',
    type: 'boolean',
    label: 'Publish the public keys (JWKS)',
    help: 'Serves the public keys at a jwks_uri (shown as jwksUri) for providers that fetch them; a rotation publishes the new key before it signs.',
    default: false,
    when: USES_KEYS,
    advanced: true,
  },
  {
    name: 'clientAssertionAudience',
    type: 'text',
    label: 'Client assertion audience (aud)',
    help: 'The aud of client assertions. Empty: the Token URL (OpenID Connect Core §9); some providers want their issuer.',
    maxLength: 2000,
    when: [{ field: 'clientAuthMethod', values: ['client_secret_jwt', 'private_key_jwt'] }],
    advanced: true,
    shapesToken: true,
  },
  {
    name: 'certificateBoundTokens',
    type: 'boolean',
    label: 'Tokens are bound to the certificate (RFC 8705 §3)',
    help: 'Present the client certificate to the API too, for providers that bind tokens to it. Otherwise the certificate goes only to the token and revocation endpoints.',
    default: false,
    when: [{ field: 'clientAuthMethod', values: MTLS_CLIENT_AUTH_METHODS }],
    advanced: true,
    shapesToken: true,
  },
  {
    name: 'dpop',
    type: 'boolean',
    label: 'DPoP-bound tokens (RFC 9449)',
    help: 'Grantry makes a key for this authentication and proves possession of it on every token request and API call, so a leaked token is useless without it.',
    default: false,
    advanced: true,
    shapesToken: true,
  },
  {
    name: 'audienceParam',
    type: 'enum',
    label: 'Audience parameter',
    help: 'The token request parameter that carries the Audience.',
    options: [
      { value: 'audience', label: 'audience' },
      { value: 'resource', label: 'resource (RFC 8707)' },
    ],
    default: 'audience',
    advanced: true,
    shapesToken: true,
  },
  {
    name: 'pkce',
    type: 'boolean',
    label: 'Use PKCE (S256, RFC 7636)',
    default: true,
    grants: ['authorization_code'],
    advanced: true,
    shapesToken: true,
  },
  {
    name: 'extraAuthorizationParams',
    type: 'parameters',
    label: 'Extra authorization parameters',
    help: 'Added to the authorization URL, e.g. prompt=consent or access_type=offline.',
    grants: ['authorization_code'],
    advanced: true,
    shapesToken: true,
  },
  {
    name: 'extraTokenParams',
    type: 'parameters',
    label: 'Extra token parameters',
    help: 'Added to every token request. Protocol parameters cannot be overridden.',
    advanced: true,
    shapesToken: true,
  },
  {
    name: 'keepAliveDays',
    type: 'integer',
    label: 'Keep alive (days)',
    help: 'Refresh in the background when the refresh token has not been used for this many days, before a provider that expires idle refresh tokens drops the connection. Empty: refresh only when called.',
    placeholder: '45',
    minimum: 1,
    maximum: 3650,
    grants: ['authorization_code', 'password'],
    advanced: true,
  },
  {
    name: 'revocationUrl',
    type: 'url',
    label: 'Revocation URL',
    help: 'Tokens are revoked here when the authentication is deleted. Found from the issuer when empty.',
    advanced: true,
  },
] as const;

/**
 * The keep-alive a provider preset suggests from its documented idle lifetime of refresh tokens
 * (`refreshTokenIdleExpiryDays`): three quarters of it, so a failed keep-alive leaves a quarter of
 * the lifetime (two weeks and more for the providers that document one) for a person to act on the
 * `needs_attention` it raises. Null when the provider documents none, or one too short for days.
 */
export function keepAliveDaysForIdleExpiry(idleExpiryDays: number | null): number | null {
  if (idleExpiryDays === null || idleExpiryDays < 2) return null;
  return Math.max(1, Math.floor(idleExpiryDays * 0.75));
}

export const oauth2 = {
  type: 'oauth2',
  label: 'OAuth 2.0',
  description:
    'Client Credentials, Password, Authorization Code or JWT Bearer: Grantry fetches and refreshes the tokens.',
  fields,
} as const satisfies KindSpec;
