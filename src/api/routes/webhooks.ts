import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
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

/**
 * Webhooks (docs/api.md "Webhooks"): where Grantry tells other systems that an authentication needs a
 * person. Admin keys only (the default scope): a webhook makes Grantry send requests of its own.
 * HTTP in and out of the WebhookService, like the other areas.
 */
export async function webhookRoutes(server: FastifyInstance, context: ApiContext): Promise<void> {
  const { webhooks } = context;

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
      const { webhook, secret } = await webhooks.createFrom(
        objectBody(request.body),
        schemaErrorsOf(request),
      );
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
      const page = await webhooks.list(
        request.query as { limit?: string; cursor?: string },
        schemaErrorsOf(request, '/query'),
      );
      return { items: page.items.map(webhookView), nextCursor: page.nextCursor };
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
    async (request) => webhookView(await webhooks.get((request.params as { id: string }).id)),
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
      const { id } = request.params as { id: string };
      return webhookView(await webhooks.updateFrom(id, objectBody(request.body), schemaErrorsOf(request)));
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
      await webhooks.delete((request.params as { id: string }).id);
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
      const deliveries = await webhooks.deliveries(
        (request.params as { id: string }).id,
        request.query as { limit?: string },
        schemaErrorsOf(request, '/query'),
      );
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
      const delivery = await webhooks.sendTestTo((request.params as { id: string }).id);
      reply.status(202);
      return webhookDeliveryView(delivery);
    },
  );
}
