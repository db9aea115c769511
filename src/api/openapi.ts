import { STATUS_CODES } from 'node:http';
import { OptionalKind } from '@sinclair/typebox';
import type { FastifyInstance, FastifySchema } from 'fastify';
import { KEY_SCOPES } from '../services/api-keys.js';
import { componentNameOf } from './component-name.js';
import { isPublicRoute, type RouteScope, scopeAllows } from './route-access.js';
import { ErrorResponseSchema } from './schemas.js';

declare module 'fastify' {
  interface FastifySchema {
    summary?: string;
    description?: string;
    tags?: string[];
    /**
     * The operation's name in the OpenAPI document and in every client generated from it:
     * camelCase, unique, saying what the operation does (`listAuthentications`). A route
     * registered for several methods gives a stem, and each method is appended (`proxy` →
     * `proxyGet`, `proxyPost`, …); the HEAD Fastify adds to a GET is named after it (`getHealth`
     * → `headHealth`).
     */
    operationId?: string;
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
  /** The route was registered for several methods: its operationId is a stem. */
  manyMethods: boolean;
  /**
   * Fastify reads a body for this route with a parser of ours (bounded by GRANTRY_BODY_LIMIT):
   * it can answer 413 for a large body and 400 for one that is not JSON, whatever the route does.
   */
  readsBody: boolean;
}

/** The methods whose bodies Fastify reads (its `bodywith` set). */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** Records every route's schema as it is registered, for the OpenAPI document. */
export function collectOpenApiRoutes(server: FastifyInstance): void {
  const list: RouteDoc[] = [];
  server.decorate('openApiRoutes', list);
  server.addHook('onRoute', function (this: FastifyInstance, route) {
    const schema = (route.schema ?? {}) as RouteDoc['schema'];
    if (schema.hide === true) return;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    // `this` is the plugin instance the route belongs to: the proxy's has no JSON parser (it
    // streams bodies), every other has the bounded one of json-body.ts.
    const parsesJson = this.hasContentTypeParser('application/json');
    for (const method of methods) {
      if (method === 'HEAD' && route.url !== '/healthz') continue;
      list.push({
        method: method.toLowerCase(),
        url: route.url,
        schema,
        access: route.config?.access ?? 'admin',
        manyMethods: methods.length > 1,
        readsBody: parsesJson && BODY_METHODS.has(method),
      });
    }
  });
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Route schemas as the document's JSON: TypeBox's symbols and `$id`s dropped, and every schema
 * given a name with `named()` written once under `components.schemas` and referred to by `$ref`
 * wherever it occurs — so a new route's shapes are named in the document without more code.
 */
class SchemaComponents {
  readonly schemas: Record<string, Json> = {};
  readonly #texts = new Map<string, string>();

  toJson(schema: unknown): unknown {
    if (Array.isArray(schema)) return schema.map((item) => this.toJson(item));
    if (!isObject(schema)) return schema;
    const json: Json = {};
    for (const [key, value] of Object.entries(schema)) {
      if (key === '$id' || value === undefined) continue;
      json[key] = this.toJson(value);
    }
    const name = componentNameOf(schema);
    if (name === undefined) return json;
    const text = JSON.stringify(json);
    const known = this.#texts.get(name);
    if (known === undefined) {
      this.#texts.set(name, text);
      this.schemas[name] = json;
    } else if (known !== text) {
      // A schema derived from a named one (Type.Partial, a spread) keeps its name until it is given its own.
      throw new Error(`Two different schemas are named "${name}": give the derived one its own name.`);
    }
    return { $ref: `#/components/schemas/${name}` };
  }
}

interface StandardAnswer {
  name: string;
  description: string;
  headers?: Json;
}

const RETRY_AFTER = {
  'Retry-After': { description: 'Seconds to wait before trying again.', schema: { type: 'integer' } },
};

/**
 * Grantry's error answers by status (docs/errors.md), written once under `components.responses`.
 * A route that declares one of these statuses with the Error shape refers to it; the layers that
 * answer for every route (access, body parsing, the connection limit) add theirs where they apply.
 */
const STANDARD_ANSWERS: Record<string, StandardAnswer> = {
  400: {
    name: 'BadRequest',
    description:
      'The request is not valid: `validation_failed`, with `errors` listing every problem (a JSON pointer into the body, or `/query/<name>`); or another 400 of docs/errors.md (`insecure_url`, `not_supported`, `invalid_state`).',
  },
  401: {
    name: 'Unauthorized',
    description: '`unauthorized`: the API key is missing or wrong. Nothing else is revealed.',
    headers: {
      'WWW-Authenticate': { description: '`Bearer realm="grantry"`', schema: { type: 'string' } },
    },
  },
  403: {
    name: 'Forbidden',
    description:
      '`forbidden`: the key is valid, but its scope does not allow this operation (see `x-grantry-scope`); the hint names the scope needed.',
  },
  404: { name: 'NotFound', description: '`not_found`: nothing has this id.' },
  409: {
    name: 'Conflict',
    description: '`conflict`: the name is taken, or the operation conflicts with what uses the resource.',
  },
  413: {
    name: 'PayloadTooLarge',
    description: '`payload_too_large`: the body is larger than GRANTRY_BODY_LIMIT (1 MiB by default).',
  },
  424: {
    name: 'NeedsAuthorization',
    description:
      '`needs_authorization`: the authentication needs a person to connect it (Authorization Code) before calls can carry a token.',
  },
  429: {
    name: 'RateLimited',
    description:
      '`rate_limited`: too many failed API-key attempts from this address (GRANTRY_AUTH_FAILURE_LIMIT a minute), or more requests than GRANTRY_RATE_LIMIT a minute for this key.',
    headers: RETRY_AFTER,
  },
  502: {
    name: 'BadGateway',
    description:
      'The provider or the API failed Grantry: the code is the diagnosis (`token_fetch_failed`, `invalid_client`, `upstream_failed`, `egress_denied`, …) and `provider` repeats what it answered.',
  },
  503: {
    name: 'Unavailable',
    description:
      'Not now; retry after the seconds in Retry-After. `rate_limited`: this client address already holds GRANTRY_MAX_CONNECTIONS_PER_CLIENT open connections (answered before the request is read). `server_busy` (execute and connector test only): the upstream answers held in memory have reached GRANTRY_EXECUTE_BUFFER_LIMIT.',
    headers: RETRY_AFTER,
  },
};

/** What each tag groups, for the rendered reference. */
const TAG_DESCRIPTIONS: Record<string, string> = {
  Authentications:
    'Saved ways to prove who Grantry calls as: OAuth 2.0 clients whose tokens Grantry fetches, caches and refreshes, or static credentials.',
  Connectors:
    'Saved REST API targets: a base URL and an authentication. Execute and test call the API through them.',
  Proxy: 'A connector as a transparent HTTP proxy: the request is forwarded with credentials added.',
  Providers: 'Presets that pre-fill an authentication for a known provider.',
  Discovery: 'An issuer’s OAuth metadata, to fill a form.',
  Webhooks: 'Where Grantry tells other systems that an authentication needs a person.',
  Service: 'Liveness, readiness, metrics and this document.',
};

const TAG_ORDER = Object.keys(TAG_DESCRIPTIONS);
const tagRank = (tag: string) => (TAG_ORDER.includes(tag) ? TAG_ORDER.indexOf(tag) : TAG_ORDER.length);

const pascal = (word: string) => `${word.charAt(0).toUpperCase()}${word.slice(1).toLowerCase()}`;

function operationIdOf(route: RouteDoc): string | undefined {
  const declared = route.schema.operationId;
  if (declared === undefined) return undefined;
  return route.manyMethods ? `${declared}${pascal(route.method)}` : declared;
}

/** Whether a key of some scope is refused by a route asking for `access`: then it can answer 403. */
function refusesSomeScope(access: RouteScope): boolean {
  return KEY_SCOPES.some((scope) => !scopeAllows(scope, access));
}

/**
 * OpenAPI 3.1 of everything the server exposes, generated from the very schemas the routes
 * validate with, so the document cannot drift from the behaviour.
 */
export function buildOpenApiDocument(server: FastifyInstance, serverUrl: string): Json {
  const components = new SchemaComponents();
  const errorRef = JSON.stringify(components.toJson(ErrorResponseSchema));
  const responses: Record<string, Json> = {};
  const tags: string[] = [];

  /** A reference to the standard answer of a status, written under components.responses once. */
  const standard = (status: string): Json => {
    const answer = STANDARD_ANSWERS[status] as StandardAnswer;
    responses[answer.name] ??= {
      description: answer.description,
      ...(answer.headers === undefined ? {} : { headers: answer.headers }),
      content: { 'application/json': { schema: JSON.parse(errorRef) } },
    };
    return { $ref: `#/components/responses/${answer.name}` };
  };

  /** A declared response: the Error shape as the standard answer, anything else as it is. */
  const declared = (status: string, schema: unknown): Json => {
    const source = isObject(schema) ? schema : {};
    const description =
      typeof source.description === 'string'
        ? source.description
        : (STANDARD_ANSWERS[status]?.description ?? STATUS_CODES[status] ?? `HTTP ${status}`);
    // Fastify's own form for answers by media type: `{ content: { 'text/html': { schema } } }`.
    if (isObject(source.content)) {
      const content: Json = {};
      for (const [media, entry] of Object.entries(source.content)) {
        content[media] = { schema: components.toJson(isObject(entry) ? entry.schema : {}) };
      }
      return { description, content };
    }
    const json = components.toJson(source);
    if (JSON.stringify(json) === errorRef && STANDARD_ANSWERS[status] !== undefined) return standard(status);
    if (source.type === 'null') return { description };
    return { description, content: { 'application/json': { schema: json } } };
  };

  const paths: Record<string, Record<string, Json>> = {};
  for (const route of server.openApiRoutes) {
    const path = route.url.replace(/:([A-Za-z]+)/g, '{$1}').replace(/\*$/, '{path}');
    const op: Json = {};
    const operationId = operationIdOf(route);
    if (operationId !== undefined) op.operationId = operationId;
    op.summary = route.schema.summary ?? `${route.method.toUpperCase()} ${path}`;
    if (route.schema.description !== undefined) op.description = route.schema.description;
    if (route.schema.tags !== undefined) {
      op.tags = route.schema.tags;
      for (const tag of route.schema.tags) if (!tags.includes(tag)) tags.push(tag);
    }

    const parameters: Json[] = [];
    const params = isObject(route.schema.params) ? route.schema.params : {};
    const paramSchemas = isObject(params.properties) ? params.properties : {};
    for (const match of path.matchAll(/\{(\w+)\}/g)) {
      const name = match[1] as string;
      const parameter: Json = { name, in: 'path', required: true };
      if (name === 'path' && route.url.endsWith('*')) {
        parameter.description = 'The rest of the path, slashes included, appended to the base path.';
      }
      parameter.schema = components.toJson(paramSchemas[name] ?? { type: 'string' });
      parameters.push(parameter);
    }
    const query = isObject(route.schema.querystring) ? route.schema.querystring : undefined;
    if (query !== undefined) {
      const required = new Set(Array.isArray(query.required) ? query.required : []);
      for (const [name, schema] of Object.entries(isObject(query.properties) ? query.properties : {})) {
        const parameter: Json = { name, in: 'query', required: required.has(name) };
        if (isObject(schema) && typeof schema.description === 'string') {
          parameter.description = schema.description;
        }
        parameter.schema = components.toJson(schema);
        parameters.push(parameter);
      }
    }
    if (parameters.length > 0) op.parameters = parameters;

    const body = route.schema.body;
    if (body !== undefined) {
      op.requestBody = {
        // `Type.Optional(…)`: no body at all means the defaults.
        required: !(isObject(body) && OptionalKind in body),
        content: { 'application/json': { schema: components.toJson(body) } },
      };
    }

    const answers: Record<string, Json> = {};
    for (const [status, schema] of Object.entries(
      isObject(route.schema.response) ? route.schema.response : {},
    )) {
      answers[status] = declared(status, schema);
    }
    const isPublic = isPublicRoute(route.method.toUpperCase(), route.url);
    const standardStatuses = [
      ...(route.readsBody ? ['400', '413'] : []),
      ...(isPublic ? [] : ['401', ...(refusesSomeScope(route.access) ? ['403'] : []), '429']),
      '503',
    ];
    for (const status of standardStatuses) {
      const given = answers[status];
      if (given === undefined) answers[status] = standard(status);
      else if (!('$ref' in given)) answers[status] = eitherAnswer(given, status);
    }
    op.responses = Object.fromEntries(Object.entries(answers).sort(([a], [b]) => a.localeCompare(b)));

    if (isPublic) {
      op.security = [];
    } else {
      op.security = [{ apiKey: [] }];
      op['x-grantry-scope'] = route.access;
    }
    paths[path] ??= {};
    paths[path][route.method] = op;
  }
  nameHeadOperations(paths);

  return {
    openapi: '3.1.0',
    info: {
      title: 'Grantry',
      version: '0.1.0',
      description:
        'OAuth 2.0 for outbound API integrations: tokens fetched once, refreshed before expiry, secrets encrypted at rest.\n\n' +
        'Send an API key as `Authorization: Bearer <api key>` on every route under `/api/`, `/proxy/` and `/metrics`; ' +
        'the scope each operation needs is its `x-grantry-scope` (`admin`, `runtime` or `metrics`). ' +
        'Every error answers the shape of `#/components/schemas/Error` (`{"error":{"code","message","hint"?,"errors"?,"provider"?}}`); ' +
        'the codes, their causes and fixes are in docs/errors.md.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: serverUrl }],
    // In the order of TAG_DESCRIPTIONS, which the rendered reference follows; a tag missing there
    // has no description, which Redocly reports (test/openapi.test.ts).
    tags: tags
      .sort((a, b) => tagRank(a) - tagRank(b))
      .map((name) => ({
        name,
        ...(TAG_DESCRIPTIONS[name] === undefined ? {} : { description: TAG_DESCRIPTIONS[name] }),
      })),
    components: {
      schemas: components.schemas,
      responses,
      securitySchemes: {
        apiKey: {
          type: 'http',
          scheme: 'bearer',
          description: 'A Grantry API key (`grantry api-keys create`).',
        },
      },
    },
    paths,
  };
}

/**
 * A status a route declares with a shape of its own that a shared layer can also answer (the
 * readiness probe's 503 and the connection limit's): either shape, both descriptions.
 */
function eitherAnswer(given: Json, status: string): Json {
  const answer = STANDARD_ANSWERS[status] as StandardAnswer;
  const error = { $ref: '#/components/schemas/Error' };
  const content: Json = { ...(isObject(given.content) ? given.content : {}) };
  const json = content['application/json'];
  content['application/json'] = {
    schema: isObject(json) && json.schema !== undefined ? { anyOf: [json.schema, error] } : error,
  };
  return {
    description: `${String(given.description)} Or: ${answer.description}`,
    ...(answer.headers === undefined ? {} : { headers: answer.headers }),
    content,
  };
}

/** The HEAD Fastify adds for a GET shares its schema, so its operationId: `getX` becomes `headX`. */
function nameHeadOperations(paths: Record<string, Record<string, Json>>): void {
  for (const operations of Object.values(paths)) {
    const get = operations.get?.operationId;
    const head = operations.head;
    if (head === undefined || typeof get !== 'string' || head.operationId !== get) continue;
    head.operationId = get.startsWith('get') ? `head${get.slice(3)}` : `${get}Head`;
  }
}
