import type { OutgoingHttpHeaders } from 'node:http';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { asGatewayProblem } from '../../connectors/execute.js';
import { forwardThroughConnector } from '../../connectors/proxy.js';
import { Problem } from '../../problem.js';
import type { ApiContext } from '../context.js';
import { ErrorResponseSchema } from '../schemas.js';
import { logRequest } from '../server.js';

const ERROR_HEADER = 'x-grantry-error';

/**
 * `ANY /proxy/:connectorId/<path>`: the connector engine as a transparent HTTP proxy. Bodies are
 * never parsed or buffered here (a catch-all content-type parser leaves the raw stream to the
 * engine, so the JSON body limit does not apply); failures answer the JSON error shape with an
 * `x-grantry-error` header naming the code, so a caller can tell them from the upstream's own.
 */
export async function proxyRoutes(server: FastifyInstance, context: ApiContext): Promise<void> {
  const { engine } = context;
  server.removeAllContentTypeParsers();
  server.addContentTypeParser('*', (_request, _payload, done) => done(null));
  // Grantry's own failures go through Fastify's reply (error shape, hooks); measure those here.
  server.addHook('onResponse', async (_request, reply) => {
    context.metrics.observeProxyDuration(reply.elapsedTime / 1000);
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
      const answer = await forwardThroughConnector(engine, target, {
        method: request.method,
        target: raw.slice(prefix.length),
        headers: request.headers,
        body: request.raw,
      });
      // The upstream answer is piped to the socket directly (hijack): Fastify's stream sending
      // and hooks cost about as much again as the forwarding itself. So this path logs and
      // measures for itself, once the response is done.
      reply.hijack();
      const res = reply.raw;
      // Grantry's own fields (x-request-id, cache-control: no-store) go last, so they win; the
      // upstream's versions of them were already dropped (proxyResponseHeaders).
      const head = { ...answer.headers, ...reply.getHeaders() } as OutgoingHttpHeaders;
      if (answer.diagnosis !== null) head[ERROR_HEADER] = answer.diagnosis;
      res.writeHead(answer.status, head);
      res.once('close', () => {
        if (!answer.body.readableEnded) answer.body.destroy();
        context.metrics.observeProxyDuration(reply.elapsedTime / 1000);
        logRequest(request, answer.status, reply.elapsedTime);
      });
      answer.body.once('error', () => res.destroy());
      answer.body.pipe(res);
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
      "Forwards method, path, query, headers and body to the connector's base URL + path with the authentication's token, and streams the answer back unchanged, except that Set-Cookie (and other fields that would set state for Grantry's origin) are dropped, `Content-Security-Policy: sandbox` is added, and Cache-Control, x-request-id and x-grantry-error are Grantry's own. Grantry's own failures carry an x-grantry-error header.",
    params: Type.Object({ connectorId: Type.String() }, { additionalProperties: true }),
    response: {
      200: {
        description:
          "The upstream's answer as it came: its own status (any, not only 200), headers and body, of any content type.",
        content: { '*/*': { schema: {} } },
      },
      400: ErrorResponseSchema,
      404: ErrorResponseSchema,
      424: ErrorResponseSchema,
      502: ErrorResponseSchema,
    },
  };
  // The methods of RFC 9110 §9.3 a REST API uses (CONNECT and TRACE make no sense through a proxy).
  const method = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
  const config = { access: 'runtime' as const };
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
