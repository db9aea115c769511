import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { matchProxyTarget } from '../src/api/proxy-front.js';
import { createApiKey } from '../src/services/api-keys.js';
import { type GrantryHandle, startGrantry } from './support/grantry.js';
import { issueServerCertificate } from './support/tls.js';

/**
 * The one call pipeline under execute, test and the proxy, against real servers written for the
 * purpose: an API that drops connections, one that never finishes a TLS handshake, a token
 * endpoint that counts what it is asked and an API that answers a bare 403 to an old token (as
 * Django OAuth Toolkit's stock protection does); and the proxy front, which serves /proxy/ ahead
 * of Fastify with the same access rules, logs and metrics.
 */

type Started = GrantryHandle & { app: Awaited<ReturnType<typeof startGrantry>>['app'] };

interface HttpsFixture {
  url: string;
  port: number;
  close(): Promise<void>;
}

async function startHttps(
  handle: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<HttpsFixture> {
  const { cert, key } = issueServerCertificate(['localhost', '127.0.0.1']);
  const server = createHttpsServer({ cert, key }, (req, res) => {
    res.on('error', () => {});
    handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://localhost:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Accepts TCP connections and never answers: not even the TLS handshake completes. */
async function startSilent(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets: Socket[] = [];
  const server = createNetServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

const unique = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2)}`;

async function json(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

describe('data plane pipeline', () => {
  let g: Started;
  beforeAll(async () => {
    g = await startGrantry();
  });
  afterAll(async () => {
    await g?.stop();
  });

  async function connector(baseUrl: string, over: Record<string, unknown> = {}): Promise<string> {
    const created = await g.api('POST', '/api/connectors', { name: unique('con'), baseUrl, ...over });
    expect(created.status, created.text).toBe(201);
    return created.body.id;
  }
  const proxy = (con: string, path: string, init: RequestInit = {}) =>
    fetch(`${g.url}/proxy/${con}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${g.apiKey}`, ...(init.headers as Record<string, string>) },
    });

  describe('connection failures that are safe to repeat', () => {
    let api: HttpsFixture;
    /** Requests that arrived, and how many of the next ones are answered by dropping the connection. */
    let arrived: string[] = [];
    let dropNext = 0;
    beforeAll(async () => {
      api = await startHttps(async (req, res) => {
        const body = await json(req);
        arrived.push(`${req.method} ${req.url}`);
        if (dropNext > 0) {
          dropNext--;
          req.socket.destroy();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ method: req.method, body }));
      });
    });
    afterAll(async () => {
      await api?.close();
    });
    beforeEach(() => {
      arrived = [];
      dropNext = 0;
    });

    it('are retried by the proxy for an idempotent method: one dropped connection, then the answer', async () => {
      const con = await connector(api.url);
      dropNext = 1;
      const response = await proxy(con, '/items/1');
      expect(response.status).toBe(200);
      expect(response.headers.get('x-grantry-error')).toBeNull();
      expect(await response.json()).toEqual({ method: 'GET', body: '' });
      expect(arrived).toEqual(['GET /items/1', 'GET /items/1']);
    });

    it('are retried by the proxy with a small body sent again, for PUT', async () => {
      const con = await connector(api.url);
      dropNext = 2;
      const response = await proxy(con, '/items/1', { method: 'PUT', body: '{"v":2}' });
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ method: 'PUT', body: '{"v":2}' });
      expect(arrived).toHaveLength(3);
    });

    it('are not retried for a POST, whose first copy the API may have acted on', async () => {
      const con = await connector(api.url);
      dropNext = 1;
      const response = await proxy(con, '/orders', { method: 'POST', body: '{"n":1}' });
      expect(response.status).toBe(502);
      expect(response.headers.get('x-grantry-error')).toBe('upstream_failed');
      expect(arrived).toEqual(['POST /orders']);
    });

    it('are retried by execute the same way (one pipeline)', async () => {
      const con = await connector(api.url);
      dropNext = 1;
      const answer = await g.api('POST', `/api/connectors/${con}/execute`, {
        method: 'GET',
        path: '/items/2',
      });
      expect(answer.status, answer.text).toBe(200);
      expect(answer.body).toMatchObject({ status: 200, attempts: 2 });
      dropNext = 1;
      const post = await g.api('POST', `/api/connectors/${con}/execute`, {
        method: 'POST',
        path: '/x',
        body: {},
      });
      expect(post.status).toBe(502);
      expect(post.body.error.code).toBe('upstream_failed');
    });
  });

  describe("the connector's timeoutMs covers connecting", () => {
    it('ends a proxied call whose TLS handshake never completes at the deadline, not at the connect timeout', async () => {
      const silent = await startSilent();
      try {
        const con = await connector(`https://localhost:${silent.port}`, { timeoutMs: 300 });
        const started = Date.now();
        const response = await proxy(con, '/x');
        // A generous bound: it proves the deadline applies (the connect timeout is 10 s).
        expect(Date.now() - started).toBeLessThan(5_000);
        expect(response.status).toBe(502);
        expect(response.headers.get('x-grantry-error')).toBe('upstream_failed');
        expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(/in time/);
      } finally {
        await silent.close();
      }
    });
  });

  describe('refreshOn', () => {
    /** Tokens the token endpoint issued that the API still accepts. */
    const valid = new Set<string>();
    let tokenRequests = 0;
    let mode: 'check' | 'always-403' | 'insufficient-scope' = 'check';
    let tokenEndpoint: HttpsFixture;
    let api: HttpsFixture;
    const seen: Array<{ token: string | undefined; body: string }> = [];

    beforeAll(async () => {
      tokenEndpoint = await startHttps(async (req, res) => {
        await json(req);
        tokenRequests++;
        const token = `tok-${tokenRequests}-${Math.random().toString(36).slice(2)}`;
        valid.add(token);
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify({ access_token: token, token_type: 'Bearer', expires_in: 3600 }));
      });
      // Django OAuth Toolkit with Django REST framework's stock permission: any token it does not
      // accept gets a bare 403, without WWW-Authenticate.
      api = await startHttps(async (req, res) => {
        const body = await json(req);
        const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
        seen.push({ token, body });
        if (mode === 'insufficient-scope') {
          res.writeHead(403, {
            'content-type': 'application/json',
            'www-authenticate': 'Bearer error="insufficient_scope", scope="write"',
          });
          res.end('{"detail":"You do not have permission to perform this action."}');
          return;
        }
        if (mode === 'always-403' || token === undefined || !valid.has(token)) {
          res.writeHead(403, { 'content-type': 'application/json' });
          res.end('{"detail":"Authentication credentials were not provided."}');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: true, body }));
      });
    });
    afterAll(async () => {
      await api?.close();
      await tokenEndpoint?.close();
    });
    beforeEach(() => {
      mode = 'check';
      seen.length = 0;
    });

    async function oauthConnector(
      over: Record<string, unknown> = {},
    ): Promise<{ auth: string; con: string }> {
      const auth = await g.api('POST', '/api/authentications', {
        name: unique('auth'),
        type: 'oauth2',
        grantType: 'client_credentials',
        tokenUrl: `${tokenEndpoint.url}/token`,
        clientId: 'svc',
        clientSecret: 'svc-secret',
      });
      expect(auth.status, auth.text).toBe(201);
      return {
        auth: auth.body.id,
        con: await connector(api.url, { authenticationId: auth.body.id, ...over }),
      };
    }
    /** The API stops accepting every token issued so far (revoked, expired early). */
    const revokeAll = () => valid.clear();

    it('with 403 listed, a bare 403 to an old token gets one fresh token and one retry: execute, test and proxy', async () => {
      // One authentication per entry point: a fresh token refused again within a minute would
      // start the refused-token pause (RefusedTokenBackoff), which is not what this test is about.
      const [viaExecute, viaProxy, viaTest] = [
        await oauthConnector({ refreshOn: [401, 403] }),
        await oauthConnector({ refreshOn: [401, 403] }),
        await oauthConnector({ refreshOn: [401, 403] }),
      ] as const;
      for (const { con } of [viaExecute, viaProxy, viaTest]) {
        const first = await g.api('POST', `/api/connectors/${con}/execute`, { method: 'GET', path: '/a' });
        expect(first.body).toMatchObject({ status: 200, attempts: 1, tokenRefreshed: false });
      }
      revokeAll();
      seen.length = 0;

      let before = tokenRequests;
      const executed = await g.api('POST', `/api/connectors/${viaExecute.con}/execute`, {
        method: 'POST',
        path: '/a',
        body: { n: 1 },
      });
      expect(executed.body).toMatchObject({ status: 200, attempts: 2, tokenRefreshed: true });
      expect(tokenRequests - before).toBe(1);
      expect(seen.map((s) => s.body)).toEqual(['{"n":1}', '{"n":1}']);
      expect(seen[0]?.token).not.toBe(seen[1]?.token);

      before = tokenRequests;
      const proxied = await proxy(viaProxy.con, '/b', { method: 'PATCH', body: 'small body' });
      expect(proxied.status).toBe(200);
      expect(proxied.headers.get('x-grantry-error')).toBeNull();
      expect(((await proxied.json()) as { body: string }).body).toBe('small body');
      expect(tokenRequests - before).toBe(1);

      before = tokenRequests;
      const tested = await g.api('POST', `/api/connectors/${viaTest.con}/test`);
      expect(tested.body).toMatchObject({ ok: true, response: { status: 200, tokenRefreshed: true } });
      expect(tokenRequests - before).toBe(1);

      await g.app.usage.flush();
      const view = await g.api('GET', `/api/authentications/${viaExecute.auth}`);
      // A 403 is not a 401: a refresh is counted, no 401.
      expect(view.body.usage).toMatchObject({ calls: 2, unauthorized: 0, refreshes: 1 });
    });

    it('by default a 403 is the answer: no token request, upstream_forbidden', async () => {
      const { con } = await oauthConnector();
      expect((await g.api('GET', `/api/connectors/${con}`)).body.refreshOn).toEqual([401]);
      await g.api('POST', `/api/connectors/${con}/execute`, { method: 'GET', path: '/a' });
      revokeAll();
      const before = tokenRequests;
      const executed = await g.api('POST', `/api/connectors/${con}/execute`, { method: 'GET', path: '/a' });
      expect(executed.body).toMatchObject({
        status: 403,
        attempts: 1,
        tokenRefreshed: false,
        error: { code: 'upstream_forbidden' },
      });
      const proxied = await proxy(con, '/a');
      expect(proxied.status).toBe(403);
      expect(proxied.headers.get('x-grantry-error')).toBe('upstream_forbidden');
      expect(tokenRequests - before).toBe(0);
    });

    it('a 403 that says insufficient_scope never refreshes, even with 403 listed', async () => {
      const { con } = await oauthConnector({ refreshOn: [401, 403] });
      await g.api('POST', `/api/connectors/${con}/execute`, { method: 'GET', path: '/a' });
      mode = 'insufficient-scope';
      const before = tokenRequests;
      const executed = await g.api('POST', `/api/connectors/${con}/execute`, { method: 'GET', path: '/a' });
      expect(executed.body).toMatchObject({ status: 403, attempts: 1, tokenRefreshed: false });
      expect(executed.body.error.hint).toContain('"write"');
      expect(tokenRequests - before).toBe(0);
    });

    it('the refused-token back-off bounds 403 refreshes too: 50 calls to an API that always says 403 cost two tokens', async () => {
      const { con } = await oauthConnector({ refreshOn: [403] });
      mode = 'always-403';
      const before = tokenRequests;
      for (let call = 0; call < 25; call++) {
        const answer = await g.api('POST', `/api/connectors/${con}/execute`, { method: 'GET', path: '/a' });
        expect(answer.body).toMatchObject({ status: 403, error: { code: 'upstream_forbidden' } });
        const proxied = await proxy(con, '/a');
        expect(proxied.status).toBe(403);
        await proxied.arrayBuffer();
      }
      // The first token, and one forced by the first 403; that fresh token is refused too.
      expect(tokenRequests - before).toBe(2);
    });

    it('is part of the connector: default [401], set by create and PATCH, null restores the default, others refused', async () => {
      const created = await g.api('POST', '/api/connectors', { name: unique('con'), baseUrl: api.url });
      expect(created.body.refreshOn).toEqual([401]);
      const id = created.body.id as string;
      const both = await g.api('PATCH', `/api/connectors/${id}`, { refreshOn: [403, 401] });
      expect(both.status, both.text).toBe(200);
      expect(both.body.refreshOn).toEqual([401, 403]);
      const renamed = await g.api('PATCH', `/api/connectors/${id}`, { name: unique('renamed') });
      expect(renamed.body.refreshOn).toEqual([401, 403]);
      const reset = await g.api('PATCH', `/api/connectors/${id}`, { refreshOn: null });
      expect(reset.body.refreshOn).toEqual([401]);
      expect((await g.api('GET', `/api/connectors/${id}`)).body.refreshOn).toEqual([401]);

      for (const refreshOn of [[500], [401, 401], '401', [401, '403']]) {
        const refused = await g.api('POST', '/api/connectors', {
          name: unique('con'),
          baseUrl: api.url,
          refreshOn,
        });
        expect(refused.status, JSON.stringify(refreshOn)).toBe(400);
        expect(refused.body.error.code).toBe('validation_failed');
        expect(refused.body.error.errors.some((e: { path: string }) => e.path.startsWith('/refreshOn'))).toBe(
          true,
        );
      }
      const doc = (await (await fetch(`${g.url}/openapi.json`)).json()) as {
        components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
      };
      for (const shape of ['ConnectorCreate', 'ConnectorPatch', 'Connector']) {
        expect(Object.keys(doc.components.schemas[shape]?.properties ?? {})).toContain('refreshOn');
      }
    });
  });

  describe('a caller that goes away while execute reads the answer', () => {
    it('does not take Grantry down, and the next call works', async () => {
      let release: () => void = () => {};
      let arrived = 0;
      const api = await startHttps(async (req, res) => {
        await json(req);
        arrived++;
        if (req.url === '/held') await new Promise<void>((resolve) => (release = resolve));
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('the answer');
      });
      try {
        const con = await connector(api.url);
        const controller = new AbortController();
        const abandoned = fetch(`${g.url}/api/connectors/${con}/execute`, {
          method: 'POST',
          headers: { authorization: `Bearer ${g.apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ method: 'GET', path: '/held' }),
          signal: controller.signal,
        }).catch(() => null);
        while (arrived === 0) await new Promise((resolve) => setTimeout(resolve, 10));
        controller.abort();
        await abandoned;
        // Grantry sees the caller's connection close before the API answers.
        await new Promise((resolve) => setTimeout(resolve, 200));
        release();
        await new Promise((resolve) => setTimeout(resolve, 200));
        expect((await fetch(`${g.url}/healthz`)).status).toBe(200);
        const next = await g.api('POST', `/api/connectors/${con}/execute`, { method: 'GET', path: '/again' });
        expect(next.body).toMatchObject({ status: 200, body: 'the answer' });
      } finally {
        await api.close();
      }
    });
  });
});

describe('the proxy front', () => {
  let g: Started;
  let api: HttpsFixture;
  beforeAll(async () => {
    g = await startGrantry({ env: { GRANTRY_RATE_LIMIT: '5' } });
    api = await startHttps(async (req, res) => {
      await json(req);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ path: req.url }));
    });
  });
  afterAll(async () => {
    await g?.stop();
    await api?.close();
  });

  it('takes only targets Fastify routes to the proxy route, with the same connector id (property)', () => {
    const idCharacters = ['a', 'Z', '0', '_', '-', '%', '.', '~', ';', ':', '@', '!'];
    const restParts = [
      '',
      '/',
      '/x',
      '/a/b',
      '?q=1',
      '/x?y=%20',
      '/%2e%2e/x',
      '#f',
      '//y',
      '/.',
      '/../../api/authentications',
    ];
    const targets = fc
      .tuple(
        fc.constantFrom('', '/', '//', '/./', '/x/../', 'http://127.0.0.1', '/%70'),
        fc.constantFrom('proxy/', 'PROXY/', 'proxy//', 'prox%79/', 'proxy'),
        fc.array(fc.constantFrom(...idCharacters), { maxLength: 8 }).map((chars) => chars.join('')),
        fc.constantFrom(...restParts),
      )
      .map(([before, route, id, rest]) =>
        `${before === '' ? '/' : before}${route}${id}${rest}`.replace(/^\/\//, '/'),
      );
    fc.assert(
      fc.property(targets, fc.constantFrom('GET', 'POST', 'DELETE', 'TRACE'), (target, method) => {
        const match = matchProxyTarget(method, target);
        if (match === null) return;
        const route = g.app.server.findRoute({ method: method as 'GET', url: target });
        expect(route, target).not.toBeNull();
        const params = (route?.params ?? {}) as { connectorId?: string };
        expect(params.connectorId, target).toBe(match.connectorId);
      }),
      { numRuns: 2000 },
    );
    expect(matchProxyTarget('GET', '/proxy/con_abc/items?x=1')).toEqual({
      connectorId: 'con_abc',
      rest: '/items?x=1',
    });
    expect(matchProxyTarget('GET', '/%70roxy/con_abc/items')).toBeNull();
    expect(matchProxyTarget('GET', 'http://127.0.0.1/proxy/con_abc/items')).toBeNull();
    expect(matchProxyTarget('TRACE', '/proxy/con_abc/items')).toBeNull();
  });

  it('answers refusals like the access hook, with x-grantry-error: 401 with its challenge, 403 out of scope, 429 past the rate limit', async () => {
    const con = (await g.api('POST', '/api/connectors', { name: unique('con'), baseUrl: api.url })).body
      .id as string;
    const wrong = await fetch(`${g.url}/proxy/${con}/x`, { headers: { authorization: 'Bearer grk_wrong' } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toBe('Bearer realm="grantry"');
    expect(wrong.headers.get('x-grantry-error')).toBe('unauthorized');
    expect(wrong.headers.get('cache-control')).toBe('no-store');
    expect(((await wrong.json()) as { error: { code: string } }).error.code).toBe('unauthorized');

    const metricsKey = (await createApiKey(g.app.store, 'metrics only', 'metrics')).key;
    for (let round = 0; round < 2; round++) {
      // The second time the key is known (decided without the store): the same answer.
      const forbidden = await fetch(`${g.url}/proxy/${con}/x`, {
        headers: { authorization: `Bearer ${metricsKey}` },
      });
      expect(forbidden.status).toBe(403);
      expect(forbidden.headers.get('x-grantry-error')).toBe('forbidden');
      expect(((await forbidden.json()) as { error: { hint: string } }).error.hint).toMatch(/runtime/);
    }

    const runtimeKey = (await createApiKey(g.app.store, 'runtime', 'runtime')).key;
    const statuses: number[] = [];
    let limited: Response | undefined;
    for (let call = 0; call < 7; call++) {
      const response = await fetch(`${g.url}/proxy/${con}/x`, {
        headers: { authorization: `Bearer ${runtimeKey}` },
      });
      statuses.push(response.status);
      if (response.status === 429) limited = response;
      await response.arrayBuffer();
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
    expect(Number(limited?.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited?.headers.get('x-grantry-error')).toBe('rate_limited');
  });

  it('logs one line per proxied request (its id, the path without the query) and measures it', async () => {
    const adminKey = g.apiKey;
    const con = (await g.api('POST', '/api/connectors', { name: unique('con'), baseUrl: api.url })).body
      .id as string;
    const scrape = async () => {
      const text = await (
        await fetch(`${g.url}/metrics`, { headers: { authorization: `Bearer ${adminKey}` } })
      ).text();
      const value = (series: string) =>
        Number(
          text
            .split('\n')
            .find((line) => line.startsWith(`${series} `))
            ?.split(' ')[1] ?? 0,
        );
      return {
        proxied: value('grantry_proxy_duration_seconds_count'),
        answered: value('grantry_upstream_requests_total{status_class="2xx"}'),
      };
    };
    const before = await scrape();
    const response = await fetch(`${g.url}/proxy/${con}/items?code=secret-code`, {
      headers: { authorization: `Bearer ${adminKey}`, 'x-request-id': 'front-log-1' },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-request-id')).toBe('front-log-1');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    await response.arrayBuffer();
    const after = await scrape();
    expect(after.proxied - before.proxied).toBe(1);
    expect(after.answered - before.answered).toBe(1);

    const lines = readFileSync(g.logFile, 'utf8')
      .split('\n')
      .filter((line) => line.includes('front-log-1'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toEqual([
      expect.objectContaining({
        msg: 'request',
        reqId: 'front-log-1',
        method: 'GET',
        path: `/proxy/${con}/items`,
        status: 200,
      }),
    ]);
    expect(JSON.stringify(lines)).not.toContain('secret-code');
  });
});
