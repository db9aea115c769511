import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Egress } from '../src/egress/egress.js';
import { revokeToken } from '../src/oauth/revocation.js';
import { KeyRing } from '../src/secrets/key-ring.js';
import type { AuthenticationRecord, AuthenticationSettings, Store } from '../src/store/contract.js';
import { openStore } from '../src/store/open-store.js';
import { ProviderMetadata } from '../src/tokens/provider-metadata.js';
import { sealContext } from '../src/tokens/sealed-columns.js';
import { TokenManager, type TokenManagerOptions } from '../src/tokens/token-manager.js';
import { type OidcFixture, startOidcProvider } from './support/oidc.js';
import { issueServerCertificate } from './support/tls.js';

/**
 * What the token engine blames, when it records it, and how long it holds the refresh lock —
 * against a real oidc-provider over HTTPS and a real SQLite store:
 * - a store that fails after the provider answered is Grantry's fault (internal_error), never the
 *   provider's: no back-off, no lastError naming the provider;
 * - the diagnosis knows which parameter carried the audience (audienceParam);
 * - timeline events carry the manager's clock;
 * - one deadline bounds a whole fetch, metadata discovery included.
 */
const REDIRECT_URI = 'https://grantry.example.com/oauth/redirect';
const NOW = Date.UTC(2031, 4, 6, 7, 8, 9);

/** Inserts an oauth2 authentication with its secrets sealed, as the authentication service would. */
async function insertAuthentication(
  store: Store,
  ring: KeyRing,
  grantType: 'client_credentials' | 'password',
  settings: AuthenticationSettings,
  secrets: { clientSecret: string; password?: string },
): Promise<AuthenticationRecord> {
  const id = `auth_${randomBytes(6).toString('hex')}`;
  const record: AuthenticationRecord = {
    id,
    name: id,
    type: 'oauth2',
    grantType,
    settings,
    secrets: {
      client_secret: ring.seal(secrets.clientSecret, sealContext.clientSecret(id)),
      ...(secrets.password === undefined
        ? {}
        : { password: ring.seal(secrets.password, sealContext.password(id)) }),
    },
    status: 'ready',
    lastError: null,
    generation: 1,
    calls: 0,
    unauthorizedCount: 0,
    refreshCount: 0,
    createdAt: NOW,
    updatedAt: NOW,
  };
  await store.authentications.insert(record);
  return record;
}

