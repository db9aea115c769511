import { randomUUID } from 'node:crypto';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerOptions,
  type ServerResponse,
} from 'node:http';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerFactory,
  LogController,
  type RawServerDefault,
} from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { type FieldError, Problem } from '../problem.js';
import { MasterKeyError } from '../secrets/key-ring.js';
import { escapePointer } from '../services/field-checks.js';
import type { AccessDecision } from './access.js';
import { limitConnectionsPerClient } from './connection-limits.js';
import type { ApiContext } from './context.js';
import { installBoundedJsonParser, installEmptyBodyParser } from './json-body.js';
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
 * A handler that sees every request before Fastify does and may take it (the proxy front,
 * src/api/proxy-front.ts). Whatever it does not take goes through Fastify's router and hooks.
 */
export interface RequestFront {
  /** True when it took the request (and will answer it); false leaves it to Fastify. */
  serve(req: IncomingMessage, res: ServerResponse): boolean;
  /** Fastify is closing: from now on leave every request to it (it answers 503 server_busy). */
  close(): void;
}

/** `x-request-id`: the caller's, when it is a plain token of at most 64 characters; else a new UUID. */
export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && /^[\w.-]{1,64}$/.test(given) ? given : randomUUID();
}

/**
 * The Fastify instance with what every area shares: the error shape, access control on `/api`
 * and `/proxy`, `Cache-Control: no-store`, and logs that never carry a secret. Areas register
 * themselves as encapsulated plugins (src/api/routes/*). A `front`, when given, sees each request
 * first (see RequestFront).
 */
