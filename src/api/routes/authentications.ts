import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { Problem } from '../../problem.js';
import type { AuthenticationRecord, AuthenticationSettings } from '../../store/contract.js';
import { recordEvent } from '../../tokens/auth-events.js';
import { openAuthenticationSecrets, sealContext } from '../../tokens/sealed-columns.js';
import {
  type AuthenticationDraft,
  checkAuthenticationRules,
  checkCredentialDestinations,
  settingsFromDraft,
  TOKEN_SHAPING_FIELDS,
} from '../authentication-rules.js';
import type { ApiContext } from '../context.js';
import { newId } from '../ids.js';
import { failIfInvalid, objectBody, schemaErrorsOf, typedFields } from '../request-validation.js';
import {
  AuthenticationCreateSchema,
  AuthenticationListSchema,
  AuthenticationPatchSchema,
  AuthenticationViewSchema,
  ErrorResponseSchema,
  EventListSchema,
  TokenTestResultSchema,
} from '../schemas.js';
import { isUniqueViolation } from '../unique-violation.js';
import { authenticationView, eventView, tokenMetadata } from '../views.js';

const IdParams = Type.Object({ id: Type.String() });
const DRAFT_TYPES = {
  name: 'string',
  type: 'string',
  grantType: 'string',
  authorizationUrl: 'string',
  tokenUrl: 'string',
  clientId: 'string',
  clientSecret: 'string',
  headerPrefix: 'string',
  audience: 'string',
  audienceParam: 'string',
  scope: 'string',
  username: 'string',
  password: 'string',
  clientAuthMethod: 'string',
  extraAuthorizationParams: 'object',
  extraTokenParams: 'object',
  pkce: 'boolean',
  revocationUrl: 'string',
} as const;

const tags = ['Authentications'];
const errors = { 400: ErrorResponseSchema, 404: ErrorResponseSchema, 409: ErrorResponseSchema };

