import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GrantryHandle, spawnGrantry, startGrantry } from './support/grantry.js';

const cc = (over: Record<string, unknown> = {}) => ({
  name: `cc-${Math.random().toString(36).slice(2)}`,
  type: 'oauth2',
  grantType: 'client_credentials',
  tokenUrl: 'https://login.example.test/oauth/token',
  clientId: 'client-1',
  clientSecret: 'CANARY-client-secret-7f3a',
  ...over,
});

describe('authentications and connectors API', () => {
  let g: GrantryHandle;
  beforeAll(async () => {
    // Many deliberate 401s below: raise the per-address failure limit (tested on its own further down).
    g = await startGrantry({ env: { GRANTRY_AUTH_FAILURE_LIMIT: '1000' } });
  });
  afterAll(async () => {
    await g.stop();
  });

  it('creates, lists, gets, patches and deletes an authentication, never returning a secret', async () => {
    const created = await g.api(
      'POST',
      '/api/authentications',
      cc({ scope: 'read  write', audience: 'https://api' }),
    );
    expect(created.status).toBe(201);
    expect(created.headers.get('cache-control')).toBe('no-store');
    const auth = created.body;
    expect(auth.id).toMatch(/^auth_/);
    expect(auth).toMatchObject({
      headerPrefix: 'Bearer',
      audienceParam: 'audience',
      clientAuthMethod: 'client_secret_basic',
      clientSecretSet: true,
      status: 'ready',
      token: null,
      lastError: null,
      usedBy: [],
      scope: 'read write',
    });
    expect(created.text).not.toContain('CANARY');
    expect(auth).not.toHaveProperty('clientSecret');

    const list = await g.api('GET', '/api/authentications');
    expect(list.body.items.map((a: { id: string }) => a.id)).toContain(auth.id);
    expect(list.text).not.toContain('CANARY');

    const patched = await g.api('PATCH', `/api/authentications/${auth.id}`, { headerPrefix: 'token' });
    expect(patched.status).toBe(200);
    expect(patched.body.headerPrefix).toBe('token');
    expect(patched.body.clientSecretSet).toBe(true);

    expect((await g.api('GET', `/api/authentications/${auth.id}`)).body.headerPrefix).toBe('token');
    expect((await g.api('DELETE', `/api/authentications/${auth.id}`)).status).toBe(204);
    const gone = await g.api('GET', `/api/authentications/${auth.id}`);
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('not_found');
  });

  it('applies the product page’s rules per grant type', async () => {
    const pw = await g.api('POST', '/api/authentications', cc({ grantType: 'password' }));
    expect(pw.status).toBe(400);
    expect(pw.body.error.code).toBe('validation_failed');
    expect(pw.body.error.errors).toEqual(
      expect.arrayContaining([
        { path: '/username', message: expect.any(String) },
        { path: '/password', message: expect.any(String) },
      ]),
    );
    const ok = await g.api(
      'POST',
      '/api/authentications',
      cc({ grantType: 'password', username: 'u', password: 'p' }),
    );
    expect(ok.status).toBe(201);
    expect(ok.body.passwordSet).toBe(true);
    expect(ok.body.warnings[0]).toMatch(/Prefer Authorization Code or Client Credentials/);

    const ac = await g.api('POST', '/api/authentications', cc({ grantType: 'authorization_code' }));
    expect(ac.body.error.errors).toContainEqual({ path: '/authorizationUrl', message: expect.any(String) });
    const acOk = await g.api(
      'POST',
      '/api/authentications',
      cc({ grantType: 'authorization_code', authorizationUrl: 'https://login.example.test/authorize' }),
    );
    expect(acOk.status).toBe(201);
    expect(acOk.body).toMatchObject({ status: 'needs_authorization', pkce: true });
    expect(acOk.body.redirectUri).toBe(`${g.env.GRANTRY_PUBLIC_URL}/oauth/redirect`);

    const refused = await g.api(
      'POST',
      '/api/authentications',
      cc({
        username: 'u',
        password: 'p',
        authorizationUrl: 'https://x',
        pkce: false,
        extraAuthorizationParams: {},
      }),
    );
    expect(refused.status).toBe(400);
    const paths = refused.body.error.errors.map((e: { path: string }) => e.path).sort();
    expect(paths).toEqual([
      '/authorizationUrl',
      '/extraAuthorizationParams',
      '/password',
      '/pkce',
      '/username',
    ]);
  });

  it('lists every problem at once, with JSON pointers', async () => {
    const bad = await g.api('POST', '/api/authentications', {
      name: '',
      type: 'oauth1',
      grantType: 'implicit',
      tokenUrl: 'not a url',
      clientSecret: 7,
      extraTokenParams: { grant_type: 'x', ok: 'y', scope: 'z' },
      surprise: true,
    });
    expect(bad.status).toBe(400);
    const paths = bad.body.error.errors.map((e: { path: string }) => e.path);
    for (const p of [
      '/name',
      '/type',
      '/grantType',
      '/clientId',
      '/clientSecret',
      '/surprise',
      '/tokenUrl',
    ]) {
      expect(paths).toContain(p);
    }
    expect(paths).toContain('/extraTokenParams/grant_type');
    expect(paths).toContain('/extraTokenParams/scope');
    expect(paths).not.toContain('/extraTokenParams/ok');
  });

  it('answers insecure_url for http endpoints, allowing loopback only when configured', async () => {
    const insecure = await g.api(
      'POST',
      '/api/authentications',
      cc({ tokenUrl: 'http://login.example.test/token' }),
    );
    expect(insecure.status).toBe(400);
    expect(insecure.body.error.code).toBe('insecure_url');
    expect(insecure.body.error.errors[0].path).toBe('/tokenUrl');
    const loopback = await g.api(
      'POST',
      '/api/authentications',
      cc({ tokenUrl: 'http://127.0.0.1:9/token' }),
    );
    expect(loopback.status).toBe(201);
  });

  it('refuses header injection and overriding protocol parameters', async () => {
    const bad = await g.api(
      'POST',
      '/api/authentications',
      cc({
        scope: 'read\r\nX-Evil: 1',
        headerPrefix: 'Bearer\nX',
        extraTokenParams: { Client_Secret: 'x', a: 'b\r\n' },
      }),
    );
    expect(bad.status).toBe(400);
    const paths = bad.body.error.errors.map((e: { path: string }) => e.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        '/scope',
        '/headerPrefix',
        '/extraTokenParams/Client_Secret',
        '/extraTokenParams/a',
      ]),
    );
  });

  it('keeps omitted secrets on PATCH and drops tokens only when the token request changes', async () => {
    const auth = (await g.api('POST', '/api/authentications', cc())).body;
    const again = await g.api('PATCH', `/api/authentications/${auth.id}`, { name: `${auth.name}-renamed` });
    expect(again.body.clientSecretSet).toBe(true);
    const events0 = await g.api('GET', `/api/authentications/${auth.id}/events`);
    expect(events0.body.items).toEqual([]);
    await g.api('PATCH', `/api/authentications/${auth.id}`, { scope: 'other' });
    const events1 = await g.api('GET', `/api/authentications/${auth.id}/events`);
    expect(events1.body.items[0]).toMatchObject({
      type: 'configuration_changed',
      detail: { tokensDropped: true },
    });
    const toPassword = await g.api('PATCH', `/api/authentications/${auth.id}`, { grantType: 'password' });
    expect(toPassword.status).toBe(400);
    expect(toPassword.body.error.errors.map((e: { path: string }) => e.path).sort()).toEqual([
      '/password',
      '/username',
    ]);
  });

  it('refuses duplicate names with 409', async () => {
    const body = cc();
    expect((await g.api('POST', '/api/authentications', body)).status).toBe(201);
    const dup = await g.api('POST', '/api/authentications', body);
    expect(dup.status).toBe(409);
    expect(dup.body.error.code).toBe('conflict');
  });

  it('manages connectors, and protects authentications in use', async () => {
    const auth = (await g.api('POST', '/api/authentications', cc())).body;
    const created = await g.api('POST', '/api/connectors', {
      name: `api-${auth.id}`,
      baseUrl: 'https://api.example.test/v1',
      authenticationId: auth.id,
      headers: { 'X-Team': 'ops' },
      query: { format: 'json' },
    });
    expect(created.status).toBe(201);
    const connector = created.body;
    expect(connector).toMatchObject({
      timeoutMs: 30000,
      headers: { 'X-Team': 'ops' },
      query: { format: 'json' },
    });
    expect((await g.api('GET', `/api/authentications/${auth.id}`)).body.usedBy).toEqual([connector.id]);

    const inUse = await g.api('DELETE', `/api/authentications/${auth.id}`);
    expect(inUse.status).toBe(409);
    expect(inUse.body.error.code).toBe('conflict');

    const patched = await g.api('PATCH', `/api/connectors/${connector.id}`, { timeoutMs: 5000 });
    expect(patched.body.timeoutMs).toBe(5000);
    expect(
      (await g.api('GET', '/api/connectors')).body.items.some((c: { id: string }) => c.id === connector.id),
    ).toBe(true);

    expect((await g.api('DELETE', `/api/authentications/${auth.id}?force=true`)).status).toBe(204);
    expect((await g.api('GET', `/api/connectors/${connector.id}`)).body.authenticationId).toBeNull();
    expect((await g.api('DELETE', `/api/connectors/${connector.id}`)).status).toBe(204);
    expect((await g.api('GET', `/api/connectors/${connector.id}`)).status).toBe(404);
  });

  it('validates connectors: URL, headers, timeout, authentication', async () => {
    const bad = await g.api('POST', '/api/connectors', {
      name: 'x',
      baseUrl: 'https://api.example.test/v1?key=1',
      authenticationId: 'auth_nope',
      headers: { 'Bad Header': 'x', Host: 'evil', 'X-Ok': 'a\r\nb' },
      timeoutMs: 0,
    });
    expect(bad.status).toBe(400);
    const paths = bad.body.error.errors.map((e: { path: string }) => e.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        '/baseUrl',
        '/authenticationId',
        '/headers/Bad Header',
        '/headers/Host',
        '/headers/X-Ok',
        '/timeoutMs',
      ]),
    );
  });

  it('answers malformed JSON, wrong top-level types and wrong content types with 400, and big bodies with 413', async () => {
    const malformed = await g.api('POST', '/api/authentications', '{"name":', {
      'content-type': 'application/json',
    });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.code).toBe('validation_failed');
    for (const body of ['[]', '"x"', '42', 'null']) {
      const answer = await g.api('POST', '/api/connectors', body, { 'content-type': 'application/json' });
      expect(answer.status, body).toBe(400);
      expect(answer.body.error.code).toBe('validation_failed');
    }
    const text = await g.api('POST', '/api/connectors', 'name=x', { 'content-type': 'text/plain' });
    expect(text.status).toBe(400);
    const big = await g.api('POST', '/api/connectors', { name: 'x'.repeat(2 * 1024 * 1024) });
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe('payload_too_large');
  });

  it('requires an API key on every /api route, revealing nothing', async () => {
    const routes: Array<[string, string]> = [
      ['GET', '/api/authentications'],
      ['POST', '/api/authentications'],
      ['GET', '/api/authentications/auth_x'],
      ['PATCH', '/api/authentications/auth_x'],
      ['DELETE', '/api/authentications/auth_x'],
      ['POST', '/api/authentications/auth_x/test'],
      ['POST', '/api/authentications/auth_x/invalidate'],
      ['POST', '/api/authentications/auth_x/authorize'],
      ['GET', '/api/authentications/auth_x/events'],
      ['GET', '/api/connectors'],
      ['POST', '/api/connectors'],
      ['GET', '/api/connectors/con_x'],
      ['PATCH', '/api/connectors/con_x'],
      ['DELETE', '/api/connectors/con_x'],
      ['POST', '/api/connectors/con_x/execute'],
      ['POST', '/api/connectors/con_x/test'],
      ['GET', '/api/discovery?issuer=https://x'],
      ['GET', '/proxy/con_x/anything'],
      ['GET', '/api/nothing-here'],
    ];
    for (const [method, path] of routes) {
      for (const authorization of [undefined, 'Bearer wrong-key', 'Basic abc']) {
        const headers: Record<string, string> = authorization === undefined ? {} : { authorization };
        const response = await fetch(`${g.url}${path}`, { method, headers });
        expect(response.status, `${method} ${path}`).toBe(401);
        expect(await response.json()).toEqual({
          error: { code: 'unauthorized', message: expect.any(String), hint: expect.any(String) },
        });
      }
    }
    expect((await fetch(`${g.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${g.url}/readyz`)).status).toBe(200);
    const openapi = await fetch(`${g.url}/openapi.json`);
    expect(openapi.status).toBe(200);
    const doc = (await openapi.json()) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/api/authentications', '/api/authentications/{id}', '/api/connectors/{id}']),
    );
  });
});

