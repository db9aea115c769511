import type { FastifyRequest } from 'fastify';
import type { KeyScope } from '../services/api-keys.js';

export type { KeyScope };

/**
 * Who may call which route (docs/api.md "Access"). The decision is made on the route that will run —
 * the one the router matched — never on the raw request target: `/%61pi/…`, `/./api/…`, an
 * absolute-form target or a fragment all match the same route and meet the same rule.
 *
 * Deny by default: a route is public only if it is on {@link PUBLIC_ROUTES}; every other route
 * needs an `admin` key unless it declares, next to its handler, that a narrower scope may call it
 * (`config: { access: 'runtime' }`).
 */

/** What a route asks of its caller; `admin` is what every undeclared route asks. */
export type RouteScope = KeyScope;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The narrowest key scope that may call this route; undeclared means `admin`. */
    access?: RouteScope;
  }
}

/** The short explicit list of routes that need no key, as `METHOD url-pattern` (HEAD is GET). */
export const PUBLIC_ROUTES: ReadonlySet<string> = new Set([
  'GET /healthz',
  'GET /readyz',
  'GET /openapi.json',
  // The API reference drawn from /openapi.json, and its script and style files: a built page, no data.
  'GET /docs',
  'GET /docs/:asset',
  // Where the provider sends the browser back; it carries its own proof (state + browser cookie).
  'GET /oauth/redirect',
  // A one-time connect link: its token is the proof (256 random bits, single use, expiring).
  'GET /oauth/connect/:token',
  // An authentication's published public keys (jwks_uri, docs/api.md): public keys only, for
  // providers to fetch; 404 unless it has publishJwks. The second is the first release's address.
  'GET /jwks/:id.json',
  'GET /oauth/jwks/:id',
  // The console's page and static files (web/dist): a built page, no data.
  'GET /',
  'GET /*',
]);

const CONSOLE_FILES_ROUTE = '/*';

export function isPublicRoute(method: string, url: string): boolean {
  return PUBLIC_ROUTES.has(`${method === 'HEAD' ? 'GET' : method} ${url}`);
}

/**
 * The decision for one request: `public`, the scope the matched route asks for, or `unmatched`
 * when no route matched (the not-found handler runs; it answers 404 or the console's page).
 */
export type AccessRequirement = 'public' | 'unmatched' | RouteScope;

export function accessRequirementOf(request: FastifyRequest): AccessRequirement {
  const url = request.routeOptions.url;
  // The console's catch-all serves a file or falls through to the not-found handler: it is "no
  // route of ours matched", and is decided like it.
  if (url === undefined || url === CONSOLE_FILES_ROUTE) return 'unmatched';
  if (isPublicRoute(request.method, url)) return 'public';
  return request.routeOptions.config.access ?? 'admin';
}

export function scopeAllows(scope: KeyScope, required: RouteScope): boolean {
  return scope === 'admin' || scope === required;
}

/** What a key of `scope` may do, for the hint of a 403. */
export function describeScope(scope: KeyScope): string {
  switch (scope) {
    case 'admin':
      return 'everything';
    case 'runtime':
      return 'execute, test, the proxy and reading configuration — no create, update, delete, authorize or key management';
    case 'metrics':
      return 'GET /metrics only';
  }
}

const PROTECTED_PREFIXES = ['/api', '/proxy', '/metrics'];

/**
 * The path a lenient server or proxy could take a raw target for: scheme and host of an absolute
 * form dropped, query and fragment cut, backslashes as slashes, percent-decoding repeated, duplicate
 * slashes collapsed, dot segments resolved (RFC 3986 §5.2.4), path parameters dropped, lower case.
 * Used only to refuse (never to grant): a request that matched no route but whose target reads as
 * a protected path still needs a key, and never gets the console's page.
 */
export function canonicalPath(target: string): string {
  let path = target.replace(/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*/, '');
  path = path.split(/[?#]/, 1)[0] ?? '';
  for (let round = 0; round < 3; round++) {
    const decoded = path.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) =>
      String.fromCharCode(Number.parseInt(hex, 16)),
    );
    if (decoded === path) break;
    // An encoded `?` or `#` ends the path for a server that decodes before it splits.
    path = decoded.split(/[?#]/, 1)[0] ?? '';
  }
  path = path.replace(/\\/g, '/').replace(/;[^/]*/g, '');
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  return `/${segments.join('/')}`.toLowerCase();
}

export function looksProtected(target: string): boolean {
  const path = canonicalPath(target);
  return PROTECTED_PREFIXES.some((prefix) => path === prefix || path.startsWith(`${prefix}/`));
}