/** Authentications: saved OAuth 2.0 client configurations (API.md "Authentications"). */
export async function authenticationRoutes(server: FastifyInstance, context: ApiContext): Promise<void> {
  const { store, keyRing, tokens, config } = context;

  async function load(id: string): Promise<AuthenticationRecord> {
    const record = await store.authentications.get(id);
    if (record === null) throw new Problem('not_found', 'No authentication with this id.');
    return record;
  }

  async function view(record: AuthenticationRecord, usedBy?: string[]) {
    const [token, users] = await Promise.all([
      store.tokens.get(record.id),
      usedBy ?? store.connectors.listByAuthentication(record.id).then((list) => list.map((c) => c.id)),
    ]);
    return authenticationView(record, token, users, context.redirectUri);
  }

  async function assertNameFree(name: string, exceptId?: string): Promise<void> {
    const existing = await store.authentications.getByName(name);
    if (existing !== null && existing.id !== exceptId) {
      throw new Problem('conflict', `An authentication named "${name}" already exists.`, {
        errors: [{ path: '/name', message: 'is already used by another authentication' }],
      });
    }
  }

  server.post(
    '/api/authentications',
    {
      attachValidation: true,
      schema: {
        tags,
        summary: 'Create an authentication',
        body: AuthenticationCreateSchema,
        response: { 201: AuthenticationViewSchema, ...errors },
      },
    },
    async (request, reply) => {
      const body = objectBody(request.body);
      const draft = typedFields<AuthenticationDraft>(body, DRAFT_TYPES);
      const rules = checkAuthenticationRules(draft, config.allowHttp);
      failIfInvalid(schemaErrorsOf(request), rules.errors, rules.onlyInsecureUrls);
      const valid = draft as Required<Pick<AuthenticationDraft, 'name' | 'grantType' | 'clientSecret'>> &
        AuthenticationDraft;
      await assertNameFree(valid.name);
      const id = newId('auth');
      const now = Date.now();
      const record: AuthenticationRecord = {
        id,
        name: valid.name,
        type: 'oauth2',
        grantType: valid.grantType,
        settings: settingsFromDraft(valid),
        clientSecret: keyRing.seal(valid.clientSecret, sealContext.clientSecret(id)),
        password:
          valid.password === undefined ? null : keyRing.seal(valid.password, sealContext.password(id)),
        status: valid.grantType === 'authorization_code' ? 'needs_authorization' : 'ready',
        lastError: null,
        generation: 1,
        calls: 0,
        unauthorizedCount: 0,
        refreshCount: 0,
        createdAt: now,
        updatedAt: now,
      };
      try {
        await store.authentications.insert(record);
      } catch (error) {
        if (isUniqueViolation(error))
          throw new Problem('conflict', `An authentication named "${valid.name}" already exists.`);
        throw error;
      }
      reply.status(201);
      return view(record, []);
    },
  );

  server.get(
    '/api/authentications',
    {
      config: { access: 'runtime' },
      schema: { tags, summary: 'List authentications', response: { 200: AuthenticationListSchema } },
    },
    async () => {
      // Three queries whatever the number of authentications: no query per row.
      const [records, connectors, tokenRows] = await Promise.all([
        store.authentications.list(),
        store.connectors.list(),
        store.tokens.list(),
      ]);
      const tokensByAuth = new Map(tokenRows.map((t) => [t.authId, t]));
      const usedBy = new Map<string, string[]>();
      for (const c of connectors) {
        if (c.authenticationId === null) continue;
        const list = usedBy.get(c.authenticationId) ?? [];
        list.push(c.id);
        usedBy.set(c.authenticationId, list);
      }
      return {
        items: records.map((r) =>
          authenticationView(r, tokensByAuth.get(r.id) ?? null, usedBy.get(r.id) ?? [], context.redirectUri),
        ),
      };
    },
  );

  server.get(
    '/api/authentications/:id',
    {
      config: { access: 'runtime' },
      schema: {
        tags,
        summary: 'Get an authentication',
        params: IdParams,
        response: { 200: AuthenticationViewSchema, 404: ErrorResponseSchema },
      },
    },
    async (request) => view(await load((request.params as { id: string }).id)),
  );

  server.patch(
    '/api/authentications/:id',
    {
      attachValidation: true,
      schema: {
        tags,
        summary: 'Change an authentication',
        description:
          'Omitted secrets keep their value. A change to any field that shapes the token request drops cached tokens. Moving tokenUrl, authorizationUrl or revocationUrl to another origin requires clientSecret (and password for the Password grant) in the same request, and drops the stored tokens.',
        params: IdParams,
        body: AuthenticationPatchSchema,
        response: { 200: AuthenticationViewSchema, ...errors },
      },
    },
    async (request) => {
      const record = await load((request.params as { id: string }).id);
      const patch = typedFields<AuthenticationDraft>(objectBody(request.body), DRAFT_TYPES);
      const draft = mergeDraft(record, patch);
      const rules = checkAuthenticationRules(draft, config.allowHttp);
      const destinations = checkCredentialDestinations(
        record.settings,
        {
          tokenUrl: draft.tokenUrl,
          authorizationUrl: draft.authorizationUrl,
          revocationUrl: draft.revocationUrl,
        },
        draft.grantType,
        patch,
      );
      failIfInvalid(
        schemaErrorsOf(request),
        [...rules.errors, ...destinations.errors],
        rules.onlyInsecureUrls && destinations.errors.length === 0,
      );
      if (patch.name !== undefined) await assertNameFree(patch.name, record.id);

      const old = openAuthenticationSecrets(keyRing, record);
      const settings = settingsFromDraft(draft);
      const grantType = draft.grantType ?? record.grantType;
      const secretChanged = patch.clientSecret !== undefined && patch.clientSecret !== old.clientSecret;
      const passwordChanged = patch.password !== undefined && patch.password !== old.password;
      const endpointsMoved = destinations.moved.length > 0;
      const shapesTokens =
        endpointsMoved ||
        secretChanged ||
        passwordChanged ||
        grantType !== record.grantType ||
        TOKEN_SHAPING_FIELDS.some((f) =>
          f in settings || f in record.settings
            ? JSON.stringify(settings[f as keyof AuthenticationSettings]) !==
              JSON.stringify(record.settings[f as keyof AuthenticationSettings])
            : false,
        );

      const updated: AuthenticationRecord = {
        ...record,
        name: patch.name ?? record.name,
        grantType,
        settings,
        clientSecret: secretChanged
          ? keyRing.seal(patch.clientSecret as string, sealContext.clientSecret(record.id))
          : record.clientSecret,
        password:
          grantType !== 'password'
            ? null
            : passwordChanged
              ? keyRing.seal(patch.password as string, sealContext.password(record.id))
              : record.password,
        updatedAt: Date.now(),
      };
      if (shapesTokens) {
        updated.generation = record.generation + 1;
        updated.status = grantType === 'authorization_code' ? 'needs_authorization' : 'ready';
        updated.lastError = null;
      }
      try {
        await store.authentications.update(updated);
      } catch (error) {
        if (isUniqueViolation(error)) throw new Problem('conflict', 'Another authentication has this name.');
        throw error;
      }
      if (shapesTokens) {
        await store.tokens.delete(record.id);
        await recordEvent(store, record.id, 'configuration_changed', {
          tokensDropped: true,
          ...(endpointsMoved ? { endpointsMovedToAnotherOrigin: destinations.moved } : {}),
        });
      }
      tokens.forget(record.id);
      await store.publish({ kind: 'authentication_changed', authId: record.id });
      return view(updated);
    },
  );

  server.delete(
    '/api/authentications/:id',
    {
      schema: {
        tags,
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
      const record = await load((request.params as { id: string }).id);
      const force = (request.query as { force?: string }).force === 'true';
      const users = await store.connectors.listByAuthentication(record.id);
      if (users.length > 0 && !force) {
        throw new Problem('conflict', `This authentication is used by ${users.length} connector(s).`, {
          hint: `Detach it from ${users.map((c) => `"${c.name}"`).join(', ')} first, or delete with ?force=true to detach them.`,
        });
      }
      if (users.length > 0) {
        const detached = await store.connectors.detachAuthentication(record.id);
        for (const connectorId of detached) await store.publish({ kind: 'connector_changed', connectorId });
      }
      await context.revokeOnDelete?.(record);
      await store.authentications.delete(record.id);
      tokens.forget(record.id);
      await store.publish({ kind: 'authentication_deleted', authId: record.id });
      return reply.status(204).send();
    },
  );

  server.post(
    '/api/authentications/:id/test',
    {
      config: { access: 'runtime' },
      schema: {
        tags,
        summary: 'Fetch a token now and report it',
        params: IdParams,
        response: { 200: TokenTestResultSchema, 404: ErrorResponseSchema },
      },
    },
    async (request) => {
      const record = await load((request.params as { id: string }).id);
      try {
        const { source } = await tokens.acquire(record.id, { ignoreBackoff: true });
        const [fresh, row] = await Promise.all([
          store.authentications.get(record.id),
          store.tokens.get(record.id),
        ]);
        const metadata = tokenMetadata(fresh ?? record, row);
        if (metadata === null)
          throw new Problem('token_fetch_failed', 'The token vanished right after it was fetched.');
        return { ok: true, token: { ...metadata, source } };
      } catch (error) {
        if (error instanceof Problem && error.code === 'not_found') throw error;
        if (error instanceof Problem) return { ok: false, error: error.toJSON() };
        throw error;
      }
    },
  );

  server.post(
    '/api/authentications/:id/invalidate',
    {
      schema: {
        tags,
        summary: 'Drop the cached access token (keeps a refresh token)',
        params: IdParams,
        response: { 204: Type.Null({ description: 'Dropped.' }), 404: ErrorResponseSchema },
      },
    },
    async (request, reply) => {
      const record = await load((request.params as { id: string }).id);
      await tokens.invalidate(record.id);
      return reply.status(204).send();
    },
  );

  server.get(
    '/api/authentications/:id/events',
    {
      config: { access: 'runtime' },
      attachValidation: true,
      schema: {
        tags,
        summary: 'The authentication’s event timeline, newest first',
        params: IdParams,
        querystring: Type.Object({ limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$' })) }),
        response: { 200: EventListSchema, 400: ErrorResponseSchema, 404: ErrorResponseSchema },
      },
    },
    async (request) => {
      failIfInvalid(
        schemaErrorsOf(request).map((e) => ({ ...e, path: `/query${e.path}` })),
        [],
      );
      const record = await load((request.params as { id: string }).id);
      const limit = Math.min(200, Math.max(1, Number((request.query as { limit?: string }).limit ?? 50)));
      await tokens.settled();
      const events = await store.events.list(record.id, limit);
      return { items: events.map(eventView) };
    },
  );
}

/** The stored authentication with a patch applied; fields of another grant are dropped on a grant change. */
function mergeDraft(record: AuthenticationRecord, patch: Partial<AuthenticationDraft>): AuthenticationDraft {
  const grantType = patch.grantType ?? record.grantType;
  const stored: AuthenticationDraft = { ...record.settings, name: record.name, grantType };
  if (grantType !== 'authorization_code') {
    delete stored.authorizationUrl;
    delete stored.extraAuthorizationParams;
    delete stored.pkce;
  }
  if (grantType !== 'password') delete stored.username;
  const draft: AuthenticationDraft = { ...stored, ...patch };
  draft.clientSecretStored = true;
  draft.passwordStored = grantType === 'password' && record.password !== null;
  return draft;
}