export function createServer(context: ApiContext, options: { front?: RequestFront } = {}): FastifyInstance {
  const { config } = context;
  const { front } = options;
  const server = Fastify({
    // Slow clients are cut off (see config.ts); Node checks its timeouts every
    // connectionsCheckingInterval, so short timeouts are checked more often.
    requestTimeout: config.requestTimeoutMs,
    keepAliveTimeout: config.idleTimeoutMs,
    http: {
      headersTimeout: config.headersTimeoutMs,
      connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(config.headersTimeoutMs / 4))),
    },
    // The HTTP server Fastify would make, with the front's listener ahead of Fastify's own.
    serverFactory: frontedServer(config, options.front),
    loggerInstance: context.logger as FastifyBaseLogger,
    bodyLimit: context.config.bodyLimitBytes,
    genReqId: requestIdOf,
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
    // Fastify's own 503 while closing has a body of its own shape; ours (below) has the Error shape.
    return503OnClosing: false,
    // A path parameter that does not decode (`/api/connectors/%E0`, `%ED%A0%80`: not UTF-8) is
    // refused by the router before any hook runs; it answers in the Error shape like the rest, and
    // a target that reads as a protected path still needs a key first (a probe learns nothing).
    frameworkErrors: (error, request, fastifyReply) => {
      const reply = fastifyReply as FastifyReply;
      const answer = (problem: Problem) => {
        reply.header('cache-control', 'no-store');
        if (problem.retryAfterSeconds !== undefined)
          reply.header('retry-after', String(problem.retryAfterSeconds));
        reply.status(problem.status).send({ error: problem.toJSON() });
      };
      const problem =
        error.code === 'FST_ERR_BAD_URL'
          ? badEncoding('/params', 'is not valid percent-encoded UTF-8')
          : toProblem(error);
      if (!looksProtected(request.url)) return answer(problem);
      const decide = (decision: AccessDecision) => answer(refusalOf(decision, 'unmatched', reply) ?? problem);
      const known = context.access.checkKnown(request.headers.authorization);
      if (known !== undefined) return decide(known);
      context.access
        .check(request.headers.authorization, request.ip)
        .then(decide, () => answer(toProblem(null)));
    },
  });
  if (front !== undefined) {
    server.addHook('preClose', (done) => {
      front.close();
      done();
    });
  }

  collectOpenApiRoutes(server);
  limitConnectionsPerClient(server.server, config.maxConnectionsPerClient);
  installBoundedJsonParser(server);
  installEmptyBodyParser(server);

  // The access decision (docs/api.md "Access") is made on the route the router matched, never on the
  // raw target: every spelling of a path that reaches a handler meets that handler's rule.
  // A request that arrives on a kept-alive connection while the server closes is refused in the
  // Error shape, and the connection with it; in-flight requests finish.
  let closing = false;
  server.addHook('preClose', (done) => {
    closing = true;
    // Node closes the connections idle at this moment only: one whose request finishes later would
    // hold the close for the whole idle timeout. Those are closed as they go idle.
    const sweep = setInterval(() => server.server.closeIdleConnections(), 100);
    sweep.unref();
    server.server.once('close', () => clearInterval(sweep));
    done();
  });

  // Callback-style hooks: a key verified moments ago is decided without a promise.
  server.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    reply.header('x-content-type-options', 'nosniff');
    if (closing) {
      reply.header('connection', 'close');
      return done(
        new Problem('server_busy', 'Grantry is shutting down.', {
          status: 503,
          retryAfterSeconds: 1,
          hint: 'Send the request again: another instance answers it, or this one once it has restarted.',
        }),
      );
    }
    const required = accessRequirementOf(request);
    if (required === 'public') return done();
    // Nothing matched: the not-found handler runs. A target that reads as a protected path still
    // needs a key (a probe learns nothing), any other is the console's page or a plain 404.
    if (required === 'unmatched' && !looksProtected(request.url)) return done();
    reply.header('cache-control', 'no-store');
    const known = context.access.checkKnown(request.headers.authorization);
    if (known !== undefined) return done(refusalOf(known, required, reply));
    context.access.check(request.headers.authorization, request.ip).then(
      (decision) => done(refusalOf(decision, required, reply)),
      (error: unknown) => done(error as Error),
    );
  });

  // After the access check: path parameters and query values reach the store as text, and
  // PostgreSQL refuses NUL in text (`GET /api/connectors/a%00` answered 500 there); no id, name or
  // filter of ours holds one, nor half a surrogate pair. The proxy forwards its path and query as
  // they came (it parses neither), so only its connector id is checked.
  server.addHook('preValidation', (request, _reply, done) => {
    const proxied = request.routeOptions.url?.startsWith('/proxy/') === true;
    const errors = [
      ...unusableTextIn(request.params, '/params', new Set(['*'])),
      ...(proxied ? [] : unusableTextIn(request.query, '/query')),
    ];
    if (errors.length === 0) return done();
    done(new Problem('validation_failed', 'The request is not valid.', { errors }));
  });

  server.addHook('onResponse', (request, reply, done) => {
    logRequest(context.logger, request.id, request.method, request.url, reply.statusCode, reply.elapsedTime);
    done();
  });

  server.setErrorHandler((error: FastifyError | Problem | Error, request, reply) => {
    const problem = toProblem(error, request);
    if (problem.status >= 500 && problem.code === 'internal_error') {
      logRequestFailure(context.logger, request.id, request.url, error);
    }
    reply.header('cache-control', 'no-store');
    if (problem.retryAfterSeconds !== undefined)
      reply.header('retry-after', String(problem.retryAfterSeconds));
    return reply.status(problem.status).send({ error: problem.toJSON() });
  });

  return server;
}

/**
 * Makes the HTTP server as Fastify would (its `http` options, keep-alive and request timeouts),
 * with the front, when there is one, asked first for every request.
 */
function frontedServer(
  config: Config,
  front: RequestFront | undefined,
): FastifyServerFactory<RawServerDefault> {
  return (handler, factoryOptions) => {
    const listener =
      front === undefined
        ? handler
        : (req: IncomingMessage, res: ServerResponse) => {
            if (!front.serve(req, res)) handler(req, res);
          };
    const httpServer = createHttpServer((factoryOptions.http ?? {}) as ServerOptions, listener);
    httpServer.keepAliveTimeout = config.idleTimeoutMs;
    httpServer.requestTimeout = config.requestTimeoutMs;
    return httpServer;
  };
}

/**
 * Why an access decision refuses a request to a route that requires `required` (unmatched: any
 * valid key), or undefined when it may pass. Sets the answer's fields the refusal needs.
 */
