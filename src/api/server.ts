import { randomUUID } from 'node:crypto';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyRequest,
  LogController,
} from 'fastify';
import { Problem } from '../problem.js';
import { MasterKeyError } from '../secrets/key-ring.js';
import { limitConnectionsPerClient } from './connection-limits.js';
import type { ApiContext } from './context.js';
import { installBoundedJsonParser } from './json-body.js';
import { collectOpenApiRoutes } from './openapi.js';
import {
  accessRequirementOf,
  describeScope,
  looksProtected,
  type RouteScope,
  scopeAllows,
} from './route-access.js';
import { schemaErrorsToFieldErrors } from './validation.js';

/**
 * The Fastify instance with what every area shares: the error shape, access control on `/api`
 * and `/proxy`, `Cache-Control: no-store`, and logs that never carry a secret. Areas register
 * themselves as encapsulated plugins (src/api/routes/*).
 */
export function createServer(context: ApiContext): FastifyInstance {
  const { config } = context;
  const server = Fastify({
    // Slow clients are cut off (see config.ts); Node checks its timeouts every
    // connectionsCheckingInterval, so short timeouts are checked more often.
    requestTimeout: config.requestTimeoutMs,
    keepAliveTimeout: config.idleTimeoutMs,
    http: {
      headersTimeout: config.headersTimeoutMs,
      connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(config.headersTimeoutMs / 4))),
    },
    loggerInstance: context.logger as FastifyBaseLogger,
    bodyLimit: context.config.bodyLimitBytes,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.-]{1,64}$/.test(given) ? given : randomUUID();
    },
    // Ajv with every error reported, no coercion and no defaults: the request is what was sent.
    ajv: {
      customOptions: { allErrors: true, coerceTypes: false, useDefaults: false, removeAdditional: false },
    },
    routerOptions: { ignoreTrailingSlash: true },
    // Our own onResponse line logs the path only: Fastify's would log query strings.
    logController: new LogController({ disableRequestLogging: true }),
    // No pino child per request (it cost ~11 µs of every proxied call): our own log lines carry
    // the request id themselves.
    childLoggerFactory: (logger) => logger,
    return503OnClosing: true,
  });

  collectOpenApiRoutes(server);
  limitConnectionsPerClient(server.server, config.maxConnectionsPerClient);
  installBoundedJsonParser(server);

  // The access decision (docs/api.md "Access") is made on the route the router matched, never on the
  // raw target: every spelling of a path that reaches a handler meets that handler's rule.
  server.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    reply.header('x-content-type-options', 'nosniff');
    const required = accessRequirementOf(request);
    if (required === 'public') return;
    // Nothing matched: the not-found handler runs. A target that reads as a protected path still
    // needs a key (a probe learns nothing), any other is the console's page or a plain 404.
    if (required === 'unmatched' && !looksProtected(request.url)) return;
    reply.header('cache-control', 'no-store');
    const decision = await context.access.check(request.headers.authorization, request.ip);
    if (!decision.ok) {
      if (decision.code === 'rate_limited') {
        reply.header('retry-after', String(decision.retryAfterSeconds));
        throw new Problem('rate_limited', 'Too many requests.', {
          hint: `Wait ${decision.retryAfterSeconds} s before trying again.`,
        });
      }
      reply.header('www-authenticate', 'Bearer realm="grantry"');
      throw new Problem('unauthorized', 'A valid API key is required.', {
        hint: 'Send it as "Authorization: Bearer <api key>".',
      });
    }
    if (required !== 'unmatched' && !scopeAllows(decision.scope, required)) {
      throw forbidden(decision.scope, required);
    }
  });

  server.addHook('onResponse', async (request, reply) =>
    logRequest(request, reply.statusCode, reply.elapsedTime),
  );

  server.setErrorHandler((error: FastifyError | Problem | Error, request, reply) => {
    const problem = toProblem(error, request);
    if (problem.status >= 500 && problem.code === 'internal_error') {
      request.log.error(
        { reqId: request.id, err: safeError(error), path: pathOnly(request.url) },
        'request failed',
      );
    }
    reply.header('cache-control', 'no-store');
    if (problem.retryAfterSeconds !== undefined)
      reply.header('retry-after', String(problem.retryAfterSeconds));
    return reply.status(problem.status).send({ error: problem.toJSON() });
  });

  return server;
}

/** The one log line per request. Path only: query strings can carry codes, states and provider parameters. */
export function logRequest(request: FastifyRequest, status: number, ms: number): void {
  request.log.info(
    { reqId: request.id, method: request.method, path: pathOnly(request.url), status, ms },
    'request',
  );
}

export function toProblem(error: unknown, request?: FastifyRequest): Problem {
  if (error instanceof Problem) return error;
  if (error instanceof MasterKeyError) {
    return new Problem('wrong_master_key', error.message, {
      hint: 'Start Grantry with the GRANTRY_MASTER_KEY the data was written with.',
    });
  }
  const fastifyError = error as Partial<FastifyError>;
  if (fastifyError.validation !== undefined) {
    const context = fastifyError.validationContext ?? 'body';
    const errors = schemaErrorsToFieldErrors(fastifyError.validation).map((e) => ({
      ...e,
      path: context === 'body' ? e.path : `/${context}${e.path}`,
    }));
    return new Problem('validation_failed', 'The request is not valid.', { errors });
  }
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new Problem('payload_too_large', 'The request body is larger than this server accepts.');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new Problem('validation_failed', 'The request body is not valid JSON.', {
        errors: [{ path: '', message: 'must be valid JSON' }],
      });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new Problem('validation_failed', 'The request body must be JSON.', {
        errors: [{ path: '', message: 'send Content-Type: application/json' }],
      });
  }
  if (error instanceof SyntaxError && request !== undefined) {
    return new Problem('validation_failed', 'The request body is not valid JSON.', {
      errors: [{ path: '', message: 'must be valid JSON' }],
    });
  }
  const status = fastifyError.statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    return new Problem('validation_failed', 'The request is not valid.', {
      errors: [{ path: '', message: fastifyError.message ?? 'is invalid' }],
    });
  }
  return new Problem('internal_error', 'Something went wrong inside Grantry; the details are in its log.', {
    cause: error,
  });
}

function forbidden(scope: RouteScope, required: RouteScope): Problem {
  return new Problem('forbidden', `This API key's scope (${scope}) does not allow this route.`, {
    hint: `A ${scope} key may do ${describeScope(scope)}. This route needs a${required === 'admin' ? 'n' : ''} ${required} key: create one with \`grantry api-keys create --scope ${required}\`.`,
  });
}

function pathOnly(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/** Errors are logged by name, code and stack: messages of foreign errors might quote input. */
function safeError(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { type: typeof error };
  return { name: error.name, code: (error as { code?: unknown }).code, stack: error.stack };
}
