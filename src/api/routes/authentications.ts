import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { throwIfInvalid } from '../../services/field-checks.js';
import { searchTextProblems } from '../../services/list-page.js';
import type { ApiContext } from '../context.js';
import { objectBody, schemaErrorsOf } from '../request-validation.js';
import {
  AuthenticationCreateSchema,
  AuthenticationListQuerySchema,
  AuthenticationListSchema,
  AuthenticationPatchSchema,
  AuthenticationViewSchema,
  ErrorResponseSchema,
  EventListSchema,
  JwksSchema,
  RotateKeySchema,
  TokenTestResultSchema,
} from '../schemas.js';
import type { TypeBoxProvider } from '../type-provider.js';

const IdParams = Type.Object({ id: Type.String() });
const tags = ['Authentications'];
const errors = { 400: ErrorResponseSchema, 404: ErrorResponseSchema, 409: ErrorResponseSchema };

/** Authentications (docs/api.md "Authentications"): HTTP in and out of the AuthenticationService. */
export async function authenticationRoutes(app: FastifyInstance, context: ApiContext): Promise<void> {
  const server = app.withTypeProvider<TypeBoxProvider>();
  const service = context.authentications;

  server.post(
    '/api/authentications',
    {
      attachValidation: true,
      schema: {
        tags,
        operationId: 'createAuthentication',
        summary: 'Create an authentication',
        description:
          'OAuth 2.0 (client_credentials, password, authorization_code) or a static credential (api_key, basic, bearer). Secrets are write-only: the answer says only whether each is set.',
        body: AuthenticationCreateSchema,
        response: { 201: AuthenticationViewSchema, ...errors },
      },
    },
    async (request, reply) => {
      const created = await service.create(objectBody(request.body), schemaErrorsOf(request));
      return reply.status(201).send(created);
    },
  );

  server.get(
    '/api/authentications',
    {
      config: { access: 'runtime' },
      attachValidation: true,
      schema: {
        tags,
        operationId: 'listAuthentications',
        summary: 'List authentications',
        description:
          'Ordered by name, then id, a page at a time (limit, cursor); q searches the name; type and status filter.',
        querystring: AuthenticationListQuerySchema,
        response: { 200: AuthenticationListSchema, 400: ErrorResponseSchema },
      },
    },
    async (request) => {
      const query = request.query;
      throwIfInvalid(schemaErrorsOf(request, '/query'), searchTextProblems(query.q));
      return service.list({
        limit: query.limit === undefined ? undefined : Number(query.limit),
        cursor: query.cursor,
        q: query.q,
        type: query.type,
        status: query.status,
      });
    },
  );

  server.get(
    '/api/authentications/:id',
    {
      config: { access: 'runtime' },
      schema: {
        tags,
        operationId: 'getAuthentication',
        summary: 'Get an authentication',
        params: IdParams,
        response: { 200: AuthenticationViewSchema, 404: ErrorResponseSchema },
      },
    },
    async (request) => service.get(request.params.id),
  );

  server.patch(
    '/api/authentications/:id',
    {
      attachValidation: true,
      schema: {
        tags,
        operationId: 'updateAuthentication',
        summary: 'Change an authentication',
        description:
          'Omitted secrets keep their value; null clears an optional field (its default applies again). A change to any field that shapes the token request drops cached tokens. Moving tokenUrl, authorizationUrl or revocationUrl to another origin requires clientSecret (and password for the Password grant) in the same request, and drops the stored tokens. type cannot change.',
        params: IdParams,
        body: AuthenticationPatchSchema,
        response: { 200: AuthenticationViewSchema, ...errors },
      },
    },
    async (request) => service.update(request.params.id, objectBody(request.body), schemaErrorsOf(request)),
  );

  server.delete(
    '/api/authentications/:id',
    {
      schema: {
        tags,
        operationId: 'deleteAuthentication',
        summary: 'Delete an authentication',
        description:
          '409 while connectors use it, unless ?force=true (then they are detached). Revokes stored tokens at the provider when it has a revocation endpoint.',
        params: IdParams,
        querystring: Type.Object({
          force: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])),
        }),
        response: { 204: Type.Null({ description: 'Deleted.' }), ...errors },
      },
    },
    async (request, reply) => {
      await service.delete(request.params.id, { force: request.query.force === 'true' });
      return reply.status(204).send(null);
    },
  );

  server.post(
    '/api/authentications/:id/test',
    {
      config: { access: 'runtime' },
      schema: {
        tags,
        operationId: 'testAuthentication',
        summary: 'Fetch a token now and report it',
        description:
          'ok with the token metadata (never the token), or the diagnosis. A static credential (api_key, basic, bearer) answers {"ok":true,"token":null}: there is nothing to fetch; the connector test calls the API.',
        params: IdParams,
        response: { 200: TokenTestResultSchema, 404: ErrorResponseSchema },
      },
    },
    async (request) => service.test(request.params.id),
  );

  server.post(
    '/api/authentications/:id/invalidate',
    {
      schema: {
        tags,
        operationId: 'invalidateAuthentication',
        summary: 'Drop the cached access token (keeps a refresh token)',
        params: IdParams,
        response: { 204: Type.Null({ description: 'Dropped.' }), 404: ErrorResponseSchema },
      },
    },
    async (request, reply) => {
      await service.invalidate(request.params.id);
      return reply.status(204).send(null);
    },
  );

  server.get(
    '/api/authentications/:id/jwks',
    {
      config: { access: 'runtime' },
      schema: {
        tags,
        operationId: 'getAuthenticationKeySet',
        summary: 'The public keys of an authentication',
        description:
          'The JWK Set (RFC 7517 §5) of the keys the authentication signs with — the current key, and during a rotation the next and the retiring one — published or not. {"keys":[]} when it signs with no key of its own. Public keys only.',
        params: IdParams,
        response: { 200: JwksSchema, 404: ErrorResponseSchema },
      },
    },
    async (request) => service.keySet(request.params.id),
  );

  server.post(
    '/api/authentications/:id/rotate-key',
    {
      attachValidation: true,
      schema: {
        tags,
        operationId: 'rotateAuthenticationKey',
        summary: 'Rotate the key: add the next one (step 1 of 3)',
        description:
          'Adds a next key — made by Grantry, or the privateKey (with clientCertificate and keyId) given — beside the current one: both are published (keys, jwksUri); the current key keeps signing. Register the new public key at the provider (or let it fetch the JWKS), then activate it. Tokens are kept. 409 while another rotation is under way. See docs/keys.md.',
        params: IdParams,
        body: Type.Optional(RotateKeySchema),
        response: { 200: AuthenticationViewSchema, ...errors },
      },
    },
    async (request) => {
      const body = request.body === undefined || request.body === null ? {} : objectBody(request.body);
      throwIfInvalid(request.body === undefined || request.body === null ? [] : schemaErrorsOf(request), []);
      return service.rotateKey(request.params.id, body);
    },
  );

  server.post(
    '/api/authentications/:id/rotate-key/activate',
    {
      schema: {
        tags,
        operationId: 'activateAuthenticationKey',
        summary: 'Sign with the next key (step 2 of 3)',
        description:
          'Says the provider has the next key: Grantry switches to it and checks at once with a token request signed with it (a refresh for Authorization Code; unchecked without a refresh token). Refused, the old key signs again and the answer is the diagnosis (409). The old key stays published until finish.',
        params: IdParams,
        response: { 200: AuthenticationViewSchema, ...errors },
      },
    },
    async (request) => service.activateKey(request.params.id),
  );

  server.post(
    '/api/authentications/:id/rotate-key/finish',
    {
      schema: {
        tags,
        operationId: 'finishAuthenticationKeyRotation',
        summary: 'Drop the old key (step 3 of 3)',
        description:
          'Drops the retiring key: the JWKS lists the new key only. During step 1 it activates the next key first, checked as activate does.',
        params: IdParams,
        response: { 200: AuthenticationViewSchema, ...errors },
      },
    },
    async (request) => service.finishKeyRotation(request.params.id),
  );

  server.get(
    '/api/authentications/:id/events',
    {
      config: { access: 'runtime' },
      attachValidation: true,
      schema: {
        tags,
        operationId: 'listAuthenticationEvents',
        summary: 'The authentication’s event timeline, newest first',
        params: IdParams,
        querystring: Type.Object({ limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$' })) }),
        response: { 200: EventListSchema, 400: ErrorResponseSchema, 404: ErrorResponseSchema },
      },
    },
    async (request) => {
      throwIfInvalid(schemaErrorsOf(request, '/query'), []);
      const limit = Math.min(200, Math.max(1, Number(request.query.limit ?? 50)));
      return { items: await service.events(request.params.id, limit) };
    },
  );
}
