import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ApiContext } from '../context.js';
import { ErrorResponseSchema, JwksSchema } from '../schemas.js';
import type { TypeBoxProvider } from '../type-provider.js';

/**
 * Published public keys (docs/keys.md "Publish a JWKS"): `GET /jwks/<id>.json` (docs/api.md) serves
 * the JWK Set of an authentication with `publishJwks`, for providers that fetch a client's keys from
 * its `jwks_uri` (RFC 7591 §2, OpenID Connect Core §10.1). Public, like any jwks_uri: it holds public
 * keys only (the response schema admits public JWK members and nothing else). `GET /oauth/jwks/:id`
 * is the address the first release gave out, still served for providers already told it.
 */
export async function jwksRoutes(app: FastifyInstance, context: ApiContext): Promise<void> {
  const server = app.withTypeProvider<TypeBoxProvider>();
  const published = async (id: string, reply: FastifyReply) => {
    const jwks = await context.authentications.jwks(id);
    // Short: a rotation publishes the next key before it signs, so a provider's cache of a few
    // minutes never misses a key that signs.
    reply.header('cache-control', 'public, max-age=300');
    reply.type('application/jwk-set+json');
    return jwks;
  };
  const schema = {
    tags: ['Authentications'],
    response: { 200: JwksSchema, 404: ErrorResponseSchema },
  };
  server.get(
    '/jwks/:id.json',
    {
      schema: {
        ...schema,
        operationId: 'getPublishedJwks',
        summary: 'The published public keys of an authentication (jwks_uri)',
        description:
          'Public (no API key): the JWK Set of an authentication with publishJwks — the current key, and during a rotation the next and the retiring one. 404 when nothing is published at this address.',
        params: Type.Object({ id: Type.String({ maxLength: 100 }) }),
      },
    },
    async (request, reply) => published(request.params.id, reply),
  );
  server.get(
    '/oauth/jwks/:id',
    {
      schema: {
        ...schema,
        operationId: 'getAuthenticationJwks',
        summary: 'The published public keys, at the first release’s address',
        description: 'The same as GET /jwks/{id}.json, for providers already given this address.',
        params: Type.Object({ id: Type.String({ maxLength: 100 }) }),
      },
    },
    async (request, reply) => published(request.params.id, reply),
  );
}
