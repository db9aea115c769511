import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyRing, parseMasterKey } from '../src/secrets/key-ring.js';
import type { Store } from '../src/store/contract.js';
import { openStore } from '../src/store/open-store.js';
import { advisoryLockKey } from '../src/store/postgres-engine.js';
import { createPostgresTestSchema, type PostgresTestSchema } from '../src/store/postgres-test-schema.js';
import { sealContext } from '../src/tokens/sealed-columns.js';
import { type ApiFixture, startApiServer } from './support/api-server.js';
import { type Cluster, type HoldingRelay, startCluster, startHoldingRelay } from './support/cluster.js';
import type { SpawnedGrantry } from './support/grantry.js';
import { authorizeThroughDevInteractions, type OidcFixture, startOidcProvider } from './support/oidc.js';

/**
 * Several Grantry instances on one PostgreSQL (issue #7): three `grantry serve` processes, a real
 * oidc-provider with rotating refresh tokens and reuse detection, a real HTTPS API that checks every
 * token with the provider. Coordination is PostgreSQL's own: advisory locks, LISTEN/NOTIFY, and
 * single-use rows.
 */
const databaseUrl = process.env.GRANTRY_TEST_DATABASE_URL;
const ACCESS_TOKEN_TTL_S = 5;
/**
 * An API whose tokens live 10 minutes: a cold burst of 300 calls on a shared, busy machine may take
 * longer than a short-lived token's refresh window, and a refresh inside it would be right, not a bug.
 */
const LONG_LIVED_API = 'https://long-lived.example.test';
const CLIENT_SECRET = 'multi-instance-secret';
const WEB_SCOPE = 'openid offline_access read';

interface ExecuteAnswer {
  status: number;
  tokenRefreshed: boolean;
}

