import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.js';

/**
 * GET /metrics: the Prometheus text format (token requests by outcome, refreshes, cache hits,
 * upstream requests by status class, proxy latency, lock waits, process metrics). It needs an API
 * key like `/api`: the numbers say which integrations are busy and failing, which is not public.
 */
export async function metricsRoutes(server: FastifyInstance, context: ApiContext): Promise<void> {
  server.get(
    '/metrics',
    {
      config: { access: 'metrics' },
      schema: {
        tags: ['Service'],
        operationId: 'getMetrics',
        summary: 'Prometheus metrics of this instance',
        description:
          'Requires an API key (`Authorization: Bearer <api key>`; configure it as the scrape job’s bearer token). Answers the Prometheus text exposition format (text/plain; version=0.0.4): grantry_token_requests_total{outcome}, grantry_token_refreshes_total, grantry_token_cache_hits_total, grantry_upstream_requests_total{status_class}, grantry_proxy_duration_seconds, grantry_lock_wait_seconds, and the standard process_* and nodejs_* metrics. Each instance reports its own numbers.',
        response: {
          200: {
            description: 'The Prometheus text exposition format.',
            content: { 'text/plain': { schema: Type.String() } },
          },
        },
      },
    },
    async (_request, reply) => {
      const { contentType, body } = await context.metrics.exposition();
      return reply.header('content-type', contentType).send(body);
    },
  );
}
