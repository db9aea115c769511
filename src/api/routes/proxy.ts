import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { asGatewayProblem } from '../../connectors/gateway-problem.js';
import { ERROR_HEADER, forwardThroughConnector } from '../../connectors/proxy.js';
import { Problem } from '../../problem.js';
import type { ApiContext } from '../context.js';
import { ErrorResponseSchema } from '../schemas.js';
import { logRequest } from '../server.js';

/**
 * The proxy route as declared once, for Fastify's router and for the proxy front
 * (src/api/proxy-front.ts), which serves the same route ahead of Fastify. The methods of RFC 9110
 * §9.3 a REST API uses (CONNECT and TRACE make no sense through a proxy).
 */
export const PROXY_ROUTE = {
  methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
  /** The narrowest key scope that may call it (route-access.ts): execute, test and the proxy are `runtime`. */
  config: { access: 'runtime' as const },
} as const;

/**
 * `ANY /proxy/:connectorId/<path>`: the connector pipeline as a transparent HTTP proxy. Requests
 * whose target spells the route plainly (`/proxy/<id>/…`) are served by the proxy front before
 * Fastify sees them; this route takes the rest — a target Fastify's router maps here after
 * decoding or normalising it — with Fastify's access hook in front, and refuses an encoded
 * connector id. Both answer through `forwardThroughConnector`.
 *
 * Bodies are never parsed or buffered here (a catch-all content-type parser leaves the raw stream
 * to the pipeline, so the JSON body limit does not apply); failures answer the JSON error shape
 * with an `x-grantry-error` header naming the code, so a caller can tell them from the upstream's own.
 */
export async function proxyRoutes(server: FastifyInstance, context: ApiContext): Promise<void> {
  const { engine } = context;
  server.removeAllContentTypeParsers();
  server.addContentTypeParser('*', (_request, _payload, done) => done(null));
  // Grantry's own failures go through Fastify's reply (error shape, hooks); measure those here.
  server.addHook('onResponse', (_request, reply, done) => {
    context.metrics.observeProxyDuration(reply.elapsedTime / 1000);
    done();
  });

  async function handle(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const { connectorId } = request.params as { connectorId: string };
    const raw = request.raw.url ?? '';
    const prefix = `/proxy/${connectorId}`;
    try {
      if (!raw.startsWith(prefix)) {
        throw new Problem('validation_failed', 'The proxied path is not allowed.', {
          errors: [{ path: '/path', message: 'the connector id must be sent as it is, unencoded' }],
        });
      }
      const target = await engine.connector(connectorId);
      // The answer is written to the socket directly (hijack), so this path logs and measures
      // for itself once the response is done. Grantry's own fields (x-request-id,
      // cache-control: no-store, nosniff) are the ones the access hook set.
      const own: Record<string, string> = {};
      for (const [name, value] of Object.entries(reply.getHeaders())) own[name] = String(value);
      const res = reply.raw;
      await forwardThroughConnector(
        engine.pipeline,
        target,
        {
          method: request.method,
          target: raw.slice(prefix.length),
          rawHeaders: request.raw.rawHeaders,
          body: request.raw,
        },
        res,
        own,
        (status) => {
          context.metrics.observeProxyDuration(reply.elapsedTime / 1000);
          logRequest(context.logger, request.id, request.method, request.url, status, reply.elapsedTime);
        },
      );
      reply.hijack();
      return reply;
    } catch (error) {
      const problem =
        error instanceof Problem && (error.code === 'validation_failed' || error.code === 'not_found')
          ? error
          : asGatewayProblem(error);
      reply.header(ERROR_HEADER, problem.code);
      throw problem;
    }
  }

  const schema = {
    tags: ['Proxy'],
    summary: 'Forward a request through a connector',
    description:
      "Forwards method, path, query, headers and body to the connector's base URL + path with the authentication's credential, and streams the answer back unchanged, except that Set-Cookie (and other fields that would set state for Grantry's origin) are dropped, `Content-Security-Policy: sandbox` is added, and Cache-Control, x-request-id and x-grantry-error are Grantry's own. A request whose connection failed before the API could act on it (refused, or reset for an idempotent method) is sent again, at most twice; a 401 (or a status of the connector's refreshOn) gets one fresh token and one retry when the body is at most 64 KiB. The connector's timeoutMs covers connecting, TLS, the answer's head and its body. Grantry's own failures carry an x-grantry-error header.",
    params: Type.Object({ connectorId: Type.String() }, { additionalProperties: true }),
    response: {
      200: {
        description:
          "The upstream's answer as it came: its own status (any, not only 200), headers and body, of any content type.",
        content: { '*/*': { schema: {} } },
      },
      400: ErrorResponseSchema,
      401: ErrorResponseSchema,
      403: ErrorResponseSchema,
      404: ErrorResponseSchema,
      424: ErrorResponseSchema,
      429: ErrorResponseSchema,
      502: ErrorResponseSchema,
    },
  };
  const method = [...PROXY_ROUTE.methods];
  const config = { ...PROXY_ROUTE.config };
  server.route({
    method,
    url: '/proxy/:connectorId',
    schema: { ...schema, operationId: 'proxyBaseUrl' },
    config,
    handler: handle,
  });
  server.route({
    method,
    url: '/proxy/:connectorId/*',
    schema: { ...schema, operationId: 'proxy' },
    config,
    handler: handle,
  });
}
