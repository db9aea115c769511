/**
 * Static credentials on the data plane (docs/api.md "Static credentials"): an API key in a header
 * (with and without a prefix) or in the query, HTTP Basic with a colon and non-ASCII characters in
 * the password, a bearer token with a custom prefix or none — each sent by execute, the connector
 * test and the proxy to a real HTTPS API that checks it, exactly once per request; a refusal is
 * reported naming the kind, and never retried.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../src/app.js';
import { type ApiFixture, startApiServer } from './support/api-server.js';
import { type GrantryHandle, startGrantry } from './support/grantry.js';

const KEY_IN_HEADER = 'hdr-KEY-7f2a';
const KEY_WITH_PREFIX = 'pfx-KEY-1b9c';
/** Characters that must be percent-encoded in a query: the API must still read the key as saved. */
const KEY_IN_QUERY = 'q KEY/+&=?#-44d0';
const BASIC_USER = 'zoë-integration';
const BASIC_PASSWORD = 'pa:ss:wörd-€-9e1f';
const BEARER_TOKEN = 'static-TOKEN-c3d8';

/** What the test API accepts, each exactly as the API's documentation would say it. */
function accepted(headers: IncomingHttpHeaders, query: URLSearchParams): boolean {
  const basic = `Basic ${Buffer.from(`${BASIC_USER}:${BASIC_PASSWORD}`, 'utf8').toString('base64')}`;
  return (
    headers['x-api-key'] === KEY_IN_HEADER ||
    headers.authorization === `Token ${KEY_WITH_PREFIX}` ||
    query.getAll('api_key').join('|') === KEY_IN_QUERY ||
    headers.authorization === basic ||
    headers.authorization === `JWT ${BEARER_TOKEN}` ||
    headers['x-raw-token'] === BEARER_TOKEN ||
    headers.authorization === BEARER_TOKEN
  );
}

