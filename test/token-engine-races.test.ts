/**
 * The token engine where timing is against it: a configuration change that lands while a token is
 * on its way, and an instance that starts while the cluster backs off from a failing provider.
 *
 * The token endpoint is written here: it names each token after the request that got it (the
 * client id and scope it was sent), holds requests when told to, and fails when told to, so the
 * test sees which configuration every token the API receives came from.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiFixture, startApiServer } from './support/api-server.js';
import { startGrantry } from './support/grantry.js';
import { issueServerCertificate } from './support/tls.js';

interface TokenEndpoint {
  url: string;
  /** Each request's form body, in order. */
  requests: URLSearchParams[];
  /** While true, requests wait for `release()`. */
  hold: boolean;
  /** Answer 500 instead of a token. */
  failing: boolean;
  release(): void;
  close(): Promise<void>;
}

async function startTokenEndpoint(): Promise<TokenEndpoint> {
  const waiting: Array<() => void> = [];
  let server: Server;
  const endpoint: TokenEndpoint = {
    url: '',
    requests: [],
    hold: false,
    failing: false,
    release: () => {
      for (const go of waiting.splice(0)) go();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const answer = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let body = '';
    for await (const chunk of req) body += chunk;
    const form = new URLSearchParams(body);
    const basic = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString();
    endpoint.requests.push(form);
    if (endpoint.hold) await new Promise<void>((resolve) => waiting.push(resolve));
    if (endpoint.failing) {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end('{"error":"server_error"}');
      return;
    }
    const client = decodeURIComponent(basic.split(':')[0] ?? '');
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        access_token: `token-${endpoint.requests.length}-for-${client}-${form.get('scope') ?? 'none'}`,
        token_type: 'Bearer',
        expires_in: 3600,
      }),
    );
  };
  server = createServer(issueServerCertificate(), (req, res) => void answer(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint.url = `https://localhost:${(server.address() as AddressInfo).port}/token`;
  return endpoint;
}

describe('the token engine when timing is against it', () => {
  let endpoint: TokenEndpoint;
  let api: ApiFixture;

  beforeAll(async () => {
    endpoint = await startTokenEndpoint();
    api = await startApiServer({ verify: async () => true });
  });
  afterAll(async () => {
    await endpoint?.close();
    await api?.close();
  });

  const authentication = (name: string) => ({
    name,
    type: 'oauth2',
    grantType: 'client_credentials',
    tokenUrl: endpoint.url,
    clientId: 'old-client',
    clientSecret: 'old-secret',
    scope: 'old-scope',
  });

  it('a token fetched with a configuration changed meanwhile serves no call made after the change', async () => {
    const g = await startGrantry();
    try {
      const auth = await g.api('POST', '/api/authentications', authentication('changed mid-flight'));
      const connector = await g.api('POST', '/api/connectors', {
        name: 'changed mid-flight',
        baseUrl: api.url,
        authenticationId: auth.body.id,
      });
      const execute = () =>
        g.api('POST', `/api/connectors/${connector.body.id}/execute`, { method: 'GET', path: '/echo' });

      endpoint.requests.length = 0;
      endpoint.hold = true;
      const before = execute();
      while (endpoint.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      // The change lands while the old configuration's token request is held at the provider.
      const patched = await g.api('PATCH', `/api/authentications/${auth.body.id}`, {
        clientId: 'new-client',
        clientSecret: 'new-secret',
        scope: 'new-scope',
      });
      expect(patched.status, patched.text).toBe(200);
      const after = execute();
      endpoint.hold = false;
      endpoint.release();
      await Promise.all([before, after]);

      api.reset();
      for (let call = 0; call < 3; call += 1) expect((await execute()).body.status).toBe(200);
      // Every call after the change carries the new configuration's token, and it is stored.
      expect(new Set(api.requests.map((request) => request.token))).toEqual(
        new Set([expect.stringMatching(/-for-new-client-new-scope$/)]),
      );
      const view = await g.api('GET', `/api/authentications/${auth.body.id}`);
      expect(view.body.token?.scope).toBe('new-scope');
    } finally {
      endpoint.hold = false;
      endpoint.release();
      await g.stop();
    }
  });

  it('an instance that has no token in memory uses the stored one while the cluster backs off', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'grantry-races-'));
    const masterKey = randomBytes(32).toString('base64');
    const apiKey = `grk_test_${randomBytes(16).toString('hex')}`;
    let offset = 0;
    const clock = () => Date.now() + offset;
    // Two instances on one database: the first serves calls, the second starts later (empty memory).
    const first = await startGrantry({ dataDir, masterKey, apiKey, clock });
    let second: Awaited<ReturnType<typeof startGrantry>> | undefined;
    try {
      const auth = await first.api('POST', '/api/authentications', authentication('backing off'));
      const connector = await first.api('POST', '/api/connectors', {
        name: 'backing off',
        baseUrl: api.url,
        authenticationId: auth.body.id,
      });
      const path = `/api/connectors/${connector.body.id}/execute`;
      expect((await first.api('POST', path, { method: 'GET', path: '/echo' })).body.status).toBe(200);

      // In the token's refresh window, 40 s before it expires: the refresh fails and is stored.
      endpoint.failing = true;
      offset = (3600 - 40) * 1000;
      await first.api('POST', path, { method: 'GET', path: '/echo' });
      for (let wait = 0; wait < 100; wait += 1) {
        if ((await first.app.store.tokenFailures.get(auth.body.id)) !== null) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(await first.app.store.tokenFailures.get(auth.body.id)).not.toBeNull();
      const requestsSoFar = endpoint.requests.length;

      second = await startGrantry({ dataDir, masterKey, apiKey, clock });
      const answer = await second.api('POST', path, { method: 'GET', path: '/echo' });
      // The stored token has 40 s left: it serves the call, and nobody asks the failing provider.
      expect(answer.body.status, answer.text).toBe(200);
      expect(endpoint.requests.length).toBe(requestsSoFar);
    } finally {
      endpoint.failing = false;
      await second?.stop();
      await first.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
