import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { Problem } from '../../problem.js';
import type { ApiContext } from '../context.js';
import { looksProtected } from '../route-access.js';

/**
 * The console's Content-Security-Policy: its own scripts, styles and API only, nothing inline,
 * never framed (clickjacking), no plugins, no <base> rewriting. A backstop should an XSS ever slip
 * into the page: injected markup can neither run script nor send data elsewhere.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  // The favicon is a data: URI.
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

function setConsoleHeaders(res: { setHeader(name: string, value: string): unknown }): void {
  res.setHeader('content-security-policy', CONSOLE_CSP);
  // For browsers that predate frame-ancestors.
  res.setHeader('x-frame-options', 'DENY');
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('referrer-policy', 'no-referrer');
}

/** The built web UI (web/dist), served at `/` with a fallback to index.html for its own routes. */
export async function webUiRoutes(server: FastifyInstance, context: ApiContext): Promise<void> {
  const here = dirname(fileURLToPath(import.meta.url));
  // Same relative place from src/api/routes (tsx) and dist/api/routes (built).
  const root = join(here, '..', '..', '..', 'web', 'dist');
  const available = existsSync(join(root, 'index.html'));
  if (available) {
    await server.register(fastifyStatic, {
      root,
      prefix: '/',
      // Serve whatever web/dist holds now, so a rebuild needs no restart; misses fall through to
      // the not-found handler below (SPA fallback or the JSON 404).
      wildcard: true,
      index: ['index.html'],
      // Source maps show the console's source to anyone; in production they are not served.
      allowedPath: (path) => !(context.config.production && path.endsWith('.map')),
      setHeaders: setConsoleHeaders,
    });
  }
  server.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    // Read as a lenient server would: `/%61pi/x` or `//API/x` must get the JSON 404, never the page.
    const isApi = looksProtected(request.url) || path.startsWith('/oauth');
    if (available && request.method === 'GET' && !isApi && !path.includes('.')) {
      return reply.header('cache-control', 'no-cache').sendFile('index.html');
    }
    throw new Problem('not_found', 'There is nothing at this address.', {
      hint: isApi ? 'See /openapi.json for the routes.' : undefined,
    });
  });
}
