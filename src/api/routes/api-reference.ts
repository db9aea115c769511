import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { Problem } from '../../problem.js';
import { CONSOLE_CSP } from './web-ui.js';

/**
 * `GET /docs`: the API reference, drawn in the browser from `GET /openapi.json` by Swagger UI, whose
 * files Grantry serves itself — nothing is fetched from another origin, so it works offline and
 * behind a firewall, under the console's own Content-Security-Policy, unchanged.
 *
 * Why Swagger UI (the `swagger-ui-dist` package): it ships as two prebuilt files (a 1.7 MB script
 * and a 190 KB stylesheet) with no runtime dependency, is released by SmartBear every few weeks,
 * reads OpenAPI 3.1, and needs no inline script or style, so the page runs under `script-src
 * 'self'; style-src 'self'` (test/e2e/api-reference.test.ts watches for CSP violations). Its one
 * dependency, `@scarf/scarf`, is an install-time download counter; `scarfSettings` in package.json
 * turns it off. The others considered: `@scalar/api-reference` brings about thirty packages (Vue,
 * @scalar/*) into the server's dependencies for the same page; `redoc` 3 asks for React,
 * react-router and styled-components as peer dependencies.
 */

const SWAGGER_UI_DIR = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

/**
 * Swagger UI on this server's document. `validatorUrl: null` keeps it from sending the document to
 * validator.swagger.io; `queryConfigEnabled: false` (the default, said here) keeps a `?url=` link
 * from making the page render another server's document.
 */
const INIT_SCRIPT = `'use strict';
window.ui = SwaggerUIBundle({
  url: document.querySelector('meta[name="grantry-openapi-url"]').getAttribute('content'),
  dom_id: '#swagger-ui',
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
  deepLinking: true,
  displayOperationId: true,
  validatorUrl: null,
  queryConfigEnabled: false,
});
`;

const PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <meta name="referrer" content="no-referrer" />
    <meta name="grantry-openapi-url" content="/openapi.json" />
    <link rel="icon" href="data:," />
    <link rel="stylesheet" href="/docs/swagger-ui.css" />
    <title>Grantry API reference</title>
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/docs/swagger-ui-bundle.js"></script>
    <script src="/docs/init.js"></script>
  </body>
</html>
`;

interface Asset {
  type: string;
  /** The body and its validator, made on first use: a Grantry whose reference is never opened holds nothing for it. */
  load: () => { body: Buffer; etag: string };
}

function asset(type: string, read: () => Buffer): Asset {
  let loaded: { body: Buffer; etag: string } | undefined;
  return {
    type,
    load: () => {
      if (loaded === undefined) {
        const body = read();
        loaded = { body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
      }
      return loaded;
    },
  };
}

const ASSETS = new Map<string, Asset>([
  [
    'swagger-ui-bundle.js',
    asset('text/javascript; charset=utf-8', () => readFileSync(join(SWAGGER_UI_DIR, 'swagger-ui-bundle.js'))),
  ],
  [
    'swagger-ui.css',
    asset('text/css; charset=utf-8', () => readFileSync(join(SWAGGER_UI_DIR, 'swagger-ui.css'))),
  ],
  ['init.js', asset('text/javascript; charset=utf-8', () => Buffer.from(INIT_SCRIPT))],
]);

function pageHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CONSOLE_CSP)
    .header('x-frame-options', 'DENY')
    .header('referrer-policy', 'no-referrer');
}

/** The reference page and its three files; public (route-access.ts) and left out of the document. */
export async function apiReferenceRoutes(server: FastifyInstance): Promise<void> {
  server.get('/docs', { schema: { hide: true } }, async (_request, reply) =>
    pageHeaders(reply).header('cache-control', 'no-cache').type('text/html; charset=utf-8').send(PAGE),
  );

  server.get<{ Params: { asset: string } }>(
    '/docs/:asset',
    { schema: { hide: true } },
    async (request, reply) => {
      const file = ASSETS.get(request.params.asset);
      if (file === undefined) throw new Problem('not_found', 'There is nothing at this address.');
      const { body, etag } = file.load();
      pageHeaders(reply).header('cache-control', 'no-cache').header('etag', etag);
      if (request.headers['if-none-match'] === etag) return reply.status(304).send();
      return reply.type(file.type).send(body);
    },
  );
}
