import { generateKeyPairSync } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiFixture, startApiServer } from './support/api-server.js';
import { spawnGrantry } from './support/grantry.js';
import { type OidcFixture, startOidcProvider } from './support/oidc.js';
import { startWebhookReceiver, type WebhookReceiver } from './support/webhook-receiver.js';

/**
 * Canary test: run every flow that handles a secret — create, token fetch, refresh, execute,
 * proxy, a failing fetch, a 401 retry, webhook deliveries — with the log at debug level, then search
 * the log, the database files, every API answer (but the one that creates the webhook) and every
 * webhook request for each secret, token, refresh token, password, API key and webhook secret.
 */
describe('no secret leaves the service', () => {
  let oidc: OidcFixture;
  let api: ApiFixture;
  let receiver: WebhookReceiver;
  const seen = new Set<string>();
  const refreshTokens = new Set<string>();

  beforeAll(async () => {
    oidc = await startOidcProvider({
      accessTokenTtl: 2,
      clients: [
        {
          client_id: 'canary-cc',
          client_secret: 'CANARY-CC-SECRET-91c2',
          grant_types: ['client_credentials'],
          token_endpoint_auth_method: 'client_secret_basic',
        },
        {
          client_id: 'canary-pw',
          client_secret: 'CANARY-PW-SECRET-44ab',
          grant_types: ['password', 'refresh_token'],
          token_endpoint_auth_method: 'client_secret_post',
        },
      ],
      users: { alice: 'CANARY-PASSWORD-0d9e' },
      dpop: { requireNonce: true },
    });
    // Opaque oidc-provider tokens are their jti: collect every refresh token the provider issues.
    oidc.provider.on('refresh_token.saved', (token: { jti: string }) => refreshTokens.add(token.jti));
    api = await startApiServer({
      verify: async (token) => {
        seen.add(token);
        return (await oidc.verifyAccessToken(token)).active;
      },
    });
    receiver = await startWebhookReceiver();
  });
  afterAll(async () => {
    await receiver?.close();
    await api?.close();
    await oidc?.close();
  });

  it('finds none in the log, the database or the answers', async () => {
    const g = await spawnGrantry({ env: { GRANTRY_LOG_LEVEL: 'trace', GRANTRY_WEBHOOK_POLL_MS: '50' } });
    const answers: string[] = [];
    let webhookSecret = '';
    const call = async (method: string, path: string, body?: unknown) => {
      const answer = await g.api(method, path, body);
      answers.push(answer.text, JSON.stringify([...answer.headers]));
      return answer;
    };
    // Created first, so that the failures below are delivered to it; its answer is the one place the
    // secret may appear, and is kept out of `answers`.
    const hook = await g.api('POST', '/api/webhooks', {
      url: receiver.url,
      events: ['authentication.needs_attention', 'authentication.recovered', 'authentication.connected'],
    });
    expect(hook.status, hook.text).toBe(201);
    webhookSecret = hook.body.secret;
    receiver.verifyWith(webhookSecret);
    try {
      const cc = await call('POST', '/api/authentications', {
        name: 'canary cc',
        type: 'oauth2',
        grantType: 'client_credentials',
        tokenUrl: oidc.tokenUrl,
        clientId: 'canary-cc',
        clientSecret: 'CANARY-CC-SECRET-91c2',
      });
      const pw = await call('POST', '/api/authentications', {
        name: 'canary pw',
        type: 'oauth2',
        grantType: 'password',
        tokenUrl: oidc.tokenUrl,
        clientId: 'canary-pw',
        clientSecret: 'CANARY-PW-SECRET-44ab',
        clientAuthMethod: 'client_secret_post',
        username: 'alice',
        password: 'CANARY-PASSWORD-0d9e',
      });
      const wrong = await call('POST', '/api/authentications', {
        name: 'canary wrong',
        type: 'oauth2',
        grantType: 'client_credentials',
        tokenUrl: oidc.tokenUrl,
        clientId: 'canary-cc',
        clientSecret: 'CANARY-WRONG-SECRET-77f0',
      });
      for (const auth of [cc, pw, wrong]) {
        const connector = await call('POST', '/api/connectors', {
          name: `canary ${auth.body.id}`,
          baseUrl: api.url,
          authenticationId: auth.body.id,
        });
        await call('POST', `/api/authentications/${auth.body.id}/test`);
        await call('POST', `/api/connectors/${connector.body.id}/execute`, { method: 'GET', path: '/echo' });
        await call('POST', `/api/connectors/${connector.body.id}/test`, {});
        const proxied = await fetch(`${g.url}/proxy/${connector.body.id}/echo?x=1`, {
          headers: { authorization: `Bearer ${g.apiKey}` },
        });
        answers.push(await proxied.text());
      }
      // Expiry, refresh, invalidation and a 401 retry.
      await new Promise((r) => setTimeout(r, 2_100));
      await call('POST', `/api/authentications/${pw.body.id}/test`);
      await call('POST', `/api/authentications/${pw.body.id}/invalidate`);
      await call('POST', `/api/authentications/${pw.body.id}/test`);
      api.setBehaviour({ kind: 'unauthorized-next', count: 1 });
      const pwConnector = (await call('GET', '/api/connectors')).body.items.find(
        (c: { authenticationId: string }) => c.authenticationId === pw.body.id,
      );
      await call('POST', `/api/connectors/${pwConnector.id}/execute`, { method: 'GET', path: '/echo' });
      for (const auth of [cc, pw, wrong]) await call('GET', `/api/authentications/${auth.body.id}/events`);
      await call('GET', '/api/authentications');
      // Webhooks: a test event, the needs_attention of the wrong secret, and every read of the webhook.
      await call('POST', `/api/webhooks/${hook.body.id}/test`);
      await call('PATCH', `/api/webhooks/${hook.body.id}`, { description: 'canary' });
      for (let n = 0; n < 100 && receiver.accepted().size < 2; n++)
        await new Promise((r) => setTimeout(r, 50));
      await call('GET', `/api/webhooks/${hook.body.id}`);
      await call('GET', '/api/webhooks');
      await call('GET', `/api/webhooks/${hook.body.id}/deliveries`);
    } finally {
      await g.stop();
    }

    expect(receiver.accepted().size).toBeGreaterThanOrEqual(2);
    expect(receiver.received.every((r) => r.verified)).toBe(true);
    expect(seen.size).toBeGreaterThanOrEqual(3);
    expect(refreshTokens.size).toBeGreaterThanOrEqual(1);
    const canaries = [
      'CANARY-CC-SECRET-91c2',
      'CANARY-PW-SECRET-44ab',
      'CANARY-WRONG-SECRET-77f0',
      'CANARY-PASSWORD-0d9e',
      g.apiKey,
      webhookSecret,
      // The key bytes alone, as a log or a dump could show them without the whsec_ prefix.
      webhookSecret.slice('whsec_'.length),
      ...seen,
      ...refreshTokens,
    ];
    const places: Array<[string, string]> = [
      ['answers', answers.join('\n')],
      ['webhook requests', receiver.received.map((r) => JSON.stringify(r)).join('\n')],
    ];
    for (const file of readdirSync(g.dataDir)) {
      places.push([file, readFileSync(join(g.dataDir, file)).toString('latin1')]);
    }
    expect(places.some(([name]) => name.endsWith('.log'))).toBe(true);
    expect(places.some(([name]) => name === 'grantry.db')).toBe(true);
    for (const [name, content] of places) {
      for (const canary of canaries) {
        // Answers are allowed to echo nothing but what the test API echoed back: the API server's
        // echo contains the Authorization header it received, which is the caller's own business.
        if (name === 'answers' && seen.has(canary)) continue;
        expect(content.includes(canary), `${canary.slice(0, 12)}… found in ${name}`).toBe(false);
      }
    }
  }, 60_000);

  it('finds no static credential or secret header in the log, the database or the answers', async () => {
    const KEY = 'CANARY-API-KEY-3f8d';
    const QUERY_KEY = 'CANARY-QUERY-KEY-a61e';
    const PASSWORD = 'CANARY-BASIC:PASSWORD-ü-72c4';
    const TOKEN = 'CANARY-BEARER-TOKEN-e09b';
    const SECRET_HEADER = 'CANARY-SECRET-HEADER-1d5a';
    const WRONG_KEY = 'CANARY-WRONG-KEY-88b2';
    const basic = `Basic ${Buffer.from(`canary:${PASSWORD}`, 'utf8').toString('base64')}`;
    const upstream = await startApiServer({
      verify: async () => false,
      authenticate: async ({ headers, query }) =>
        headers['x-api-key'] === KEY ||
        query.get('key') === QUERY_KEY ||
        headers.authorization === basic ||
        headers.authorization === `Bearer ${TOKEN}`,
    });
    const g = await spawnGrantry({ env: { GRANTRY_LOG_LEVEL: 'trace' } });
    const answers: string[] = [];
    const call = async (method: string, path: string, body?: unknown) => {
      const answer = await g.api(method, path, body);
      answers.push(answer.text, JSON.stringify([...answer.headers]));
      return answer;
    };
    try {
      const authentications = [
        { name: 'canary key', type: 'api_key', apiKey: KEY, apiKeyName: 'X-API-Key' },
        {
          name: 'canary query key',
          type: 'api_key',
          apiKey: QUERY_KEY,
          apiKeyIn: 'query',
          apiKeyName: 'key',
        },
        { name: 'canary basic', type: 'basic', username: 'canary', password: PASSWORD },
        { name: 'canary bearer', type: 'bearer', token: TOKEN },
        { name: 'canary wrong key', type: 'api_key', apiKey: WRONG_KEY, apiKeyName: 'X-API-Key' },
      ];
      for (const body of authentications) {
        const auth = await call('POST', '/api/authentications', body);
        expect(auth.status, auth.text).toBe(201);
        const connector = await call('POST', '/api/connectors', {
          name: `connector of ${body.name}`,
          baseUrl: upstream.url,
          authenticationId: auth.body.id,
          secretHeaders: { 'X-Tenant-Secret': SECRET_HEADER },
        });
        expect(connector.status, connector.text).toBe(201);
        await call('POST', `/api/authentications/${auth.body.id}/test`);
        // /text answers plain text: nothing the API received is echoed into Grantry's answers.
        await call('POST', `/api/connectors/${connector.body.id}/execute`, { method: 'GET', path: '/text' });
        await call('POST', `/api/connectors/${connector.body.id}/test`, { method: 'GET', path: '/text' });
        const proxied = await fetch(`${g.url}/proxy/${connector.body.id}/text`, {
          headers: { authorization: `Bearer ${g.apiKey}` },
        });
        answers.push(await proxied.text(), JSON.stringify([...proxied.headers]));
        await call('PATCH', `/api/connectors/${connector.body.id}`, { timeoutMs: 20_000 });
        await call('GET', `/api/connectors/${connector.body.id}`);
        await call('GET', `/api/authentications/${auth.body.id}`);
        await call('GET', `/api/authentications/${auth.body.id}/events`);
      }
      await call('GET', '/api/authentications');
      await call('GET', '/api/connectors');
    } finally {
      await g.stop();
      await upstream.close();
    }
    // Every credential reached the API (so every path above ran with it), the wrong key refused.
    const sent = upstream.requests.map((r) => JSON.stringify([r.headers, r.query]));
    for (const value of [KEY, QUERY_KEY, TOKEN, SECRET_HEADER, WRONG_KEY]) {
      expect(sent.some((request) => request.includes(value))).toBe(true);
    }
    expect(answers.some((answer) => answer.includes('upstream_unauthorized'))).toBe(true);

    const canaries = [
      KEY,
      QUERY_KEY,
      encodeURIComponent(QUERY_KEY),
      PASSWORD,
      // Files are searched as latin1: the password's ASCII part finds it however it was encoded.
      PASSWORD.slice(0, PASSWORD.indexOf('ü')),
      basic.slice('Basic '.length),
      TOKEN,
      SECRET_HEADER,
      WRONG_KEY,
    ];
    const places: Array<[string, string]> = [['answers', answers.join('\n')]];
    for (const file of readdirSync(g.dataDir)) {
      places.push([file, readFileSync(join(g.dataDir, file)).toString('latin1')]);
    }
    expect(places.some(([name]) => name.endsWith('.log'))).toBe(true);
    expect(places.some(([name]) => name === 'grantry.db')).toBe(true);
    for (const [name, content] of places) {
      for (const canary of canaries) {
        expect(content.includes(canary), `${canary.slice(0, 14)}… found in ${name}`).toBe(false);
      }
    }
  }, 60_000);

  /**
   * Keys (docs/keys.md): an imported private key, a key Grantry makes, a Google key file, every
   * client assertion and JWT-bearer assertion Grantry signed, and every DPoP proof it made — sent to
   * the provider and to the API, at the token endpoint and on calls, through execute and the proxy,
   * with a refusal among them — appear in no log line, database file or answer.
   */
  it('finds no private key, assertion or DPoP proof in the log, the database or the answers', async () => {
    const g = await spawnGrantry({ env: { GRANTRY_LOG_LEVEL: 'trace' } });
    const answers: string[] = [];
    const call = async (method: string, path: string, body?: unknown) => {
      const answer = await g.api(method, path, body);
      answers.push(answer.text, JSON.stringify([...answer.headers]));
      return answer;
    };
    const imported = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const importedPem = imported.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const saKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const saPem = saKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    try {
      const importedAuth = await call('POST', '/api/authentications', {
        name: 'canary imported key',
        type: 'oauth2',
        grantType: 'client_credentials',
        tokenUrl: oidc.tokenUrl,
        clientId: 'canary-pkj',
        clientAuthMethod: 'private_key_jwt',
        privateKey: importedPem,
        keyId: 'canary-imported',
        dpop: true,
      });
      expect(importedAuth.status, importedAuth.text).toBe(201);
      await oidc.registerClient({
        client_id: 'canary-pkj',
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: 'private_key_jwt',
        dpop_bound_access_tokens: true,
        jwks: { keys: [{ ...imported.publicKey.export({ format: 'jwk' }), kid: 'canary-imported' }] },
      });
      const generated = await call('POST', '/api/authentications', {
        name: 'canary generated key',
        type: 'oauth2',
        grantType: 'client_credentials',
        tokenUrl: oidc.tokenUrl,
        clientId: 'canary-gen',
        clientAuthMethod: 'private_key_jwt',
        generateKey: true,
        publishJwks: true,
      });
      // Not registered: every assertion of this one is refused (the failure path).
      const googleFile = await call('POST', '/api/authentications', {
        name: 'canary google',
        type: 'oauth2',
        serviceAccountJson: JSON.stringify({
          type: 'service_account',
          private_key_id: 'canary-sa-key',
          private_key: saPem,
          client_email: 'canary@canary.iam.gserviceaccount.com',
          token_uri: oidc.tokenUrl,
        }),
        assertion: { scope: 'canary' },
      });
      expect(googleFile.status, googleFile.text).toBe(201);
      for (const auth of [importedAuth, generated, googleFile]) {
        const connector = await call('POST', '/api/connectors', {
          name: `canary keys ${auth.body.id}`,
          baseUrl: api.url,
          authenticationId: auth.body.id,
        });
        await call('POST', `/api/authentications/${auth.body.id}/test`);
        await call('POST', `/api/connectors/${connector.body.id}/execute`, { method: 'GET', path: '/echo' });
        await call('POST', `/api/connectors/${connector.body.id}/test`, {});
        const proxied = await fetch(`${g.url}/proxy/${connector.body.id}/echo`, {
          headers: { authorization: `Bearer ${g.apiKey}` },
        });
        answers.push(await proxied.text());
        await call('GET', `/api/authentications/${auth.body.id}/events`);
        await call('GET', `/api/authentications/${auth.body.id}`);
      }
      await call('POST', `/api/authentications/${generated.body.id}/rotate-key`);
      await call('POST', `/api/authentications/${generated.body.id}/rotate-key/finish`);
      answers.push(await (await fetch(`${g.url}/oauth/jwks/${generated.body.id}`)).text());
      answers.push(await (await fetch(`${g.url}/jwks/${generated.body.id}.json`)).text());
      answers.push((await g.api('GET', `/api/authentications/${generated.body.id}/jwks`)).text);
      await call('GET', '/api/authentications');
    } finally {
      await g.stop();
    }

    // The flows above did sign and send: a test that finds nothing because nothing happened proves nothing.
    expect(oidc.received.assertions.length).toBeGreaterThanOrEqual(4);
    expect(oidc.received.dpopProofs.length).toBeGreaterThanOrEqual(2);
    const apiProofs = api.requests.flatMap((r) =>
      typeof r.headers.dpop === 'string' ? [r.headers.dpop] : [],
    );
    expect(apiProofs.length).toBeGreaterThanOrEqual(2);
    const pemBody = (pem: string) =>
      pem.split('\n').filter((line) => line !== '' && !line.startsWith('-----'));
    const canaries = [
      ...pemBody(importedPem),
      ...pemBody(saPem),
      String(imported.privateKey.export({ format: 'jwk' }).d),
      String(saKey.export({ format: 'jwk' }).d),
      ...oidc.received.assertions,
      ...oidc.received.dpopProofs,
      ...apiProofs,
    ];
    const places: Array<[string, string]> = [['answers', answers.join('\n')]];
    for (const file of readdirSync(g.dataDir)) {
      places.push([file, readFileSync(join(g.dataDir, file)).toString('latin1')]);
    }
    expect(places.some(([name]) => name.endsWith('.log'))).toBe(true);
    for (const [name, content] of places) {
      // Keys Grantry made are known to no one: no PEM or private JWK member may appear at all.
      expect(content.includes('PRIVATE KEY'), `a PEM private key found in ${name}`).toBe(false);
      expect(/"d"\s*:\s*"/.test(content), `a private JWK member found in ${name}`).toBe(false);
      for (const canary of canaries) {
        // The test API echoes the request it received (its DPoP proof included) to its caller.
        if (name === 'answers' && apiProofs.includes(canary)) continue;
        expect(content.includes(canary), `${canary.slice(0, 16)}… found in ${name}`).toBe(false);
      }
    }
  }, 60_000);
});
