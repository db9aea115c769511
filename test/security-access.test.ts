import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPublicRoute } from '../src/api/route-access.js';
import { createApiKey } from '../src/services/api-keys.js';
import { type ApiFixture, startApiServer } from './support/api-server.js';
import { type GrantryHandle, startGrantry } from './support/grantry.js';
import { rawRequest } from './support/raw-http.js';

/**
 * Regression for the critical hole of the security issue: the key check read the raw request target
 * while the router matched a normalised one, so `/%61pi/…`, `/metrics#x` or an absolute-form target
 * reached handlers without a key. Every request here goes over a raw socket, so nothing between the
 * test and the server normalises it.
 */
type Started = GrantryHandle & { app: Awaited<ReturnType<typeof startGrantry>>['app'] };

interface Target {
  method: string;
  path: string;
  body?: string;
}

describe('the API key is checked on the route that runs, whatever the spelling of the target', () => {
  let g: Started;
  let api: ApiFixture;
  let port: number;
  let authId: string;
  let connectorId: string;
  let runtimeKey: string;
  let metricsKey: string;
  /** Every route that is not public, with its ids filled in: the set the attacks run against. */
  let protectedTargets: Target[];

  beforeAll(async () => {
    g = await startGrantry({ env: { GRANTRY_AUTH_FAILURE_LIMIT: '1000000' } });
    port = Number(new URL(g.url).port);
    api = await startApiServer({ verify: async () => true, http: true });
    const auth = await g.api('POST', '/api/authentications', {
      name: 'victim',
      type: 'oauth2',
      grantType: 'client_credentials',
      tokenUrl: 'https://login.example.test/token',
      clientId: 'id',
      clientSecret: 'secret',
    });
    authId = auth.body.id;
    // A static bearer header stands in for an authentication: the upstream wants a token.
    const connector = await g.api('POST', '/api/connectors', {
      name: 'victim',
      baseUrl: api.url,
      headers: { Authorization: 'Bearer upstream-static' },
    });
    connectorId = connector.body.id;
    runtimeKey = (await createApiKey(g.app.store, 'runtime', 'runtime')).key;
    metricsKey = (await createApiKey(g.app.store, 'metrics', 'metrics')).key;

    protectedTargets = [];
    for (const route of g.app.server.openApiRoutes) {
      const method = route.method.toUpperCase();
      if (isPublicRoute(method, route.url)) continue;
      const path = route.url
        .replace(':connectorId', connectorId)
        .replace(/\/authentications\/:id/, `/authentications/${authId}`)
        .replace(/\/connectors\/:id/, `/connectors/${connectorId}`)
        .replace(/\*$/, 'echo');
      const target: Target = { method, path };
      if (method === 'POST' || method === 'PATCH' || method === 'PUT') {
        target.body = path.endsWith('/execute') ? '{"method":"GET","path":"/echo"}' : '{"name":"pwned"}';
      }
      protectedTargets.push(target);
    }
  });

  afterAll(async () => {
    await g?.stop();
    await api?.close();
  });

  function send(method: string, target: string, body?: string, key?: string): ReturnType<typeof rawRequest> {
    const lines = [`${method} ${target} HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Connection: close'];
    if (key !== undefined) lines.push(`Authorization: Bearer ${key}`);
    if (body !== undefined) {
      lines.push('Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`);
    }
    return rawRequest(port, `${lines.join('\r\n')}\r\n\r\n${body ?? ''}`);
  }

  it('covers every protected route the server registered', () => {
    const names = protectedTargets.map((t) => `${t.method} ${t.path}`);
    expect(names).toContain(`GET /api/authentications`);
    expect(names).toContain(`POST /api/connectors/${connectorId}/execute`);
    expect(names).toContain(`GET /metrics`);
    expect(names.some((n) => n.startsWith('DELETE /api/authentications/'))).toBe(true);
    expect(names.some((n) => n.includes(`/proxy/${connectorId}`))).toBe(true);
  });

  it('refuses the spellings the attack used, and nothing reaches the upstream or the store', async () => {
    const attacks: [string, string, string?][] = [
      ['GET', '/%61pi/authentications'],
      ['GET', '/ap%69/authentications'],
      ['GET', '/%6detrics'],
      ['GET', '/metrics#x'],
      ['GET', `http://127.0.0.1:${port}/api/authentications`],
      ['GET', `http://localhost:${port}/metrics`],
      ['POST', `/%61pi/connectors/${connectorId}/execute`, '{"method":"GET","path":"/echo"}'],
      ['PATCH', `/%61pi/authentications/${authId}`, '{"name":"pwned"}'],
      ['DELETE', `/%61pi/connectors/${connectorId}`],
      ['GET', `/%70roxy/${connectorId}/echo`],
      ['GET', '/API/authentications'],
      ['GET', '//api/authentications'],
      ['GET', '/./api/authentications'],
      ['GET', '/x/../api/authentications'],
      ['GET', '/api/authentications/'],
      ['GET', '/api/authentications?'],
    ];
    api.reset();
    for (const [method, target, body] of attacks) {
      const answer = await send(method, target, body);
      expect({ target, status: answer.status }).not.toEqual({ target, status: expect.toSatisfy(is2xx) });
      expect(answer.body).not.toContain(authId);
    }
    expect(api.requests).toHaveLength(0);
    const auth = await g.api('GET', `/api/authentications/${authId}`);
    expect(auth.body.name).toBe('victim');
    expect((await g.api('GET', `/api/connectors/${connectorId}`)).status).toBe(200);
  });

  it('no generated spelling of a protected route answers 2xx without a key (property)', async () => {
    api.reset();
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: 1_000 }),
        fc.array(spellingChange(), { minLength: 1, maxLength: 4 }),
        async (routeIndex, changes) => {
          const target = protectedTargets[routeIndex % protectedTargets.length] as Target;
          let spelled = target.path;
          for (const change of changes) spelled = change(spelled, port);
          const answer = await send(target.method, spelled, target.body);
          if (is2xx(answer.status)) {
            throw new Error(`${target.method} ${spelled} answered ${answer.status} without a key`);
          }
        },
      ),
      { numRuns: 400 },
    );
    expect(api.requests).toHaveLength(0);
    expect((await g.api('GET', `/api/authentications/${authId}`)).body.name).toBe('victim');
  });

  it('a runtime key reaches execute, test, the proxy and reads, and nothing else', async () => {
    api.reset();
    const allowed = (await send('GET', '/api/authentications', undefined, runtimeKey)).status;
    expect(allowed).toBe(200);
    const execute = await send(
      'POST',
      `/api/connectors/${connectorId}/execute`,
      '{"method":"GET","path":"/echo"}',
      runtimeKey,
    );
    expect(execute.status).toBe(200);
    expect((await send('GET', `/proxy/${connectorId}/echo`, undefined, runtimeKey)).status).toBe(200);
    expect((await send('POST', `/api/connectors/${connectorId}/test`, '{}', runtimeKey)).status).toBe(200);

    const refused: [string, string, string?][] = [
      ['POST', '/api/authentications', '{"name":"x"}'],
      ['PATCH', `/api/authentications/${authId}`, '{"name":"pwned"}'],
      ['DELETE', `/api/authentications/${authId}`],
      ['POST', `/api/authentications/${authId}/authorize`],
      ['POST', `/api/authentications/${authId}/invalidate`],
      ['POST', '/api/connectors', '{"name":"x","baseUrl":"https://x.test"}'],
      ['PATCH', `/api/connectors/${connectorId}`, '{"name":"pwned"}'],
      ['DELETE', `/api/connectors/${connectorId}`],
      ['GET', '/metrics'],
    ];
    for (const [method, target, body] of refused) {
      const answer = await send(method, target, body, runtimeKey);
      expect({ method, target, status: answer.status }).toEqual({ method, target, status: 403 });
      const error = JSON.parse(answer.body).error;
      expect(error.code).toBe('forbidden');
      expect(error.hint).toMatch(/runtime/);
    }
    expect((await g.api('GET', `/api/authentications/${authId}`)).body.name).toBe('victim');
    expect((await g.api('GET', `/api/connectors/${connectorId}`)).body.name).toBe('victim');
  });

  it('a metrics key reads /metrics only', async () => {
    expect((await send('GET', '/metrics', undefined, metricsKey)).status).toBe(200);
    for (const target of protectedTargets.filter((t) => t.path !== '/metrics')) {
      const answer = await send(target.method, target.path, target.body, metricsKey);
      expect({ target, status: answer.status }).toEqual({ target, status: 403 });
    }
  });

  it('no spelling of an admin route answers 2xx with a runtime key (property)', async () => {
    const adminOnly = protectedTargets.filter(
      (t) =>
        !(t.method === 'GET' && t.path.startsWith('/api/') && !t.path.startsWith('/api/discovery')) &&
        !t.path.endsWith('/execute') &&
        !t.path.endsWith('/test') &&
        !t.path.startsWith('/proxy/'),
    );
    expect(adminOnly.length).toBeGreaterThan(5);
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: 1_000 }),
        fc.array(spellingChange(), { minLength: 1, maxLength: 3 }),
        async (routeIndex, changes) => {
          const target = adminOnly[routeIndex % adminOnly.length] as Target;
          let spelled = target.path;
          for (const change of changes) spelled = change(spelled, port);
          const answer = await send(target.method, spelled, target.body, runtimeKey);
          if (is2xx(answer.status)) {
            throw new Error(`${target.method} ${spelled} answered ${answer.status} to a runtime key`);
          }
        },
      ),
      { numRuns: 200 },
    );
    expect((await g.api('GET', `/api/authentications/${authId}`)).body.name).toBe('victim');
  });
});

