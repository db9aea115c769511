import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.js';
import { ErrorResponseSchema, JwksSchema } from '../schemas.js';
import type { TypeBoxProvider } from '../type-provider.js';

/**
 * Published public keys (docs/keys.md "Publish a JWKS"): `GET /oauth/jwks/:id` serves the JWK Set
 * of an authentication with `publishJwks`, for providers that fetch a client's keys from its
 * `jwks_uri` (RFC 7591 §2, OpenID Connect Core §10.1). Public, like any jwks_uri: it holds public
 * keys only (the response schema admits public JWK members and nothing else).
 */
export async function jwksRoutes(app: FastifyInstance, context: ApiContext): Promise<void> {
  const server = app.withTypeProvider<TypeBoxProvider>();
  server.get(
    '/oauth/jwks/:id',
    {
      schema: {
        tags: ['Authentications'],
        operationId: 'getAuthenticationJwks',
        summary: 'The public keys of an authentication (jwks_uri)',
        description:
          'Public (no API key): the JWK Set of an authentication with publishJwks — the current key, and during a rotation the next and the retiring one. 404 when nothing is published at this address.',
        params: Type.Object({ id: Type.String({ maxLength: 100 }) }),
        response: { 200: JwksSchema, 404: ErrorResponseSchema },
      },
    },
    async (request, reply) => {
      const jwks = await context.authentications.jwks(request.params.id);
      // Short: a rotation publishes the next key before it signs, so a provider's cache of a few
      // minutes never misses a key that signs.
      reply.header('cache-control', 'public, max-age=300');
      reply.type('application/jwk-set+json');
      return jwks;
    },
  );
}