describe('static credentials through execute, test and the proxy', () => {
  let g: GrantryHandle & { app: App };
  let api: ApiFixture;

  beforeAll(async () => {
    g = await startGrantry();
    api = await startApiServer({
      verify: async () => false,
      authenticate: async ({ headers, query }) =>
        accepted(headers, query)
          ? true
          : { ok: false, status: 401, wwwAuthenticate: 'ApiKey realm="test API"' },
    });
  });
  afterAll(async () => {
    await g?.stop();
    await api?.close();
  });

  async function connectorWith(name: string, authentication: Record<string, unknown>, extra = {}) {
    const auth = await g.api('POST', '/api/authentications', { name, ...authentication });
    expect(auth.status, auth.text).toBe(201);
    const connector = await g.api('POST', '/api/connectors', {
      name,
      baseUrl: api.url,
      authenticationId: auth.body.id,
      ...extra,
    });
    expect(connector.status, connector.text).toBe(201);
    return { authId: auth.body.id as string, connectorId: connector.body.id as string };
  }

  /** Calls the connector three ways; answers what the API received each time. */
  async function throughEveryEntry(connectorId: string) {
    api.reset();
    const executed = await g.api('POST', `/api/connectors/${connectorId}/execute`, {
      method: 'GET',
      path: '/echo',
      query: { page: '2' },
    });
    const tested = await g.api('POST', `/api/connectors/${connectorId}/test`, {
      method: 'GET',
      path: '/echo',
    });
    const proxied = await fetch(`${g.url}/proxy/${connectorId}/echo?page=3`, {
      headers: { authorization: `Bearer ${g.apiKey}` },
    });
    await proxied.text();
    return { executed, tested, proxied, received: [...api.requests] };
  }

  const kinds: Array<{
    title: string;
    authentication: Record<string, unknown>;
    sentAs: string;
    check: (headers: IncomingHttpHeaders, query: Record<string, string>) => void;
  }> = [
    {
      title: 'an API key in a header',
      authentication: { type: 'api_key', apiKey: KEY_IN_HEADER, apiKeyName: 'X-API-Key' },
      sentAs: 'header X-API-Key',
      check: (headers) => {
        expect(headers['x-api-key']).toBe(KEY_IN_HEADER);
        expect(headers.authorization).toBeUndefined();
      },
    },
    {
      title: 'an API key in Authorization with a prefix',
      authentication: {
        type: 'api_key',
        apiKey: KEY_WITH_PREFIX,
        apiKeyName: 'Authorization',
        apiKeyPrefix: 'Token',
      },
      sentAs: 'header Authorization',
      check: (headers) => expect(headers.authorization).toBe(`Token ${KEY_WITH_PREFIX}`),
    },
    {
      title: 'an API key in the query, percent-encoded',
      authentication: { type: 'api_key', apiKey: KEY_IN_QUERY, apiKeyIn: 'query', apiKeyName: 'api_key' },
      sentAs: 'query parameter api_key',
      check: (headers, query) => {
        expect(query.api_key).toBe(KEY_IN_QUERY);
        expect(headers.authorization).toBeUndefined();
      },
    },
    {
      title: 'Basic with a colon and non-ASCII characters in the password (RFC 7617, UTF-8)',
      authentication: { type: 'basic', username: BASIC_USER, password: BASIC_PASSWORD },
      sentAs: 'header Authorization (Basic)',
      check: (headers) => {
        const encoded = (headers.authorization ?? '').replace(/^Basic /, '');
        expect(Buffer.from(encoded, 'base64').toString('utf8')).toBe(`${BASIC_USER}:${BASIC_PASSWORD}`);
      },
    },
    {
      title: 'a bearer token with a custom prefix',
      authentication: { type: 'bearer', token: BEARER_TOKEN, headerPrefix: 'JWT' },
      sentAs: 'header Authorization (JWT)',
      check: (headers) => expect(headers.authorization).toBe(`JWT ${BEARER_TOKEN}`),
    },
    {
      title: 'a bearer token with no prefix',
      authentication: { type: 'bearer', token: BEARER_TOKEN, headerPrefix: '' },
      sentAs: 'header Authorization (no prefix)',
      check: (headers) => expect(headers.authorization).toBe(BEARER_TOKEN),
    },
  ];

  for (const kind of kinds) {
    it(`sends ${kind.title}, once, by every entry point`, async () => {
      const { connectorId } = await connectorWith(`static ${kind.title}`, kind.authentication);
      const { executed, tested, proxied, received } = await throughEveryEntry(connectorId);
      expect(executed.status, executed.text).toBe(200);
      expect(executed.body.status).toBe(200);
      expect(executed.body.attempts).toBe(1);
      expect(tested.body.ok, tested.text).toBe(true);
      expect(tested.body.token).toEqual({ ok: true, kind: kind.authentication.type, sentAs: kind.sentAs });
      expect(proxied.status).toBe(200);
      // Three calls, three requests: nothing fetched, nothing retried.
      expect(received).toHaveLength(3);
      for (const request of received) {
        kind.check(request.headers, request.query);
        expect(request.path).toBe('/echo');
      }
      expect(received[0]?.query.page).toBe('2');
      expect(received[2]?.query.page).toBe('3');
      // The secret is never in Grantry's own answers (the API's echo is the caller's business).
      const views = await g.api('GET', '/api/authentications');
      for (const secret of [KEY_IN_HEADER, KEY_WITH_PREFIX, KEY_IN_QUERY, BASIC_PASSWORD, BEARER_TOKEN]) {
        expect(views.text).not.toContain(secret);
        expect(tested.text.replace(JSON.stringify(tested.body.response?.body ?? ''), '')).not.toContain(
          secret,
        );
      }
    });
  }

  it('reports a refused static credential naming its kind and where it went, and never retries it', async () => {
    const { authId, connectorId } = await connectorWith('refused key', {
      type: 'api_key',
      apiKey: 'revoked-key-0000',
      apiKeyName: 'X-API-Key',
    });
    const { executed, tested, proxied, received } = await throughEveryEntry(connectorId);
    expect(received).toHaveLength(3);
    expect(executed.body.status).toBe(401);
    expect(executed.body.attempts).toBe(1);
    expect(executed.body.tokenRefreshed).toBe(false);
    expect(executed.body.error).toMatchObject({
      code: 'upstream_unauthorized',
      message: 'The API answered 401 Unauthorized to the API key (sent as header X-API-Key).',
      provider: { status: 401, wwwAuthenticate: 'ApiKey realm="test API"' },
    });
    expect(executed.body.error.hint).toMatch(/Check the key itself .* Grantry does not retry/);
    expect(executed.text).not.toContain('revoked-key-0000');
    expect(tested.body).toMatchObject({
      ok: false,
      token: { ok: true, kind: 'api_key', sentAs: 'header X-API-Key' },
      error: { code: 'upstream_unauthorized' },
    });
    // The proxy passes the API's own answer through.
    expect(proxied.status).toBe(401);
    await g.app.usage.flush();
    const view = await g.api('GET', `/api/authentications/${authId}`);
    expect(view.body.usage).toEqual({ calls: 3, unauthorized: 3, refreshes: 0 });
    // A static credential has no token: its authentication stays ready.
    expect(view.body.status).toBe('ready');
  });

  it('Basic and bearer refusals name their kind too', async () => {
    const basic = await connectorWith('refused basic', {
      type: 'basic',
      username: 'nobody',
      password: 'x:y',
    });
    const bearer = await connectorWith('refused bearer', { type: 'bearer', token: 'expired-token-1' });
    const refusedBasic = await g.api('POST', `/api/connectors/${basic.connectorId}/execute`, {
      method: 'GET',
      path: '/echo',
    });
    expect(refusedBasic.body.error.message).toBe(
      'The API answered 401 Unauthorized to the Basic credentials (sent as header Authorization (Basic)).',
    );
    expect(refusedBasic.body.error.hint).toMatch(/username and password/);
    const refusedBearer = await g.api('POST', `/api/connectors/${bearer.connectorId}/execute`, {
      method: 'GET',
      path: '/echo',
    });
    expect(refusedBearer.body.error.message).toBe(
      'The API answered 401 Unauthorized to the bearer token (sent as header Authorization (Bearer)).',
    );
    expect(refusedBearer.body.error.hint).toMatch(/still valid/);
  });

  it('lets the credential win over a field of the same name: the caller’s is refused or dropped, the connector’s dropped', async () => {
    const inHeader = await connectorWith(
      'key beside static headers',
      { type: 'api_key', apiKey: KEY_IN_HEADER, apiKeyName: 'X-API-Key' },
      { headers: { 'X-Api-Key': 'connector-static-value', 'X-Tenant': 'acme' } },
    );
    api.reset();
    const refused = await g.api('POST', `/api/connectors/${inHeader.connectorId}/execute`, {
      method: 'GET',
      path: '/echo',
      headers: { 'x-api-key': 'caller-value' },
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error.errors).toEqual([
      { path: '/headers/x-api-key', message: "is set from the connector's authentication" },
    ]);
    const sent = await g.api('POST', `/api/connectors/${inHeader.connectorId}/execute`, {
      method: 'GET',
      path: '/echo',
    });
    expect(sent.body.status).toBe(200);
    // The proxy's caller cannot put its own value beside the credential either.
    const proxied = await fetch(`${g.url}/proxy/${inHeader.connectorId}/echo`, {
      headers: { authorization: `Bearer ${g.apiKey}`, 'X-API-Key': 'caller-value' },
    });
    await proxied.text();
    expect(proxied.status).toBe(200);
    expect(api.requests).toHaveLength(2);
    for (const request of api.requests) {
      expect(request.headers['x-api-key']).toBe(KEY_IN_HEADER);
      expect(request.headers['x-tenant']).toBe('acme');
    }

    const inQuery = await connectorWith(
      'key beside a static query',
      { type: 'api_key', apiKey: KEY_IN_QUERY, apiKeyIn: 'query', apiKeyName: 'api_key' },
      { query: { api_key: 'connector-static-value', region: 'eu' } },
    );
    api.reset();
    const refusedQuery = await g.api('POST', `/api/connectors/${inQuery.connectorId}/execute`, {
      method: 'GET',
      path: '/echo',
      query: { api_key: 'caller-value' },
    });
    expect(refusedQuery.status).toBe(400);
    expect(refusedQuery.body.error.errors).toEqual([
      { path: '/query/api_key', message: "is set from the connector's authentication" },
    ]);
    const executedQuery = await g.api('POST', `/api/connectors/${inQuery.connectorId}/execute`, {
      method: 'GET',
      path: '/echo',
    });
    // The API accepts only exactly one api_key with the credential's value.
    expect(executedQuery.body.status).toBe(200);
    const proxiedQuery = await fetch(
      `${g.url}/proxy/${inQuery.connectorId}/echo?api_key=caller-value&page=4`,
      {
        headers: { authorization: `Bearer ${g.apiKey}` },
      },
    );
    await proxiedQuery.text();
    expect(proxiedQuery.status).toBe(200);
    expect(api.requests).toHaveLength(2);
    for (const request of api.requests) {
      // One api_key, the credential's: `query` keeps the last value, the API's check reads them all.
      expect(request.query.api_key).toBe(KEY_IN_QUERY);
      expect(request.query.region).toBe('eu');
    }
    expect(api.requests[1]?.query.page).toBe('4');
  });

  it('uses a changed key from the next call on, without a restart', async () => {
    const { authId, connectorId } = await connectorWith('rotated key', {
      type: 'api_key',
      apiKey: 'old-key-5555',
      apiKeyName: 'X-API-Key',
    });
    const before = await g.api('POST', `/api/connectors/${connectorId}/execute`, {
      method: 'GET',
      path: '/echo',
    });
    expect(before.body.status).toBe(401);
    const patched = await g.api('PATCH', `/api/authentications/${authId}`, { apiKey: KEY_IN_HEADER });
    expect(patched.status, patched.text).toBe(200);
    const after = await g.api('POST', `/api/connectors/${connectorId}/execute`, {
      method: 'GET',
      path: '/echo',
    });
    expect(after.body.status).toBe(200);
  });
});