describe('token engine faults against oidc-provider', () => {
  let oidc: OidcFixture;
  let store: Store;
  let ring: KeyRing;
  let egress: Egress;
  let now: number;
  const managers: TokenManager[] = [];

  beforeAll(async () => {
    oidc = await startOidcProvider({
      accessTokenTtl: 60,
      // The stored refresh token keeps working after a refresh whose tokens could not be saved.
      rotateRefreshToken: false,
      resources: { 'https://api.example.test': { scope: 'read write' } },
      clients: [
        {
          client_id: 'svc',
          client_secret: 'svc-secret',
          grant_types: ['client_credentials'],
          token_endpoint_auth_method: 'client_secret_basic',
          scope: 'read write',
        },
        {
          client_id: 'app',
          client_secret: 'app-secret',
          grant_types: ['password', 'refresh_token'],
          token_endpoint_auth_method: 'client_secret_basic',
          scope: 'read write offline_access',
        },
      ],
    });
    store = await openStore('sqlite::memory:');
    await store.migrate();
    ring = new KeyRing(randomBytes(32));
    egress = new Egress({ mode: 'default', allowHttp: 'off' });
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    for (const manager of managers.splice(0)) await manager.close();
  });
  afterAll(async () => {
    await egress?.close();
    await store?.close();
    await oidc?.close();
  });

  function manager(options: Partial<TokenManagerOptions> = {}): TokenManager {
    now = NOW;
    const tokens = new TokenManager({
      store,
      keyRing: ring,
      fetch: egress.fetch,
      tokenTimeoutMs: 5_000,
      redirectUri: REDIRECT_URI,
      clock: () => now,
      ...options,
    });
    managers.push(tokens);
    return tokens;
  }

  async function authentication(
    grantType: 'client_credentials' | 'password',
    settings: Partial<AuthenticationSettings> = {},
    secret?: string,
  ): Promise<AuthenticationRecord> {
    const password = grantType === 'password';
    return insertAuthentication(
      store,
      ring,
      grantType,
      {
        tokenUrl: oidc.tokenUrl,
        clientId: password ? 'app' : 'svc',
        headerPrefix: 'Bearer',
        audienceParam: 'audience',
        clientAuthMethod: 'client_secret_basic',
        scope: password ? 'read offline_access' : 'read',
        ...(password ? { username: 'alice' } : {}),
        ...settings,
      },
      {
        clientSecret: secret ?? (password ? 'app-secret' : 'svc-secret'),
        ...(password ? { password: 'wonderland' } : {}),
      },
    );
  }

  const diskFull = (): Error => Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });

  describe('a store failure after the provider answered is internal_error, not token_fetch_failed', () => {
    it('saving the tokens of a grant fails: no back-off, the provider is not blamed, the next call asks again', async () => {
      const tokens = manager();
      const record = await authentication('client_credentials');
      oidc.resetCounts();
      vi.spyOn(store.tokens, 'compareAndSwap').mockRejectedValueOnce(diskFull());

      const failed = await tokens.get(record.id).catch((error: unknown) => error);
      expect(failed).toMatchObject({ code: 'internal_error', cause: { code: 'SQLITE_FULL' } });
      expect((failed as { provider?: unknown }).provider).toBeUndefined();
      expect(oidc.tokenRequests.client_credentials).toBe(1);
      await tokens.settled();
      expect(await store.tokenFailures.get(record.id)).toBeNull();
      expect(await store.authentications.get(record.id)).toMatchObject({ status: 'ready', lastError: null });
      expect((await store.events.list(record.id, 10)).map((event) => event.type)).not.toContain(
        'token_failed',
      );

      // No back-off: the next call goes to the provider at once, and works.
      const token = await tokens.get(record.id);
      expect(token.authorization).toMatch(/^Bearer /);
      expect(oidc.tokenRequests.client_credentials).toBe(2);
    });

    it('saving the tokens of a refresh fails: not taken for a refused refresh token, no fallback, no back-off', async () => {
      const tokens = manager();
      const record = await authentication('password');
      await tokens.get(record.id);
      now += 61_000; // expired: the next call refreshes
      oidc.resetCounts();
      vi.spyOn(store.tokens, 'compareAndSwap').mockRejectedValueOnce(diskFull());

      await expect(tokens.get(record.id)).rejects.toMatchObject({ code: 'internal_error' });
      expect(oidc.tokenRequests).toMatchObject({ refresh_token: 1, password: 0 });
      await tokens.settled();
      expect(await store.tokenFailures.get(record.id)).toBeNull();
      expect(await store.authentications.get(record.id)).toMatchObject({ lastError: null });

      const refreshed = await tokens.acquire(record.id);
      expect(refreshed.source).toBe('refreshed');
      expect(oidc.tokenRequests).toMatchObject({ refresh_token: 2, password: 0 });
    });

    it('the keep-alive reports a store failure as internal_error and records no failure', async () => {
      const tokens = manager();
      const record = await authentication('password', { keepAliveDays: 1 });
      await tokens.get(record.id);
      now += 2 * 24 * 60 * 60 * 1000;
      vi.spyOn(store.tokens, 'compareAndSwap').mockRejectedValueOnce(diskFull());
      const outcome = await tokens.keepAlive(record.id);
      expect(outcome).toMatchObject({ outcome: 'failed', problem: { code: 'internal_error' } });
      await tokens.settled();
      expect(await store.tokenFailures.get(record.id)).toBeNull();
      expect((await store.events.list(record.id, 10)).map((event) => event.type)).not.toContain(
        'keep_alive_failed',
      );
    });
  });

  it('words a refused RFC 8707 resource as a resource (audienceParam), also when auto re-words the refusal', async () => {
    const tokens = manager();
    for (const clientAuthMethod of ['client_secret_basic', 'auto'] as const) {
      const record = await authentication('client_credentials', {
        clientAuthMethod,
        audience: 'https://unknown.example.test',
        audienceParam: 'resource',
      });
      const failed = await tokens.get(record.id).catch((error: unknown) => error);
      expect(failed).toMatchObject({
        code: 'invalid_target',
        message: expect.stringMatching(/^The provider refused the requested resource/),
        hint: expect.stringContaining('The provider does not accept resource="https://unknown.example.test"'),
      });
    }
  });

  it('dates timeline events with the manager’s clock, not the wall clock', async () => {
    const tokens = manager();
    const refused = await authentication('client_credentials', {}, 'wrong-secret');
    await expect(tokens.get(refused.id)).rejects.toMatchObject({ code: 'invalid_client' });
    await tokens.settled();
    const [failed] = await store.events.list(refused.id, 1);
    expect(failed).toMatchObject({ type: 'token_failed', at: NOW });

    // A refresh token revoked at the provider: the refusal, and the new grant, at the clock's time.
    const record = await authentication('password');
    await tokens.get(record.id);
    const row = await store.tokens.get(record.id);
    await revokeToken(
      {
        revocationUrl: oidc.revocationUrl,
        clientId: 'app',
        clientSecret: 'app-secret',
        clientAuthMethod: 'client_secret_basic',
      },
      {
        token: ring.open(row?.refreshToken ?? '', sealContext.refreshToken(record.id)),
        tokenTypeHint: 'refresh_token',
      },
      { fetch: egress.fetch },
    );
    now += 61_000;
    expect((await tokens.acquire(record.id)).source).toBe('fetched');
    await tokens.settled();
    const events = await store.events.list(record.id, 10);
    expect(events.find((event) => event.type === 'token_failed')).toMatchObject({
      at: now,
      detail: { step: 'refresh', code: 'invalid_grant' },
    });
    for (const event of events) expect([NOW, now]).toContain(event.at);
  });
});

