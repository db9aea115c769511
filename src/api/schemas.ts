/**
 * The HTTP contract (docs/api.md) as TypeBox schemas. The routes validate with them, the OpenAPI
 * document is generated from them, response schemas act as allow-lists (a field not named here
 * can never reach a client), and the web UI imports the `Static` types — one source of truth.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { PROBLEM_CODES, type ProblemCode } from '../problem.js';
import { ProviderPresetSchema as ProviderPresetFileSchema } from '../providers/provider-preset.js';
import type { AuthenticationView } from '../services/authentication-view.js';
import {
  AUTHENTICATION_TYPES,
  type AuthenticationFieldValues,
  type AuthenticationType,
  allFields,
  type FieldSpec,
  GRANT_TYPES,
  secretFlag,
} from '../services/catalogue/index.js';
import { TEST_EVENT_TYPE, WEBHOOK_EVENT_TYPES } from '../webhooks/event-types.js';
import { named } from './component-name.js';

const StringMap = Type.Record(Type.String(), Type.String(), {
  description: 'An object whose values are strings.',
});
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
const Time = Type.String({ format: 'date-time' });

export const GrantTypeSchema = named(
  'GrantType',
  Type.Union(
    GRANT_TYPES.map((grant) => Type.Literal(grant)),
    { description: 'OAuth 2.0 grant type.' },
  ),
);
export const AuthStatusSchema = named(
  'AuthenticationStatus',
  Type.Union([
    Type.Literal('ready'),
    Type.Literal('connected'),
    Type.Literal('needs_authorization'),
    Type.Literal('error'),
  ]),
);

export const FieldErrorSchema = named(
  'FieldError',
  Type.Object({ path: Type.String(), message: Type.String() }),
);
export const ProblemSchema = named(
  'Problem',
  Type.Object(
    {
      code: Type.Unsafe<ProblemCode>(
        Type.Union(
          PROBLEM_CODES.map((code) => Type.Literal(code)),
          { description: 'See docs/errors.md.' },
        ),
      ),
      message: Type.String(),
      hint: Type.Optional(Type.String()),
      errors: Type.Optional(Type.Array(FieldErrorSchema)),
      provider: Type.Optional(
        Type.Object({
          status: Type.Optional(Type.Integer()),
          error: Type.Optional(Type.String()),
          errorDescription: Type.Optional(Type.String()),
          errorUri: Type.Optional(Type.String()),
          wwwAuthenticate: Type.Optional(Type.String()),
        }),
      ),
    },
    {},
  ),
);
export const ErrorResponseSchema = named('Error', Type.Object({ error: ProblemSchema }));

const FIELD_BY_NAME = new Map(allFields().map((field) => [field.name, field]));

/** One field's value schema, from its description in the catalogue. */
function fieldSchema(field: FieldSpec, options: { answer?: boolean } = {}): TSchema {
  const description =
    field.type === 'secret' ? `Write-only.${field.help ? ` ${field.help}` : ''}` : field.help;
  const common = description === undefined ? {} : { description };
  switch (field.type) {
    case 'boolean':
      return Type.Boolean(common);
    case 'integer':
      return Type.Integer({
        ...common,
        ...(field.minimum !== undefined && options.answer !== true ? { minimum: field.minimum } : {}),
        ...(field.maximum !== undefined && options.answer !== true ? { maximum: field.maximum } : {}),
      });
    case 'parameters':
      return Type.Record(Type.String(), Type.String(), common);
    case 'enum':
      return Type.Union(
        (field.options ?? []).map((option) => Type.Literal(option.value)),
        common,
      );
    default: {
      const limits: Record<string, number | boolean> = {};
      // An answer shows what was stored, whatever limits a request had at the time.
      if (field.minLength !== undefined && options.answer !== true) limits.minLength = field.minLength;
      if (field.maxLength !== undefined && options.answer !== true) limits.maxLength = field.maxLength;
      if (field.type === 'secret') limits.writeOnly = true;
      return Type.String({ ...common, ...limits });
    }
  }
}

const SIGNING_ALG_VALUES = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;

/**
 * The key fields' request forms of docs/api.md beside the catalogue's own (which the console
 * sends): members are checked by the service (key-field-spellings.ts) so that a bad `alg` is one
 * problem named `/generateKey/alg`, not a union's every branch.
 */
