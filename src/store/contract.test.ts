/**
 * The storage contract suite (`contract.ts`), run against every engine: SQLite (a temp file) always,
 * PostgreSQL when GRANTRY_TEST_DATABASE_URL is set (in a fresh schema per run). Cross-instance rules
 * (locks, change fan-out, CAS and single-use states between two pools) run where the engine is shared.
 *
 * Tests share one store per engine and never clean tables: each makes its own ids and names and
 * looks only at its own rows.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  AuthenticationRecord,
  ChangeEvent,
  ConnectorRecord,
  OAuthStateRecord,
  Store,
  TokenWrite,
} from './contract.js';
import { openStore } from './open-store.js';
import { createPostgresTestSchema } from './postgres-test-schema.js';
import { UniqueViolation } from './unique-violation.js';

interface Target {
  readonly name: 'sqlite' | 'postgres';
  /** Opens the database for this run; `url` opens further instances on the same database. */
  setUp(): Promise<{ url: string; tearDown(): Promise<void> }>;
  /** True when several instances share the store (cross-instance tests apply). */
  readonly shared: boolean;
}

const targets: Target[] = [
  {
    name: 'sqlite',
    shared: false,
    async setUp() {
      const dir = mkdtempSync(join(tmpdir(), 'grantry-store-'));
      return {
        url: `sqlite:${join(dir, 'nested', 'grantry.db')}`,
        tearDown: async () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  },
];
const postgresUrl = process.env.GRANTRY_TEST_DATABASE_URL;
if (postgresUrl) {
  targets.push({
    name: 'postgres',
    shared: true,
    async setUp() {
      const schema = await createPostgresTestSchema(postgresUrl, 'grantry_contract');
      return { url: schema.url, tearDown: () => schema.drop() };
    },
  });
}

let counter = 0;
function unique(label: string): string {
  counter += 1;
  return `${label}-${counter}-${randomUUID().slice(0, 8)}`;
}

function authentication(overrides: Partial<AuthenticationRecord> = {}): AuthenticationRecord {
  return {
    id: randomUUID(),
    name: unique('auth'),
    type: 'oauth2',
    grantType: 'client_credentials',
    settings: {
      tokenUrl: 'https://idp.example.test/token',
      clientId: 'client-1',
      headerPrefix: 'Bearer',
      audienceParam: 'audience',
      clientAuthMethod: 'client_secret_basic',
      scope: 'read write',
      extraTokenParams: { tenant: 'acme', 'weird key': 'ü ✓' },
      pkce: true,
    },
    clientSecret: 'sealed:client-secret',
    password: null,
    status: 'ready',
    lastError: null,
    generation: 1,
    calls: 0,
    unauthorizedCount: 0,
    refreshCount: 0,
    createdAt: 1_700_000_000_000,
    updatedAt: 1_700_000_000_000,
    ...overrides,
  };
}

function connector(overrides: Partial<ConnectorRecord> = {}): ConnectorRecord {
  return {
    id: randomUUID(),
    name: unique('connector'),
    baseUrl: 'https://api.example.test/v1',
    authenticationId: null,
    headers: { 'x-tenant': 'acme' },
    query: { version: '2' },
    refreshOn: null,
    timeoutMs: 30_000,
    createdAt: 1_700_000_000_000,
    updatedAt: 1_700_000_000_000,
    ...overrides,
  };
}

function tokenWrite(overrides: Partial<TokenWrite> = {}): TokenWrite {
  return {
    accessToken: 'sealed:access',
    tokenType: 'Bearer',
    scope: 'read',
    obtainedAt: 1_700_000_000_000,
    // Beyond 2^32, to prove BIGINT columns come back as exact numbers.
    expiresAt: 1_700_000_003_600,
    refreshToken: 'sealed:refresh',
    generation: 1,
    ...overrides,
  };
}

function oauthState(authId: string, overrides: Partial<OAuthStateRecord> = {}): OAuthStateRecord {
  return {
    stateHash: randomUUID().replaceAll('-', ''),
    authId,
    browserHash: 'b'.repeat(64),
    codeVerifier: 'sealed:verifier',
    redirectUri: 'https://grantry.example.test/oauth/callback',
    generation: 1,
    createdAt: 1_000,
    expiresAt: 2_000,
    ...overrides,
  };
}

/** Resolves once `predicate` holds for the collected items (listeners deliver asynchronously). */
async function eventually(predicate: () => boolean, what: string): Promise<void> {
  for (let attempt = 0; attempt < 500; attempt += 1) {
    if (predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe.each(targets)('store contract: $name', (target) => {
  let url: string;
  let tearDown: () => Promise<void>;
  let store: Store;
  /** A second instance on the same database (shared engines only). */
  let other: Store;
  const opened: Store[] = [];

  async function open(): Promise<Store> {
    const instance = await openStore(url);
    opened.push(instance);
    return instance;
  }

  async function insertAuthentication(
    overrides: Partial<AuthenticationRecord> = {},
  ): Promise<AuthenticationRecord> {
    const record = authentication(overrides);
    await store.authentications.insert(record);
    return record;
  }

  beforeAll(async () => {
    ({ url, tearDown } = await target.setUp());
    store = await open();
    await store.migrate();
    if (target.shared) other = await open();
  });

  afterAll(async () => {
    await Promise.all(opened.map((instance) => instance.close()));
    await tearDown?.();
  });

  describe('lifecycle', () => {
    it('names its dialect and answers ping', async () => {
      expect(store.dialect).toBe(target.name);
      expect(await store.ping()).toBe(true);
    });

    it('migrating again is a no-op that keeps the data', async () => {
      const record = await insertAuthentication();
      await store.migrate();
      await store.migrate();
      expect(await store.authentications.get(record.id)).toEqual(record);
    });

    it('ping is false once closed', async () => {
      const instance = await openStore(url);
      await instance.close();
      expect(await instance.ping()).toBe(false);
      await expect(instance.getSetting('anything')).rejects.toThrow();
      await instance.close();
    });
  });

  describe('authentications', () => {
    it('round-trips a record exactly', async () => {
      const record = authentication({
        grantType: 'password',
        password: 'sealed:password',
        status: 'error',
        lastError: { code: 'invalid_client', message: 'rejected', details: { status: 401 } },
        calls: 7,
        unauthorizedCount: 2,
        refreshCount: 3,
        createdAt: 1_731_000_000_123,
        updatedAt: 1_731_000_000_456,
      });
      await store.authentications.insert(record);
      expect(await store.authentications.get(record.id)).toEqual(record);
      expect(await store.authentications.getByName(record.name)).toEqual(record);
      const row = await store.authentications.get(record.id);
      expect(typeof row?.createdAt).toBe('number');
      expect(typeof row?.calls).toBe('number');
    });

    it('returns null for unknown ids and names', async () => {
      expect(await store.authentications.get(randomUUID())).toBeNull();
      expect(await store.authentications.getByName(unique('missing'))).toBeNull();
    });

    it('lists every authentication', async () => {
      const first = await insertAuthentication({ createdAt: 1 });
      const second = await insertAuthentication({ createdAt: 2 });
      const listed = await store.authentications.list();
      const ids = listed.map((record) => record.id);
      expect(ids).toContain(first.id);
      expect(ids).toContain(second.id);
      expect(ids.indexOf(first.id)).toBeLessThan(ids.indexOf(second.id));
      expect(listed.find((record) => record.id === second.id)).toEqual(second);
    });

    it('update replaces the record and reports whether it existed', async () => {
      const record = await insertAuthentication();
      const changed: AuthenticationRecord = {
        ...record,
        name: unique('renamed'),
        settings: { ...record.settings, clientId: 'client-2', audience: 'https://api.example.test' },
        clientSecret: 'sealed:other-secret',
        generation: 2,
        updatedAt: record.updatedAt + 1_000,
      };
      expect(await store.authentications.update(changed)).toBe(true);
      expect(await store.authentications.get(record.id)).toEqual(changed);
      expect(await store.authentications.getByName(record.name)).toBeNull();
      expect(await store.authentications.update(authentication())).toBe(false);
    });

    it('setStatus stores the status and the last error, and clears it', async () => {
      const record = await insertAuthentication();
      const problem = { code: 'token_fetch_failed', message: 'timeout', hint: 'check the token URL' };
      await store.authentications.setStatus(record.id, 'error', problem);
      let stored = await store.authentications.get(record.id);
      expect(stored?.status).toBe('error');
      expect(stored?.lastError).toEqual(problem);
      await store.authentications.setStatus(record.id, 'connected', null);
      stored = await store.authentications.get(record.id);
      expect(stored?.status).toBe('connected');
      expect(stored?.lastError).toBeNull();
    });

    it('addUsage adds to the counters, concurrently too', async () => {
      const record = await insertAuthentication({ calls: 5 });
      await Promise.all(
        Array.from({ length: 10 }, (_, index) =>
          (index % 2 === 0 || !target.shared ? store : other).authentications.addUsage(record.id, {
            calls: 3,
            unauthorized: 1,
            refreshes: 2,
          }),
        ),
      );
      const stored = await store.authentications.get(record.id);
      expect(stored).toMatchObject({ calls: 35, unauthorizedCount: 10, refreshCount: 20 });
    });

    it('rejects a duplicate name with UniqueViolation(authentication_name), on insert and update', async () => {
      const record = await insertAuthentication();
      const duplicate = authentication({ name: record.name });
      const insertError = await store.authentications.insert(duplicate).catch((error: unknown) => error);
      expect(insertError).toBeInstanceOf(UniqueViolation);
      expect((insertError as UniqueViolation).constraint).toBe('authentication_name');

      const another = await insertAuthentication();
      const updateError = await store.authentications
        .update({ ...another, name: record.name })
        .catch((error: unknown) => error);
      expect(updateError).toBeInstanceOf(UniqueViolation);
      expect((updateError as UniqueViolation).constraint).toBe('authentication_name');
      expect((await store.authentications.get(another.id))?.name).toBe(another.name);
    });

    it('delete cascades tokens, events and flow states, and detaches connectors', async () => {
      const record = await insertAuthentication();
      const kept = await insertAuthentication();
      await store.tokens.compareAndSwap(record.id, null, tokenWrite());
      await store.tokens.compareAndSwap(kept.id, null, tokenWrite());
      await store.events.append(record.id, { at: 1, type: 'token_fetched', detail: {} }, 10);
      await store.events.append(kept.id, { at: 1, type: 'token_fetched', detail: {} }, 10);
      const state = oauthState(record.id, { expiresAt: Number.MAX_SAFE_INTEGER });
      await store.oauthStates.insert(state);
      const user = connector({ authenticationId: record.id });
      await store.connectors.insert(user);

      expect(await store.authentications.delete(record.id)).toBe(true);
      expect(await store.authentications.get(record.id)).toBeNull();
      expect(await store.tokens.get(record.id)).toBeNull();
      expect(await store.events.list(record.id, 10)).toEqual([]);
      expect(await store.oauthStates.consumeOne(state.stateHash, 0)).toBeNull();
      expect((await store.connectors.get(user.id))?.authenticationId).toBeNull();
      expect(await store.authentications.delete(record.id)).toBe(false);

      expect(await store.tokens.get(kept.id)).not.toBeNull();
      expect(await store.events.list(kept.id, 10)).toHaveLength(1);
    });
  });

  describe('connectors', () => {
    it('round-trips, lists, and lists by authentication', async () => {
      const auth = await insertAuthentication();
      const attached = connector({ authenticationId: auth.id, createdAt: 10 });
      const alsoAttached = connector({ authenticationId: auth.id, createdAt: 20, headers: {}, query: {} });
      const loose = connector();
      for (const record of [attached, alsoAttached, loose]) await store.connectors.insert(record);

      expect(await store.connectors.get(attached.id)).toEqual(attached);
      expect(await store.connectors.getByName(loose.name)).toEqual(loose);
      expect(await store.connectors.get(randomUUID())).toBeNull();
      expect(await store.connectors.getByName(unique('missing'))).toBeNull();
      expect(await store.connectors.listByAuthentication(auth.id)).toEqual([attached, alsoAttached]);
      const ids = (await store.connectors.list()).map((record) => record.id);
      expect(ids).toEqual(expect.arrayContaining([attached.id, alsoAttached.id, loose.id]));
    });

    it('updates, detaches and deletes', async () => {
      const auth = await insertAuthentication();
      const first = connector({ authenticationId: auth.id });
      const second = connector({ authenticationId: auth.id });
      await store.connectors.insert(first);
      await store.connectors.insert(second);

      const changed: ConnectorRecord = {
        ...first,
        baseUrl: 'https://api.example.test/v2',
        refreshOn: [401, 403],
        timeoutMs: 5_000,
        updatedAt: 99,
      };
      expect(await store.connectors.update(changed)).toBe(true);
      expect(await store.connectors.get(first.id)).toEqual(changed);
      expect(await store.connectors.update(connector())).toBe(false);

      expect((await store.connectors.detachAuthentication(auth.id)).sort()).toEqual(
        [first.id, second.id].sort(),
      );
      expect(await store.connectors.listByAuthentication(auth.id)).toEqual([]);
      expect((await store.connectors.get(second.id))?.authenticationId).toBeNull();
      expect(await store.connectors.detachAuthentication(auth.id)).toEqual([]);

      expect(await store.connectors.delete(first.id)).toBe(true);
      expect(await store.connectors.get(first.id)).toBeNull();
      expect(await store.connectors.delete(first.id)).toBe(false);
    });

    it('rejects a duplicate name with UniqueViolation(connector_name), on insert and update', async () => {
      const record = connector();
      await store.connectors.insert(record);
      const insertError = await store.connectors
        .insert(connector({ name: record.name }))
        .catch((error: unknown) => error);
      expect(insertError).toBeInstanceOf(UniqueViolation);
      expect((insertError as UniqueViolation).constraint).toBe('connector_name');

      const another = connector();
      await store.connectors.insert(another);
      const updateError = await store.connectors
        .update({ ...another, name: record.name })
        .catch((error: unknown) => error);
      expect(updateError).toBeInstanceOf(UniqueViolation);
      expect((updateError as UniqueViolation).constraint).toBe('connector_name');
    });

    it('lets an authentication and a connector share a name', async () => {
      const auth = await insertAuthentication();
      await expect(store.connectors.insert(connector({ name: auth.name }))).resolves.toBeUndefined();
    });
  });

  describe('tokens', () => {
    it('inserts with expectedVersion null, then swaps only on the stored version', async () => {
      const auth = await insertAuthentication();
      expect(await store.tokens.get(auth.id)).toBeNull();

      const first = await store.tokens.compareAndSwap(auth.id, null, tokenWrite());
      expect(first).toEqual({ authId: auth.id, ...tokenWrite(), version: 1 });
      expect(await store.tokens.get(auth.id)).toEqual(first);
      expect(await store.tokens.compareAndSwap(auth.id, null, tokenWrite({ accessToken: 'x' }))).toBeNull();

      const rotated = tokenWrite({
        accessToken: 'sealed:access-2',
        refreshToken: 'sealed:refresh-2',
        expiresAt: null,
      });
      const second = await store.tokens.compareAndSwap(auth.id, 1, rotated);
      expect(second).toEqual({ authId: auth.id, ...rotated, version: 2 });
      expect(await store.tokens.compareAndSwap(auth.id, 1, tokenWrite({ refreshToken: 'lost' }))).toBeNull();
      expect(await store.tokens.get(auth.id)).toEqual(second);
      expect(await store.tokens.compareAndSwap(randomUUID(), 1, tokenWrite())).toBeNull();
    });

    it('lists every token row in one call', async () => {
      const a = await insertAuthentication();
      const b = await insertAuthentication();
      const written = await store.tokens.compareAndSwap(a.id, null, tokenWrite());
      await store.tokens.compareAndSwap(b.id, null, tokenWrite({ accessToken: 'sealed:b' }));
      const rows = await store.tokens.list();
      expect(rows).toContainEqual(written);
      expect(rows.find((r) => r.authId === b.id)?.accessToken).toBe('sealed:b');
    });

    it('lets exactly one of two concurrent swaps with the same expected version win', async () => {
      const auth = await insertAuthentication();
      await store.tokens.compareAndSwap(auth.id, null, tokenWrite());
      const second = target.shared ? other : store;
      const results = await Promise.all([
        store.tokens.compareAndSwap(auth.id, 1, tokenWrite({ refreshToken: 'sealed:from-a' })),
        second.tokens.compareAndSwap(auth.id, 1, tokenWrite({ refreshToken: 'sealed:from-b' })),
      ]);
      const winners = results.filter((result) => result !== null);
      expect(winners).toHaveLength(1);
      expect(winners[0]?.version).toBe(2);
      expect(await store.tokens.get(auth.id)).toEqual(winners[0]);
    });

    it('lets exactly one of several concurrent first writes win', async () => {
      const auth = await insertAuthentication();
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, index) =>
          (index % 2 === 0 || !target.shared ? store : other).tokens.compareAndSwap(
            auth.id,
            null,
            tokenWrite({ accessToken: `sealed:${index}` }),
          ),
        ),
      );
      expect(results.filter((result) => result !== null)).toHaveLength(1);
    });

    it('dropAccessToken keeps the refresh token and bumps the version; delete removes the row', async () => {
      const auth = await insertAuthentication();
      await store.tokens.compareAndSwap(auth.id, null, tokenWrite());
      await store.tokens.dropAccessToken(auth.id);
      const dropped = await store.tokens.get(auth.id);
      expect(dropped).toMatchObject({ accessToken: null, refreshToken: 'sealed:refresh', version: 2 });
      expect(await store.tokens.compareAndSwap(auth.id, 1, tokenWrite())).toBeNull();
      await store.tokens.dropAccessToken(randomUUID());
      await store.tokens.delete(auth.id);
      expect(await store.tokens.get(auth.id)).toBeNull();
      await store.tokens.delete(auth.id);
    });
  });

  describe('events', () => {
    it('lists newest first, ties in insertion order, up to the limit', async () => {
      const auth = await insertAuthentication();
      await store.events.append(auth.id, { at: 100, type: 'a', detail: { n: 1 } }, 50);
      await store.events.append(auth.id, { at: 300, type: 'c', detail: { nested: { ok: true } } }, 50);
      await store.events.append(auth.id, { at: 200, type: 'b1', detail: {} }, 50);
      await store.events.append(auth.id, { at: 200, type: 'b2', detail: {} }, 50);
      expect(await store.events.list(auth.id, 10)).toEqual([
        { at: 300, type: 'c', detail: { nested: { ok: true } } },
        { at: 200, type: 'b2', detail: {} },
        { at: 200, type: 'b1', detail: {} },
        { at: 100, type: 'a', detail: { n: 1 } },
      ]);
      expect((await store.events.list(auth.id, 2)).map((event) => event.type)).toEqual(['c', 'b2']);
      expect(await store.events.list(randomUUID(), 10)).toEqual([]);
    });

    it('trims to the newest `keep` of that authentication only', async () => {
      const auth = await insertAuthentication();
      const neighbour = await insertAuthentication();
      for (let at = 1; at <= 3; at += 1)
        await store.events.append(neighbour.id, { at, type: 'n', detail: {} }, 100);
      for (let at = 1; at <= 8; at += 1) {
        await store.events.append(auth.id, { at: at * 1_000, type: `e${at}`, detail: { at } }, 5);
      }
      expect((await store.events.list(auth.id, 100)).map((event) => event.type)).toEqual([
        'e8',
        'e7',
        'e6',
        'e5',
        'e4',
      ]);
      expect(await store.events.list(neighbour.id, 100)).toHaveLength(3);
    });
  });

  describe('api keys', () => {
    it('inserts, finds by hash, lists, touches, revokes and counts the active ones', async () => {
      const before = await store.apiKeys.countActive();
      const key = {
        id: randomUUID(),
        name: 'ci',
        hash: randomUUID().replaceAll('-', '').repeat(2),
        prefix: 'gr_abc',
        scope: 'admin' as const,
        createdAt: 1_700_000_000_000,
        lastUsedAt: null,
        revokedAt: null,
      };
      const second = {
        ...key,
        id: randomUUID(),
        name: 'ops',
        scope: 'runtime' as const,
        hash: randomUUID().replaceAll('-', '').repeat(2),
      };
      await store.apiKeys.insert(key);
      await store.apiKeys.insert(second);
      expect(await store.apiKeys.findByHash(key.hash)).toEqual(key);
      expect(await store.apiKeys.findByHash('0'.repeat(64))).toBeNull();
      expect(await store.apiKeys.countActive()).toBe(before + 2);
      const listed = await store.apiKeys.list();
      expect(listed).toEqual(expect.arrayContaining([key, second]));

      await store.apiKeys.touch(key.id, 1_700_000_001_000);
      expect((await store.apiKeys.findByHash(key.hash))?.lastUsedAt).toBe(1_700_000_001_000);

      expect(await store.apiKeys.revoke(key.id, 1_700_000_002_000)).toBe(true);
      expect(await store.apiKeys.revoke(key.id, 1_700_000_003_000)).toBe(true);
      expect((await store.apiKeys.findByHash(key.hash))?.revokedAt).toBe(1_700_000_002_000);
      expect(await store.apiKeys.revoke(randomUUID(), 1)).toBe(false);
      expect(await store.apiKeys.countActive()).toBe(before + 1);
    });
  });

  describe('oauth states', () => {
    it('consumeOne returns the state once, and never an expired one', async () => {
      const auth = await insertAuthentication();
      const state = oauthState(auth.id, { createdAt: 1_000, expiresAt: 2_000 });
      await store.oauthStates.insert(state);
      expect(await store.oauthStates.consumeOne(state.stateHash, 1_500)).toEqual(state);
      expect(await store.oauthStates.consumeOne(state.stateHash, 1_500)).toBeNull();

      const expired = oauthState(auth.id, { codeVerifier: null, expiresAt: 2_000 });
      await store.oauthStates.insert(expired);
      expect(await store.oauthStates.consumeOne(expired.stateHash, 2_000)).toBeNull();
      expect(await store.oauthStates.consumeOne(expired.stateHash, 2_500)).toBeNull();
      expect(await store.oauthStates.consumeOne(randomUUID(), 0)).toBeNull();
    });

    it('gives the row to exactly one of 10 concurrent consumers', async () => {
      const auth = await insertAuthentication();
      const state = oauthState(auth.id, { expiresAt: Number.MAX_SAFE_INTEGER });
      await store.oauthStates.insert(state);
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, index) =>
          (index % 2 === 0 || !target.shared ? store : other).oauthStates.consumeOne(state.stateHash, 1_000),
        ),
      );
      const winners = results.filter((result) => result !== null);
      expect(winners).toEqual([state]);
    });

    it('deleteExpired removes states expired at `now` and counts them', async () => {
      const auth = await insertAuthentication();
      // Far-future times, so states of other tests (expiring at small times) are already gone.
      const base = 9_000_000_000_000;
      await store.oauthStates.deleteExpired(base);
      const old = oauthState(auth.id, { expiresAt: base + 100 });
      const edge = oauthState(auth.id, { expiresAt: base + 200 });
      const fresh = oauthState(auth.id, { expiresAt: base + 300 });
      for (const state of [old, edge, fresh]) await store.oauthStates.insert(state);
      expect(await store.oauthStates.deleteExpired(base + 200)).toBe(2);
      expect(await store.oauthStates.consumeOne(fresh.stateHash, base + 250)).toEqual(fresh);
    });
  });

  describe('withAuthLock', () => {
    async function overlapCount(instances: Store[], authId: string, calls: number): Promise<number> {
      let active = 0;
      let maxActive = 0;
      let ran = 0;
      await Promise.all(
        Array.from({ length: calls }, (_, index) => {
          const instance = instances[index % instances.length] as Store;
          return instance.withAuthLock(authId, async () => {
            active += 1;
            maxActive = Math.max(maxActive, active);
            // Real I/O and a timer inside the critical section give an overlap every chance to show.
            await instance.ping();
            await new Promise((resolve) => setTimeout(resolve, 5));
            ran += 1;
            active -= 1;
          });
        }),
      );
      expect(ran).toBe(calls);
      return maxActive;
    }

    it('never runs two functions for the same authentication at once', async () => {
      expect(await overlapCount([store], randomUUID(), 8)).toBe(1);
    });

    it.runIf(target.shared)('excludes across two instances (two pools)', async () => {
      expect(await overlapCount([store, other], randomUUID(), 10)).toBe(1);
    });

    it('does not make different authentications wait for each other', async () => {
      let releaseFirst: () => void = () => {};
      const firstMayFinish = new Promise<void>((resolve) => {
        releaseFirst = resolve;
      });
      // If the second key waited for the first, this would never settle.
      const first = store.withAuthLock(randomUUID(), async () => {
        await firstMayFinish;
        return 'first';
      });
      const second = (target.shared ? other : store).withAuthLock(randomUUID(), async () => {
        releaseFirst();
        return 'second';
      });
      expect((await Promise.all([first, second])).map((result) => result.value)).toEqual(['first', 'second']);
    });

    it('returns the value with waitedMs, and releases the lock when fn throws', async () => {
      const authId = randomUUID();
      const failure = await store
        .withAuthLock(authId, async () => {
          throw new Error('refresh failed');
        })
        .catch((error: unknown) => error);
      expect((failure as Error).message).toBe('refresh failed');
      const result = await (target.shared ? other : store).withAuthLock(authId, async () => 42);
      expect(result.value).toBe(42);
      expect(result.waitedMs).toBeGreaterThanOrEqual(0);
      expect(Number.isFinite(result.waitedMs)).toBe(true);
    });
  });

  describe('publish / subscribe', () => {
    it('delivers to this instance asynchronously, once, until unsubscribed', async () => {
      const authId = randomUUID();
      const received: ChangeEvent[] = [];
      const unsubscribe = store.subscribe((event) => {
        if ('authId' in event && event.authId === authId) received.push(event);
      });
      const published = store.publish({ kind: 'tokens_changed', authId });
      expect(received).toEqual([]);
      await published;
      await eventually(() => received.length === 1, 'the local delivery');

      if (target.shared) {
        // NOTIFY echoes to the sender's own LISTEN connection; a marker sent by the other instance
        // after it arrives behind the echo, so by then a double delivery would have shown.
        const marker = randomUUID();
        let markerSeen = false;
        const stopMarker = store.subscribe((event) => {
          if (event.kind === 'connector_changed' && event.connectorId === marker) markerSeen = true;
        });
        await other.publish({ kind: 'connector_changed', connectorId: marker });
        await eventually(() => markerSeen, 'the marker from the other instance');
        stopMarker();
      }
      expect(received).toEqual([{ kind: 'tokens_changed', authId }]);

      unsubscribe();
      await store.publish({ kind: 'authentication_deleted', authId });
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(received).toHaveLength(1);
    });

    it('keeps delivering to other listeners when one throws', async () => {
      const connectorId = randomUUID();
      const warnings: Error[] = [];
      const onWarning = (warning: Error): void => {
        warnings.push(warning);
      };
      process.on('warning', onWarning);
      const stopThrowing = store.subscribe(() => {
        throw new Error('listener bug');
      });
      let seen = 0;
      const stop = store.subscribe((event) => {
        if (event.kind === 'connector_deleted' && event.connectorId === connectorId) seen += 1;
      });
      await store.publish({ kind: 'connector_deleted', connectorId });
      await eventually(() => seen === 1, 'the healthy listener');
      await eventually(() => warnings.some((warning) => warning.message === 'listener bug'), 'the warning');
      stopThrowing();
      stop();
      process.off('warning', onWarning);
    });

    it.runIf(target.shared)('delivers across instances, every kind of change', async () => {
      const authId = randomUUID();
      const connectorId = randomUUID();
      const mine = (event: ChangeEvent): boolean =>
        'authId' in event
          ? event.authId === authId
          : 'connectorId' in event && event.connectorId === connectorId;
      const atOther: ChangeEvent[] = [];
      const atStore: ChangeEvent[] = [];
      const stopOther = other.subscribe((event) => {
        if (mine(event)) atOther.push(event);
      });
      const stopStore = store.subscribe((event) => {
        if (mine(event)) atStore.push(event);
      });
      const events: ChangeEvent[] = [
        { kind: 'authentication_changed', authId },
        { kind: 'authentication_deleted', authId },
        { kind: 'tokens_changed', authId },
        { kind: 'connector_changed', connectorId },
        { kind: 'connector_deleted', connectorId },
      ];
      for (const event of events) await store.publish(event);
      await eventually(() => atOther.length === events.length, 'every change at the other instance');
      expect(atOther).toEqual(events);
      expect(atStore).toEqual(events);
      stopOther();
      stopStore();
    });
  });

  describe('sealed values', () => {
    it('lists every sealed value and replaces one only while it is unchanged', async () => {
      const auth = await insertAuthentication({ clientSecret: 'sealed:cs', password: 'sealed:pw' });
      const bare = await insertAuthentication({ clientSecret: 'sealed:cs-bare', password: null });
      await store.tokens.compareAndSwap(
        auth.id,
        null,
        tokenWrite({ accessToken: 'sealed:at', refreshToken: 'sealed:rt' }),
      );
      await store.tokens.compareAndSwap(bare.id, null, tokenWrite({ accessToken: null, refreshToken: null }));
      const state = oauthState(auth.id, { codeVerifier: 'sealed:cv', expiresAt: Number.MAX_SAFE_INTEGER });
      await store.oauthStates.insert(state);

      const refs = (await store.listSealed()).filter((ref) =>
        [auth.id, bare.id, state.stateHash].includes(ref.id),
      );
      expect(refs).toEqual(
        expect.arrayContaining([
          { table: 'authentications', id: auth.id, column: 'client_secret', value: 'sealed:cs' },
          { table: 'authentications', id: auth.id, column: 'password', value: 'sealed:pw' },
          { table: 'authentications', id: bare.id, column: 'client_secret', value: 'sealed:cs-bare' },
          { table: 'tokens', id: auth.id, column: 'access_token', value: 'sealed:at' },
          { table: 'tokens', id: auth.id, column: 'refresh_token', value: 'sealed:rt' },
          { table: 'oauth_states', id: state.stateHash, column: 'code_verifier', value: 'sealed:cv' },
        ]),
      );
      expect(refs).toHaveLength(6);

      for (const ref of refs) await store.replaceSealed(ref, `${ref.value}:rotated`);
      const rotated = await store.authentications.get(auth.id);
      expect(rotated).toMatchObject({ clientSecret: 'sealed:cs:rotated', password: 'sealed:pw:rotated' });
      expect(await store.tokens.get(auth.id)).toMatchObject({
        accessToken: 'sealed:at:rotated',
        refreshToken: 'sealed:rt:rotated',
        version: 1,
      });
      expect((await store.oauthStates.consumeOne(state.stateHash, 0))?.codeVerifier).toBe(
        'sealed:cv:rotated',
      );

      // A token refreshed during the rotation is not overwritten by the re-sealed old one.
      await store.tokens.compareAndSwap(auth.id, 1, tokenWrite({ refreshToken: 'sealed:new-key-rt' }));
      await store.replaceSealed(
        { table: 'tokens', id: auth.id, column: 'refresh_token', value: 'sealed:rt:rotated' },
        'sealed:stale',
      );
      expect((await store.tokens.get(auth.id))?.refreshToken).toBe('sealed:new-key-rt');

      await expect(
        store.replaceSealed({ table: 'authentications', id: auth.id, column: 'name', value: auth.name }, 'x'),
      ).rejects.toThrow(/not a sealed column/);
    });
  });

  describe('settings', () => {
    it('gets null when unset, then the last value set', async () => {
      const key = unique('setting');
      expect(await store.getSetting(key)).toBeNull();
      await store.setSetting(key, 'one');
      expect(await store.getSetting(key)).toBe('one');
      await store.setSetting(key, 'two');
      expect(await store.getSetting(key)).toBe('two');
      if (target.shared) expect(await other.getSetting(key)).toBe('two');
    });
  });

  describe.runIf(target.shared)('shared engine', () => {
    it('recovers its connections and its LISTEN after the server drops them', async () => {
      const applicationName = `grantry_reconnect_${randomUUID().slice(0, 8)}`;
      const separateUrl = new URL(url);
      separateUrl.searchParams.set('application_name', applicationName);
      const victim = await openStore(separateUrl.toString());
      try {
        expect(await victim.ping()).toBe(true);
        const connectorId = randomUUID();
        let seen = 0;
        victim.subscribe((event) => {
          if (event.kind === 'connector_changed' && event.connectorId === connectorId) seen += 1;
        });
        const killer = await openStore(url);
        opened.push(killer);
        const terminate = async (): Promise<void> => {
          // Through a raw statement on the other instance: the store has no API for this, on purpose.
          const { default: pg } = await import('pg');
          const client = new pg.Client({ connectionString: postgresUrl as string });
          await client.connect();
          try {
            const result = await client.query(
              'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
              [applicationName],
            );
            expect(result.rowCount).toBeGreaterThan(0);
          } finally {
            await client.end();
          }
        };
        await terminate();
        // NOTIFY is not durable: keep publishing until the re-established LISTEN hears one.
        for (let attempt = 0; attempt < 100 && seen === 0; attempt += 1) {
          await killer.publish({ kind: 'connector_changed', connectorId });
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        expect(seen).toBeGreaterThan(0);
        // The pool drops the dead connections and opens new ones.
        let answered = false;
        for (let attempt = 0; attempt < 20 && !answered; attempt += 1) answered = await victim.ping();
        expect(answered).toBe(true);
      } finally {
        await victim.close();
      }
    });

    it('migrates a fresh database from several instances starting together', async () => {
      const fresh = await createPostgresTestSchema(postgresUrl as string, 'grantry_contract_race');
      const instances = await Promise.all([openStore(fresh.url), openStore(fresh.url), openStore(fresh.url)]);
      try {
        await Promise.all(instances.map((instance) => instance.migrate()));
        const [first, second] = instances as [Store, Store, Store];
        const record = authentication();
        await first.authentications.insert(record);
        expect(await second.authentications.get(record.id)).toEqual(record);
        // The tables went into the fresh schema, not into the shared store's.
        expect(await store.authentications.get(record.id)).toBeNull();
      } finally {
        await Promise.all(instances.map((instance) => instance.close()));
        await fresh.drop();
      }
    });
  });
});
