import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresTestSchema, type PostgresTestSchema } from '../src/store/postgres-test-schema.js';
import { maxAttemptsWithin } from '../src/tokens/failure-backoff.js';
import { sealContext } from '../src/tokens/sealed-columns.js';
import { type ApiFixture, startApiServer } from './support/api-server.js';
import { type Cluster, type HoldingRelay, startCluster, startHoldingRelay } from './support/cluster.js';
import { type GrantryHandle, startGrantry } from './support/grantry.js';
import { type OidcFixture, startOidcProvider } from './support/oidc.js';
import {
  INVALID_CLIENT,
  SERVER_ERROR,
  startTokenEndpointSwitch,
  type TokenEndpointSwitch,
} from './support/token-endpoint-switch.js';

/**
 * Failures shared by the cluster, on PostgreSQL (skipped without GRANTRY_TEST_DATABASE_URL, like
 * the other multi-instance suites): the back-off after a failed token attempt is stored, so three
 * instances make the requests one would; the refresh lock has an acquisition timeout, so a holder
 * stuck on a token endpoint does not hold every other caller; the keep-alive runs once per cluster.
 */
const databaseUrl = process.env.GRANTRY_TEST_DATABASE_URL;
const LOCK_TIMEOUT_MS = 1_500;
const CLIENT = { client_id: 'cluster-cc', client_secret: 'cluster-cc-secret' };
const DAY = 24 * 60 * 60 * 1000;

interface Answer {
  status: number;
  body: { error?: { code: string }; status?: number };
  text: string;
}

describe.skipIf(databaseUrl === undefined)('three grantry processes on one PostgreSQL', () => {
  let schema: PostgresTestSchema;
  let cluster: Cluster;
  let api: ApiFixture;
  let broken: TokenEndpointSwitch;
  let oidc: OidcFixture;
  let relay: HoldingRelay;

  beforeAll(async () => {
    schema = await createPostgresTestSchema(databaseUrl as string);
    cluster = await startCluster({
      size: 3,
      databaseUrl: schema.url,
      // Waiters give up on the refresh lock after 1.5 s; a holder's own request may take 30 s.
      env: { GRANTRY_REFRESH_LOCK_TIMEOUT_MS: String(LOCK_TIMEOUT_MS), GRANTRY_TOKEN_TIMEOUT_MS: '30000' },
    });
    api = await startApiServer({ verify: async () => true });
    broken = await startTokenEndpointSwitch();
    oidc = await startOidcProvider({
      accessTokenTtl: 3,
      clients: [{ ...CLIENT, grant_types: ['client_credentials'] }],
    });
    relay = await startHoldingRelay(oidc.port);
  });
  afterAll(async () => {
    await cluster?.stop();
    await api?.close();
    await broken?.close();
    await relay?.close();
    await oidc?.close();
    await schema?.drop();
  });

  async function connector(tokenUrl: string): Promise<{ authId: string; id: string }> {
    const first = cluster.pick(0);
    const suffix = Math.random().toString(36).slice(2);
    const auth = await first.api('POST', '/api/authentications', {
      name: `cc-${suffix}`,
      type: 'oauth2',
      grantType: 'client_credentials',
      tokenUrl,
      clientId: CLIENT.client_id,
      clientSecret: CLIENT.client_secret,
    });
    expect(auth.status, auth.text).toBe(201);
    const created = await first.api('POST', '/api/connectors', {
      name: `api-${suffix}`,
      baseUrl: api.url,
      authenticationId: auth.body.id,
    });
    expect(created.status, created.text).toBe(201);
    return { authId: auth.body.id, id: created.body.id };
  }

  function execute(instance: number, connectorId: string): Promise<Answer> {
    return cluster
      .pick(instance)
      .api('POST', `/api/connectors/${connectorId}/execute`, { method: 'GET', path: '/echo' });
  }

  /**
   * ROUNDS rounds, PAUSE_MS apart, of CALLS calls on each of the three instances at once, against a
   * token endpoint that fails every request. Returns the answers, the token requests the endpoint
   * received, and how long after the first of them the last call ended.
   */
  async function hammer(
    failure: typeof SERVER_ERROR,
  ): Promise<{ answers: Answer[]; requests: number; windowMs: number }> {
    const ROUNDS = 20;
    const CALLS = 5;
    const PAUSE_MS = 150;
    broken.set(failure);
    const { id } = await connector(broken.url);
    const before = broken.arrivals.length;
    const answers: Answer[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const calls = [0, 1, 2].flatMap((instance) =>
        Array.from({ length: CALLS }, () => execute(instance + round, id)),
      );
      answers.push(...(await Promise.all(calls)));
      await sleep(PAUSE_MS);
    }
    const end = Date.now();
    const arrivals = broken.arrivals.slice(before);
    return { answers, requests: arrivals.length, windowMs: end - (arrivals[0] ?? end) };
  }

  it('three instances hammering a token endpoint that answers 500 make the token requests one instance would', async () => {
    const { answers, requests, windowMs } = await hammer(SERVER_ERROR);
    expect(answers).toHaveLength(300);
    for (const answer of answers) {
      expect(answer.status, answer.text).toBe(502);
      expect(answer.body.error?.code).toBe('token_fetch_failed');
    }
    // The bound. A failed attempt is stored — under the refresh lock, before it is released — with
    // the time of the next attempt: 1 s after the first failure, then 2, 4, 8 … s (at most 60 s)
    // after each following one (src/tokens/failure-backoff.ts). Every instance reads it before it
    // asks the provider, and again under the lock, so the cluster's attempts happen at t0, ≥ t0+1 s,
    // ≥ t0+3 s, ≥ t0+7 s …, whatever instance makes them; and a 500 is not retried within an
    // attempt, so an attempt is one request. In a window of W ms after the first request there are
    // at most maxAttemptsWithin(W) requests: 3 for the ~4 s these 300 calls take (at 0, 1 and 3 s).
    // Three instances backing off each on its own would make about three times as many.
    expect(requests).toBeGreaterThanOrEqual(1);
    expect(requests).toBeLessThanOrEqual(maxAttemptsWithin('token_fetch_failed', windowMs));
  }, 60_000);

  it('…and a token endpoint that answers invalid_client, with the longer back-off of failures a retry cannot fix', async () => {
    const { answers, requests, windowMs } = await hammer(INVALID_CLIENT);
    for (const answer of answers) expect(answer.body.error?.code).toBe('invalid_client');
    // Failures a retry cannot fix wait 5 s, then 10, 20 … s (at most 5 min): within the ~4 s of
    // these calls, maxAttemptsWithin gives one request — for the whole cluster.
    expect(requests).toBeGreaterThanOrEqual(1);
    expect(requests).toBeLessThanOrEqual(maxAttemptsWithin('invalid_client', windowMs));
  }, 60_000);

  it('a holder stuck on the token endpoint: the others stop waiting after the lock timeout, re-read, and say why', async () => {
    const { authId, id } = await connector(`https://127.0.0.1:${relay.port}/token`);
    for (const instance of [0, 1, 2]) expect((await execute(instance, id)).body.status).toBe(200);
    const view = await cluster.pick(0).api('GET', `/api/authentications/${authId}`);
    await sleep(Math.max(0, Date.parse(view.body.token.expiresAt) - Date.now()) + 250);
    oidc.resetCounts();

    // The first instance takes the lock and sends its request, which the relay keeps from the provider.
    relay.hold('requests');
    const stuck = execute(0, id);
    const deadline = Date.now() + 10_000;
    while (relay.heldBytes === 0 && Date.now() < deadline) await sleep(20);
    expect(relay.heldBytes).toBeGreaterThan(0);

    // The others wait LOCK_TIMEOUT_MS for the lock, re-read the stored token (expired), and answer.
    const others = await Promise.all([execute(1, id), execute(2, id), execute(1, id), execute(2, id)]);
    for (const answer of others) {
      expect(answer.status, answer.text).toBe(502);
      expect(answer.body.error?.code).toBe('refresh_lock_timeout');
    }
    // None of them asked the provider; the held request has not reached it either.
    expect(oidc.tokenRequests.total).toBe(0);

    relay.release();
    expect((await stuck).body.status).toBe(200);
    for (const instance of [1, 2]) expect((await execute(instance, id)).body.status).toBe(200);
    expect(oidc.tokenRequests.total).toBe(1);
  }, 60_000);
});