function contractRequestForm(name: string, catalogueForm: TSchema): TSchema | null {
  switch (name) {
    case 'generateKey':
      return Type.Union(
        [
          Type.Object(
            {
              alg: Type.String({
                description: `One of ${SIGNING_ALG_VALUES.join(', ')}: RS256 or PS256 (RSA 2048), ES256 (P-256) or EdDSA (Ed25519).`,
              }),
            },
            { description: 'Grantry makes a key pair of this type; the private key never leaves it.' },
          ),
          catalogueForm,
        ],
        { description: '{"alg": …} (docs/api.md), or true with signingAlg.' },
      );
    case 'privateKey':
      return Type.Union(
        [
          catalogueForm,
          Type.Object(
            { kty: Type.String() },
            {
              additionalProperties: true,
              description: 'A private JWK (RFC 7517), with "d".',
              writeOnly: true,
            },
          ),
        ],
        {
          description:
            'Write-only. PEM PKCS#8 (or PKCS#1, SEC 1), or a private JWK — as an object or as JSON text. RSA of 2048 bits or more, EC P-256 or Ed25519.',
        },
      );
    case 'assertion':
      return Type.Union(
        [
          Type.Object(
            {
              iss: Type.Optional(Type.String({ description: 'Default: clientId.' })),
              sub: Type.Optional(Type.String()),
              aud: Type.Optional(Type.String({ description: 'Default: tokenUrl.' })),
              claims: Type.Optional(
                Type.Record(Type.String(), Type.String(), {
                  description: 'Further claims, e.g. Google’s scope.',
                }),
              ),
            },
            { additionalProperties: false },
          ),
          Type.Record(Type.String(), Type.String(), {
            description: 'The first release’s flat map of claims ({"iss":…,"scope":…}), still read.',
          }),
        ],
        { description: 'The JWT Bearer grant’s assertion (RFC 7523 §2.1): {"iss","sub","aud","claims"}.' },
      );
    default:
      return null;
  }
}

function fieldProperties(nullable: boolean): Record<string, TSchema> {
  const properties: Record<string, TSchema> = {};
  for (const [name, field] of FIELD_BY_NAME) {
    const catalogueForm = fieldSchema(field);
    const schema = contractRequestForm(name, catalogueForm) ?? catalogueForm;
    properties[name] = Type.Optional(nullable ? Nullable(schema) : schema);
  }
  // The first release's name of clientCertificate, still read.
  properties.certificate = Type.Optional(
    (nullable ? Nullable : (schema: TSchema) => schema)(
      Type.String({ maxLength: 40000, description: 'The old name of clientCertificate, still read.' }),
    ),
  );
  return properties;
}

/** A new authentication: the fields of every kind; which ones a kind takes is checked by the catalogue's rules. */
export type AuthenticationCreate = Omit<AuthenticationFieldValues, 'name' | 'type'> &
  (
    | { name: string; type: AuthenticationType }
    | { provider: string; name?: string; type?: AuthenticationType }
  );
/** A change: omitted fields keep their value, `null` clears an optional one. */
export type AuthenticationPatch = {
  [K in keyof AuthenticationFieldValues]?: AuthenticationFieldValues[K] | null;
};

// `name` and `type` are required unless a provider preset supplies them, which the rules know and
// a schema cannot say: the rules report them missing, in the same list as every other problem.
export const AuthenticationCreateSchema = named(
  'AuthenticationCreate',
  Type.Unsafe<AuthenticationCreate>(
    Type.Object(fieldProperties(false), {
      additionalProperties: false,
      description:
        'name and type are required (a provider preset fills them when omitted). The fields of each type are described in docs/api.md.',
    }),
  ),
);
export const AuthenticationPatchSchema = named(
  'AuthenticationPatch',
  Type.Unsafe<AuthenticationPatch>(Type.Object(fieldProperties(true), { additionalProperties: false })),
);

export const TokenMetadataSchema = named(
  'TokenMetadata',
  Type.Object({
    tokenType: Type.String(),
    obtainedAt: Time,
    expiresAt: Type.Union([Time, Type.Null()], {
      description:
        'When the access token expires: at most one year after obtainedAt (longer lifetimes a provider claims are cut to that); equal to obtainedAt when the provider said expires_in ≤ 0; null when it did not say.',
    }),
    scope: Nullable(Type.String()),
    hasRefreshToken: Type.Boolean(),
  }),
);

