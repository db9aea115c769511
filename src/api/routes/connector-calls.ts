import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ConnectorEngine, ExecuteCall } from '../../connectors/execute.js';
import type { BufferLease } from '../../connectors/execute-buffer-budget.js';
import type { ApiContext } from '../context.js';
import { failIfInvalid, objectBody, schemaErrorsOf, typedFields } from '../request-validation.js';
import {
  ConnectorTestRequestSchema,
  ConnectorTestResultSchema,
  ErrorResponseSchema,
  ExecuteRequestSchema,
  ExecuteResultSchema,
} from '../schemas.js';

const IdParams = Type.Object({ id: Type.String() });
const tags = ['Connectors'];
const CALL_TYPES = { method: 'string', path: 'string', query: 'object', headers: 'object' } as const;

function callOf(body: Record<string, unknown>): Partial<ExecuteCall> {
  const call: Partial<ExecuteCall> = typedFields<ExecuteCall>(body, CALL_TYPES);
  if (body.body !== undefined) call.body = body.body;
  return call;
}

/**
 * A share of the execute buffer budget held until this answer — which carries the upstream body,
 * as text and then as JSON — has been written, or its caller is gone.
 */
function bufferLeaseUntilAnswered(engine: ConnectorEngine, reply: FastifyReply): BufferLease {
  const lease = engine.buffers.lease();
  if (reply.raw.closed) lease.release();
  else reply.raw.once('close', () => lease.release());
  return lease;
}

/** Calls through a connector: execute (an integration step) and test (the product page's button). */
export async function connectorCallRoutes(server: FastifyInstance, context: ApiContext): Promise<void> {
  const { engine } = context;

  server.post(
    '/api/connectors/:id/execute',
    {
      config: { access: 'runtime' },
      attachValidation: true,
      schema: {
        tags,
        summary: 'Call the API through the connector',
        description:
          "Sends the request below the connector's base URL with the authentication's token. The upstream's own status (also 4xx/5xx) is data; `error` is added for a 401 (after one retry with a fresh token) or a 403. 424 needs_authorization, 502 when no token can be had or the API cannot be reached, 503 server_busy (with Retry-After) when Grantry already holds as many upstream answers in memory as GRANTRY_EXECUTE_BUFFER_LIMIT allows.",
        params: IdParams,
        body: ExecuteRequestSchema,
        response: {
          200: ExecuteResultSchema,
          400: ErrorResponseSchema,
          404: ErrorResponseSchema,
          424: ErrorResponseSchema,
          502: ErrorResponseSchema,
          503: ErrorResponseSchema,
        },
      },
    },
    async (request, reply) => {
      const target = await engine.connector((request.params as { id: string }).id);
      const { call, errors } = engine.prepare(target, callOf(objectBody(request.body)));
      failIfInvalid(schemaErrorsOf(request), errors);
      return engine.execute(target, call, { buffer: bufferLeaseUntilAnswered(engine, reply) });
    },
  );

  server.post(
    '/api/connectors/:id/test',
    {
      config: { access: 'runtime' },
      attachValidation: true,
      schema: {
        tags,
        summary: 'Test token fetch and API call in one',
        description:
          'Fetches (or reuses) a token and calls the API (default GET on the base URL). ok is true only when both steps succeed with a 2xx; a failed step carries its diagnosis. 503 server_busy (with Retry-After) when Grantry already holds as many upstream answers in memory as GRANTRY_EXECUTE_BUFFER_LIMIT allows.',
        params: IdParams,
        body: Type.Optional(ConnectorTestRequestSchema),
        response: {
          200: ConnectorTestResultSchema,
          400: ErrorResponseSchema,
          404: ErrorResponseSchema,
          503: ErrorResponseSchema,
        },
      },
    },
    async (request, reply) => {
      const target = await engine.connector((request.params as { id: string }).id);
      const { call, errors } = engine.prepare(target, callOf(objectBody(request.body)));
      // No body at all means "the defaults" (GET on the base URL), which the schema cannot say.
      failIfInvalid(
        request.body === undefined || request.body === null ? [] : schemaErrorsOf(request),
        errors,
      );
      return engine.test(target, call, { buffer: bufferLeaseUntilAnswered(engine, reply) });
    },
  );
}
