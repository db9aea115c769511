import { Type } from '@sinclair/typebox';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { named } from './component-name.js';
import { buildOpenApiDocument, collectOpenApiRoutes } from './openapi.js';

type Json = Record<string, any>;

const Thing = named('Thing', Type.Object({ id: Type.String(), size: Type.Integer({ minimum: 1 }) }));

let server: FastifyInstance | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function documentOf(register: (server: FastifyInstance) => void): Promise<Json> {
  server = Fastify();
  collectOpenApiRoutes(server);
  register(server);
  await server.ready();
  return buildOpenApiDocument(server, 'http://localhost:3000');
}

describe('OpenAPI document', () => {
  it('writes a named schema once under components and refers to it wherever it occurs', async () => {
    const doc = await documentOf((s) => {
      s.post(
        '/api/things',
        {
          schema: {
            operationId: 'createThing',
            summary: 'Create',
            body: Thing,
            response: {
              201: Type.Object({ thing: Thing, maybe: Type.Optional(Type.Union([Thing, Type.Null()])) }),
            },
          },
        },
        async (_request, reply) => reply.status(201).send({ thing: { id: 'a', size: 1 } }),
      );
      s.get(
        '/api/things',
        { schema: { operationId: 'listThings', response: { 200: Type.Array(Thing) } } },
        async () => [],
      );
    });
    expect(doc.components.schemas.Thing).toEqual({
      type: 'object',
      properties: { id: { type: 'string' }, size: { type: 'integer', minimum: 1 } },
      required: ['id', 'size'],
    });
    const ref = { $ref: '#/components/schemas/Thing' };
    const create = doc.paths['/api/things'].post;
    expect(create.requestBody.content['application/json'].schema).toEqual(ref);
    const created = create.responses['201'].content['application/json'].schema;
    expect(created.properties.thing).toEqual(ref);
    expect(created.properties.maybe).toEqual({ anyOf: [ref, { type: 'null' }] });
    expect(doc.paths['/api/things'].get.responses['200'].content['application/json'].schema).toEqual({
      type: 'array',
      items: ref,
    });
  });

  it('refuses two different schemas under one name (a derived schema keeps its origin’s name)', async () => {
    const Partial = Type.Partial(Thing);
    await expect(
      documentOf((s) => {
        s.post('/a', { schema: { body: Thing } }, async () => null);
        s.post('/b', { schema: { body: Partial } }, async () => null);
      }),
    ).rejects.toThrow('Two different schemas are named "Thing"');
    const renamed = named('ThingPatch', Partial);
    const doc = await documentOf((s) => {
      s.post('/a', { schema: { body: Thing } }, async () => null);
      s.post('/b', { schema: { body: renamed } }, async () => null);
    });
    expect(doc.components.schemas.ThingPatch.required).toBeUndefined();
    expect(doc.paths['/b'].post.requestBody.content['application/json'].schema).toEqual({
      $ref: '#/components/schemas/ThingPatch',
    });
  });

  it('keeps validating with named schemas: the name is invisible to Ajv and the serializer', async () => {
    await documentOf((s) => {
      s.post(
        '/api/things',
        { schema: { body: Thing, response: { 200: Type.Object({ thing: Thing }) } } },
        async (request) => ({ thing: { ...(request.body as object), secret: 'dropped' } }),
      );
    });
    const bad = await server!.inject({ method: 'POST', url: '/api/things', payload: { id: 'a', size: 0 } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/size must be >= 1/);
    const good = await server!.inject({ method: 'POST', url: '/api/things', payload: { id: 'a', size: 2 } });
    expect(good.json()).toEqual({ thing: { id: 'a', size: 2 } });
  });

  it('names each method of a many-method route, and the HEAD of a GET after it', async () => {
    const doc = await documentOf((s) => {
      s.route({
        method: ['GET', 'POST'],
        url: '/proxy/:id',
        schema: { operationId: 'proxy', response: { 200: Type.Null() } },
        handler: async () => null,
      });
      s.get('/healthz', { schema: { operationId: 'getHealth' } }, async () => ({}));
    });
    expect(doc.paths['/proxy/{id}'].get.operationId).toBe('proxyGet');
    expect(doc.paths['/proxy/{id}'].post.operationId).toBe('proxyPost');
    expect(doc.paths['/healthz'].get.operationId).toBe('getHealth');
    expect(doc.paths['/healthz'].head.operationId).toBe('headHealth');
  });

  it('adds the answers of the shared layers: 401, 403 and 429 with a key, 400 and 413 with a body, 503 always', async () => {
    const doc = await documentOf((s) => {
      s.post('/api/things', { schema: { body: Thing } }, async () => null);
      s.get('/healthz', { schema: {} }, async () => ({}));
    });
    const create = doc.paths['/api/things'].post.responses;
    expect(Object.keys(create)).toEqual(['400', '401', '403', '413', '429', '503']);
    expect(create['401']).toEqual({ $ref: '#/components/responses/Unauthorized' });
    expect(doc.components.responses.Unauthorized.content['application/json'].schema).toEqual({
      $ref: '#/components/schemas/Error',
    });
    expect(doc.components.responses.RateLimited.headers).toHaveProperty('Retry-After');
    expect(Object.keys(doc.paths['/healthz'].get.responses)).toEqual(['503']);
    expect(doc.paths['/healthz'].get.security).toEqual([]);
  });
});