function viewProperties(): Record<string, TSchema> {
  const properties: Record<string, TSchema> = {};
  for (const [name, field] of FIELD_BY_NAME) {
    if (name === 'name' || name === 'type') continue;
    // Read once (a key file), or answered through `keys` (a certificate, a key id).
    if (field.inputOnly === true || (field.keyMaterial === true && field.type !== 'secret')) continue;
    if (field.type === 'secret') properties[secretFlag(name)] = Type.Optional(Type.Boolean());
    else properties[name] = Type.Optional(fieldSchema(field, { answer: true }));
  }
  return properties;
}

const SigningAlgSchema = Type.Union([
  Type.Literal('RS256'),
  Type.Literal('PS256'),
  Type.Literal('ES256'),
  Type.Literal('EdDSA'),
]);

export const PublicJwkSchema = named(
  'PublicJwk',
  Type.Record(Type.String(), Type.Union([Type.String(), Type.Array(Type.String())]), {
    description: 'A public JWK (RFC 7517): never a private member.',
  }),
);

/** The JWT Bearer grant's assertion as answered (docs/api.md). */
export const AssertionSchema = named(
  'Assertion',
  Type.Object({
    iss: Type.Optional(Type.String()),
    sub: Type.Optional(Type.String()),
    aud: Type.Optional(Type.String()),
    claims: Type.Optional(Type.Record(Type.String(), Type.String())),
  }),
);

/** One signing key as answered: its public half, its certificate, its place in a rotation. */
export const PublicKeySchema = named(
  'PublicKey',
  Type.Object({
    kid: Type.String(),
    alg: SigningAlgSchema,
    status: Type.Union([Type.Literal('current'), Type.Literal('next'), Type.Literal('retiring')], {
      description:
        'current signs; next waits in a rotation (published, not signing); retiring stays published until the rotation finishes.',
    }),
    origin: Type.Union([Type.Literal('generated'), Type.Literal('imported')]),
    publicJwk: PublicJwkSchema,
    publicKeyPem: Type.String(),
    certificate: Nullable(Type.String({ description: 'PEM, leaf first: to register for mutual TLS.' })),
    certificateSha256: Nullable(Type.String()),
    certificateExpiresAt: Nullable(Time),
    createdAt: Time,
  }),
);

export const AuthenticationViewSchema = named(
  'Authentication',
  Type.Unsafe<AuthenticationView>(
    Type.Object({
      id: Type.String(),
      name: Type.String(),
      type: fieldSchema(FIELD_BY_NAME.get('type') as FieldSpec),
      ...viewProperties(),
      redirectUri: Type.Optional(Type.String()),
      assertion: Type.Optional(AssertionSchema),
      publicJwk: Type.Optional(PublicJwkSchema),
      keyId: Type.Optional(
        Type.String({ description: 'The kid of the key that signs now (default: its RFC 7638 thumbprint).' }),
      ),
      clientCertificate: Type.Optional(
        Type.String({ description: 'Mutual TLS: the certificate presented now (PEM, leaf first).' }),
      ),
      keys: Type.Optional(Type.Array(PublicKeySchema)),
      jwksUri: Type.Optional(
        Type.String({
          description: 'With publishJwks: the jwks_uri to give the provider (public, no key needed).',
        }),
      ),
      dpopKey: Type.Optional(
        Type.Object(
          { jkt: Type.String(), alg: Type.String(), publicJwk: PublicJwkSchema },
          {
            description:
              'With dpop: the DPoP key (RFC 9449) tokens are bound to; jkt is its RFC 7638 thumbprint.',
          },
        ),
      ),
      detectedClientAuthMethod: Type.Optional(
        Type.Union(
          [
            Type.Literal('client_secret_basic'),
            Type.Literal('client_secret_post'),
            Type.Literal('client_secret_jwt'),
            Type.Null(),
          ],
          {
            description:
              'With clientAuthMethod auto: how the provider accepted the client secret (found on the first token request, kept with the tokens; client_secret_jwt when its metadata lists only that); null until then.',
          },
        ),
      ),
      boundOrigins: Type.Optional(
        Type.Array(Type.String(), {
          description:
            'Static kinds (api_key, basic, bearer): the origins the credential may be sent to, bound when a connector first attaches it ([] while unbound). Attaching it to a connector on another origin needs the secret again (docs/security.md).',
        }),
      ),
      status: AuthStatusSchema,
      token: Nullable(TokenMetadataSchema),
      lastError: Nullable(ProblemSchema),
      usedBy: Type.Array(Type.String()),
      usage: Type.Object({
        calls: Type.Integer(),
        unauthorized: Type.Integer(),
        refreshes: Type.Integer(),
      }),
      warnings: Type.Array(Type.String()),
      createdAt: Time,
      updatedAt: Time,
    }),
  ),
);

