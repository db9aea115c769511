import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { CallCancellation } from '../../connectors/call-pipeline.js';
import type { ConnectorEngine, ExecuteCall } from '../../connectors/execute.js';
import type { BufferLease } from '../../connectors/execute-buffer-budget.js';
import { isStringMap, throwIfInvalid } from '../../services/field-checks.js';
import type { ApiContext } from '../context.js';
import { objectBody, schemaErrorsOf } from '../request-validation.js';
import {
  ConnectorTestRequestSchema,
  ConnectorTestResultSchema,
  ErrorResponseSchema,
  ExecuteRequestSchema,
  ExecuteResultSchema,
} from '../schemas.js';
import type { TypeBoxProvider } from '../type-provider.js';

const IdParams = Type.Object({ id: Type.String() });
const tags = ['Connectors'];

/** The well-typed fields of a call, so the engine's checks can run beside the schema's findings. */
function callOf(body: Record<string, unknown>): Partial<ExecuteCall> {
  const call: Partial<ExecuteCall> = {};
  if (typeof body.method === 'string') call.method = body.method;
  if (typeof body.path === 'string') call.path = body.path;
  if (isStringMap(body.query)) call.query = body.query;
  if (isStringMap(body.headers)) call.headers = body.headers;
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

/**
 * Ends the upstream call when the caller's connection closes before its answer was written: the
 * API call in flight is aborted and no retry or redirect is sent for nobody.
 */
function cancelledWhenCallerLeaves(reply: FastifyReply): CallCancellation {
  const cancellation = new CallCancellation();
  if (reply.raw.closed) cancellation.cancel();
  else
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) cancellation.cancel();
    });
  return cancellation;
}

/** Calls through a connector: execute (an integration step) and test (the product page's button). */
export async function connectorCallRoutes(app: FastifyInstance, context: ApiContext): Promise<void> {
  const server = app.withTypeProvider<TypeBoxProvider>();
  const { engine } = context;

  server.post(
    '/api/connectors/:id/execute',
    {
      config: { access: 'runtime' },
      attachValidation: true,
      schema: {
        tags,
        operationId: 'executeThroughConnector',
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
      const target = await engine.connector(request.params.id);
      const { call, errors } = engine.prepare(target, callOf(objectBody(request.body)));
      throwIfInvalid(schemaErrorsOf(request), errors);
      return engine.execute(target, call, {
        buffer: bufferLeaseUntilAnswered(engine, reply),
        cancellation: cancelledWhenCallerLeaves(reply),
      });
    },
  );

  server.post(
    '/api/connectors/:id/test',
    {
      config: { access: 'runtime' },
      attachValidation: true,
      schema: {
        tags,
        operationId: 'testConnector',
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
      const target = await engine.connector(request.params.id);
      const { call, errors } = engine.prepare(target, callOf(objectBody(request.body)));
      // No body at all means "the defaults" (GET on the base URL), which the schema cannot say.
      throwIfInvalid(
        request.body === undefined || request.body === null ? [] : schemaErrorsOf(request),
        errors,
      );
      return engine.test(target, call, {
        buffer: bufferLeaseUntilAnswered(engine, reply),
        cancellation: cancelledWhenCallerLeaves(reply),
      });
    },
  );
}
