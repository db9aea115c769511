import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Egress } from '../src/egress/egress.js';
import { Problem } from '../src/problem.js';
import { type GrantryHandle, startGrantry } from './support/grantry.js';
import { type OidcFixture, startOidcProvider } from './support/oidc.js';

/**
 * The token engine against a real oidc-provider on HTTPS: grants, the single-flight burst,
 * expiry and refresh, rotation under concurrency, back-off, persistence across a restart.
 */
const SPECIAL_SECRET = 'p:a&s+s%w=o/r d';

describe('token engine against oidc-provider', () => {
  let oidc: OidcFixture;
  let g: GrantryHandle & { app: Awaited<ReturnType<typeof startGrantry>>['app'] };

  beforeAll(async () => {
    oidc = await startOidcProvider({
      accessTokenTtl: 3,
      rotateRefreshToken: true,
      resources: { 'https://api.example.test': { scope: 'read write' } },
      clients: [
        {
          client_id: 'svc-basic',
          client_secret: SPECIAL_SECRET,
          grant_types: ['client_credentials'],
          token_endpoint_auth_method: 'client_secret_basic',
          scope: 'read write',
        },
        {
          client_id: 'svc-post',
          client_secret: 'post-secret',
          grant_types: ['client_credentials'],
          token_endpoint_auth_method: 'client_secret_post',
          scope: 'read',
        },
        {
          client_id: 'app-password',
          client_secret: 'pw-secret',
          grant_types: ['password', 'refresh_token'],
          token_endpoint_auth_method: 'client_secret_basic',
          scope: 'read write offline_access',
        },
      ],
    });
    g = await startGrantry();
  });
  afterAll(async () => {
    await g?.stop();
    await oidc?.close();
  });

  async function createAuth(body: Record<string, unknown>): Promise<string> {
    const answer = await g.api('POST', '/api/authentications', {
      name: `auth-${Math.random().toString(36).slice(2)}`,
      type: 'oauth2',
      tokenUrl: oidc.tokenUrl,
      ...body,
    });
    expect(answer.status, answer.text).toBe(201);
    return answer.body.id;
  }

  it('client_secret_basic form-encodes id and secret (RFC 6749 §2.3.1), and a burst of 200 makes one request', async () => {
    const id = await createAuth({
      grantType: 'client_credentials',
      clientId: 'svc-basic',
      clientSecret: SPECIAL_SECRET,
      scope: 'read',
    });
    oidc.resetCounts();
    const tokens = await Promise.all(Array.from({ length: 200 }, () => g.app.tokens.get(id)));
    expect(oidc.tokenRequests.client_credentials).toBe(1);
    expect(new Set(tokens.map((t) => t.authorization)).size).toBe(1);
    const token = tokens[0]!.authorization.replace(/^Bearer /, '');
    expect((await oidc.verifyAccessToken(token)).active).toBe(true);

    const test = await g.api('POST', `/api/authentications/${id}/test`);
    expect(test.body).toMatchObject({ ok: true, token: { source: 'cache', tokenType: expect.any(String) } });
    expect(test.text).not.toContain(token);
    const view = await g.api('GET', `/api/authentications/${id}`);
    expect(view.body.token).toMatchObject({ scope: 'read', hasRefreshToken: false });
    expect(view.body.status).toBe('ready');
  });

  it('client_secret_post sends the credentials in the body', async () => {
    const id = await createAuth({
      grantType: 'client_credentials',
      clientId: 'svc-post',
      clientSecret: 'post-secret',
      clientAuthMethod: 'client_secret_post',
    });
    const test = await g.api('POST', `/api/authentications/${id}/test`);
    expect(test.body).toMatchObject({ ok: true, token: { source: 'fetched' } });
  });

  it('sends the audience as an RFC 8707 resource when asked', async () => {
    const id = await createAuth({
      grantType: 'client_credentials',
      clientId: 'svc-basic',
      clientSecret: SPECIAL_SECRET,
      audience: 'https://api.example.test',
      audienceParam: 'resource',
      scope: 'read',
    });
    const token = await g.app.tokens.get(id);
    const verified = await oidc.verifyAccessToken(token.authorization.slice('Bearer '.length));
    expect(verified.active).toBe(true);
    expect(verified.aud).toEqual(expect.stringContaining('https://api.example.test'));
  });

  it('explains a wrong client secret, remembers the failure and does not hammer the provider', async () => {
    const id = await createAuth({
      grantType: 'client_credentials',
      clientId: 'svc-basic',
      clientSecret: 'wrong',
    });
    const test = await g.api('POST', `/api/authentications/${id}/test`);
    expect(test.body.ok).toBe(false);
    expect(test.body.error).toMatchObject({
      code: 'invalid_client',
      hint: expect.stringMatching(/Client ID/),
    });
    expect(test.body.error.provider.status).toBe(401);
    oidc.resetCounts();
    for (let i = 0; i < 5; i++) {
      await expect(g.app.tokens.get(id)).rejects.toMatchObject({ code: 'invalid_client' });
    }
    expect(oidc.tokenRequests.total).toBe(0);
    const view = await g.api('GET', `/api/authentications/${id}`);
    expect(view.body.status).toBe('error');
    expect(view.body.lastError.code).toBe('invalid_client');
    const events = await g.api('GET', `/api/authentications/${id}/events`);
    expect(events.body.items[0]).toMatchObject({ type: 'token_failed', detail: { code: 'invalid_client' } });
    expect(events.text).not.toContain('wrong');

    // Fixing the secret clears the remembered failure at once.
    await g.api('PATCH', `/api/authentications/${id}`, { clientSecret: SPECIAL_SECRET });
    expect((await g.api('POST', `/api/authentications/${id}/test`)).body.ok).toBe(true);
    expect((await g.api('GET', `/api/authentications/${id}`)).body).toMatchObject({
      status: 'ready',
      lastError: null,
    });
  });

  it('diagnoses a refused scope and a wrong password', async () => {
    const scoped = await createAuth({
      grantType: 'client_credentials',
      clientId: 'svc-post',
      clientSecret: 'post-secret',
      clientAuthMethod: 'client_secret_post',
      scope: 'admin',
    });
    const scope = await g.api('POST', `/api/authentications/${scoped}/test`);
    expect(scope.body.error.code).toBe('invalid_scope');
    expect(scope.body.error.hint).toMatch(/scope/i);

    const pw = await createAuth({
      grantType: 'password',
      clientId: 'app-password',
      clientSecret: 'pw-secret',
      username: 'alice',
      password: 'not-her-password',
    });
    const wrong = await g.api('POST', `/api/authentications/${pw}/test`);
    expect(wrong.body.error.code).toBe('invalid_grant');
    expect(wrong.body.error.hint).toMatch(/username|password/i);
  });

  it('refreshes before expiry with the refresh token, and rotation under concurrency never trips reuse detection', async () => {
    const id = await createAuth({
      grantType: 'password',
      clientId: 'app-password',
      clientSecret: 'pw-secret',
      username: 'alice',
      password: 'wonderland',
      scope: 'read offline_access',
    });
    oidc.resetCounts();
    const first = await g.app.tokens.get(id);
    expect(first.hasRefreshToken).toBe(true);
    expect(oidc.tokenRequests.password).toBe(1);

    for (let round = 1; round <= 3; round++) {
      await sleep(3_100); // past expiry (3 s tokens)
      const burst = await Promise.all(Array.from({ length: 50 }, () => g.app.tokens.get(id)));
      expect(new Set(burst.map((t) => t.authorization)).size).toBe(1);
      expect(oidc.tokenRequests.refresh_token).toBe(round);
      expect(oidc.tokenRequests.password).toBe(1);
      const verified = await oidc.verifyAccessToken(burst[0]!.authorization.slice(7));
      expect(verified.active).toBe(true);
    }
    const events = await g.api('GET', `/api/authentications/${id}/events`);
    expect(events.body.items.filter((e: { type: string }) => e.type === 'token_refreshed')).toHaveLength(3);
    expect(events.body.items.some((e: { type: string }) => e.type === 'token_failed')).toBe(false);
  }, 60_000);

  it('invalidate drops the access token and the next use refreshes; 401s from many callers cause one re-fetch', async () => {
    const id = await createAuth({
      grantType: 'password',
      clientId: 'app-password',
      clientSecret: 'pw-secret',
      username: 'alice',
      password: 'wonderland',
    });
    const before = await g.app.tokens.get(id);
    expect((await g.api('POST', `/api/authentications/${id}/invalidate`)).status).toBe(204);
    expect((await g.api('GET', `/api/authentications/${id}`)).body.token).toBeNull();
    oidc.resetCounts();
    const test = await g.api('POST', `/api/authentications/${id}/test`);
    expect(test.body.token.source).toBe('refreshed');
    expect(oidc.tokenRequests.refresh_token).toBe(1);

    const current = await g.app.tokens.get(id);
    expect(current.authorization).not.toBe(before.authorization);
    oidc.resetCounts();
    const again = await Promise.all(
      Array.from({ length: 20 }, () => g.app.tokens.get(id, { force: true, rejected: current })),
    );
    expect(oidc.tokenRequests.total).toBe(1);
    expect(new Set(again.map((t) => t.authorization)).size).toBe(1);
    // A late 401 for the old token reuses the new one instead of fetching again.
    await g.app.tokens.get(id, { force: true, rejected: current });
    expect(oidc.tokenRequests.total).toBe(1);
  });

  it('falls back to the password grant when the refresh token is refused', async () => {
    const id = await createAuth({
      grantType: 'password',
      clientId: 'app-password',
      clientSecret: 'pw-secret',
      username: 'alice',
      password: 'wonderland',
    });
    await g.app.tokens.get(id);
    // Revoke the refresh token at the provider, as an administrator would.
    const egress = new Egress({ mode: 'default', allowHttp: 'off' });
    const { revokeToken } = await import('../src/oauth/revocation.js');
    const row = await g.app.store.tokens.get(id);
    const { sealContext } = await import('../src/tokens/sealed-columns.js');
    const refresh = g.app.keyRing.open(row!.refreshToken!, sealContext.refreshToken(id));
    await revokeToken(
      {
        revocationUrl: oidc.revocationUrl,
        clientId: 'app-password',
        clientSecret: 'pw-secret',
        clientAuthMethod: 'client_secret_basic',
      },
      { token: refresh, tokenTypeHint: 'refresh_token' },
      { fetch: egress.fetch },
    );
    await egress.close();
    await g.api('POST', `/api/authentications/${id}/invalidate`);
    oidc.resetCounts();
    const test = await g.api('POST', `/api/authentications/${id}/test`);
    expect(test.body).toMatchObject({ ok: true, token: { source: 'fetched' } });
    expect(oidc.tokenRequests.refresh_token).toBe(1);
    expect(oidc.tokenRequests.password).toBe(1);
  });

  it('keeps tokens across a restart: a valid stored token is not fetched again', async () => {
    const id = await createAuth({
      grantType: 'client_credentials',
      clientId: 'svc-basic',
      clientSecret: SPECIAL_SECRET,
    });
    await g.app.tokens.get(id);
    const { TokenManager } = await import('../src/tokens/token-manager.js');
    const egress = new Egress({ mode: 'default', allowHttp: 'off' });
    const restarted = new TokenManager({
      store: g.app.store,
      keyRing: g.app.keyRing,
      fetch: egress.fetch,
      tokenTimeoutMs: 5_000,
      redirectUri: 'http://localhost/oauth/redirect',
    });
    oidc.resetCounts();
    const result = await restarted.acquire(id);
    expect(result.source).toBe('cache');
    expect(oidc.tokenRequests.total).toBe(0);
    await restarted.close();
    await egress.close();
  });

  it('reports an unreachable token endpoint as token_fetch_failed with a hint', async () => {
    const id = await createAuth({
      grantType: 'client_credentials',
      clientId: 'x',
      clientSecret: 'y',
      tokenUrl: 'https://127.0.0.1:9/token',
    });
    const test = await g.api('POST', `/api/authentications/${id}/test`);
    expect(test.body.ok).toBe(false);
    expect(test.body.error.code).toBe('token_fetch_failed');
    expect(test.body.error.hint).toMatch(/Token URL/i);
    await expect(g.app.tokens.get(id)).rejects.toBeInstanceOf(Problem);
  });
});
