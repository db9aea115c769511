import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { Problem } from '../../problem.js';
import { throwIfInvalid } from '../../services/field-checks.js';
import type { WebhookRecord } from '../../store/contract.js';
import type { WebhookInput } from '../../webhooks/webhook-service.js';
import type { ApiContext } from '../context.js';
import { objectBody, schemaErrorsOf } from '../request-validation.js';
import {
  ErrorResponseSchema,
  WebhookCreatedSchema,
  WebhookCreateSchema,
  WebhookDeliveryListSchema,
  WebhookDeliverySchema,
  WebhookListSchema,
  WebhookPatchSchema,
  WebhookViewSchema,
} from '../schemas.js';
import { checkWebhookRules } from '../webhook-rules.js';
import { webhookDeliveryView, webhookView } from '../webhook-views.js';

const IdParams = Type.Object({ id: Type.String() });
const ListQuery = Type.Object(
  {
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$', description: '1–500, default 100.' })),
    cursor: Type.Optional(Type.String({ maxLength: 200, description: 'The previous page’s nextCursor.' })),
  },
  { additionalProperties: false },
);
const DeliveryQuery = Type.Object(
  { limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$', description: '1–200, default 50.' })) },
  { additionalProperties: false },
);
const tags = ['Webhooks'];
const errors = { 400: ErrorResponseSchema, 404: ErrorResponseSchema };

/** `limit` from the query: the schema allows digits only; the range is a rule, listed with the others. */
function limitOf(
  raw: string | undefined,
  max: number,
  fallback: number,
  errorsOut: { path: string; message: string }[],
): number {
  if (raw === undefined) return fallback;
  // Not digits: the schema has said so already.
  if (errorsOut.some((e) => e.path === '/query/limit')) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > max) {
    errorsOut.push({ path: '/query/limit', message: `must be from 1 to ${max}` });
    return fallback;
  }
  return value;
}

/** Opaque to clients: the position of the last item of a page (creation time, then id). */
function encodeCursor(record: WebhookRecord): string {
  return Buffer.from(JSON.stringify([record.createdAt, record.id])).toString('base64url');
}

function decodeCursor(cursor: string): [number, string] | null {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(value) && typeof value[0] === 'number' && typeof value[1] === 'string') {
      return [value[0], value[1]];
    }
  } catch {}
  return null;
}

/**
 * Webhooks (docs/api.md "Webhooks"): where Grantry tells other systems that an authentication needs a
 * person. Admin keys only (the default scope): a webhook makes Grantry send requests of its own.
 */
