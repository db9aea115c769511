import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.js';
import { buildOpenApiDocument } from '../openapi.js';

const tags = ['Service'];

/** Liveness, readiness and the OpenAPI document: unauthenticated (docs/api.md "Service"). */
export async function serviceRoutes(server: FastifyInstance, context: ApiContext): Promise<void> {
  server.get(
    '/healthz',
    {
      schema: {
        tags,
        operationId: 'getHealth',
        summary: 'The process runs',
        response: { 200: Type.Object({ status: Type.Literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  server.get(
    '/readyz',
    {
      schema: {
        tags,
        operationId: 'getReadiness',
        summary: 'The store answers',
        response: {
          200: Type.Object({ status: Type.Literal('ready') }),
          503: Type.Object(
            { status: Type.Literal('unavailable') },
            { description: 'The store does not answer.' },
          ),
        },
      },
    },
    async (_request, reply) => {
      const ok = await context.store.ping().catch(() => false);
      return ok ? { status: 'ready' as const } : reply.status(503).send({ status: 'unavailable' as const });
    },
  );

  // Built once, on the first request (every route is registered by then), and sent as text: a
  // string with a JSON content type skips Fastify's serializer, so the 200 below only documents it.
  let document: string | undefined;
  server.get(
    '/openapi.json',
    {
      schema: {
        tags,
        operationId: 'getOpenApiDocument',
        summary: 'This document (OpenAPI 3.1)',
        response: {
          200: {
            description: 'The OpenAPI 3.1 document of this server.',
            content: { 'application/json': { schema: Type.Object({}, { additionalProperties: true }) } },
          },
        },
      },
    },
    async (_request, reply) => {
      document ??= JSON.stringify(buildOpenApiDocument(server, context.config.publicUrl));
      return reply.type('application/json; charset=utf-8').send(document);
    },
  );
}
