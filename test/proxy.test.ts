import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ApiFixture, startApiServer } from './support/api-server.js';
import { freePort, type GrantryHandle, spawnGrantry, startGrantry } from './support/grantry.js';
import { type OidcFixture, startOidcProvider } from './support/oidc.js';

/**
 * ANY /proxy/:connectorId/<path> against a real HTTPS API and a real oidc-provider: what is
 * forwarded and what is not, the 401 replay rule for small bodies, pass-through of 3xx and of a
 * 401 on a body too large to replay, Grantry's own errors with x-grantry-error, and a 100 MB body
 * streamed both ways in bounded memory (Grantry in its own process, its peak RSS printed).
 */
let oidc: OidcFixture;
let api: ApiFixture;

const unique = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2)}`;

async function setUpConnector(
  g: GrantryHandle,
  over: Record<string, unknown> = {},
  auth: Record<string, unknown> = {},
): Promise<{ auth: string; con: string }> {
  const created = await g.api('POST', '/api/authentications', {
    name: unique('auth'),
    type: 'oauth2',
    grantType: 'client_credentials',
    tokenUrl: oidc.tokenUrl,
    clientId: 'svc',
    clientSecret: 'svc-secret',
    ...auth,
  });
  expect(created.status, created.text).toBe(201);
  const con = await g.api('POST', '/api/connectors', {
    name: unique('con'),
    baseUrl: api.url,
    authenticationId: created.body.id,
    ...over,
  });
  expect(con.status, con.text).toBe(201);
  return { auth: created.body.id, con: con.body.id };
}

/** A GET with the request target exactly as given (no URL normalisation on the way). */
function rawGet(
  base: string,
  path: string,
  apiKey: string,
): Promise<{ status: number; error: string | undefined }> {
  const { port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, headers: { authorization: `Bearer ${apiKey}` } },
      (res) => {
        res.resume();
        res.on('end', () => {
          const error = res.headers['x-grantry-error'];
          resolve({ status: res.statusCode ?? 0, error: Array.isArray(error) ? error[0] : error });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function* chunks(total: number, size = 64 * 1024): Generator<Buffer> {
  const chunk = Buffer.alloc(size, 0x62);
  for (let sent = 0; sent < total; sent += size)
    yield sent + size <= total ? chunk : chunk.subarray(0, total - sent);
}

beforeAll(async () => {
  oidc = await startOidcProvider({
    clients: [{ client_id: 'svc', client_secret: 'svc-secret', grant_types: ['client_credentials'] }],
  });
  api = await startApiServer({ verify: async (token) => (await oidc.verifyAccessToken(token)).active });
});
afterAll(async () => {
  await api?.close();
  await oidc?.close();
});

describe('proxy', () => {
  let g: GrantryHandle & { app: Awaited<ReturnType<typeof startGrantry>>['app'] };
  beforeAll(async () => {
    g = await startGrantry();
  });
  afterAll(async () => {
    await g?.stop();
  });
  beforeEach(() => {
    api.setBehaviour('normal');
    api.reset();
    oidc.resetCounts();
  });

  const proxy = (
    con: string,
    path: string,
    init: { method?: string; headers?: Record<string, string>; body?: string } = {},
  ) =>
    fetch(`${g.url}/proxy/${con}${path}`, {
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${g.apiKey}`, ...init.headers },
      ...(init.body !== undefined ? { body: init.body } : {}),
    });

  it('forwards method, path, query, headers and body; replaces our API key with the token', async () => {
    const { con } = await setUpConnector(g, {
      baseUrl: `${api.url}/base`,
      headers: { 'x-static': 'yes' },
      query: { v: '2' },
    });
    const response = await proxy(con, '/items/a%20b?x=1&y=two', {
      method: 'PATCH',
      headers: { 'content-type': 'application/merge-patch+json', 'x-caller': 'c' },
      body: '{"name":"n"}',
    });
    expect(response.status).toBe(200);
    const echoed = (await response.json()) as { method: string; path: string; query: unknown; body: string };
    expect(echoed).toMatchObject({
      method: 'PATCH',
      path: '/base/items/a%20b',
      query: { v: '2', x: '1', y: 'two' },
    });
    expect(echoed.body).toBe('{"name":"n"}');
    const seen = api.requests.at(-1);
    expect(seen?.headers['content-type']).toBe('application/merge-patch+json');
    expect(seen?.headers['x-static']).toBe('yes');
    expect(seen?.headers['x-caller']).toBe('c');
    expect(seen?.headers.authorization).not.toContain(g.apiKey);
    expect((await oidc.verifyAccessToken(seen?.token ?? '')).active).toBe(true);
  });

  it('removes hop-by-hop headers, those named in Connection, and Host', async () => {
    const { con } = await setUpConnector(g);
    const { port } = new URL(g.url);
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          path: `/proxy/${con}/echo`,
          headers: {
            authorization: `Bearer ${g.apiKey}`,
            connection: 'keep-alive, x-drop-me',
            'x-drop-me': 'secret',
            'keep-alive': 'timeout=5',
            te: 'trailers',
            'x-kept': 'k',
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(200);
    const seen = api.requests.at(-1);
    expect(seen?.headers['x-drop-me']).toBeUndefined();
    expect(seen?.headers.te).toBeUndefined();
    expect(seen?.headers['keep-alive']).toBeUndefined();
    expect(seen?.headers['x-kept']).toBe('k');
    expect(seen?.headers.host).toBe(new URL(api.url).host);
  });

  it('replays a small body once after a 401 (one token request)', async () => {
    const { con } = await setUpConnector(g);
    await proxy(con, '/echo');
    oidc.resetCounts();
    api.reset();
    api.setBehaviour({ kind: 'unauthorized-next', count: 1 });
    const response = await proxy(con, '/echo', { method: 'POST', body: 'small body' });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-grantry-error')).toBeNull();
    expect(((await response.json()) as { body: string }).body).toBe('small body');
    expect(api.requests.map((r) => r.body)).toEqual(['small body', 'small body']);
    expect(oidc.tokenRequests.client_credentials).toBe(1);
  });

  it('passes a persistent 401 through with x-grantry-error, after one retry', async () => {
    const { con } = await setUpConnector(g);
    api.setBehaviour('always-401');
    const response = await proxy(con, '/echo');
    expect(response.status).toBe(401);
    expect(response.headers.get('x-grantry-error')).toBe('upstream_unauthorized');
    expect(response.headers.get('www-authenticate')).toContain('invalid_token');
    expect(api.requests).toHaveLength(2);
  });

  it('passes a 401 on a body too large to replay straight through', async () => {
    const { con } = await setUpConnector(g);
    await proxy(con, '/echo');
    api.reset();
    api.setBehaviour({ kind: 'unauthorized-next', count: 1 });
    const response = await proxy(con, '/sink', { method: 'POST', body: 'x'.repeat(200 * 1024) });
    expect(response.status).toBe(401);
    expect(response.headers.get('x-grantry-error')).toBe('upstream_unauthorized');
    expect(api.requests).toHaveLength(1);
    expect(api.requests[0]?.size).toBe(200 * 1024);
  });

  it('passes a 403 through with x-grantry-error upstream_forbidden and no refresh', async () => {
    const { con } = await setUpConnector(g);
    await proxy(con, '/echo');
    oidc.resetCounts();
    api.setBehaviour({ kind: 'insufficient-scope', scope: 'write' });
    const response = await proxy(con, '/echo');
    expect(response.status).toBe(403);
    expect(response.headers.get('x-grantry-error')).toBe('upstream_forbidden');
    expect(oidc.tokenRequests.total).toBe(0);
  });

  it('passes redirects through unchanged', async () => {
    const { con } = await setUpConnector(g);
    const response = await fetch(`${g.url}/proxy/${con}/redirect?to=https://elsewhere.example/x`, {
      headers: { authorization: `Bearer ${g.apiKey}` },
      redirect: 'manual',
    });
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toBe('https://elsewhere.example/x');
    expect(api.requests).toHaveLength(1);
  });

  it('answers its own failures in the JSON error shape with x-grantry-error', async () => {
    const bad = await setUpConnector(g, {}, { clientSecret: 'wrong' });
    const noToken = await proxy(bad.con, '/echo');
    expect(noToken.status).toBe(502);
    expect(noToken.headers.get('x-grantry-error')).toBe('invalid_client');
    expect(((await noToken.json()) as { error: { code: string } }).error.code).toBe('invalid_client');

    const down = await setUpConnector(g, { baseUrl: `https://localhost:${await freePort()}` });
    const unreachable = await proxy(down.con, '/echo');
    expect(unreachable.status).toBe(502);
    expect(unreachable.headers.get('x-grantry-error')).toBe('upstream_failed');

    // fetch would resolve %2e%2e itself: send the raw request target.
    for (const path of ['/%2e%2e/admin', '/.%2E/admin', '/a%2fb', '/..%5cadmin', '/../admin']) {
      const refused = await rawGet(g.url, `/proxy/${down.con}${path}`, g.apiKey);
      expect(refused.status, path).toBe(400);
      expect(refused.error, path).toBe('validation_failed');
    }

    const missing = await proxy('con_nope', '/echo');
    expect(missing.status).toBe(404);

    const anonymous = await fetch(`${g.url}/proxy/${down.con}/echo`);
    expect(anonymous.status).toBe(401);
    expect(api.requests).toHaveLength(0);
  });

  it('forwards HEAD and lists the proxy in the OpenAPI document', async () => {
    const { con } = await setUpConnector(g);
    const head = await proxy(con, '/echo', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBeGreaterThan(0);
    expect(await head.text()).toBe('');
    expect(api.requests.at(-1)?.method).toBe('HEAD');
    const doc = (await (await fetch(`${g.url}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    expect(Object.keys(doc.paths['/proxy/{connectorId}/{path}'] ?? {}).sort()).toEqual([
      'delete',
      'get',
      'options',
      'patch',
      'post',
      'put',
    ]);
    expect(doc.paths['/api/connectors/{id}/execute']).toHaveProperty('post');
  });

  it('counts calls, 401s and refreshes per authentication', async () => {
    const { auth, con } = await setUpConnector(g);
    await proxy(con, '/echo');
    api.setBehaviour({ kind: 'unauthorized-next', count: 1 });
    await proxy(con, '/echo');
    await g.app.usage.flush();
    const view = await g.api('GET', `/api/authentications/${auth}`);
    expect(view.body.usage).toEqual({ calls: 2, unauthorized: 1, refreshes: 1 });
  });
});

describe('proxy streaming in its own process', () => {
  let g: Awaited<ReturnType<typeof spawnGrantry>>;
  beforeAll(async () => {
    g = await spawnGrantry({ env: { GRANTRY_LOG_LEVEL: 'warn' } });
  });
  afterAll(async () => {
    await g?.stop();
  });

  function peakRssBytes(pid: number): number {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /VmHWM:\s+(\d+)\s+kB/.exec(status)?.[1];
    return Number(kb) * 1024;
  }

  it('streams a 100 MB body up and a 100 MB body down without buffering it', async () => {
    const total = Number(process.env.PROXY_STREAM_MB ?? 100) * 1024 * 1024;
    const { con } = await setUpConnector(g);
    const pid = g.child.pid as number;
    // Warm up (token, connections, code paths) so the baseline includes everything but the bodies.
    const warm = await request(`${g.url}/proxy/${con}/sink`, {
      method: 'POST',
      headers: { authorization: `Bearer ${g.apiKey}`, 'content-length': String(1024 * 1024) },
      body: Readable.from(chunks(1024 * 1024)),
    });
    await warm.body.text();
    const baseline = peakRssBytes(pid);

    const upload = await request(`${g.url}/proxy/${con}/sink`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${g.apiKey}`,
        'content-type': 'application/octet-stream',
        'content-length': String(total),
      },
      body: Readable.from(chunks(total)),
    });
    expect(upload.statusCode).toBe(200);
    expect(await upload.body.json()).toEqual({ bytes: total });
    const afterUpload = peakRssBytes(pid);

    const download = await request(`${g.url}/proxy/${con}/large/${total}`, {
      headers: { authorization: `Bearer ${g.apiKey}` },
    });
    expect(download.statusCode).toBe(200);
    expect(download.headers['content-length']).toBe(String(total));
    let received = 0;
    for await (const chunk of download.body) received += (chunk as Buffer).length;
    expect(received).toBe(total);

    const peak = peakRssBytes(pid);
    const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
    console.log(
      `proxy ${mb(total)} MB up + ${mb(total)} MB down: Grantry peak RSS (VmHWM) ${mb(peak)} MB, ${mb(baseline)} MB before the transfers, growth ${mb(peak - baseline)} MB (${mb(afterUpload - baseline)} MB of it by the upload)`,
    );
    // Buffering either body would add at least its size; what remains is garbage not yet collected
    // (it stays about the same for 400 MB: PROXY_STREAM_MB=400).
    expect(peak - baseline).toBeLessThan(Math.min(90 * 1024 * 1024, total * 0.9));
  });
});