export async function webhookRoutes(server: FastifyInstance, context: ApiContext): Promise<void> {
  const { store, config, webhooks, egress } = context;

  async function load(id: string): Promise<WebhookRecord> {
    const record = await store.webhooks.get(id);
    if (record === null) throw new Problem('not_found', 'No webhook with this id.');
    return record;
  }

  function validate(body: Record<string, unknown>, schemaErrors: ReturnType<typeof schemaErrorsOf>): void {
    const ruleErrors = checkWebhookRules(
      {
        url: typeof body.url === 'string' ? body.url : undefined,
        description: typeof body.description === 'string' ? body.description : undefined,
      },
      { allowHttp: config.allowHttp, policy: egress.policy },
    );
    throwIfInvalid(schemaErrors, ruleErrors);
  }

  server.post(
    '/api/webhooks',
    {
      attachValidation: true,
      schema: {
        tags,
        operationId: 'createWebhook',
        summary: 'Create a webhook',
        description:
          'Answers the signing secret (`whsec_…`) once: it is stored encrypted and never shown again. Events are signed per Standard Webhooks.',
        body: WebhookCreateSchema,
        response: { 201: WebhookCreatedSchema, 400: ErrorResponseSchema },
      },
    },
    async (request, reply) => {
      const body = objectBody(request.body);
      validate(body, schemaErrorsOf(request));
      const input: WebhookInput = {
        url: body.url as string,
        events: body.events as string[],
        description: typeof body.description === 'string' ? body.description : null,
        enabled: body.enabled !== false,
      };
      const { webhook, secret } = await webhooks.create(input);
      reply.status(201);
      return { ...webhookView(webhook), secret };
    },
  );

  server.get(
    '/api/webhooks',
    {
      attachValidation: true,
      schema: {
        tags,
        operationId: 'listWebhooks',
        summary: 'List webhooks',
        querystring: ListQuery,
        response: { 200: WebhookListSchema, 400: ErrorResponseSchema },
      },
    },
    async (request) => {
      const query = request.query as { limit?: string; cursor?: string };
      const problems = schemaErrorsOf(request).map((e) => ({ ...e, path: `/query${e.path}` }));
      const limit = limitOf(query.limit, 500, 100, problems);
      const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
      if (after === null)
        problems.push({ path: '/query/cursor', message: 'is not a cursor this API gave out' });
      throwIfInvalid(problems, []);
      // Few webhooks exist: one query, paged here, in creation order.
      const all = await store.webhooks.list();
      const rest =
        after === undefined || after === null
          ? all
          : all.filter((w) => w.createdAt > after[0] || (w.createdAt === after[0] && w.id > after[1]));
      const page = rest.slice(0, limit);
      const last = page.at(-1);
      return {
        items: page.map(webhookView),
        nextCursor: rest.length > limit && last !== undefined ? encodeCursor(last) : null,
      };
    },
  );

  server.get(
    '/api/webhooks/:id',
    {
      schema: {
        tags,
        operationId: 'getWebhook',
        summary: 'Get a webhook',
        params: IdParams,
        response: { 200: WebhookViewSchema, 404: ErrorResponseSchema },
      },
    },
    async (request) => webhookView(await load((request.params as { id: string }).id)),
  );

  server.patch(
    '/api/webhooks/:id',
    {
      attachValidation: true,
      schema: {
        tags,
        operationId: 'updateWebhook',
        summary: 'Change a webhook',
        description: '`null` for description clears it. The secret cannot be changed: create a new webhook.',
        params: IdParams,
        body: WebhookPatchSchema,
        response: { 200: WebhookViewSchema, ...errors },
      },
    },
    async (request) => {
      const record = await load((request.params as { id: string }).id);
      const body = objectBody(request.body);
      validate(body, schemaErrorsOf(request));
      const updated = await webhooks.update(record, {
        url: typeof body.url === 'string' ? body.url : record.url,
        events: Array.isArray(body.events) ? (body.events as string[]) : record.events,
        description:
          body.description === null
            ? null
            : typeof body.description === 'string'
              ? body.description
              : record.description,
        enabled: typeof body.enabled === 'boolean' ? body.enabled : record.enabled,
      });
      return webhookView(updated);
    },
  );

  server.delete(
    '/api/webhooks/:id',
    {
      schema: {
        tags,
        operationId: 'deleteWebhook',
        summary: 'Delete a webhook',
        description: 'Its pending deliveries are dropped with it.',
        params: IdParams,
        response: { 204: Type.Null({ description: 'Deleted.' }), 404: ErrorResponseSchema },
      },
    },
    async (request, reply) => {
      const record = await load((request.params as { id: string }).id);
      await store.webhooks.delete(record.id);
      return reply.status(204).send();
    },
  );

  server.get(
    '/api/webhooks/:id/deliveries',
    {
      attachValidation: true,
      schema: {
        tags,
        operationId: 'listWebhookDeliveries',
        summary: 'List the deliveries of a webhook, newest first, with their attempts',
        params: IdParams,
        querystring: DeliveryQuery,
        response: { 200: WebhookDeliveryListSchema, ...errors },
      },
    },
    async (request) => {
      const record = await load((request.params as { id: string }).id);
      const problems = schemaErrorsOf(request).map((e) => ({ ...e, path: `/query${e.path}` }));
      const limit = limitOf((request.query as { limit?: string }).limit, 200, 50, problems);
      throwIfInvalid(problems, []);
      const deliveries = await store.webhookDeliveries.listByWebhook(record.id, limit);
      return { items: deliveries.map(webhookDeliveryView) };
    },
  );

  server.post(
    '/api/webhooks/:id/test',
    {
      schema: {
        tags,
        operationId: 'sendTestWebhook',
        summary: 'Send a test event',
        description:
          'Enqueues a `webhook.test` event for this webhook alone (whatever it subscribed to) and answers its delivery; follow it in the deliveries list.',
        params: IdParams,
        response: { 202: WebhookDeliverySchema, 404: ErrorResponseSchema, 409: ErrorResponseSchema },
      },
    },
    async (request, reply) => {
      const record = await load((request.params as { id: string }).id);
      if (!record.enabled) {
        throw new Problem('conflict', 'This webhook is disabled: nothing is sent to it.', {
          hint: 'Enable it (PATCH {"enabled":true}) to send a test event.',
        });
      }
      const delivery = await webhooks.sendTest(record);
      reply.status(202);
      return webhookDeliveryView(delivery);
    },
  );
}