const NextCursor = Type.Union([Type.String(), Type.Null()], {
  description: 'Give it back as `cursor` for the next page; null on the last page.',
});

/** The query of a list: page size, where to go on, and a case-insensitive search in the name. */
export const ListQueryFields = {
  limit: Type.Optional(
    Type.String({
      pattern: '^(?:[1-9][0-9]?|[1-4][0-9]{2}|500)$',
      description: 'Page size, 1 to 500; default 100.',
    }),
  ),
  cursor: Type.Optional(Type.String({ maxLength: 1000, description: 'The previous page’s nextCursor.' })),
  q: Type.Optional(Type.String({ maxLength: 100, description: 'Case-insensitive substring of the name.' })),
};

export const AuthenticationListQuerySchema = Type.Object(
  {
    ...ListQueryFields,
    type: Type.Optional(
      Type.Unsafe<AuthenticationType>({
        type: 'string',
        enum: [...AUTHENTICATION_TYPES],
        description: 'A type to keep.',
      }),
    ),
    status: Type.Optional(AuthStatusSchema),
  },
  { additionalProperties: false },
);

export const AuthenticationListSchema = named(
  'AuthenticationList',
  Type.Object({
    items: Type.Array(AuthenticationViewSchema),
    nextCursor: NextCursor,
  }),
);

/** Where a test's token came from: this instance's cache, a new token request, or a refresh. */
export const TokenSourceSchema = named(
  'TokenSource',
  Type.Union([Type.Literal('cache'), Type.Literal('fetched'), Type.Literal('refreshed')]),
);

export const TokenTestResultSchema = named(
  'TokenTestResult',
  Type.Object({
    ok: Type.Boolean(),
    token: Type.Optional(
      Nullable(
        Type.Intersect([
          TokenMetadataSchema,
          Type.Object({
            source: TokenSourceSchema,
          }),
        ]),
      ),
    ),
    error: Type.Optional(ProblemSchema),
  }),
);

export const AuthorizeRequestSchema = named(
  'AuthorizeRequest',
  Type.Object(
    {
      expiresInSeconds: Type.Optional(
        Type.Integer({
          minimum: 60,
          maximum: 604800,
          description: 'Lifetime of the connect link; default 900.',
        }),
      ),
    },
    { additionalProperties: false },
  ),
);
export const AuthorizeResultSchema = named(
  'AuthorizeResult',
  Type.Object({
    authorizationUrl: Type.String({
      description: 'The provider’s authorization URL, bound to the browser that made this request (cookie).',
    }),
    connectUrl: Type.String({
      description: 'A one-time link any browser can open to connect (e.g. sent to the account’s owner).',
    }),
    expiresAt: Type.String({ format: 'date-time', description: 'When connectUrl stops working.' }),
  }),
);

export const EventSchema = named(
  'Event',
  Type.Object({
    at: Time,
    type: Type.String(),
    detail: Type.Record(Type.String(), Type.Unknown()),
  }),
);
export const EventListSchema = named('EventList', Type.Object({ items: Type.Array(EventSchema) }));

export const DiscoveryResultSchema = named(
  'DiscoveryResult',
  Type.Object({
    issuer: Type.String(),
    authorizationUrl: Nullable(Type.String()),
    tokenUrl: Nullable(Type.String()),
    revocationUrl: Nullable(Type.String()),
    grantTypes: Nullable(Type.Array(Type.String())),
    clientAuthMethods: Nullable(Type.Array(Type.String())),
    scopes: Nullable(Type.Array(Type.String())),
  }),
);

