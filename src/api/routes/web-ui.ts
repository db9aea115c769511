import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
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
      // The page itself is served below, with the public URL written into it.
      index: false,
      // Source maps show the console's source to anyone; in production they are not served.
      allowedPath: (path) => !(context.config.production && path.endsWith('.map')),
      setHeaders: setConsoleHeaders,
    });
  }
  const servePage = (reply: FastifyReply) => {
    setConsoleHeaders(reply.raw);
    return reply
      .header('cache-control', 'no-cache')
      .type('text/html; charset=utf-8')
      .send(consolePage(join(root, 'index.html'), context.config.publicUrl));
  };
  if (available) server.get('/', { schema: { hide: true } }, (_request, reply) => servePage(reply));
  server.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    // Read as a lenient server would: `/%61pi/x` or `//API/x` must get the JSON 404, never the page.
    const isApi = looksProtected(request.url) || path.startsWith('/oauth');
    if (available && request.method === 'GET' && !isApi && !path.includes('.')) {
      return servePage(reply);
    }
    throw new Problem('not_found', 'There is nothing at this address.', {
      hint: isApi ? 'See /openapi.json for the routes.' : undefined,
    });
  });
}

/**
 * The console's page with GRANTRY_PUBLIC_URL written into it (a meta tag, no script), so that the
 * console can tell a person who opened it at another address that Connect only works from the
 * public one (the OAuth redirect and its cookie live there). Read on every request: a rebuild of
 * the console needs no restart.
 */
function consolePage(indexFile: string, publicUrl: string): string {
  const html = readFileSync(indexFile, 'utf8');
  const escaped = publicUrl.replace(/[&"<>]/g, (c) => `&#${c.charCodeAt(0)};`);
  return html.replace('</head>', `  <meta name="grantry-public-url" content="${escaped}" />\n  </head>`);
}
