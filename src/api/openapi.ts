import type { FastifyInstance, FastifySchema } from 'fastify';
import { isPublicRoute, type RouteScope } from './route-access.js';

declare module 'fastify' {
  interface FastifySchema {
    summary?: string;
    description?: string;
    tags?: string[];
    /** Leave the route out of the OpenAPI document. */
    hide?: boolean;
  }
  interface FastifyInstance {
    /** Every documented route, shared with child (plugin) instances through the decorator. */
    openApiRoutes: RouteDoc[];
  }
}

interface RouteDoc {
  method: string;
  url: string;
  schema: FastifySchema;
  /** The key scope the route asks for (undeclared: admin). */
  access: RouteScope;
}

/** Records every route's schema as it is registered, for the OpenAPI document. */
export function collectOpenApiRoutes(server: FastifyInstance): void {
  const list: RouteDoc[] = [];
  server.decorate('openApiRoutes', list);
  server.addHook('onRoute', (route) => {
    const schema = (route.schema ?? {}) as RouteDoc['schema'];
    if (schema.hide === true) return;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      if (method === 'HEAD' && route.url !== '/healthz') continue;
      list.push({
        method: method.toLowerCase(),
        url: route.url,
        schema,
        access: route.config?.access ?? 'admin',
      });
    }
  });
}

type Json = Record<string, unknown>;

/** Drops TypeBox's symbols and `$id`s so every schema inlines cleanly into the document. */
function plain(schema: unknown): Json {
  return JSON.parse(JSON.stringify(schema, (key, value) => (key === '$id' ? undefined : value))) as Json;
}

/**
 * OpenAPI 3.1 of everything the server exposes, generated from the very schemas the routes
 * validate with, so the document cannot drift from the behaviour.
 */
export function buildOpenApiDocument(server: FastifyInstance, serverUrl: string): Json {
  const paths: Record<string, Record<string, Json>> = {};
  for (const route of server.openApiRoutes) {
    const path = route.url.replace(/:([A-Za-z]+)/g, '{$1}').replace(/\*$/, '{path}');
    const op: Json = { summary: route.schema.summary ?? `${route.method.toUpperCase()} ${path}` };
    if (route.schema.description !== undefined) op.description = route.schema.description;
    if (route.schema.tags !== undefined) op.tags = route.schema.tags;
    const parameters: Json[] = [];
    for (const name of path.matchAll(/\{(\w+)\}/g)) {
      parameters.push({ name: name[1], in: 'path', required: true, schema: { type: 'string' } });
    }
    const query = route.schema.querystring as Json | undefined;
    if (query !== undefined) {
      const q = plain(query);
      const required = new Set((q.required as string[] | undefined) ?? []);
      for (const [name, schema] of Object.entries((q.properties as Record<string, Json> | undefined) ?? {})) {
        parameters.push({ name, in: 'query', required: required.has(name), schema });
      }
    }
    if (parameters.length > 0) op.parameters = parameters;
    if (route.schema.body !== undefined) {
      op.requestBody = {
        required: true,
        content: { 'application/json': { schema: plain(route.schema.body) } },
      };
    }
    const responses: Json = {};
    for (const [status, schema] of Object.entries((route.schema.response as Record<string, unknown>) ?? {})) {
      const s = plain(schema);
      const description = typeof s.description === 'string' ? s.description : `HTTP ${status}`;
      responses[status] =
        s.type === 'null' ? { description } : { description, content: { 'application/json': { schema: s } } };
    }
    if (Object.keys(responses).length === 0)
      responses.default = { description: 'See the route description.' };
    op.responses = responses;
    if (isPublicRoute(route.method.toUpperCase(), route.url)) {
      op.security = [];
    } else {
      op.security = [{ apiKey: [] }];
      op['x-grantry-scope'] = route.access;
    }
    paths[path] ??= {};
    paths[path][route.method] = op;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Grantry',
      version: '0.1.0',
      description:
        'OAuth 2.0 for outbound API integrations. Errors use the shape of `#/components/schemas/Error`.',
    },
    servers: [{ url: serverUrl }],
    components: {
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'A Grantry API key.' } },
    },
    paths,
  };
}