function is2xx(status: number): boolean {
  return status >= 200 && status < 300;
}

type SpellingChange = (target: string, port: number) => string;

/** One way of writing the same target differently; several are applied in a row. */
function spellingChange(): fc.Arbitrary<SpellingChange> {
  return fc.oneof(
    // Percent-encode characters (unreserved letters included), in either hex case.
    fc.record({ seed: fc.nat(), upper: fc.boolean(), share: fc.integer({ min: 1, max: 4 }) }).map(
      ({ seed, upper, share }) =>
        (target: string) =>
          mapPath(target, (path) =>
            [...path]
              .map((char, index) => {
                if (char === '/' || (seed + index) % share !== 0) return char;
                const hex = char.charCodeAt(0).toString(16).padStart(2, '0');
                return `%${upper ? hex.toUpperCase() : hex}`;
              })
              .join(''),
          ),
    ),
    // Dot segments.
    fc.constantFrom<SpellingChange>(
      (t) => mapPath(t, (p) => `/.${p}`),
      (t) => mapPath(t, (p) => `/zz/..${p}`),
      (t) => mapPath(t, (p) => p.replace('/', '/./')),
      (t) => mapPath(t, (p) => p.replace(/\/([^/]+)$/, '/x/../$1')),
      (t) => mapPath(t, (p) => p.replace('/', '/%2e/')),
      (t) => mapPath(t, (p) => `/%2e%2e${p}`),
    ),
    // Fragments, query marks, trailing slashes, duplicate slashes, backslashes, encoded slashes.
    fc.constantFrom<SpellingChange>(
      (t) => `${t}#frag`,
      (t) => `${t}#`,
      (t) => `${t}?`,
      (t) => mapPath(t, (p) => `${p}/`),
      (t) => mapPath(t, (p) => `/${p}`),
      (t) => mapPath(t, (p) => p.replaceAll('/', '//')),
      (t) => mapPath(t, (p) => p.replace('/', '\\')),
      (t) => mapPath(t, (p) => p.replace(/\/([^/]*)$/, '%2f$1')),
      (t) => mapPath(t, (p) => `${p};x=1`),
    ),
    // Case changes.
    fc.record({ seed: fc.nat() }).map(
      ({ seed }) =>
        (target: string) =>
          mapPath(target, (path) =>
            [...path].map((c, i) => ((seed >> (i % 30)) & 1 ? c.toUpperCase() : c)).join(''),
          ),
    ),
    // Absolute form (RFC 9112 §3.2.2), with the address or a name, and a wrong host.
    fc.constantFrom<SpellingChange>(
      (t, port) => (t.startsWith('http') ? t : `http://127.0.0.1:${port}${t}`),
      (t, port) => (t.startsWith('http') ? t : `http://localhost:${port}${t}`),
      (t) => (t.startsWith('http') ? t : `http://evil.example${t}`),
      (t, port) => (t.startsWith('http') ? t : `HTTP://127.0.0.1:${port}${t}`),
    ),
  );
}

/** Applies `change` to the path of an origin- or absolute-form target, leaving scheme and host alone. */
function mapPath(target: string, change: (path: string) => string): string {
  const absolute = /^[a-zA-Z]+:\/\/[^/]*/.exec(target);
  if (absolute === null) return change(target);
  return absolute[0] + change(target.slice(absolute[0].length) || '/');
}
