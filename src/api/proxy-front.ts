import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { ConnectorTarget } from '../connectors/connector-cache.js';
import type { ConnectorEngine } from '../connectors/execute.js';
import { asGatewayProblem } from '../connectors/gateway-problem.js';
import { ERROR_HEADER, forwardThroughConnector, type OwnFields } from '../connectors/proxy.js';
import { classifyNetworkError } from '../egress/egress.js';
import type { Metrics } from '../observability/metrics.js';
import { Problem } from '../problem.js';
import type { AccessControl } from './access.js';
import { writeProblem } from './problem-response.js';
import type { RouteScope } from './route-access.js';
import {
  accessRefusal,
  logRequest,
  logRequestFailure,
  type RequestFront,
  requestIdOf,
  toProblem,
  UNAUTHORIZED_CHALLENGE,
} from './server.js';

/**
 * The proxy route as declared once, for Fastify's router (src/api/routes/proxy.ts) and for
 * this front, which serves the same route ahead of Fastify. The methods of RFC 9110
 * §9.3 a REST API uses (CONNECT and TRACE make no sense through a proxy).
 */
export const PROXY_ROUTE = {
  methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
  /** The narrowest key scope that may call it (route-access.ts): execute, test and the proxy are `runtime`. */
  config: { access: 'runtime' as const },
} as const;

/** A request target the front serves: the proxy route, spelled plainly. */
export interface ProxyTargetMatch {
  connectorId: string;
  /** What follows `/proxy/<id>`: the path below the base URL and the query, still encoded. */
  rest: string;
}

const PREFIX = '/proxy/';
/** The status logged for a call whose caller closed its connection before it was answered. */
const CALLER_CLOSED = 499;
const PROXY_METHODS: ReadonlySet<string> = new Set(PROXY_ROUTE.methods);
/** find-my-way's default `maxParamLength`: a longer id is not routed at all. */
const MAX_ID_LENGTH = 100;

/**
 * The proxy route as the front recognises it: a method the route accepts and an origin-form target
 * `/proxy/<id>` followed by `/`, `?` or nothing, the id made of letters, digits, `_` and `-` only.
 * Every such target is one Fastify's router maps to the proxy route with that very id (a test
 * holds the two together); anything else — percent-encoding, an absolute-form target, dot
 * segments before the id, a fragment, another case — is left to Fastify, whose router decides
 * the route and whose access hook decides on it.
 */
export function matchProxyTarget(
  method: string | undefined,
  url: string | undefined,
): ProxyTargetMatch | null {
  if (method === undefined || url === undefined || !url.startsWith(PREFIX) || !PROXY_METHODS.has(method)) {
    return null;
  }
  let end = PREFIX.length;
  for (; end < url.length; end++) {
    const code = url.charCodeAt(end);
    if (code === 0x2f /* / */ || code === 0x3f /* ? */) break;
    if (!isIdCharacter(code)) return null;
  }
  const length = end - PREFIX.length;
  if (length === 0 || length > MAX_ID_LENGTH) return null;
  // A fragment has no place in a request target (RFC 9112 §3.2); the router decides what it means.
  if (url.includes('#', end)) return null;
  return { connectorId: url.slice(PREFIX.length, end), rest: url.slice(end) };
}

function isIdCharacter(code: number): boolean {
  return (
    (code >= 0x61 && code <= 0x7a) || // a-z
    (code >= 0x41 && code <= 0x5a) || // A-Z
    (code >= 0x30 && code <= 0x39) || // 0-9
    code === 0x5f || // _
    code === 0x2d // -
  );
}

export interface ProxyFrontOptions {
  engine: ConnectorEngine;
  access: AccessControl;
  metrics: Metrics;
  logger: Logger;
}

/**
 * `ANY /proxy/:connectorId/<path>` served ahead of Fastify. A proxied call needs little of what
 * Fastify does per request (routing, hooks, reply objects, content-type parsing) and paid for all
 * of it: about as much CPU as the forwarding itself. The front does only what the route needs, in
 * the same order and with the same parts as the Fastify path:
 *
 * 1. recognise the route (`matchProxyTarget`; everything else goes to Fastify);
 * 2. decide access exactly as the access hook does for the proxy route — the route's own
 *    declared scope (`PROXY_ROUTE.config.access`), the same AccessControl (a key verified moments
 *    ago is decided without awaiting; failed attempts and the per-key rate limit are counted the
 *    same way), the same answers (401 with its challenge, 403, 429 with Retry-After);
 * 3. the compiled connector and its credential from memory, the pipeline, the answer piped back;
 * 4. the request id, `nosniff` and `no-store` on every answer, the error shape with
 *    `x-grantry-error` for Grantry's own failures, the log line and the proxy-duration metric.
 *
 * While Fastify is closing, every request is left to it (it answers 503).
 */
export class ProxyFront implements RequestFront {
  readonly #engine: ConnectorEngine;
  readonly #access: AccessControl;
  readonly #metrics: Metrics;
  readonly #logger: Logger;
  readonly #scope: RouteScope = PROXY_ROUTE.config.access;
  #closing = false;

  constructor(options: ProxyFrontOptions) {
    this.#engine = options.engine;
    this.#access = options.access;
    this.#metrics = options.metrics;
    this.#logger = options.logger;
  }

