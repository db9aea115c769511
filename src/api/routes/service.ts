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
        summary: 'The store answers',
        response: {
          200: Type.Object({ status: Type.Literal('ready') }),
          503: Type.Object({ status: Type.Literal('unavailable') }),
        },
      },
    },
    async (_request, reply) => {
      const ok = await context.store.ping().catch(() => false);
      return ok ? { status: 'ready' as const } : reply.status(503).send({ status: 'unavailable' as const });
    },
  );

  let document: Record<string, unknown> | undefined;
  server.get('/openapi.json', { schema: { tags, summary: 'This document (OpenAPI 3.1)' } }, async () => {
    document ??= buildOpenApiDocument(server, context.config.publicUrl);
    return document;
  });
}
