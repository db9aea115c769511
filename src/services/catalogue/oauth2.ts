import type { KindSpec } from './field-spec.js';

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
    minLength: 1,
    maxLength: 500,
    required: true,
    shapesToken: true,
  },
  {
    name: 'clientSecret',
    type: 'secret',
    label: 'Client Secret',
    minLength: 1,
    maxLength: 4000,
    required: true,
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
    ],
    default: 'client_secret_basic',
    formDefault: 'auto',
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
    'Client Credentials, Password or Authorization Code: Grantry fetches and refreshes the tokens.',
  fields,
} as const satisfies KindSpec;