  serve(req: IncomingMessage, res: ServerResponse): boolean {
    if (this.#closing) return false;
    const match = matchProxyTarget(req.method, req.url);
    if (match === null) return false;
    this.#handle(req, res, match);
    return true;
  }

  close(): void {
    this.#closing = true;
  }

  /**
   * A proxy request that Fastify routed (a spelling the front leaves to it: see the proxy route)
   * and whose access its hook already decided, answered exactly as the front answers its own:
   * the same forwarding, error shape with `x-grantry-error`, and one proxy-duration sample. Its
   * log line is Fastify's (its onResponse runs for every answer that was written to the end);
   * the front logs only an answer Fastify never sees finish — the caller went away first.
   */
  serveRouted(req: IncomingMessage, res: ServerResponse, match: ProxyTargetMatch, requestId: string): void {
    const started = performance.now();
    const own = ownFields(requestId);
    const finished = (status: number) => {
      const ms = performance.now() - started;
      this.#metrics.observeProxyDuration(ms / 1000);
      if (!res.writableEnded)
        logRequest(this.#logger, requestId, req.method as string, req.url as string, status, ms);
    };
    this.#forward(req, res, match, own, finished, (error) => this.#fail(req, res, own, error, finished));
  }

  #handle(req: IncomingMessage, res: ServerResponse, match: ProxyTargetMatch): void {
    const started = performance.now();
    const requestId = requestIdOf(req);
    const own = ownFields(requestId);
    const finished = (status: number) => {
      const ms = performance.now() - started;
      this.#metrics.observeProxyDuration(ms / 1000);
      logRequest(this.#logger, requestId, req.method as string, req.url as string, status, ms);
    };
    const fail = (error: unknown) => this.#fail(req, res, own, error, finished);

    const authorization = req.headers.authorization;
    const known = this.#access.checkKnown(authorization);
    if (known === undefined) {
      this.#access.check(authorization, req.socket.remoteAddress ?? '').then((decision) => {
        const refused = accessRefusal(decision, this.#scope);
        if (refused !== undefined) fail(refused);
        else this.#forward(req, res, match, own, finished, fail);
      }, fail);
      return;
    }
    const refused = accessRefusal(known, this.#scope);
    if (refused !== undefined) fail(refused);
    else this.#forward(req, res, match, own, finished, fail);
  }

  /** The connector from memory when it is there (the hot path), then the pipeline. */
  #forward(
    req: IncomingMessage,
    res: ServerResponse,
    match: ProxyTargetMatch,
    own: OwnFields,
    finished: (status: number) => void,
    fail: (error: unknown) => void,
  ): void {
    const send = (target: ConnectorTarget | null) => {
      if (target === null) throw new Problem('not_found', 'No connector with this id.');
      return forwardThroughConnector(
        this.#engine.pipeline,
        target,
        { method: req.method as string, target: match.rest, rawHeaders: req.rawHeaders, body: req },
        res,
        own,
        finished,
      );
    };
    const cached = this.#engine.connectors.get(match.connectorId);
    if (cached instanceof Promise) {
      cached.then(send).catch(fail);
      return;
    }
    try {
      send(cached).catch(fail);
    } catch (error) {
      fail(error);
    }
  }

  /** Grantry's own failure, answered as Fastify's error handler answers it, plus x-grantry-error. */
  #fail(
    req: IncomingMessage,
    res: ServerResponse,
    own: OwnFields,
    error: unknown,
    finished: (status: number) => void,
  ): void {
    const problem = proxyProblem(error);
    if (problem.code === 'internal_error') {
      logRequestFailure(this.#logger, own['x-request-id'] as string, req.url as string, error);
    }
    if (res.headersSent) {
      // The answer had begun: a broken connection is all that can be said (its close is logged).
      res.destroy();
      return;
    }
    if (res.destroyed) {
      // The caller went away before an answer: logged as such (nginx's 499, "client closed request").
      finished(CALLER_CLOSED);
      return;
    }
    const fields: Record<string, string> = { ...own, [ERROR_HEADER]: problem.code };
    if (problem.code === 'unauthorized') fields['www-authenticate'] = UNAUTHORIZED_CHALLENGE;
    writeProblem(res, problem, fields);
    finished(problem.status);
  }
}

/** The code `x-grantry-error` names for a failure of the proxy. */
export function proxyProblemCode(error: unknown): string {
  return proxyProblem(error).code;
}

/** The answer to a failure of the proxy: its own codes as they are, anything else as the gateway's. */
function proxyProblem(error: unknown): Problem {
  if (error instanceof Problem) {
    switch (error.code) {
      case 'validation_failed':
      case 'not_found':
      case 'unauthorized':
      case 'forbidden':
      case 'rate_limited':
      case 'server_busy':
        return error;
      default:
        return asGatewayProblem(error);
    }
  }
  const problem = toProblem(error);
  if (problem.code !== 'internal_error') return asGatewayProblem(problem);
  // A connection that failed under a stream (ECONNRESET, EPIPE, a socket error) is a failure of
  // the exchange, not a bug of Grantry's: the gateway's 502 upstream_failed, without a stack trace.
  const classified = classifyNetworkError(error, '');
  return classified.kind === 'other' ? problem : asGatewayProblem(classified);
}

/** The fields Grantry sets on every proxied answer, which the upstream may not override. */
function ownFields(requestId: string): OwnFields {
  return { 'x-request-id': requestId, 'x-content-type-options': 'nosniff', 'cache-control': 'no-store' };
}