function refusalOf(
  decision: AccessDecision,
  required: RouteScope | 'unmatched',
  reply: FastifyReply,
): Problem | undefined {
  const refused = accessRefusal(decision, required);
  if (refused === undefined) return undefined;
  // Retry-After comes with the problem (the error handler writes it).
  if (refused.code === 'unauthorized') reply.header('www-authenticate', UNAUTHORIZED_CHALLENGE);
  return refused;
}

/** RFC 6750 §3: the challenge of an answer refused for want of a valid API key. */
export const UNAUTHORIZED_CHALLENGE = 'Bearer realm="grantry"';

/** The Problem an access decision answers with (API.md "Access"), or undefined when it lets the request in. */
export function accessRefusal(
  decision: AccessDecision,
  required: RouteScope | 'unmatched',
): Problem | undefined {
  if (!decision.ok) {
    if (decision.code === 'rate_limited') {
      return new Problem('rate_limited', 'Too many requests.', {
        hint: `Wait ${decision.retryAfterSeconds} s before trying again.`,
        retryAfterSeconds: decision.retryAfterSeconds,
      });
    }
    return new Problem('unauthorized', 'A valid API key is required.', {
      hint: 'Send it as "Authorization: Bearer <api key>".',
    });
  }
  if (required !== 'unmatched' && !scopeAllows(decision.scope, required))
    return forbidden(decision.scope, required);
  return undefined;
}

/**
 * The one log line per request, at info. Path only: query strings can carry codes, states and
 * provider parameters. Nothing is built when info is off.
 */
export function logRequest(
  log: Logger,
  reqId: string,
  method: string,
  url: string,
  status: number,
  ms: number,
): void {
  if (!log.isLevelEnabled('info')) return;
  log.info({ reqId, method, path: pathOnly(url), status, ms }, 'request');
}

/** The log line of a request that failed inside Grantry (internal_error): the error by name, code and stack. */
export function logRequestFailure(log: Logger, reqId: string, url: string, error: unknown): void {
  log.error({ reqId, err: safeError(error), path: pathOnly(url) }, 'request failed');
}

export function toProblem(error: unknown, request?: FastifyRequest): Problem {
  if (error instanceof Problem) return error;
  if (error instanceof MasterKeyError) {
    return new Problem('wrong_master_key', error.message, {
      hint: 'Start Grantry with the GRANTRY_MASTER_KEY the data was written with.',
    });
  }
  // decodeURIComponent of a parameter or query value that is not percent-encoded UTF-8.
  if (error instanceof URIError) return badEncoding('', 'is not valid percent-encoded UTF-8');
  const fastifyError = error as Partial<FastifyError>;
  if (fastifyError.validation !== undefined) {
    const context = fastifyError.validationContext ?? 'body';
    const errors = schemaErrorsToFieldErrors(fastifyError.validation).map((e) => ({
      ...e,
      path: context === 'body' ? e.path : `${pointerPrefixOf(context)}${e.path}`,
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

/**
 * Where a problem of each part of the request points: the body at the root, the query string at
 * `/query/<name>` (docs/api.md "Errors"), path parameters at `/params/<name>`.
 */
export function pointerPrefixOf(context: string): string {
  return context === 'body' ? '' : context === 'querystring' ? '/query' : `/${context}`;
}

/** Values of parameters (strings, or arrays of them for a repeated query parameter) that no store can hold. */
function unusableTextIn(
  values: unknown,
  prefix: string,
  skip: ReadonlySet<string> = new Set(),
): FieldError[] {
  if (typeof values !== 'object' || values === null) return [];
  const errors: FieldError[] = [];
  for (const [name, value] of Object.entries(values)) {
    if (skip.has(name)) continue;
    for (const text of Array.isArray(value) ? value : [value]) {
      if (typeof text !== 'string') continue;
      const problem = text.includes('\u0000')
        ? 'must not contain NUL (%00)'
        : (text as string & { isWellFormed(): boolean }).isWellFormed()
          ? null
          : 'must be valid Unicode text';
      if (problem !== null) {
        errors.push({ path: `${prefix}/${escapePointer(name)}`, message: problem });
        break;
      }
    }
  }
  return errors;
}

function badEncoding(path: string, message: string): Problem {
  return new Problem('validation_failed', 'The request address is not valid.', {
    errors: [{ path, message }],
    hint: 'Percent-encode the address as UTF-8 (encodeURIComponent does).',
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