/** docs/api.md "Connectors": the statuses that make Grantry replace the token and retry once. */
export const RefreshOnSchema = Type.Array(Type.Union([Type.Literal(401), Type.Literal(403)]), {
  uniqueItems: true,
  maxItems: 2,
  description:
    'API statuses that make Grantry drop the token, fetch a fresh one and retry once (default [401]). Add 403 for APIs that answer 403 to an expired or revoked token; a 403 whose WWW-Authenticate says insufficient_scope never refreshes. In a PATCH, null restores the default.',
});

const connectorFields = {
  name: Type.String({ minLength: 1, maxLength: 100 }),
  baseUrl: Type.String(),
  authenticationId: Nullable(Type.String()),
  headers: Type.Record(Type.String(), Type.String(), {
    description:
      'Static headers sent on every call, shown in responses: no secrets here (use secretHeaders).',
  }),
  secretHeaders: Type.Record(Type.String(), Type.String(), {
    description:
      'Static headers whose values are secret: encrypted at rest, write-only (see secretHeaderNames).',
    writeOnly: true,
  }),
  query: StringMap,
  refreshOn: RefreshOnSchema,
  timeoutMs: Type.Integer({ minimum: 1, maximum: 300000 }),
};

export const ConnectorCreateSchema = named(
  'ConnectorCreate',
  Type.Object(
    {
      name: connectorFields.name,
      baseUrl: connectorFields.baseUrl,
      authenticationId: Type.Optional(connectorFields.authenticationId),
      headers: Type.Optional(connectorFields.headers),
      secretHeaders: Type.Optional(connectorFields.secretHeaders),
      query: Type.Optional(connectorFields.query),
      refreshOn: Type.Optional(Nullable(connectorFields.refreshOn)),
      timeoutMs: Type.Optional(connectorFields.timeoutMs),
    },
    { additionalProperties: false },
  ),
);
/** Omitted fields keep their value; `null` clears an optional one; in secretHeaders, `null` for a name removes it. */
export const ConnectorPatchSchema = named(
  'ConnectorPatch',
  Type.Object(
    {
      name: Type.Optional(Nullable(connectorFields.name)),
      baseUrl: Type.Optional(Nullable(connectorFields.baseUrl)),
      authenticationId: Type.Optional(connectorFields.authenticationId),
      headers: Type.Optional(Nullable(connectorFields.headers)),
      secretHeaders: Type.Optional(
        Nullable(
          Type.Record(Type.String(), Nullable(Type.String()), {
            description: 'A value sets the header, null removes it; headers not named are kept.',
            writeOnly: true,
          }),
        ),
      ),
      query: Type.Optional(Nullable(connectorFields.query)),
      refreshOn: Type.Optional(Nullable(connectorFields.refreshOn)),
      timeoutMs: Type.Optional(Nullable(connectorFields.timeoutMs)),
    },
    { additionalProperties: false },
  ),
);

export const ConnectorViewSchema = named(
  'Connector',
  Type.Object(
    {
      id: Type.String(),
      name: Type.String(),
      baseUrl: Type.String(),
      authenticationId: Nullable(Type.String()),
      headers: StringMap,
      secretHeaderNames: Type.Array(Type.String(), {
        description: 'Lower-case names of the secret headers; their values are never shown.',
      }),
      query: StringMap,
      refreshOn: RefreshOnSchema,
      timeoutMs: Type.Integer(),
      createdAt: Time,
      updatedAt: Time,
    },
    {},
  ),
);
export const ConnectorListQuerySchema = Type.Object(
  { ...ListQueryFields, authenticationId: Type.Optional(Type.String({ maxLength: 100 })) },
  { additionalProperties: false },
);
export const ConnectorListSchema = named(
  'ConnectorList',
  Type.Object({
    items: Type.Array(ConnectorViewSchema),
    nextCursor: NextCursor,
  }),
);

