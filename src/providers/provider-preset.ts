import { type Static, Type } from '@sinclair/typebox';

/**
 * One provider preset, as stored in src/providers/presets/<id>.json: what Grantry knows about a
 * provider from the provider's own documentation (`docs` names the pages), to pre-fill an
 * authentication. URLs may contain `{placeholder}`s for what depends on the customer's account
 * (a tenant, a subdomain, an instance), each described in `placeholders`.
 *
 * This schema is the JSON Schema every preset file is checked against (test/provider-presets.test.ts).
 */
const HttpsUrl = Type.String({ pattern: '^https://[^\\s]+$' });
const NullableUrl = Type.Union([HttpsUrl, Type.Null()]);

export const PRESET_QUIRKS = [
  'form_encoded_response',
  'string_expires_in',
  'no_expires_in',
  'lowercase_token_type',
  'error_with_http_200',
  'basic_only',
  'keeps_refresh_token',
] as const;

export const ProviderPresetSchema = Type.Object(
  {
    id: Type.String({ pattern: '^[a-z0-9]+(-[a-z0-9]+)*$' }),
    name: Type.String({ minLength: 1, maxLength: 100 }),
    type: Type.Union([
      Type.Literal('oauth2'),
      Type.Literal('api_key'),
      Type.Literal('basic'),
      Type.Literal('bearer'),
    ]),
    grantTypes: Type.Array(
      Type.Union([
        Type.Literal('authorization_code'),
        Type.Literal('client_credentials'),
        Type.Literal('password'),
        Type.Literal('jwt_bearer'),
      ]),
    ),
    authorizationUrl: NullableUrl,
    tokenUrl: NullableUrl,
    revocationUrl: NullableUrl,
    issuer: NullableUrl,
    audienceParam: Type.Union([Type.Literal('audience'), Type.Literal('resource'), Type.Null()]),
    clientAuthMethod: Type.Union([
      Type.Literal('client_secret_basic'),
      Type.Literal('client_secret_post'),
      Type.Null(),
    ]),
    defaultScope: Type.Union([Type.String({ minLength: 1 }), Type.Null()]),
    scopes: Type.Array(
      Type.Object(
        { value: Type.String({ minLength: 1 }), description: Type.String({ minLength: 1 }) },
        { additionalProperties: false },
      ),
    ),
    extraAuthorizationParams: Type.Record(Type.String(), Type.String()),
    extraTokenParams: Type.Record(Type.String(), Type.String()),
    placeholders: Type.Array(
      Type.Object(
        {
          name: Type.String({ pattern: '^[a-z][a-zA-Z0-9]*$' }),
          label: Type.String({ minLength: 1 }),
          example: Type.String({ minLength: 1 }),
        },
        { additionalProperties: false },
      ),
    ),
    docs: Type.Object({ setup: HttpsUrl, endpoints: HttpsUrl }, { additionalProperties: false }),
    notes: Type.Array(Type.String({ minLength: 1 })),
    apiBaseUrl: NullableUrl,
    apiKey: Type.Union([
      Type.Object(
        {
          in: Type.Union([Type.Literal('header'), Type.Literal('query')]),
          name: Type.String({ minLength: 1 }),
          prefix: Type.String(),
        },
        { additionalProperties: false },
      ),
      Type.Null(),
    ]),
    basicUsernameLabel: Type.Union([Type.String(), Type.Null()]),
    basicPasswordLabel: Type.Union([Type.String(), Type.Null()]),
    refreshTokenIdleExpiryDays: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]),
    refreshTokenRotation: Type.Union([Type.Boolean(), Type.Null()]),
    quirks: Type.Array(
      Type.Unsafe<(typeof PRESET_QUIRKS)[number]>(
        Type.Union(PRESET_QUIRKS.map((quirk) => Type.Literal(quirk))),
      ),
    ),
    sources: Type.Array(HttpsUrl),
  },
  { additionalProperties: false },
);

export type ProviderPreset = Static<typeof ProviderPresetSchema>;

/** The fields of a preset that may hold `{placeholder}`s. */
export const PLACEHOLDER_FIELDS = [
  'authorizationUrl',
  'tokenUrl',
  'revocationUrl',
  'issuer',
  'apiBaseUrl',
] as const;

/** `{name}` occurrences in a text. */
export function placeholdersIn(text: string): string[] {
  return [...text.matchAll(/\{([a-zA-Z][a-zA-Z0-9]*)\}/g)].map((match) => match[1] as string);
}