/**
 * Three Grantry instances in this process, on one PostgreSQL schema, sharing one clock the test
 * moves: what must happen at a given time happens then, not after a wait.
 */
describe.skipIf(databaseUrl === undefined)(
  'three instances on one PostgreSQL, with one clock the test moves',
  () => {
    let schema: PostgresTestSchema;
    let oidc: OidcFixture;
    let relay: HoldingRelay;
    let instances: (GrantryHandle & { app: Awaited<ReturnType<typeof startGrantry>>['app'] })[];
    let ahead = 0;

    beforeAll(async () => {
      schema = await createPostgresTestSchema(databaseUrl as string);
      oidc = await startOidcProvider({
        accessTokenTtl: 3600,
        rotateRefreshToken: true,
        clients: [
          { ...CLIENT, grant_types: ['client_credentials'] },
          {
            client_id: 'keeper',
            client_secret: 'keeper-secret',
            grant_types: ['password', 'refresh_token'],
            scope: 'read offline_access',
          },
        ],
      });
      relay = await startHoldingRelay(oidc.port);
      const masterKey = randomBytes(32).toString('base64');
      const apiKey = `grk_test_${randomBytes(16).toString('hex')}`;
      instances = [];
      for (let n = 0; n < 3; n++) {
        instances.push(
          await startGrantry({
            masterKey,
            apiKey,
            clock: () => Date.now() + ahead,
            env: {
              GRANTRY_DATABASE_URL: schema.url,
              GRANTRY_REFRESH_LOCK_TIMEOUT_MS: String(LOCK_TIMEOUT_MS),
              GRANTRY_TOKEN_TIMEOUT_MS: '30000',
              GRANTRY_KEEP_ALIVE_POLL_MS: '50',
            },
          }),
        );
      }
    });
    afterAll(async () => {
      for (const instance of instances ?? []) await instance.stop();
      await relay?.close();
      await oidc?.close();
      await schema?.drop();
    });

    function at(n: number) {
      return instances[n] as (typeof instances)[number];
    }

    it('a holder stuck refreshing a token that has not expired yet: the others wait out the lock timeout and use the stored token', async () => {
      const created = await at(0).api('POST', '/api/authentications', {
        name: `stuck-${Math.random().toString(36).slice(2)}`,
        type: 'oauth2',
        grantType: 'client_credentials',
        tokenUrl: `https://127.0.0.1:${relay.port}/token`,
        clientId: CLIENT.client_id,
        clientSecret: CLIENT.client_secret,
      });
      const id = created.body.id as string;
      oidc.resetCounts();
      const first = await at(0).app.tokens.get(id);
      expect(oidc.tokenRequests.total).toBe(1);

      // 30 s before expiry: inside the refresh window (the last minute or so), not yet expired.
      ahead += (first.expiresAt as number) - Date.now() - ahead - 30_000;
      relay.hold('requests');
      // The first instance hands out its token and refreshes in the background: it takes the lock,
      // and its request is kept from the provider.
      expect((await at(0).app.tokens.get(id)).version).toBe(first.version);
      const deadline = Date.now() + 10_000;
      while (relay.heldBytes === 0 && Date.now() < deadline) await sleep(20);
      expect(relay.heldBytes).toBeGreaterThan(0);

      // The others have nothing in memory: the stored token is due for a refresh, so they go for the
      // lock, give up after the timeout, read the token again and use it: it is still valid.
      const [second, third] = await Promise.all([at(1).app.tokens.acquire(id), at(2).app.tokens.acquire(id)]);
      expect(second).toMatchObject({ source: 'cache', token: { version: first.version } });
      expect(third).toMatchObject({ source: 'cache', token: { version: first.version } });
      expect(oidc.tokenRequests.total).toBe(1);

      // Past its expiry, a waiter has nothing to use: it says so instead of waiting on.
      ahead += 60_000;
      await expect(at(1).app.tokens.get(id)).rejects.toMatchObject({ code: 'refresh_lock_timeout' });

      relay.release();
      const deadlineAfter = Date.now() + 10_000;
      let renewed = await at(0).app.store.tokens.get(id);
      while (renewed?.version === first.version && Date.now() < deadlineAfter) {
        await sleep(20);
        renewed = await at(0).app.store.tokens.get(id);
      }
      expect(renewed?.version).toBeGreaterThan(first.version);
      expect((await at(2).app.tokens.get(id)).version).toBe(renewed?.version);
      expect(oidc.tokenRequests.total).toBe(2);
    }, 60_000);

    it('the keep-alive refreshes an idle refresh token once per period for the whole cluster', async () => {
      const created = await at(1).api('POST', '/api/authentications', {
        name: `kept-${Math.random().toString(36).slice(2)}`,
        type: 'oauth2',
        grantType: 'password',
        tokenUrl: oidc.tokenUrl,
        clientId: 'keeper',
        clientSecret: 'keeper-secret',
        username: 'alice',
        password: 'wonderland',
        scope: 'read offline_access',
        keepAliveDays: 2,
      });
      expect(created.status, created.text).toBe(201);
      const id = created.body.id as string;
      oidc.resetCounts();
      await at(2).app.tokens.get(id);
      expect(oidc.tokenRequests).toMatchObject({ total: 1, password: 1 });

      for (let period = 1; period <= 3; period++) {
        ahead += 2 * DAY + 60_000;
        // Every instance polls every 50 ms and finds it due; the one that takes the lock first refreshes.
        const deadline = Date.now() + 10_000;
        while (oidc.tokenRequests.refresh_token < period && Date.now() < deadline) await sleep(20);
        await sleep(500);
        // Rotation with reuse detection: a second refresh with the same refresh token would revoke
        // the grant; the count says none was made.
        expect(oidc.tokenRequests).toMatchObject({ total: 1 + period, password: 1, refresh_token: period });
      }
      const row = await at(0).app.store.tokens.get(id);
      const refreshToken = at(0).app.keyRing.open(row?.refreshToken as string, sealContext.refreshToken(id));
      const found = await oidc.provider.RefreshToken.find(refreshToken);
      expect(found).toBeDefined();
      expect((found as { consumed?: unknown } | undefined)?.consumed).toBeFalsy();
      const events = (await at(0).api('GET', `/api/authentications/${id}/events`)).body.items as {
        type: string;
      }[];
      expect(events.filter((event) => event.type === 'keep_alive_refreshed')).toHaveLength(3);
      expect(events.filter((event) => event.type === 'token_failed')).toHaveLength(0);
    }, 60_000);
  },
);
