import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GrantryHandle, startGrantry } from './support/grantry.js';
import { type OidcFixture, startOidcProvider } from './support/oidc.js';

/**
 * `clientAuthMethod: "auto"` (API.md) against real oidc-providers that refuse a client
 * authenticating the other way than it is registered (401 invalid_client), as many providers do:
 * - one that publishes metadata without `token_endpoint_auth_methods_supported`, so Grantry must
 *   guess: Basic first, then the body once, and keep what worked;
 * - one whose metadata lists only `client_secret_post`, so the metadata decides and no guess is sent.
 * Token requests are counted where they arrive: at the provider.
 */
const POST_ONLY = { client_id: 'post-only', client_secret: 'post-only-secret' };
const BASIC_ONLY = { client_id: 'basic-only', client_secret: 'basic-only-secret' };
const LISTED_POST = { client_id: 'listed-post', client_secret: 'listed-post-secret' };

describe('clientAuthMethod auto against oidc-provider', () => {
  let silent: OidcFixture;
  let listing: OidcFixture;
  let g: GrantryHandle & { app: Awaited<ReturnType<typeof startGrantry>>['app'] };

  beforeAll(async () => {
    silent = await startOidcProvider({
      advertiseClientAuthMethods: false,
      clients: [
        {
          ...POST_ONLY,
          grant_types: ['client_credentials', 'password', 'refresh_token'],
          token_endpoint_auth_method: 'client_secret_post',
        },
        {
          ...BASIC_ONLY,
          grant_types: ['client_credentials'],
          token_endpoint_auth_method: 'client_secret_basic',
        },
      ],
    });
    listing = await startOidcProvider({
      clientAuthMethods: ['client_secret_post'],
      clients: [
        {
          ...LISTED_POST,
          grant_types: ['client_credentials'],
          token_endpoint_auth_method: 'client_secret_post',
        },
      ],
    });
    g = await startGrantry();
  });
  afterAll(async () => {
    await g?.stop();
    await silent?.close();
    await listing?.close();
  });

  async function create(body: Record<string, unknown>): Promise<string> {
    const answer = await g.api('POST', '/api/authentications', {
      name: `auto-${Math.random().toString(36).slice(2)}`,
      type: 'oauth2',
      grantType: 'client_credentials',
      tokenUrl: silent.tokenUrl,
      clientAuthMethod: 'auto',
      ...body,
    });
    expect(answer.status, answer.text).toBe(201);
    return answer.body.id;
  }

  async function events(id: string): Promise<{ type: string; detail: Record<string, unknown> }[]> {
    return (await g.api('GET', `/api/authentications/${id}/events`)).body.items;
  }

  it('a provider that refuses Basic: Basic, then the body once; the body is kept, and later requests make one attempt', async () => {
    const id = await create({ clientId: POST_ONLY.client_id, clientSecret: POST_ONLY.client_secret });
    const before = await g.api('GET', `/api/authentications/${id}`);
    expect(before.body).toMatchObject({ clientAuthMethod: 'auto', detectedClientAuthMethod: null });

    silent.resetCounts();
    const test = await g.api('POST', `/api/authentications/${id}/test`);
    expect(test.body).toMatchObject({ ok: true, token: { source: 'fetched' } });
    // One refused attempt with Basic, one accepted with the body.
    expect(silent.tokenRequests.client_credentials).toBe(2);

    const view = await g.api('GET', `/api/authentications/${id}`);
    expect(view.body).toMatchObject({
      clientAuthMethod: 'auto',
      detectedClientAuthMethod: 'client_secret_post',
    });
    expect(view.body.status).toBe('ready');
    expect(view.body.lastError).toBeNull();
    const detected = (await events(id)).filter((event) => event.type === 'client_auth_detected');
    expect(detected).toEqual([
      {
        at: expect.any(String),
        type: 'client_auth_detected',
        detail: {
          clientAuthMethod: 'client_secret_post',
          tried: ['client_secret_basic', 'client_secret_post'],
        },
      },
    ]);

    // The next token requests go the way that worked, at once.
    for (let round = 0; round < 3; round++) {
      silent.resetCounts();
      await g.api('POST', `/api/authentications/${id}/invalidate`);
      const again = await g.api('POST', `/api/authentications/${id}/test`);
      expect(again.body).toMatchObject({ ok: true, token: { source: 'fetched' } });
      expect(silent.tokenRequests.client_credentials).toBe(1);
    }
    expect((await events(id)).filter((event) => event.type === 'client_auth_detected')).toHaveLength(1);
  });

  it('a provider that refuses the body: Basic works at once, one request', async () => {
    const id = await create({ clientId: BASIC_ONLY.client_id, clientSecret: BASIC_ONLY.client_secret });
    silent.resetCounts();
    const test = await g.api('POST', `/api/authentications/${id}/test`);
    expect(test.body).toMatchObject({ ok: true });
    expect(silent.tokenRequests.client_credentials).toBe(1);
    expect((await g.api('GET', `/api/authentications/${id}`)).body.detectedClientAuthMethod).toBe(
      'client_secret_basic',
    );
  });

  it('refresh requests go the detected way too (Password grant with refresh tokens)', async () => {
    const id = await create({
      grantType: 'password',
      clientId: POST_ONLY.client_id,
      clientSecret: POST_ONLY.client_secret,
      username: 'alice',
      password: 'wonderland',
    });
    silent.resetCounts();
    expect((await g.api('POST', `/api/authentications/${id}/test`)).body.ok).toBe(true);
    expect(silent.tokenRequests).toMatchObject({ password: 2, refresh_token: 0 });
    silent.resetCounts();
    await g.api('POST', `/api/authentications/${id}/invalidate`);
    const refreshed = await g.api('POST', `/api/authentications/${id}/test`);
    expect(refreshed.body).toMatchObject({ ok: true, token: { source: 'refreshed' } });
    expect(silent.tokenRequests).toMatchObject({ total: 1, refresh_token: 1 });
  });

  it('when both ways are refused, the diagnosis says both were tried; the back-off then holds', async () => {
    const id = await create({ clientId: POST_ONLY.client_id, clientSecret: 'not-the-secret' });
    silent.resetCounts();
    const test = await g.api('POST', `/api/authentications/${id}/test`);
    expect(silent.tokenRequests.client_credentials).toBe(2);
    expect(test.body.ok).toBe(false);
    expect(test.body.error.code).toBe('invalid_client');
    expect(test.body.error.hint).toMatch(/both ways/);
    expect(test.body.error.hint).toContain('client_secret_basic');
    expect(test.body.error.hint).toContain('client_secret_post');
    expect(test.text).not.toContain('not-the-secret');
    expect((await g.api('GET', `/api/authentications/${id}`)).body.detectedClientAuthMethod).toBeNull();
    silent.resetCounts();
    await expect(g.app.tokens.get(id)).rejects.toMatchObject({ code: 'invalid_client' });
    expect(silent.tokenRequests.total).toBe(0);
  });

  it('a change that shapes the token request forgets what was detected', async () => {
    const id = await create({ clientId: POST_ONLY.client_id, clientSecret: POST_ONLY.client_secret });
    await g.api('POST', `/api/authentications/${id}/test`);
    const patched = await g.api('PATCH', `/api/authentications/${id}`, { scope: 'read' });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.body.detectedClientAuthMethod).toBeNull();
    silent.resetCounts();
    await g.api('POST', `/api/authentications/${id}/test`);
    expect(silent.tokenRequests.client_credentials).toBe(2);
  });

  it('metadata that lists the methods decides: only the listed one is sent', async () => {
    const id = await create({
      tokenUrl: listing.tokenUrl,
      clientId: LISTED_POST.client_id,
      clientSecret: LISTED_POST.client_secret,
    });
    listing.resetCounts();
    const test = await g.api('POST', `/api/authentications/${id}/test`);
    expect(test.body).toMatchObject({ ok: true, token: { source: 'fetched' } });
    expect(listing.tokenRequests.client_credentials).toBe(1);
    expect((await g.api('GET', `/api/authentications/${id}`)).body.detectedClientAuthMethod).toBe(
      'client_secret_post',
    );
    const [detected] = (await events(id)).filter((event) => event.type === 'client_auth_detected');
    expect(detected?.detail).toEqual({
      clientAuthMethod: 'client_secret_post',
      tried: ['client_secret_post'],
    });
  });

  it('stays client_secret_basic by default in the API, and answers detectedClientAuthMethod only for auto', async () => {
    const answer = await g.api('POST', '/api/authentications', {
      name: `plain-${Math.random().toString(36).slice(2)}`,
      type: 'oauth2',
      grantType: 'client_credentials',
      tokenUrl: silent.tokenUrl,
      clientId: BASIC_ONLY.client_id,
      clientSecret: BASIC_ONLY.client_secret,
    });
    expect(answer.body.clientAuthMethod).toBe('client_secret_basic');
    expect(answer.body).not.toHaveProperty('detectedClientAuthMethod');
  });
});