describe('brute-force protection', () => {
  it('limits failed key attempts per address, and never refuses a valid key', async () => {
    const g = await startGrantry();
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 25; i++) {
        const response = await fetch(`${g.url}/api/connectors`, {
          headers: { authorization: `Bearer guess-${i}` },
        });
        statuses.push(response.status);
        if (response.status === 429) expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
      }
      expect(statuses.filter((s) => s === 401).length).toBe(20);
      expect(statuses.slice(20).every((s) => s === 429)).toBe(true);
      expect((await g.api('GET', '/api/connectors')).status).toBe(200);
    } finally {
      await g.stop();
    }
  });
});

describe('per-key rate limit', () => {
  it('is off by default, and limits requests per key per minute when GRANTRY_RATE_LIMIT is set', async () => {
    const unlimited = await startGrantry();
    try {
      const statuses = await Promise.all(
        Array.from({ length: 50 }, () => unlimited.api('GET', '/api/connectors')),
      );
      expect(statuses.every((a) => a.status === 200)).toBe(true);
    } finally {
      await unlimited.stop();
    }
    const limited = await startGrantry({ env: { GRANTRY_RATE_LIMIT: '5' } });
    try {
      const answers = [];
      for (let i = 0; i < 7; i++) answers.push(await limited.api('GET', '/api/connectors'));
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 429, 429]);
      expect(answers[5]?.body.error.code).toBe('rate_limited');
      expect(Number(answers[5]?.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((await fetch(`${limited.url}/healthz`)).status).toBe(200);
    } finally {
      await limited.stop();
    }
  });
});