/**
 * A provider whose metadata documents never answer (a firewall dropping /.well-known, a gateway
 * that hangs) and whose token endpoint is oidc-provider's, reached through this server — or hangs too.
 */
describe('one deadline for a whole token fetch', () => {
  const TIMEOUT_MS = 1_500;
  let oidc: OidcFixture;
  let server: Server;
  let base = '';
  let tokenMode: 'forward' | 'hang' = 'forward';
  const held: ServerResponse[] = [];
  const metadataRequests: string[] = [];
  let store: Store;
  let ring: KeyRing;
  let egress: Egress;

  beforeAll(async () => {
    oidc = await startOidcProvider({
      clients: [
        {
          client_id: 'svc',
          client_secret: 'svc-secret',
          grant_types: ['client_credentials'],
          token_endpoint_auth_method: 'client_secret_basic',
          scope: 'read',
        },
      ],
    });
    const { cert, key } = issueServerCertificate(['localhost', '127.0.0.1']);
    server = createServer({ cert, key }, (req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        if (req.method !== 'POST' || tokenMode === 'hang') {
          if (req.method !== 'POST') metadataRequests.push(req.url ?? '');
          held.push(res);
          return;
        }
        const headers: Record<string, string> = {};
        for (const name of ['authorization', 'content-type', 'accept']) {
          const value = req.headers[name];
          if (typeof value === 'string') headers[name] = value;
        }
        fetch(oidc.tokenUrl, { method: 'POST', headers, body: Buffer.concat(chunks) })
          .then(async (answer) => {
            res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? '' });
            res.end(Buffer.from(await answer.arrayBuffer()));
          })
          .catch(() => res.destroy());
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `https://localhost:${(server.address() as AddressInfo).port}`;
    store = await openStore('sqlite::memory:');
    await store.migrate();
    ring = new KeyRing(randomBytes(32));
    egress = new Egress({ mode: 'default', allowHttp: 'off' });
  });
  afterAll(async () => {
    for (const res of held) res.destroy();
    server?.closeAllConnections();
    server?.close();
    await egress?.close();
    await store?.close();
    await oidc?.close();
  });

  async function autoAuthentication(): Promise<AuthenticationRecord> {
    return insertAuthentication(
      store,
      ring,
      'client_credentials',
      {
        // Two issuer candidates below it (the parent path, the origin): four metadata URLs.
        tokenUrl: `${base}/oauth/token`,
        clientId: 'svc',
        headerPrefix: 'Bearer',
        audienceParam: 'audience',
        clientAuthMethod: 'auto',
        scope: 'read',
      },
      { clientSecret: 'svc-secret' },
    );
  }

  function manager(): TokenManager {
    return new TokenManager({
      store,
      keyRing: ring,
      fetch: egress.fetch,
      tokenTimeoutMs: TIMEOUT_MS,
      redirectUri: REDIRECT_URI,
      // A fresh cache per test: every fetch starts with the discovery.
      metadata: new ProviderMetadata({ fetch: egress.fetch, timeoutMs: TIMEOUT_MS }),
    });
  }

  it('hanging metadata: the token is still fetched within one timeout (discovery gets half of it)', async () => {
    tokenMode = 'forward';
    const tokens = manager();
    const record = await autoAuthentication();
    const started = performance.now();
    const result = await tokens.acquire(record.id);
    const elapsed = performance.now() - started;
    expect(result.source).toBe('fetched');
    expect(metadataRequests.length).toBeGreaterThan(0);
    // Half the timeout for the discovery, then the token. Before: a timeout per metadata document
    // tried (3.1 s here), then the token request.
    expect(elapsed).toBeLessThan(TIMEOUT_MS);
    await tokens.close();
  });

  it('hanging metadata and token endpoint: the fetch fails as a timeout after one timeout, not three', async () => {
    tokenMode = 'hang';
    const tokens = manager();
    const record = await autoAuthentication();
    const started = performance.now();
    const failed = await tokens.get(record.id).catch((error: unknown) => error);
    const elapsed = performance.now() - started;
    expect(failed).toMatchObject({
      code: 'token_fetch_failed',
      message: expect.stringMatching(/did not answer in time/),
    });
    expect(elapsed).toBeGreaterThan(TIMEOUT_MS - 100);
    // Before: a timeout per metadata document tried, then one more for the token request (4.5 s here).
    expect(elapsed).toBeLessThan(2 * TIMEOUT_MS);
    await tokens.close();
  });
});
