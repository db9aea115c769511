import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_HEADER } from '../../connectors/proxy.js';
import { Problem } from '../../problem.js';
import type { ApiContext } from '../context.js';
import { PROXY_ROUTE, ProxyFront, proxyProblemCode } from '../proxy-front.js';
import { ErrorResponseSchema } from '../schemas.js';

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
  // The front's own machinery for what this route forwards: one way of forwarding, answering,
  // measuring and logging a proxied call, whichever of the two took the request.
  const front = new ProxyFront({
    engine: context.engine,
    access: context.access,
    metrics: context.metrics,
    logger: context.logger,
  });
  /** Requests handed to the front, which measures them itself. */
  const handedOver = new WeakSet<FastifyRequest>();
  server.removeAllContentTypeParsers();
  server.addContentTypeParser('*', (_request, _payload, done) => done(null));
  // Every failure answered here names its code, as the front's do: the access hook's refusals
  // (401, 403, 429) included, which reach this route's error path, not the handler.
  server.addHook('onError', (_request, reply, error, done) => {
    reply.header(ERROR_HEADER, proxyProblemCode(error));
    done();
  });
  // Answers Fastify wrote (refusals, an encoded connector id) are measured here; the front
  // measures the ones it wrote.
  server.addHook('onResponse', (request, reply, done) => {
    if (!handedOver.has(request)) context.metrics.observeProxyDuration(reply.elapsedTime / 1000);
    done();
  });

  async function handle(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const { connectorId } = request.params as { connectorId: string };
    const raw = request.raw.url ?? '';
    const prefix = `/proxy/${connectorId}`;
    if (!raw.startsWith(prefix)) {
      throw new Problem('validation_failed', 'The proxied path is not allowed.', {
        errors: [{ path: '/path', message: 'the connector id must be sent as it is, unencoded' }],
      });
    }
    handedOver.add(request);
    reply.hijack();
    front.serveRouted(request.raw, reply.raw, { connectorId, rest: raw.slice(prefix.length) }, request.id);
    return reply;
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