export const HttpMethodSchema = named(
  'HttpMethod',
  Type.Union(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'].map((m) => Type.Literal(m))),
);

export const ExecuteRequestSchema = named(
  'ExecuteRequest',
  Type.Object(
    {
      method: HttpMethodSchema,
      path: Type.String({ maxLength: 8000 }),
      query: Type.Optional(StringMap),
      headers: Type.Optional(StringMap),
      body: Type.Optional(
        Type.Unknown({ description: 'JSON value sent as JSON; a string is sent as given.' }),
      ),
    },
    { additionalProperties: false },
  ),
);
export const ConnectorTestRequestSchema = named(
  'ConnectorTestRequest',
  Type.Partial(ExecuteRequestSchema, {
    additionalProperties: false,
  }),
);

export const ExecuteResultSchema = named(
  'ExecuteResult',
  Type.Object({
    status: Type.Integer(),
    headers: Type.Record(Type.String(), Type.Union([Type.String(), Type.Array(Type.String())])),
    body: Type.Unknown(),
    truncated: Type.Boolean(),
    durationMs: Type.Number(),
    attempts: Type.Integer(),
    tokenRefreshed: Type.Boolean(),
    error: Type.Optional(ProblemSchema),
  }),
);

export const ConnectorTestResultSchema = named(
  'ConnectorTestResult',
  Type.Object({
    ok: Type.Boolean(),
    token: Nullable(
      Type.Object({
        ok: Type.Boolean(),
        source: Type.Optional(TokenSourceSchema),
        kind: Type.Optional(
          Type.Union([Type.Literal('api_key'), Type.Literal('basic'), Type.Literal('bearer')], {
            description: 'A static credential: sent as saved, nothing fetched.',
          }),
        ),
        sentAs: Type.Optional(
          Type.String({
            description: 'Where a static credential is sent ("header X-API-Key"), never its value.',
          }),
        ),
        tokenType: Type.Optional(Type.String()),
        expiresAt: Type.Optional(Nullable(Time)),
        scope: Type.Optional(Nullable(Type.String())),
        error: Type.Optional(ProblemSchema),
      }),
    ),
    response: Nullable(ExecuteResultSchema),
    error: Type.Optional(ProblemSchema),
  }),
);

export const WebhookEventTypeSchema = named(
  'WebhookEventType',
  Type.Union(
    WEBHOOK_EVENT_TYPES.map((type) => Type.Literal(type)),
    { description: 'An event a webhook can subscribe to.' },
  ),
);

const webhookFields = {
  url: Type.String({
    maxLength: 2000,
    description: 'Where events are POSTed: https (http only to loopback with GRANTRY_ALLOW_HTTP=loopback).',
  }),
  events: Type.Array(WebhookEventTypeSchema, { minItems: 1, uniqueItems: true }),
  description: Type.String({ maxLength: 500 }),
  enabled: Type.Boolean({ description: 'Default true. A disabled webhook is sent nothing.' }),
};

export const WebhookCreateSchema = named(
  'WebhookCreate',
  Type.Object(
    {
      url: webhookFields.url,
      events: webhookFields.events,
      description: Type.Optional(webhookFields.description),
      enabled: Type.Optional(webhookFields.enabled),
    },
    { additionalProperties: false },
  ),
);
export const WebhookPatchSchema = named(
  'WebhookPatch',
  Type.Object(
    {
      url: Type.Optional(webhookFields.url),
      events: Type.Optional(webhookFields.events),
      description: Type.Optional(Nullable(webhookFields.description)),
      enabled: Type.Optional(webhookFields.enabled),
    },
    { additionalProperties: false },
  ),
);

const webhookViewFields = {
  id: Type.String(),
  url: Type.String(),
  events: Type.Array(WebhookEventTypeSchema),
  description: Nullable(Type.String()),
  enabled: Type.Boolean(),
  createdAt: Time,
  updatedAt: Time,
};
/** A webhook as every answer but the create shows it: never its secret. */
export const WebhookViewSchema = named('Webhook', Type.Object(webhookViewFields, {}));
export const WebhookCreatedSchema = named(
  'WebhookCreated',
  Type.Object(
    {
      ...webhookViewFields,
      secret: Type.String({
        description:
          'The signing secret, `whsec_<base64>`, for a Standard Webhooks library. Shown in this answer only.',
      }),
    },
    {},
  ),
);
export const WebhookListSchema = named(
  'WebhookList',
  Type.Object({
    items: Type.Array(WebhookViewSchema),
    nextCursor: Nullable(Type.String()),
  }),
);

export const WebhookAttemptSchema = named(
  'WebhookAttempt',
  Type.Object({
    attempt: Type.Integer(),
    at: Time,
    durationMs: Type.Integer(),
    responseStatus: Nullable(Type.Integer()),
    error: Nullable(
      Type.Object({
        kind: Type.String({
          description:
            '`http_status` (the receiver answered, not 2xx), or why no answer came: `timeout`, `refused`, `dns`, `tls`, `reset`, `unreachable`, `denied` (egress policy), `insecure_url`, `too_large`, `other`.',
        }),
        message: Type.String(),
      }),
    ),
  }),
);

export const WebhookDeliverySchema = named(
  'WebhookDelivery',
  Type.Object({
    id: Type.String({ description: 'The `webhook-id` header of every attempt of this delivery.' }),
    event: Type.String({ description: `The event type (or \`${TEST_EVENT_TYPE}\`).` }),
    eventId: Type.String(),
    at: Time,
    attempts: Type.Integer({ description: 'Attempts made so far.' }),
    status: Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')]),
    responseStatus: Nullable(Type.Integer({ description: 'The HTTP status of the last attempt.' })),
    nextAttemptAt: Nullable(Time),
    attemptLog: Type.Array(WebhookAttemptSchema, { description: 'Every attempt, oldest first.' }),
  }),
);
export const WebhookDeliveryListSchema = named(
  'WebhookDeliveryList',
  Type.Object({ items: Type.Array(WebhookDeliverySchema) }),
);

/** A preset as the API answers it: the schema every preset file is checked against. */
export const ProviderPresetSchema = named('ProviderPreset', ProviderPresetFileSchema);
export const ProviderPresetListSchema = named(
  'ProviderPresetList',
  Type.Object({
    items: Type.Array(ProviderPresetSchema),
    redirectUri: Type.String({
      description: 'What to register at a provider as the redirect URI for Authorization Code.',
    }),
  }),
);

export type ProblemView = Static<typeof ProblemSchema>;
export type { AuthenticationView };
export type TokenTestResult = Static<typeof TokenTestResultSchema>;
export type EventView = Static<typeof EventSchema>;
export type DiscoveryResult = Static<typeof DiscoveryResultSchema>;
export type ConnectorCreate = Static<typeof ConnectorCreateSchema>;
export type ConnectorPatch = Static<typeof ConnectorPatchSchema>;
export type ConnectorView = Static<typeof ConnectorViewSchema>;
export type ExecuteRequest = Static<typeof ExecuteRequestSchema>;
export type ExecuteResult = Static<typeof ExecuteResultSchema>;
export type ConnectorTestResult = Static<typeof ConnectorTestResultSchema>;
export type WebhookEventTypeName = Static<typeof WebhookEventTypeSchema>;
export type WebhookCreate = Static<typeof WebhookCreateSchema>;
export type WebhookPatch = Static<typeof WebhookPatchSchema>;
export type WebhookView = Static<typeof WebhookViewSchema>;
export type WebhookCreated = Static<typeof WebhookCreatedSchema>;
export type WebhookDeliveryView = Static<typeof WebhookDeliverySchema>;

/** `POST /api/authentications/:id/rotate-key`: a key to bring in, or nothing (Grantry makes one). */
export const RotateKeySchema = named(
  'RotateKeyRequest',
  Type.Object(
    {
      privateKey: Type.Optional(
        Type.Union(
          [
            Type.String({ maxLength: 20000, writeOnly: true }),
            Type.Object({ kty: Type.String() }, { additionalProperties: true, writeOnly: true }),
          ],
          { description: 'PEM, or a private JWK; without it Grantry makes the key.' },
        ),
      ),
      clientCertificate: Type.Optional(
        Type.String({ maxLength: 40000, description: 'PEM of the given key, for mutual TLS.' }),
      ),
      certificate: Type.Optional(
        Type.String({ maxLength: 40000, description: 'The old name of clientCertificate, still read.' }),
      ),
      keyId: Type.Optional(Type.String({ maxLength: 200 })),
      signingAlg: Type.Optional(SigningAlgSchema),
      generateKey: Type.Optional(
        Type.Object(
          { alg: SigningAlgSchema },
          {
            additionalProperties: false,
            description:
              'As on create and PATCH: Grantry makes the next key with this algorithm (the same as signingAlg).',
          },
        ),
      ),
    },
    { additionalProperties: false },
  ),
);

/** The JWK Set served at `jwks_uri` (RFC 7517 §5). */
export const JwksSchema = named('Jwks', Type.Object({ keys: Type.Array(PublicJwkSchema) }));