describe('secrets at rest and across restarts', () => {
  it('keeps secrets out of responses, the log and the database file; a restart reads them back', async () => {
    const first = await spawnGrantry();
    const secret = `CANARY-SECRET-${Math.random().toString(36).slice(2)}`;
    const password = `CANARY-PASSWORD-${Math.random().toString(36).slice(2)}`;
    const created = await first.api('POST', '/api/authentications', {
      ...cc(),
      grantType: 'password',
      clientSecret: secret,
      username: 'alice',
      password,
    });
    expect(created.status).toBe(201);
    await first.api('POST', `/api/authentications/${created.body.id}/test`);
    await first.stop();

    const files = ['grantry.db', 'grantry.db-wal'].map((f) => join(first.dataDir, f));
    for (const file of [...files, first.logFile]) {
      let content = '';
      try {
        content = readFileSync(file).toString('latin1');
      } catch {
        continue;
      }
      expect(content, file).not.toContain(secret);
      expect(content, file).not.toContain(password);
      expect(content, file).not.toContain(first.apiKey);
    }

    // Same master key: everything reads back.
    const second = await spawnGrantry({
      dataDir: first.dataDir,
      masterKey: first.env.GRANTRY_MASTER_KEY as string,
      apiKey: first.apiKey,
    });
    try {
      const again = await second.api('GET', `/api/authentications/${created.body.id}`);
      expect(again.status).toBe(200);
      expect(again.body).toMatchObject({ name: created.body.name, clientSecretSet: true, passwordSet: true });
    } finally {
      await second.stop();
    }

    // Another master key: start-up says exactly that.
    await expect(spawnGrantry({ dataDir: first.dataDir, apiKey: first.apiKey })).rejects.toThrow(
      /master key/i,
    );
  });
});