describe.skipIf(databaseUrl === undefined)('several instances on one PostgreSQL', () => {
  let schema: PostgresTestSchema;
  let oidc: OidcFixture;
  let relay: HoldingRelay;
  let api: ApiFixture;
  let cluster: Cluster;
  let admin: pg.Client;
  /** The shared store and key, read directly to ask the provider about the stored refresh token. */
  let store: Store;
  let ring: KeyRing;

  beforeAll(async () => {
    schema = await createPostgresTestSchema(databaseUrl as string);
    admin = new pg.Client({ connectionString: databaseUrl as string });
    await admin.connect();
    cluster = await startCluster({ size: 3, databaseUrl: schema.url });
    oidc = await startOidcProvider({
      accessTokenTtl: ACCESS_TOKEN_TTL_S,
      rotateRefreshToken: true,
      resources: { [LONG_LIVED_API]: { scope: 'read', accessTokenTTL: 600 } },
      clients: [
        {
          client_id: 'app-password',
          client_secret: CLIENT_SECRET,
          grant_types: ['password', 'refresh_token'],
          scope: 'read offline_access',
        },
        {
          client_id: 'web-app',
          client_secret: CLIENT_SECRET,
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          // One redirect URI for every instance: the load balancer's public URL.
          redirect_uris: [`${cluster.publicUrl}/oauth/redirect`],
          scope: WEB_SCOPE,
        },
      ],
    });
    relay = await startHoldingRelay(oidc.port);
    api = await startApiServer({ verify: async (token) => (await oidc.verifyAccessToken(token)).active });
    store = await openStore(schema.url);
    ring = new KeyRing(parseMasterKey(cluster.masterKey, 'the cluster master key'), []);
  });

  afterAll(async () => {
    await cluster?.stop();
    await store?.close();
    await api?.close();
    await relay?.close();
    await oidc?.close();
    await admin?.end();
    await schema?.drop();
  });

  /** A password-grant authentication and a connector to the test API, created through one instance. */
  async function createConnector(
    settings: { tokenUrl?: string; audience?: string } = {},
  ): Promise<{ authId: string; connectorId: string }> {
    const first = cluster.pick(0);
    const suffix = Math.random().toString(36).slice(2);
    const auth = await first.api('POST', '/api/authentications', {
      name: `auth-${suffix}`,
      type: 'oauth2',
      grantType: 'password',
      tokenUrl: settings.tokenUrl ?? oidc.tokenUrl,
      ...(settings.audience !== undefined ? { audience: settings.audience, audienceParam: 'resource' } : {}),
      clientId: 'app-password',
      clientSecret: CLIENT_SECRET,
      username: 'alice',
      password: 'wonderland',
      scope: 'read offline_access',
    });
    expect(auth.status, auth.text).toBe(201);
    const connector = await first.api('POST', '/api/connectors', {
      name: `api-${suffix}`,
      baseUrl: api.url,
      authenticationId: auth.body.id,
    });
    expect(connector.status, connector.text).toBe(201);
    return { authId: auth.body.id, connectorId: connector.body.id };
  }

  /** `count` execute calls at once, spread round robin over the running instances. */
  async function burst(connectorId: string, count: number, offset = 0): Promise<ExecuteAnswer[]> {
    const answers = await Promise.all(
      Array.from({ length: count }, (_, n) =>
        cluster.pick(n + offset).api<ExecuteAnswer>('POST', `/api/connectors/${connectorId}/execute`, {
          method: 'GET',
          path: '/echo',
        }),
      ),
    );
    for (const answer of answers) expect(answer.status, answer.text).toBe(200);
    return answers.map((a) => a.body);
  }

  /** Tokens the test API received from `start` on (each was checked with the provider). */
  function tokensSeenSince(start: number): Set<string> {
    return new Set(api.requests.slice(start).map((r) => r.token ?? ''));
  }

  /** Sleeps until the stored access token has expired (the provider's TTL, read from the API). */
  async function waitForExpiry(authId: string): Promise<void> {
    const view = await cluster.pick(0).api('GET', `/api/authentications/${authId}`);
    const expiresAt = Date.parse(view.body.token.expiresAt as string);
    await sleep(Math.max(0, expiresAt - Date.now()) + 250);
  }

  async function eventTypes(authId: string): Promise<string[]> {
    const events = await cluster.pick(0).api('GET', `/api/authentications/${authId}/events`);
    return (events.body.items as { type: string }[]).map((e) => e.type);
  }

  /** Sessions holding the refresh lock of `authId` (see `withAuthLock` in src/store/postgres-engine.ts). */
  async function refreshLockHolders(authId: string): Promise<number> {
    // pg_locks shows a bigint advisory key split in two: high half in classid, low half in objid.
    const key = BigInt.asUintN(64, BigInt(advisoryLockKey(`grantry:auth:${authId}`)));
    const result = await admin.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_locks
        WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND classid = $1::oid AND objid = $2::oid`,
      [String(key >> 32n), String(key & 0xffffffffn)],
    );
    return result.rows[0]?.n ?? 0;
  }

  /**
   * What the provider thinks of the refresh token Grantry has stored: `usable`, `consumed` (rotated
   * away: presenting it again revokes the grant), or `unknown` (none stored, or revoked).
   */
  async function storedRefreshTokenAtProvider(authId: string): Promise<'usable' | 'consumed' | 'unknown'> {
    const row = await store.tokens.get(authId);
    if (row?.refreshToken == null) return 'unknown';
    const value = ring.open(row.refreshToken, sealContext.refreshToken(authId));
    const found = await oidc.provider.RefreshToken.find(value, { ignoreExpiration: true });
    if (found === undefined) return 'unknown';
    return (found as { consumed?: unknown }).consumed ? 'consumed' : 'usable';
  }

  /** Kills `victim` and waits until the relay has seen its connections close. */
  async function killAndForget(victim: SpawnedGrantry, pending: Promise<unknown>): Promise<void> {
    const exited = new Promise((resolve) => victim.child.once('exit', resolve));
    victim.kill('SIGKILL');
    await exited;
    await pending;
    // The relay sees the dead process's connection close a moment after the exit: only then may it
    // forward again, or it would deliver what the dead process sent (or was sent) after all.
    const closed = Date.now() + 10_000;
    while (relay.heldConnections > 0 && Date.now() < closed) await sleep(20);
    expect(relay.heldConnections).toBe(0);
    relay.release();
  }

  async function waitFor(condition: () => Promise<boolean> | boolean, what: string): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (!(await condition())) {
      expect(Date.now(), `waited too long for ${what}`).toBeLessThan(deadline);
      await sleep(20);
    }
  }

  it('300 concurrent calls spread over three instances for a cold authentication make one token request', async () => {
    const { connectorId } = await createConnector({ audience: LONG_LIVED_API });
    oidc.resetCounts();
    const seen = api.requests.length;
    const cold = await burst(connectorId, 300);
    expect(cold).toHaveLength(300);
    for (const answer of cold) expect(answer.status).toBe(200);
    expect(oidc.tokenRequests).toMatchObject({ total: 1, password: 1, refresh_token: 0 });
    expect(tokensSeenSince(seen).size).toBe(1);
  }, 60_000);

  it('with rotating refresh tokens, bursts over three instances after each expiry make exactly one refresh', async () => {
    const { authId, connectorId } = await createConnector();
    oidc.resetCounts();
    let seen = api.requests.length;
    await burst(connectorId, 30);
    expect(oidc.tokenRequests).toMatchObject({ total: 1, password: 1 });
    let previous = [...tokensSeenSince(seen)][0];
    for (let round = 1; round <= 3; round++) {
      await waitForExpiry(authId);
      seen = api.requests.length;
      const answers = await burst(connectorId, 90, round);
      for (const answer of answers) expect(answer.status).toBe(200);
      // Rotation with reuse detection: a second refresh with the same refresh token would revoke
      // the grant, and every later refresh would end in invalid_grant.
      expect(oidc.tokenRequests).toMatchObject({ total: 1 + round, password: 1, refresh_token: round });
      const used = tokensSeenSince(seen);
      expect(used.size).toBe(1);
      expect(used.has(previous ?? '')).toBe(false);
      previous = [...used][0];
    }

    const types = await eventTypes(authId);
    expect(types.filter((t) => t === 'token_refreshed')).toHaveLength(3);
    expect(types.filter((t) => t === 'token_fetched')).toHaveLength(1);
    expect(types).not.toContain('token_failed');
    const view = await cluster.pick(2).api('GET', `/api/authentications/${authId}`);
    expect(view.body).toMatchObject({ status: 'ready', lastError: null });
  }, 90_000);

  it('an invalidation on one instance reaches the others (LISTEN/NOTIFY): none keeps using the dropped token', async () => {
    // Long-lived tokens: expiry must not be what makes the others let go of the dropped token.
    const { authId, connectorId } = await createConnector({ audience: LONG_LIVED_API });
    const [first, second, third] = cluster.instances as SpawnedGrantry[];
    let seen = api.requests.length;
    await burst(connectorId, 30);
    const warm = tokensSeenSince(seen);
    expect(warm.size).toBe(1);
    const dropped = [...warm][0];
    oidc.resetCounts();

    expect((await first?.api('POST', `/api/authentications/${authId}/invalidate`))?.status).toBe(204);
    // The others learn of it asynchronously and may answer from memory until the notification lands;
    // they must stop using the dropped token without anything but that notification telling them.
    seen = api.requests.length;
    for (const instance of [second, third, first] as SpawnedGrantry[]) {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const before = api.requests.length;
        const answer = await instance.api('POST', `/api/connectors/${connectorId}/execute`, {
          method: 'GET',
          path: '/echo',
        });
        expect(answer.status, answer.text).toBe(200);
        if (api.requests[before]?.token !== dropped) break;
        expect(Date.now(), 'an instance kept using the dropped token').toBeLessThan(deadline);
        await sleep(50);
      }
    }
    // One refresh for the three instances: whoever came first refreshed, the others re-read its token.
    expect(oidc.tokenRequests).toMatchObject({ total: 1, refresh_token: 1 });
    const renewed = [...tokensSeenSince(seen)].filter((t) => t !== dropped);
    expect(new Set(renewed).size).toBe(1);
    const after = api.requests.length;
    await burst(connectorId, 30);
    expect([...tokensSeenSince(after)]).toEqual(renewed.slice(0, 1));
    expect(oidc.tokenRequests.total).toBe(1);
  });

  it('a flow started on one instance completes on another; one callback delivered to two instances at once exchanges the code once', async () => {
    const [first, second, third] = cluster.instances as SpawnedGrantry[];
    const created = await first?.api('POST', '/api/authentications', {
      name: `web-${Math.random().toString(36).slice(2)}`,
      type: 'oauth2',
      grantType: 'authorization_code',
      authorizationUrl: oidc.authorizationUrl,
      tokenUrl: oidc.tokenUrl,
      clientId: 'web-app',
      clientSecret: CLIENT_SECRET,
      scope: WEB_SCOPE,
    });
    expect(created?.status, created?.text).toBe(201);
    const authId = created?.body.id as string;
    expect(created?.body.redirectUri).toBe(`${cluster.publicUrl}/oauth/redirect`);

    // Started on the first instance: state and PKCE verifier live in PostgreSQL, not in its memory.
    const started = await first?.api('POST', `/api/authentications/${authId}/authorize`);
    expect(started?.status, started?.text).toBe(200);
    const cookie = (started?.headers.getSetCookie() ?? []).map((line) => line.split(';')[0]).join('; ');
    expect(cookie).not.toBe('');
    const callback = await authorizeThroughDevInteractions(started?.body.authorizationUrl as string);
    expect(callback.searchParams.get('code')).toBeTruthy();

    // The browser's callback reaches two other instances at the same moment (a retried request
    // behind a load balancer): the state row is consumed once, so the code is exchanged once.
    oidc.resetCounts();
    const deliveries = await Promise.all(
      [second, third].map((instance) =>
        fetch(`${instance?.url}/oauth/redirect${callback.search}`, {
          headers: { cookie },
          redirect: 'manual',
        }),
      ),
    );
    await Promise.all(deliveries.map((d) => d.text()));
    expect(deliveries.map((d) => d.status).sort()).toEqual([200, 400]);
    expect(oidc.tokenRequests).toMatchObject({ total: 1, authorization_code: 1 });

    const view = await first?.api('GET', `/api/authentications/${authId}`);
    expect(view?.body).toMatchObject({ status: 'connected', token: { hasRefreshToken: true } });
    const connector = await third?.api('POST', '/api/connectors', {
      name: `web-api-${authId}`,
      baseUrl: api.url,
      authenticationId: authId,
    });
    expect(connector?.status, connector?.text).toBe(201);
    const answers = await burst(connector?.body.id as string, 30);
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(oidc.tokenRequests.total).toBe(1);
  });

  it('GET /metrics reports token requests, refreshes, cache hits, upstream calls and lock waits; it needs the API key', async () => {
    const instance = cluster.pick(0);
    // Each instance counts its own work: make sure this one fetched a token, served one from its
    // cache and called the API (in a burst spread over three instances, another may do all of it).
    const { connectorId } = await createConnector();
    for (let call = 0; call < 2; call++) {
      const answer = await instance.api('POST', `/api/connectors/${connectorId}/execute`, {
        method: 'GET',
        path: '/echo',
      });
      expect(answer.status, answer.text).toBe(200);
    }
    const metrics = await instance.api('GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    const value = (series: string): number => {
      const line = metrics.text.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
    };
    expect(value('grantry_token_requests_total{outcome="success"}')).toBeGreaterThan(0);
    expect(value('grantry_token_cache_hits_total')).toBeGreaterThan(0);
    expect(value('grantry_lock_wait_seconds_count')).toBeGreaterThan(0);
    expect(value('grantry_upstream_requests_total{status_class="2xx"}')).toBeGreaterThan(0);
    expect(metrics.text).toContain('# TYPE grantry_token_refreshes_total counter');
    expect(metrics.text).toContain('# TYPE grantry_upstream_requests_total counter');
    expect(metrics.text).toContain('# TYPE grantry_proxy_duration_seconds histogram');
    expect(metrics.text).toContain('process_resident_memory_bytes');
    expect(metrics.text).not.toContain(CLIENT_SECRET);
    for (const each of cluster.instances) expect((await fetch(`${each.url}/readyz`)).status).toBe(200);

    for (const path of ['/metrics', '/metrics?format=text', '/metrics/']) {
      const anonymous = await fetch(`${instance.url}${path}`);
      expect(anonymous.status, path).toBe(401);
      expect(((await anonymous.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    }
  });

  it('an instance killed while it holds the refresh lock does not wedge the authentication; the refresh token survives', async () => {
    // Token requests go through a relay that can hold them, so the holder dies with its refresh
    // request sent but never seen by the provider: the stored refresh token is then still the valid
    // one. (Killed after the provider answered, the rotated token would die with the process, and
    // only the original grant — or a person, for authorization_code — could start over.)
    const { authId, connectorId } = await createConnector({
      tokenUrl: `https://127.0.0.1:${relay.port}/token`,
    });
    await burst(connectorId, 30);
    oidc.resetCounts();
    await waitForExpiry(authId);

    const victim = cluster.pick(0);
    relay.hold();
    const doomed = victim
      .api('POST', `/api/connectors/${connectorId}/execute`, { method: 'GET', path: '/echo' })
      .catch((error: unknown) => error);
    await waitFor(() => relay.heldBytes > 0, 'the refresh request to reach the relay');
    expect(await refreshLockHolders(authId)).toBe(1);

    await killAndForget(victim, doomed);
    expect(oidc.tokenRequests.total).toBe(0);
    expect(await storedRefreshTokenAtProvider(authId)).toBe('usable');

    // PostgreSQL ends the dead process's sessions, and their advisory locks with them.
    await waitFor(async () => (await refreshLockHolders(authId)) === 0, 'the lock to be released');

    expect(cluster.running()).toHaveLength(2);
    const seen = api.requests.length;
    const answers = await burst(connectorId, 60);
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(oidc.tokenRequests).toMatchObject({ total: 1, refresh_token: 1, password: 0 });
    expect(tokensSeenSince(seen).size).toBe(1);

    // The refresh token the survivors received still works at the next expiry: no invalid_grant,
    // no fallback to the password grant.
    await waitForExpiry(authId);
    await burst(connectorId, 60, 1);
    expect(oidc.tokenRequests).toMatchObject({ total: 2, refresh_token: 2, password: 0 });
    const types = await eventTypes(authId);
    expect(types).not.toContain('token_failed');
    expect(types).not.toContain('needs_authorization');
    expect(await storedRefreshTokenAtProvider(authId)).toBe('usable');
  }, 90_000);

  it('killed after the provider rotated the refresh token, the holder takes the new one with it; the survivor starts over with the original grant', async () => {
    // The limit of any client: the rotated refresh token existed only in the dead process. Presenting
    // the stored (consumed) one trips reuse detection, so a password or client-credentials
    // authentication fetches anew; an authorization_code one would need a person to reconnect.
    const { authId, connectorId } = await createConnector({
      tokenUrl: `https://127.0.0.1:${relay.port}/token`,
    });
    await burst(connectorId, 20);
    oidc.resetCounts();
    await waitForExpiry(authId);

    const victim = cluster.pick(0);
    oidc.setTokenDelay(1_000);
    const doomed = victim
      .api('POST', `/api/connectors/${connectorId}/execute`, { method: 'GET', path: '/echo' })
      .catch((error: unknown) => error);
    // The provider counts a request on arrival and answers after the delay: hold its answer.
    await waitFor(() => oidc.tokenRequests.refresh_token === 1, 'the refresh request to reach the provider');
    relay.hold('answers');
    await waitFor(async () => (await storedRefreshTokenAtProvider(authId)) === 'consumed', 'the rotation');
    await waitFor(() => relay.heldBytes > 0, 'the provider to answer');
    oidc.setTokenDelay(0);
    await killAndForget(victim, doomed);

    const answers = await burst(connectorId, 40);
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(oidc.tokenRequests).toMatchObject({ refresh_token: 2, password: 1 });
    const types = await eventTypes(authId);
    expect(types.slice(0, 2)).toEqual(['token_fetched', 'token_failed']);
    expect(await storedRefreshTokenAtProvider(authId)).toBe('usable');
  }, 90_000);

  it('every instance logged JSON lines with a request id, and no secret, token or key', async () => {
    const secrets = [CLIENT_SECRET, 'wonderland', cluster.masterKey, cluster.apiKey];
    const tokens = new Set(api.requests.map((r) => r.token ?? '').filter((t) => t !== ''));
    expect(tokens.size).toBeGreaterThan(5);
    for (const instance of cluster.instances) {
      const lines = instance
        .output()
        .split('\n')
        .filter((line) => line.trim() !== '');
      const requests = lines
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((l) => l.msg === 'request');
      expect(requests.length).toBeGreaterThan(0);
      for (const line of requests) expect(line.reqId).toEqual(expect.any(String));
      const text = instance.output();
      for (const secret of [...secrets, ...tokens]) expect(text.includes(secret)).toBe(false);
    }
  });
});
