/**
 * The HTTP contract (API.md) as TypeBox schemas. The routes validate with them, the OpenAPI
 * document is generated from them, response schemas act as allow-lists (a field not named here
 * can never reach a client), and the web UI imports the `Static` types — one source of truth.
 */
import { type Static, type TOptional, type TSchema, Type } from '@sinclair/typebox';
import { PROBLEM_CODES } from '../problem.js';

const StringMap = Type.Record(Type.String(), Type.String(), {
  description: 'An object whose values are strings.',
});
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
const Time = Type.String({ format: 'date-time' });

export const GrantTypeSchema = Type.Union(
  [Type.Literal('client_credentials'), Type.Literal('password'), Type.Literal('authorization_code')],
  { description: 'OAuth 2.0 grant type.' },
);
export const AuthStatusSchema = Type.Union([
  Type.Literal('ready'),
  Type.Literal('connected'),
  Type.Literal('needs_authorization'),
  Type.Literal('error'),
]);

export const FieldErrorSchema = Type.Object({ path: Type.String(), message: Type.String() });
export const ProblemSchema = Type.Object(
  {
    code: Type.Union(
      PROBLEM_CODES.map((code) => Type.Literal(code)),
      { description: 'See docs/errors.md.' },
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
);
export const ErrorResponseSchema = Type.Object({ error: ProblemSchema });

/** Fields a person configures; shared by create and patch. */
const authenticationFields = {
  name: Type.String({ minLength: 1, maxLength: 100 }),
  type: Type.Literal('oauth2'),
  grantType: GrantTypeSchema,
  authorizationUrl: Type.String({ description: 'authorization_code only.' }),
  tokenUrl: Type.String(),
  clientId: Type.String({ minLength: 1, maxLength: 500 }),
  clientSecret: Type.String({ minLength: 1, maxLength: 4000, description: 'Write-only.', writeOnly: true }),
  headerPrefix: Type.String({ maxLength: 100, description: 'Default "Bearer"; "" sends the bare token.' }),
  audience: Type.String({ maxLength: 2000 }),
  audienceParam: Type.Union([Type.Literal('audience'), Type.Literal('resource')]),
  scope: Type.String({ maxLength: 2000, description: 'Space-separated.' }),
  username: Type.String({ minLength: 1, maxLength: 500, description: 'password grant only.' }),
  password: Type.String({ minLength: 1, maxLength: 4000, description: 'Write-only.', writeOnly: true }),
  clientAuthMethod: Type.Union([Type.Literal('client_secret_basic'), Type.Literal('client_secret_post')]),
  extraAuthorizationParams: StringMap,
  extraTokenParams: StringMap,
  pkce: Type.Boolean({ description: 'authorization_code only; default true (S256).' }),
  revocationUrl: Type.String(),
};

type AuthFields = typeof authenticationFields;
const optionalAuthFields = Object.fromEntries(
  Object.entries(authenticationFields).map(([key, schema]) => [key, Type.Optional(schema)]),
) as { -readonly [K in keyof AuthFields]: TOptional<AuthFields[K]> };

export const AuthenticationCreateSchema = Type.Object(
  {
    ...optionalAuthFields,
    name: authenticationFields.name,
    type: authenticationFields.type,
    grantType: authenticationFields.grantType,
    tokenUrl: authenticationFields.tokenUrl,
    clientId: authenticationFields.clientId,
    clientSecret: authenticationFields.clientSecret,
  },
  { additionalProperties: false },
);
export const AuthenticationPatchSchema = Type.Object(optionalAuthFields, {
  additionalProperties: false,
});

export const TokenMetadataSchema = Type.Object({
  tokenType: Type.String(),
  obtainedAt: Time,
  expiresAt: Type.Union([Time, Type.Null()], {
    description:
      'When the access token expires: as the provider said, but never more than one year after obtainedAt; equal to obtainedAt when the provider said 0 or less ("expires now"); null when it did not say.',
  }),
  scope: Nullable(Type.String()),
  hasRefreshToken: Type.Boolean(),
});

export const AuthenticationViewSchema = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    type: Type.Literal('oauth2'),
    grantType: GrantTypeSchema,
    authorizationUrl: Type.Optional(Type.String()),
    tokenUrl: Type.String(),
    clientId: Type.String(),
    clientSecretSet: Type.Boolean(),
    headerPrefix: Type.String(),
    audience: Type.Optional(Type.String()),
    audienceParam: Type.Union([Type.Literal('audience'), Type.Literal('resource')]),
    scope: Type.Optional(Type.String()),
    username: Type.Optional(Type.String()),
    passwordSet: Type.Optional(Type.Boolean()),
    clientAuthMethod: Type.Union([Type.Literal('client_secret_basic'), Type.Literal('client_secret_post')]),
    extraAuthorizationParams: Type.Optional(StringMap),
    extraTokenParams: Type.Optional(StringMap),
    pkce: Type.Optional(Type.Boolean()),
    revocationUrl: Type.Optional(Type.String()),
    redirectUri: Type.Optional(Type.String()),
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
  },
  {},
);

export const AuthenticationListSchema = Type.Object({ items: Type.Array(AuthenticationViewSchema) });

