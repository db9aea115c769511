/**
 * A write-only secret stays write-only against someone holding an admin key (docs/security.md
 * "Credentials go only where they were configured to go"): a static credential is bound to the
 * origins of the connectors that use it, and a connector's secret headers do not follow it to
 * another origin unless given again. Attacked over HTTP against a running Grantry, with a real
 * "collector" API on another origin that must never see the secret.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../src/app.js';
import { type ApiFixture, startApiServer } from './support/api-server.js';
import { type GrantryHandle, startGrantry } from './support/grantry.js';

const API_KEY = 'bound-KEY-5e21';
const HEADER_SECRET = 'header-SECRET-91c4';

describe('credentials bound to where they were configured to go', () => {
  let g: GrantryHandle & { app: App };
  let api: ApiFixture;
  let collector: ApiFixture;

  beforeAll(async () => {
    g = await startGrantry();
    const options = { http: true, verify: async () => true, authenticate: async () => true } as const;
    api = await startApiServer(options);
    collector = await startApiServer(options);
  });
  afterAll(async () => {
    await g?.stop();
    await api?.close();
    await collector?.close();
  });

  const leaked = () =>
    collector.requests.some((request) => JSON.stringify(request.headers).includes(API_KEY.slice(0, 9)));

  async function apiKeyAuthentication(name: string) {
    const created = await g.api('POST', '/api/authentications', {
      name,
      type: 'api_key',
      apiKey: API_KEY,
      apiKeyName: 'X-Api-Key',
    });
    expect(created.status, created.text).toBe(201);
    expect(created.body.boundOrigins).toEqual([]);
    return created.body.id as string;
  }

  it('binds an API key to the first connector’s origin and refuses to attach it to another one', async () => {
    const authId = await apiKeyAuthentication('bound key');
    const first = await g.api('POST', '/api/connectors', {
      name: 'bound api',
      baseUrl: `${api.url}/v1`,
      authenticationId: authId,
    });
    expect(first.status, first.text).toBe(201);
    expect((await g.api('GET', `/api/authentications/${authId}`)).body.boundOrigins).toEqual([api.url]);

    // The same origin under another path is where the credential already goes.
    const sibling = await g.api('POST', '/api/connectors', {
      name: 'bound api v2',
      baseUrl: `${api.url}/v2`,
      authenticationId: authId,
    });
    expect(sibling.status, sibling.text).toBe(201);

    const elsewhere = await g.api('POST', '/api/connectors', {
      name: 'collector',
      baseUrl: collector.url,
      authenticationId: authId,
    });
    expect(elsewhere.status, elsewhere.text).toBe(400);
    expect(elsewhere.body.error.code).toBe('validation_failed');
    expect(elsewhere.body.error.errors).toEqual([
      { path: '/authenticationId', message: expect.stringContaining(`only to ${api.url}`) },
    ]);
    expect(elsewhere.text).not.toContain(API_KEY);

    const unattached = await g.api('POST', '/api/connectors', {
      name: 'collector 2',
      baseUrl: collector.url,
    });
    expect(unattached.status).toBe(201);
    const attach = await g.api('PATCH', `/api/connectors/${unattached.body.id}`, {
      authenticationId: authId,
    });
    expect(attach.status).toBe(400);
    expect(attach.body.error.errors[0].path).toBe('/authenticationId');

    const moved = await g.api('PATCH', `/api/connectors/${first.body.id}`, {
      baseUrl: `${collector.url}/v1`,
    });
    expect(moved.status).toBe(400);
    expect(moved.body.error.errors).toEqual([
      { path: '/baseUrl', message: expect.stringContaining('give its secret again') },
    ]);
    expect((await g.api('GET', `/api/connectors/${first.body.id}`)).body.baseUrl).toBe(`${api.url}/v1`);

    // Nothing reached the collector, and the connector still calls its API with the key.
    collector.reset();
    const call = await g.api('POST', `/api/connectors/${first.body.id}/execute`, {
      method: 'GET',
      path: '/echo',
    });
    expect(call.status, call.text).toBe(200);
    expect(api.requests.at(-1)?.headers['x-api-key']).toBe(API_KEY);
    expect(collector.requests).toHaveLength(0);
  });

  it('keeps the binding through a PATCH without the secret; giving the secret again lets it go to a new origin', async () => {
    const authId = await apiKeyAuthentication('rebound key');
    const home = await g.api('POST', '/api/connectors', {
      name: 'rebound api',
      baseUrl: api.url,
      authenticationId: authId,
    });
    expect(home.status).toBe(201);
    const renamed = await g.api('PATCH', `/api/authentications/${authId}`, { name: 'rebound key (renamed)' });
    expect(renamed.body.boundOrigins).toEqual([api.url]);
    const refused = await g.api('POST', '/api/connectors', {
      name: 'rebound collector',
      baseUrl: collector.url,
      authenticationId: authId,
    });
    expect(refused.status).toBe(400);

    const regiven = await g.api('PATCH', `/api/authentications/${authId}`, { apiKey: API_KEY });
    expect(regiven.status, regiven.text).toBe(200);
    expect(regiven.body.boundOrigins).toEqual([]);
    const allowed = await g.api('POST', '/api/connectors', {
      name: 'rebound second api',
      baseUrl: collector.url,
      authenticationId: authId,
    });
    expect(allowed.status, allowed.text).toBe(201);
    // Bound to both: the connector already using it keeps working.
    expect((await g.api('GET', `/api/authentications/${authId}`)).body.boundOrigins).toEqual(
      [api.url, collector.url].sort(),
    );
    const call = await g.api('POST', `/api/connectors/${home.body.id}/execute`, {
      method: 'GET',
      path: '/echo',
    });
    expect(call.status).toBe(200);
  });

  it('lets exactly one of two connectors on different origins bind an unbound key at the same moment', async () => {
    const authId = await apiKeyAuthentication('raced key');
    const answers = await Promise.all(
      [api.url, collector.url].map((baseUrl, index) =>
        g.api('POST', '/api/connectors', { name: `raced ${index}`, baseUrl, authenticationId: authId }),
      ),
    );
    expect(answers.map((answer) => answer.status).sort()).toEqual([201, 400]);
    const winner = answers.find((answer) => answer.status === 201);
    expect((await g.api('GET', `/api/authentications/${authId}`)).body.boundOrigins).toEqual([
      new URL(winner?.body.baseUrl).origin,
    ]);
  });

  it('does not bind OAuth 2.0 authentications (their tokens are short-lived; the client secret never goes to the API)', async () => {
    const created = await g.api('POST', '/api/authentications', {
      name: 'oauth unbound',
      type: 'oauth2',
      grantType: 'client_credentials',
      tokenUrl: `${api.url}/token`,
      clientId: 'c',
      clientSecret: 's',
    });
    expect(created.status, created.text).toBe(201);
    expect(created.body.boundOrigins).toBeUndefined();
    for (const [index, baseUrl] of [api.url, collector.url].entries()) {
      const connector = await g.api('POST', '/api/connectors', {
        name: `oauth user ${index}`,
        baseUrl,
        authenticationId: created.body.id,
      });
      expect(connector.status, connector.text).toBe(201);
    }
  });

  it('refuses to move a connector with secret headers to another origin unless they are given again or removed', async () => {
    const connector = await g.api('POST', '/api/connectors', {
      name: 'secret headers',
      baseUrl: api.url,
      secretHeaders: { 'X-Secret': HEADER_SECRET, 'X-Other': 'other-secret' },
    });
    expect(connector.status, connector.text).toBe(201);
    const id = connector.body.id as string;

    const moved = await g.api('PATCH', `/api/connectors/${id}`, { baseUrl: collector.url });
    expect(moved.status).toBe(400);
    expect(moved.body.error.errors.map((e: { path: string }) => e.path).sort()).toEqual([
      '/secretHeaders/x-other',
      '/secretHeaders/x-secret',
    ]);
    expect(moved.text).not.toContain(HEADER_SECRET);

    // Within the origin, nothing is asked.
    expect((await g.api('PATCH', `/api/connectors/${id}`, { baseUrl: `${api.url}/v2` })).status).toBe(200);

    const partly = await g.api('PATCH', `/api/connectors/${id}`, {
      baseUrl: collector.url,
      secretHeaders: { 'X-Secret': 'a-new-secret' },
    });
    expect(partly.status).toBe(400);
    expect(partly.body.error.errors.map((e: { path: string }) => e.path)).toEqual(['/secretHeaders/x-other']);

    const done = await g.api('PATCH', `/api/connectors/${id}`, {
      baseUrl: collector.url,
      secretHeaders: { 'X-Secret': 'a-new-secret', 'X-Other': null },
    });
    expect(done.status, done.text).toBe(200);
    expect(done.body.secretHeaderNames).toEqual(['x-secret']);

    collector.reset();
    const call = await g.api('POST', `/api/connectors/${id}/execute`, { method: 'GET', path: '/echo' });
    expect(call.status).toBe(200);
    expect(collector.requests[0]?.headers['x-secret']).toBe('a-new-secret');
    expect(JSON.stringify(collector.requests)).not.toContain(HEADER_SECRET);
    expect(leaked()).toBe(false);
  });
});
