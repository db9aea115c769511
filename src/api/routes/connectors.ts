import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { Problem } from '../../problem.js';
import type { ConnectorRecord } from '../../store/contract.js';
import { checkConnectorRules } from '../connector-rules.js';
import type { ApiContext } from '../context.js';
import { newId } from '../ids.js';
import { failIfInvalid, objectBody, schemaErrorsOf, typedFields } from '../request-validation.js';
import {
  type ConnectorCreate,
  ConnectorCreateSchema,
  ConnectorListSchema,
  ConnectorPatchSchema,
  ConnectorViewSchema,
  ErrorResponseSchema,
} from '../schemas.js';
import { isUniqueViolation } from '../unique-violation.js';
import { connectorView } from '../views.js';

const IdParams = Type.Object({ id: Type.String() });
const tags = ['Connectors'];
const errors = { 400: ErrorResponseSchema, 404: ErrorResponseSchema, 409: ErrorResponseSchema };
const DRAFT_TYPES = {
  name: 'string',
  baseUrl: 'string',
  authenticationId: 'string',
  headers: 'object',
  query: 'object',
  timeoutMs: 'number',
} as const;

/**
 * `refreshOn` as sent: null (the default), the statuses (deduplicated, in order), or undefined when
 * absent or malformed (the schema reports what is wrong).
 */
function refreshOnOf(value: unknown): ConnectorRecord['refreshOn'] | undefined {
  if (value === null) return null;
  if (!Array.isArray(value) || !value.every((status) => status === 401 || status === 403)) return undefined;
  return ([401, 403] as const).filter((status) => value.includes(status));
}

/** REST API connectors: saved targets an integration step calls (API.md "Connectors"). */
export async function connectorRoutes(server: FastifyInstance, context: ApiContext): Promise<void> {
  const { store, config } = context;

  async function load(id: string): Promise<ConnectorRecord> {
    const record = await store.connectors.get(id);
    if (record === null) throw new Problem('not_found', 'No connector with this id.');
    return record;
  }

  async function validate(
    draft: Partial<ConnectorCreate>,
    schemaErrors: ReturnType<typeof schemaErrorsOf>,
    exceptId?: string,
  ): Promise<void> {
    const rules = checkConnectorRules(draft, config.allowHttp);
    if (
      typeof draft.authenticationId === 'string' &&
      (await store.authentications.get(draft.authenticationId)) === null
    ) {
      rules.errors.push({ path: '/authenticationId', message: 'no authentication has this id' });
      rules.onlyInsecureUrls = false;
    }
    failIfInvalid(schemaErrors, rules.errors, rules.onlyInsecureUrls);
    if (typeof draft.name === 'string') {
      const existing = await store.connectors.getByName(draft.name);
      if (existing !== null && existing.id !== exceptId) {
        throw new Problem('conflict', `A connector named "${draft.name}" already exists.`, {
          errors: [{ path: '/name', message: 'is already used by another connector' }],
        });
      }
    }
  }

  server.post(
    '/api/connectors',
    {
      attachValidation: true,
      schema: {
        tags,
        summary: 'Create a connector',
        body: ConnectorCreateSchema,
        response: { 201: ConnectorViewSchema, ...errors },
      },
    },
    async (request, reply) => {
      const body = objectBody(request.body);
      const draft = typedFields<ConnectorCreate>(body, DRAFT_TYPES);
      if (body.authenticationId === null) draft.authenticationId = null;
      const refreshOn = refreshOnOf(body.refreshOn);
      await validate(draft, schemaErrorsOf(request));
      const now = Date.now();
      const record: ConnectorRecord = {
        id: newId('con'),
        name: draft.name as string,
        baseUrl: draft.baseUrl as string,
        authenticationId: draft.authenticationId ?? null,
        headers: draft.headers ?? {},
        query: draft.query ?? {},
        refreshOn: refreshOn ?? null,
        timeoutMs: draft.timeoutMs ?? 30_000,
        createdAt: now,
        updatedAt: now,
      };
      try {
        await store.connectors.insert(record);
      } catch (error) {
        if (isUniqueViolation(error))
          throw new Problem('conflict', `A connector named "${record.name}" already exists.`);
        throw error;
      }
      reply.status(201);
      return connectorView(record);
    },
  );

  server.get(
    '/api/connectors',
    {
      config: { access: 'runtime' },
      schema: { tags, summary: 'List connectors', response: { 200: ConnectorListSchema } },
    },
    async () => ({ items: (await store.connectors.list()).map(connectorView) }),
  );

  server.get(
    '/api/connectors/:id',
    {
      config: { access: 'runtime' },
      schema: {
        tags,
        summary: 'Get a connector',
        params: IdParams,
        response: { 200: ConnectorViewSchema, 404: ErrorResponseSchema },
      },
    },
    async (request) => connectorView(await load((request.params as { id: string }).id)),
  );

  server.patch(
    '/api/connectors/:id',
    {
      attachValidation: true,
      schema: {
        tags,
        summary: 'Change a connector',
        params: IdParams,
        body: ConnectorPatchSchema,
        response: { 200: ConnectorViewSchema, ...errors },
      },
    },
    async (request) => {
      const record = await load((request.params as { id: string }).id);
      const body = objectBody(request.body);
      const patch = typedFields<ConnectorCreate>(body, DRAFT_TYPES);
      if (body.authenticationId === null) patch.authenticationId = null;
      // null restores the default (API.md: in a PATCH, null clears an optional field).
      const refreshOn = refreshOnOf(body.refreshOn);
      const merged: ConnectorCreate = {
        name: patch.name ?? record.name,
        baseUrl: patch.baseUrl ?? record.baseUrl,
        authenticationId:
          patch.authenticationId !== undefined ? patch.authenticationId : record.authenticationId,
        headers: patch.headers ?? record.headers,
        query: patch.query ?? record.query,
        timeoutMs: patch.timeoutMs ?? record.timeoutMs,
      };
      await validate(merged, schemaErrorsOf(request), record.id);
      const updated: ConnectorRecord = {
        ...record,
        name: merged.name,
        baseUrl: merged.baseUrl,
        authenticationId: merged.authenticationId ?? null,
        headers: merged.headers ?? {},
        query: merged.query ?? {},
        refreshOn: refreshOn === undefined ? record.refreshOn : refreshOn,
        timeoutMs: merged.timeoutMs ?? 30_000,
        updatedAt: Date.now(),
      };
      try {
        await store.connectors.update(updated);
      } catch (error) {
        if (isUniqueViolation(error)) throw new Problem('conflict', 'Another connector has this name.');
        throw error;
      }
      await store.publish({ kind: 'connector_changed', connectorId: record.id });
      return connectorView(updated);
    },
  );

  server.delete(
    '/api/connectors/:id',
    {
      schema: {
        tags,
        summary: 'Delete a connector',
        params: IdParams,
        response: { 204: Type.Null({ description: 'Deleted.' }), 404: ErrorResponseSchema },
      },
    },
    async (request, reply) => {
      const record = await load((request.params as { id: string }).id);
      await store.connectors.delete(record.id);
      await store.publish({ kind: 'connector_deleted', connectorId: record.id });
      return reply.status(204).send();
    },
  );
}