export const TokenTestResultSchema = Type.Object({
  ok: Type.Boolean(),
  token: Type.Optional(
    Type.Intersect([
      TokenMetadataSchema,
      Type.Object({
        source: Type.Union([Type.Literal('cache'), Type.Literal('fetched'), Type.Literal('refreshed')]),
      }),
    ]),
  ),
  error: Type.Optional(ProblemSchema),
});

export const AuthorizeResultSchema = Type.Object({ authorizationUrl: Type.String() });

export const EventSchema = Type.Object({
  at: Time,
  type: Type.String(),
  detail: Type.Record(Type.String(), Type.Unknown()),
});
export const EventListSchema = Type.Object({ items: Type.Array(EventSchema) });

export const DiscoveryResultSchema = Type.Object({
  issuer: Type.String(),
  authorizationUrl: Nullable(Type.String()),
  tokenUrl: Nullable(Type.String()),
  revocationUrl: Nullable(Type.String()),
  grantTypes: Nullable(Type.Array(Type.String())),
  clientAuthMethods: Nullable(Type.Array(Type.String())),
  scopes: Nullable(Type.Array(Type.String())),
});

/** API.md "Connectors": the statuses that make Grantry replace the token and retry once. */
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
  headers: StringMap,
  query: StringMap,
  refreshOn: RefreshOnSchema,
  timeoutMs: Type.Integer({ minimum: 1, maximum: 300000 }),
};

export const ConnectorCreateSchema = Type.Object(
  {
    name: connectorFields.name,
    baseUrl: connectorFields.baseUrl,
    authenticationId: Type.Optional(connectorFields.authenticationId),
    headers: Type.Optional(connectorFields.headers),
    query: Type.Optional(connectorFields.query),
    refreshOn: Type.Optional(Nullable(connectorFields.refreshOn)),
    timeoutMs: Type.Optional(connectorFields.timeoutMs),
  },
  { additionalProperties: false },
);
export const ConnectorPatchSchema = Type.Partial(ConnectorCreateSchema, {
  additionalProperties: false,
});

export const ConnectorViewSchema = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    baseUrl: Type.String(),
    authenticationId: Nullable(Type.String()),
    headers: StringMap,
    query: StringMap,
    refreshOn: RefreshOnSchema,
    timeoutMs: Type.Integer(),
    createdAt: Time,
    updatedAt: Time,
  },
  {},
);
export const ConnectorListSchema = Type.Object({ items: Type.Array(ConnectorViewSchema) });

export const HttpMethodSchema = Type.Union(
  ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'].map((m) => Type.Literal(m)),
);

export const ExecuteRequestSchema = Type.Object(
  {
    method: HttpMethodSchema,
    path: Type.String({ maxLength: 8000 }),
    query: Type.Optional(StringMap),
    headers: Type.Optional(StringMap),
    body: Type.Optional(Type.Unknown({ description: 'JSON value sent as JSON; a string is sent as given.' })),
  },
  { additionalProperties: false },
);
export const ConnectorTestRequestSchema = Type.Partial(ExecuteRequestSchema, {
  additionalProperties: false,
});

export const ExecuteResultSchema = Type.Object({
  status: Type.Integer(),
  headers: Type.Record(Type.String(), Type.Union([Type.String(), Type.Array(Type.String())])),
  body: Type.Unknown(),
  truncated: Type.Boolean(),
  durationMs: Type.Number(),
  attempts: Type.Integer(),
  tokenRefreshed: Type.Boolean(),
  error: Type.Optional(ProblemSchema),
});

export const ConnectorTestResultSchema = Type.Object({
  ok: Type.Boolean(),
  token: Nullable(
    Type.Object({
      ok: Type.Boolean(),
      source: Type.Optional(
        Type.Union([Type.Literal('cache'), Type.Literal('fetched'), Type.Literal('refreshed')]),
      ),
      tokenType: Type.Optional(Type.String()),
      expiresAt: Type.Optional(Nullable(Time)),
      scope: Type.Optional(Nullable(Type.String())),
      error: Type.Optional(ProblemSchema),
    }),
  ),
  response: Nullable(ExecuteResultSchema),
  error: Type.Optional(ProblemSchema),
});

export type ProblemView = Static<typeof ProblemSchema>;
export type AuthenticationCreate = Static<typeof AuthenticationCreateSchema>;
export type AuthenticationPatch = Static<typeof AuthenticationPatchSchema>;
export type AuthenticationView = Static<typeof AuthenticationViewSchema>;
export type TokenTestResult = Static<typeof TokenTestResultSchema>;
export type EventView = Static<typeof EventSchema>;
export type DiscoveryResult = Static<typeof DiscoveryResultSchema>;
export type ConnectorCreate = Static<typeof ConnectorCreateSchema>;
export type ConnectorPatch = Static<typeof ConnectorPatchSchema>;
export type ConnectorView = Static<typeof ConnectorViewSchema>;
export type ExecuteRequest = Static<typeof ExecuteRequestSchema>;
export type ExecuteResult = Static<typeof ExecuteResultSchema>;
export type ConnectorTestResult = Static<typeof ConnectorTestResultSchema>;
