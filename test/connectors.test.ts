import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ApiFixture, startApiServer } from './support/api-server.js';
import { freePort, type GrantryHandle, startGrantry } from './support/grantry.js';
import { type OidcFixture, startOidcProvider } from './support/oidc.js';

/**
 * POST /api/connectors/:id/execute and /test against a real HTTPS API (test/support/api-server.ts)
 * and a real oidc-provider: the header and prefix, static headers and query, bodies both ways, the
 * one-refetch-one-retry 401 rule (the provider's token count proves it), 403 without refresh, path
 * escapes, retries, redirects without credentials to another origin, and the egress policy.
 */
describe('connector execute and test', () => {
  let oidc: OidcFixture;
  let api: ApiFixture;
  let other: ApiFixture;
  let g: GrantryHandle & { app: Awaited<ReturnType<typeof startGrantry>>['app'] };

  beforeAll(async () => {
    oidc = await startOidcProvider({
      clients: [
        {
          client_id: 'svc',
          client_secret: 'svc-secret',
          grant_types: ['client_credentials'],
          scope: 'read write',
        },
      ],
    });
    const verify = async (token: string) => (await oidc.verifyAccessToken(token)).active;
    api = await startApiServer({ verify });
    // Same machine, another origin (127.0.0.1 instead of localhost).
    other = await startApiServer({ verify, hostname: '127.0.0.1' });
    g = await startGrantry();
  });
  afterAll(async () => {
    await g?.stop();
    await api?.close();
    await other?.close();
    await oidc?.close();
  });
  beforeEach(() => {
    api.setBehaviour('normal');
    api.reset();
    other.reset();
    oidc.resetCounts();
  });

  const unique = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2)}`;

  async function createAuth(over: Record<string, unknown> = {}): Promise<string> {
    const answer = await g.api('POST', '/api/authentications', {
      name: unique('auth'),
      type: 'oauth2',
      grantType: 'client_credentials',
      tokenUrl: oidc.tokenUrl,
      clientId: 'svc',
      clientSecret: 'svc-secret',
      scope: 'read',
      ...over,
    });
    expect(answer.status, answer.text).toBe(201);
    return answer.body.id;
  }

  async function createConnector(over: Record<string, unknown> = {}): Promise<string> {
    const answer = await g.api('POST', '/api/connectors', { name: unique('con'), baseUrl: api.url, ...over });
    expect(answer.status, answer.text).toBe(201);
    return answer.body.id;
  }

  const execute = (id: string, body: Record<string, unknown>) =>
    g.api('POST', `/api/connectors/${id}/execute`, body);

  it('sends "Bearer <token>", static headers and query, then the request query, and never returns the token', async () => {
    const auth = await createAuth();
    const con = await createConnector({
      authenticationId: auth,
      baseUrl: `${api.url}/base/`,
      headers: { 'X-Static': 'from-connector', Accept: 'application/json' },
      query: { apiVersion: '2024-01' },
    });
    const answer = await execute(con, {
      method: 'GET',
      path: '/echo',
      query: { q: 'a b&c' },
      headers: { 'x-caller': 'yes' },
    });
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toMatchObject({ status: 200, attempts: 1, tokenRefreshed: false, truncated: false });
    const echoed = answer.body.body;
    expect(echoed.path).toBe('/base/echo');
    expect(echoed.query).toEqual({ apiVersion: '2024-01', q: 'a b&c' });
    expect(echoed.headers['x-static']).toBe('from-connector');
    expect(echoed.headers['x-caller']).toBe('yes');
    const seen = api.requests.at(-1);
    expect(seen?.headers.authorization).toMatch(/^Bearer \S+$/);
    expect(seen?.token).toBeDefined();
    expect((await oidc.verifyAccessToken(seen?.token ?? '')).active).toBe(true);
    // The token travels in the Authorization header only.
    expect(seen?.path).not.toContain(seen?.token ?? '-');
    expect(JSON.stringify(seen?.query)).not.toContain(seen?.token ?? '-');
    expect(answer.body.headers['content-type']).toMatch(/application\/json/);
    expect(answer.body.headers).not.toHaveProperty('connection');
    // The echo shows what the API received, including the token; the result's own fields do not.
    const { body: _upstreamBody, ...meta } = answer.body;
    expect(JSON.stringify(meta)).not.toContain(seen?.token ?? '-');
    expect(answer.headers.get('cache-control')).toBe('no-store');
  });

  it.each([
    ['token', /^token \S+$/],
    ['', /^[^\s]+$/],
  ])('uses the header prefix %j', async (headerPrefix, pattern) => {
    const auth = await createAuth({ headerPrefix });
    const con = await createConnector({ authenticationId: auth });
    api.setBehaviour({ status: 200, headers: { 'content-type': 'text/plain' }, body: 'ok' });
    const answer = await execute(con, { method: 'GET', path: '/anything' });
    expect(answer.body).toMatchObject({ status: 200, body: 'ok' });
    const header = String(api.requests.at(-1)?.headers.authorization);
    expect(header).toMatch(pattern);
    const token = headerPrefix === '' ? header : header.slice(headerPrefix.length + 1);
    expect((await oidc.verifyAccessToken(token)).active).toBe(true);
  });

  it('sends JSON bodies as JSON and string bodies as given; parses JSON answers, returns text as text', async () => {
    const con = await createConnector({ authenticationId: await createAuth() });
    const json = await execute(con, { method: 'POST', path: '/echo', body: { a: 1, list: ['x'] } });
    expect(json.body.status).toBe(200);
    expect(JSON.parse(json.body.body.body)).toEqual({ a: 1, list: ['x'] });
    expect(json.body.body.headers['content-type']).toBe('application/json');

    const text = await execute(con, {
      method: 'PUT',
      path: '/echo',
      headers: { 'Content-Type': 'text/csv' },
      body: 'a,b\n1,2',
    });
    expect(text.body.body.body).toBe('a,b\n1,2');
    expect(text.body.body.headers['content-type']).toBe('text/csv');

    const plain = await execute(con, { method: 'GET', path: '/text' });
    expect(plain.body).toMatchObject({ status: 200, body: 'hello from the test API' });
  });

  it('caps a large answer and says it was truncated', async () => {
    const con = await createConnector({ authenticationId: await createAuth() });
    const answer = await execute(con, { method: 'GET', path: `/large/${8 * 1024 * 1024}` });
    expect(answer.body.status).toBe(200);
    expect(answer.body.truncated).toBe(true);
    expect(answer.body.body.length).toBe(g.app.config.executeMaxBodyBytes);
  });

  it('answers a 401 with one re-fetch and one retry (one token request)', async () => {
    const auth = await createAuth();
    const con = await createConnector({ authenticationId: auth });
    await execute(con, { method: 'GET', path: '/echo' }); // warm
    oidc.resetCounts();
    api.reset();
    api.setBehaviour({ kind: 'unauthorized-next', count: 1 });
    const answer = await execute(con, { method: 'POST', path: '/echo', body: { n: 1 } });
    expect(answer.body).toMatchObject({ status: 200, attempts: 2, tokenRefreshed: true });
    expect(oidc.tokenRequests.client_credentials).toBe(1);
    expect(api.requests).toHaveLength(2);
    expect(api.requests[0]?.token).not.toBe(api.requests[1]?.token);
    expect(api.requests[1]?.body).toBe('{"n":1}');
  });

  it('reports a persistent 401 as upstream_unauthorized without looping', async () => {
    const auth = await createAuth();
    const con = await createConnector({ authenticationId: auth });
    api.setBehaviour('always-401');
    const answer = await execute(con, { method: 'GET', path: '/echo' });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      status: 401,
      attempts: 2,
      tokenRefreshed: true,
      error: { code: 'upstream_unauthorized', provider: { status: 401, error: 'invalid_token' } },
    });
    expect(answer.body.error.hint).toMatch(/audience/);
    expect(api.requests).toHaveLength(2);
    // One fetch for the first token, one after the 401: never more.
    expect(oidc.tokenRequests.client_credentials).toBe(2);

    await g.app.usage.flush();
    const view = await g.api('GET', `/api/authentications/${auth}`);
    expect(view.body.usage).toEqual({ calls: 1, unauthorized: 2, refreshes: 1 });
  });

  it('answers a 403 insufficient_scope with upstream_forbidden, without a refresh', async () => {
    const con = await createConnector({ authenticationId: await createAuth() });
    await execute(con, { method: 'GET', path: '/echo' });
    oidc.resetCounts();
    api.reset();
    api.setBehaviour({ kind: 'insufficient-scope', scope: 'write' });
    const answer = await execute(con, { method: 'GET', path: '/echo' });
    expect(answer.body).toMatchObject({
      status: 403,
      attempts: 1,
      tokenRefreshed: false,
      error: { code: 'upstream_forbidden' },
    });
    expect(answer.body.error.hint).toContain('"write"');
    expect(oidc.tokenRequests.total).toBe(0);
    expect(api.requests).toHaveLength(1);
  });

  it.each([
    '../outside',
    '/a/../../outside',
    '//evil.example/x',
    'https://evil.example/x',
    '/%2e%2e/outside',
    '/%2E%2e%2foutside',
    '/..%5coutside',
    '/%252e%252e/outside',
    '\\\\evil.example\\x',
  ])('refuses the path escape %j with validation_failed and sends nothing', async (path) => {
    const con = await createConnector({ baseUrl: `${api.url}/base` });
    const answer = await execute(con, { method: 'GET', path });
    expect(answer.status).toBe(400);
    expect(answer.body.error.code).toBe('validation_failed');
    expect(answer.body.error.errors).toEqual([{ path: '/path', message: expect.any(String) }]);
    expect(api.requests).toHaveLength(0);
  });

  it('reports schema and rule errors together', async () => {
    const con = await createConnector();
    const answer = await execute(con, { method: 'FETCH', path: '//x', headers: { Host: 'evil' } });
    expect(answer.status).toBe(400);
    const paths = answer.body.error.errors.map((e: { path: string }) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['/method', '/path', '/headers/Host']));
  });

  it('retries idempotent calls on 503 honouring Retry-After, and never retries a POST', async () => {
    const con = await createConnector();
    api.setBehaviour({ status: 503, headers: { 'retry-after': '0' }, body: 'busy' });
    const get = await execute(con, { method: 'GET', path: '/x' });
    expect(get.body).toMatchObject({ status: 503, attempts: 3, body: 'busy' });
    api.reset();
    const post = await execute(con, { method: 'POST', path: '/x', body: {} });
    expect(post.body).toMatchObject({ status: 503, attempts: 1 });
    api.reset();
    api.setBehaviour({ status: 429, headers: { 'retry-after': '3600' } });
    const tooLong = await execute(con, { method: 'GET', path: '/x' });
    expect(tooLong.body).toMatchObject({ status: 429, attempts: 1 });
    expect(tooLong.body.headers['retry-after']).toBe('3600');
  });

  it('follows a same-origin redirect with the token, and a cross-origin one without it', async () => {
    const con = await createConnector({
      authenticationId: await createAuth(),
      headers: { 'x-api-key': 'connector-secret' },
    });
    const same = await execute(con, { method: 'GET', path: '/redirect', query: { to: '/echo?hop=1' } });
    expect(same.body).toMatchObject({ status: 200, attempts: 2 });
    expect(same.body.body.query).toEqual({ hop: '1' });
    expect(api.requests.at(-1)?.token).toBeDefined();

    const cross = await execute(con, {
      method: 'GET',
      path: '/redirect',
      query: { to: `${other.url}/echo` },
    });
    expect(cross.body.attempts).toBe(2);
    expect(other.requests).toHaveLength(1);
    expect(other.requests[0]?.headers.authorization).toBeUndefined();
    expect(other.requests[0]?.headers['x-api-key']).toBeUndefined();
    // The other origin answers 401 to a request without a token: data, not a reason to refresh.
    expect(cross.body.status).toBe(401);
    expect(cross.body.tokenRefreshed).toBe(false);
  });

  it('does not follow redirects for a POST', async () => {
    const con = await createConnector();
    api.setBehaviour({ status: 307, headers: { location: '/elsewhere' } });
    const answer = await execute(con, { method: 'POST', path: '/x', body: 'data' });
    expect(answer.body).toMatchObject({ status: 307, attempts: 1, headers: { location: '/elsewhere' } });
  });

  it('strips set-cookie from the answer', async () => {
    const con = await createConnector();
    api.setBehaviour({ status: 200, headers: { 'set-cookie': 'session=1', 'x-kept': 'y' }, body: '' });
    const answer = await execute(con, { method: 'GET', path: '/x' });
    expect(answer.body.headers).not.toHaveProperty('set-cookie');
    expect(answer.body.headers['x-kept']).toBe('y');
    expect(answer.body.body).toBeNull();
  });

  it('200 concurrent executes on a cold authentication all succeed with exactly one token request', async () => {
    const con = await createConnector({ authenticationId: await createAuth() });
    const answers = await Promise.all(
      Array.from({ length: 200 }, () => execute(con, { method: 'GET', path: '/echo' })),
    );
    expect(answers.map((a) => a.body.status)).toEqual(Array(200).fill(200));
    expect(oidc.tokenRequests.client_credentials).toBe(1);
    expect(new Set(api.requests.map((r) => r.token)).size).toBe(1);
  });

  it('picks up connector changes (cache invalidation)', async () => {
    const con = await createConnector({
      authenticationId: await createAuth(),
      headers: { 'x-version': '1' },
    });
    await execute(con, { method: 'GET', path: '/echo' });
    await g.api('PATCH', `/api/connectors/${con}`, { headers: { 'x-version': '2' } });
    const answer = await execute(con, { method: 'GET', path: '/echo' });
    expect(answer.body.body.headers['x-version']).toBe('2');
    await g.api('DELETE', `/api/connectors/${con}`);
    expect((await execute(con, { method: 'GET', path: '/echo' })).status).toBe(404);
  });

  it('answers 502 with the token diagnosis when no token can be had', async () => {
    const auth = await createAuth({ clientSecret: 'wrong' });
    const con = await createConnector({ authenticationId: auth });
    const answer = await execute(con, { method: 'GET', path: '/echo' });
    expect(answer.status).toBe(502);
    expect(answer.body.error).toMatchObject({
      code: 'invalid_client',
      hint: expect.stringMatching(/Client ID/),
    });
    expect(api.requests).toHaveLength(0);
  });

  it('answers 424 needs_authorization for an authorization_code authentication never connected', async () => {
    const auth = await createAuth({
      grantType: 'authorization_code',
      authorizationUrl: oidc.authorizationUrl,
      scope: 'openid',
    });
    const con = await createConnector({ authenticationId: auth });
    const answer = await execute(con, { method: 'GET', path: '/echo' });
    expect(answer.status).toBe(424);
    expect(answer.body.error.code).toBe('needs_authorization');
  });

  it('answers 502 upstream_failed when the API cannot be reached', async () => {
    const port = await freePort();
    const con = await createConnector({ baseUrl: `https://localhost:${port}` });
    const answer = await execute(con, { method: 'GET', path: '/x' });
    expect(answer.status).toBe(502);
    expect(answer.body.error.code).toBe('upstream_failed');
    expect(answer.body.error.message).toMatch(/refused/);
  });

  it("gives up after the connector's timeoutMs with upstream_failed", async () => {
    // Accepts connections and never answers, not even the TLS handshake.
    const silent = createNetServer((socket) => socket.on('error', () => {}));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
    const { port } = silent.address() as AddressInfo;
    try {
      const con = await createConnector({ baseUrl: `https://localhost:${port}`, timeoutMs: 300 });
      const started = Date.now();
      const answer = await execute(con, { method: 'GET', path: '/x' });
      // The one bound on time worth asserting, with a huge margin: the deadline covers the TLS
      // handshake (it used to end only at the 10 s connect timeout).
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(answer.status).toBe(502);
      expect(answer.body.error.code).toBe('upstream_failed');
      expect(answer.body.error.message).toMatch(/in time/);
    } finally {
      silent.close();
    }
  });

  it('test: token step and API step in one answer', async () => {
    const auth = await createAuth();
    const con = await createConnector({ authenticationId: auth, baseUrl: `${api.url}/echo` });
    const first = await g.api('POST', `/api/connectors/${con}/test`);
    expect(first.status, first.text).toBe(200);
    expect(first.body).toMatchObject({
      ok: true,
      token: { ok: true, source: 'fetched', scope: 'read' },
      response: { status: 200, body: { method: 'GET', path: '/echo' } },
    });
    expect(first.body.token.expiresAt).toEqual(expect.any(String));
    const second = await g.api('POST', `/api/connectors/${con}/test`, { method: 'GET', path: '/sub' });
    expect(second.body).toMatchObject({ ok: true, token: { source: 'cache' }, response: { status: 200 } });
    expect(second.body.response.body.path).toBe('/echo/sub');

    api.setBehaviour({ status: 404, body: 'nothing here' });
    const missing = await g.api('POST', `/api/connectors/${con}/test`, {});
    expect(missing.body).toMatchObject({ ok: false, token: { ok: true }, response: { status: 404 } });
    expect(missing.body.error.code).toEqual(expect.any(String));

    const bad = await createConnector({ authenticationId: await createAuth({ clientSecret: 'nope' }) });
    const failed = await g.api('POST', `/api/connectors/${bad}/test`);
    expect(failed.body).toMatchObject({
      ok: false,
      token: { ok: false, error: { code: 'invalid_client' } },
      response: null,
      error: { code: 'invalid_client' },
    });
  });
});

describe('execute under GRANTRY_EGRESS=strict', () => {
  it('refuses a loopback API with egress_denied before sending anything', async () => {
    const api = await startApiServer({ verify: async () => true });
    const g = await startGrantry({ env: { GRANTRY_EGRESS: 'strict' } });
    try {
      const created = await g.api('POST', '/api/connectors', { name: 'strict', baseUrl: api.url });
      expect(created.status, created.text).toBe(201);
      const answer = await g.api('POST', `/api/connectors/${created.body.id}/execute`, {
        method: 'GET',
        path: '/echo',
      });
      expect(answer.status).toBe(502);
      expect(answer.body.error.code).toBe('egress_denied');
      expect(api.requests).toHaveLength(0);
    } finally {
      await g.stop();
      await api.close();
    }
  });
});
