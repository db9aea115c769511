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
  ConnectLinkRecord,
  ConnectorRecord,
  OAuthStateRecord,
  Store,
  TokenFailureWrite,
  TokenWrite,
  WebhookAttemptRecord,
  WebhookEventRecord,
  WebhookRecord,
} from './contract.js';
import { LockTimeoutError } from './lock-timeout.js';
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
    secrets: { client_secret: 'sealed:client-secret' },
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
    secretHeaders: {},
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
    clientAuthMethod: null,
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

function webhook(overrides: Partial<WebhookRecord> = {}): WebhookRecord {
  return {
    id: randomUUID(),
    url: 'https://hooks.example.test/grantry',
    events: ['authentication.needs_attention', 'authentication.recovered'],
    description: 'on-call',
    secret: 'sealed:webhook-secret',
    enabled: true,
    createdAt: 1_700_000_000_000,
    updatedAt: 1_700_000_000_000,
    ...overrides,
  };
}

function webhookEvent(overrides: Partial<WebhookEventRecord> = {}): WebhookEventRecord {
  return {
    id: `evt_${randomUUID()}`,
    type: 'authentication.needs_attention',
    body: '{"type":"authentication.needs_attention","data":{"name":"ü ✓"}}',
    createdAt: 1_000,
    ...overrides,
  };
}

function attempt(overrides: Partial<WebhookAttemptRecord> = {}): WebhookAttemptRecord {
  return {
    attempt: 1,
    at: 1_000,
    durationMs: 12,
    responseStatus: 200,
    errorKind: null,
    errorMessage: null,
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
        secrets: { client_secret: 'sealed:client-secret', password: 'sealed:password' },
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

    it('pages by name then id, after a cursor, with a case-insensitive literal search and filters', async () => {
      const tag = unique('page').replaceAll('-', '');
      const made: AuthenticationRecord[] = [];
      for (const [index, name] of [`${tag} b`, `${tag} A`, `${tag} c 50%_x`, `${tag} a`].entries()) {
        const record = authentication({ name, status: index % 2 === 0 ? 'ready' : 'error' });
        await store.authentications.insert(record);
        made.push(record);
      }
      const search = { limit: 10, nameContains: tag.toUpperCase() };
      const all = await store.authentications.page(search);
      const expected = made.map((r) => r.name).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      expect(all.map((r) => r.name).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))).toEqual(expected);
      const first = await store.authentications.page({ ...search, limit: 2 });
      const last = first.at(-1) as AuthenticationRecord;
      const rest = await store.authentications.page({ ...search, after: { name: last.name, id: last.id } });
      expect([...first, ...rest].map((r) => r.id)).toEqual(all.map((r) => r.id));
      expect(
        (await store.authentications.page({ limit: 10, nameContains: '50%_' })).map((r) => r.name),
      ).toContain(`${tag} c 50%_x`);
      expect(
        (await store.authentications.page({ limit: 10, nameContains: `${tag} c 5_` })).map((r) => r.name),
      ).toEqual([]);
      const errors = await store.authentications.page({ ...search, status: 'error' });
      expect(errors.map((r) => r.status)).toEqual(['error', 'error']);
      expect(await store.authentications.page({ ...search, type: 'bearer' })).toEqual([]);
      const rows = await store.tokens.getMany([made[0]?.id as string, randomUUID()]);
      expect(rows).toEqual([]);
    });

    it('searches names case-insensitively beyond ASCII, the same on every engine (regression: SQLite lower() is ASCII-only)', async () => {
      const tag = unique('fold').replaceAll('-', '');
      const names = [`${tag} Émile Zoë`, `${tag} ΣΊΣΥΦΟΣ`, `${tag} Straße`, `${tag} plain`];
      for (const name of names) await store.authentications.insert(authentication({ name }));
      const found = async (q: string) =>
        (await store.authentications.page({ limit: 10, nameContains: q })).map((r) => r.name).sort();
      expect(await found(`${tag} émile`)).toEqual([`${tag} Émile Zoë`]);
      expect(await found('ZOË')).toEqual([`${tag} Émile Zoë`]);
      expect(await found(`${tag} σίσυφος`)).toEqual([`${tag} ΣΊΣΥΦΟΣ`]);
      expect(await found(`${tag} STRASSE`)).toEqual([]);
      expect(await found(`${tag} STRAßE`)).toEqual([`${tag} Straße`]);
      // A name written decomposed (e + U+0301) is found by the composed search, and the reverse.
      await store.authentications.insert(authentication({ name: `${tag} Cafe\u0301` }));
      expect(await found(`${tag} CAFÉ`)).toEqual([`${tag} Cafe\u0301`]);
      // A rename moves the folded copy with it.
      const record = authentication({ name: `${tag} Öl` });
      await store.authentications.insert(record);
      await store.authentications.update({ ...record, name: `${tag} Ärger` });
      expect(await found(`${tag} öl`)).toEqual([]);
      expect(await found(`${tag} ärger`)).toEqual([`${tag} Ärger`]);
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
        secrets: { client_secret: 'sealed:other-secret' },
        generation: 2,
        updatedAt: record.updatedAt + 1_000,
      };
      expect(await store.authentications.update(changed)).toBe(true);
      expect(await store.authentications.get(record.id)).toEqual(changed);
      expect(await store.authentications.getByName(record.name)).toBeNull();
      expect(await store.authentications.update(authentication())).toBe(false);
    });

    it('replaceSettings swaps only the settings, only while they are the expected ones, and only once of two racers', async () => {
      const record = await insertAuthentication();
      const first = { ...record.settings, boundOrigins: ['https://api.one.test'] };
      const second = { ...record.settings, boundOrigins: ['https://api.two.test'] };
      const results = await Promise.all([
        store.authentications.replaceSettings(record.id, record.settings, first),
        store.authentications.replaceSettings(record.id, record.settings, second),
      ]);
      expect(results.filter(Boolean)).toHaveLength(1);
      const stored = await store.authentications.get(record.id);
      expect(stored).toEqual({ ...record, settings: results[0] ? first : second });
      expect(await store.authentications.replaceSettings(record.id, record.settings, first)).toBe(false);
      expect(await store.authentications.replaceSettings('auth_missing', record.settings, first)).toBe(false);
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

    it('keeps the detected client authentication method with the tokens, through a drop of the access token', async () => {
      const auth = await insertAuthentication();
      const first = await store.tokens.compareAndSwap(
        auth.id,
        null,
        tokenWrite({ clientAuthMethod: 'client_secret_post' }),
      );
      expect(first?.clientAuthMethod).toBe('client_secret_post');
      await store.tokens.dropAccessToken(auth.id);
      expect(await store.tokens.get(auth.id)).toMatchObject({
        accessToken: null,
        clientAuthMethod: 'client_secret_post',
      });
      // Omitted in a write means none: a write that does not know it forgets it.
      const { clientAuthMethod: _omitted, ...withoutMethod } = tokenWrite();
      expect((await store.tokens.compareAndSwap(auth.id, 2, withoutMethod))?.clientAuthMethod).toBeNull();
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

    it('delete with the expected tokens removes only those, not newer ones nor a row of the same version saved later', async () => {
      const auth = await insertAuthentication();
      const first = await store.tokens.compareAndSwap(auth.id, null, tokenWrite({ obtainedAt: 1_000 }));
      const second = await store.tokens.compareAndSwap(auth.id, 1, tokenWrite({ obtainedAt: 2_000 }));
      await store.tokens.delete(auth.id, first ?? undefined);
      expect((await store.tokens.get(auth.id))?.version).toBe(2);
      await store.tokens.delete(auth.id, second ?? undefined);
      expect(await store.tokens.get(auth.id)).toBeNull();
      // Versions start again at 1: the refused version-1 row of before is not this one.
      await store.tokens.compareAndSwap(auth.id, null, tokenWrite({ obtainedAt: 3_000 }));
      await store.tokens.delete(auth.id, first ?? undefined);
      expect((await store.tokens.get(auth.id))?.obtainedAt).toBe(3_000);
    });
  });

  describe('token failures', () => {
    function failureWrite(overrides: Partial<TokenFailureWrite> = {}): TokenFailureWrite {
      return {
        generation: 1,
        problem: { code: 'token_fetch_failed', message: 'The token endpoint answered HTTP 500. ü ✓' },
        attempts: 1,
        nextAttemptAt: 1_700_000_001_000,
        updatedAt: 1_700_000_000_000,
        ...overrides,
      };
    }

    it('records the first failure once, then counts on only from the row the caller read', async () => {
      const auth = await insertAuthentication();
      expect(await store.tokenFailures.get(auth.id)).toBeNull();
      const first = await store.tokenFailures.compareAndSwap(auth.id, null, failureWrite());
      expect(first).toEqual({ authId: auth.id, ...failureWrite() });
      expect(await store.tokenFailures.get(auth.id)).toEqual(first);
      // Someone else's first failure is already there: a second "first" is refused.
      expect(await store.tokenFailures.compareAndSwap(auth.id, null, failureWrite())).toBeNull();

      const second = await store.tokenFailures.compareAndSwap(
        auth.id,
        { generation: 1, attempts: 1 },
        failureWrite({ attempts: 2, nextAttemptAt: 1_700_000_003_000 }),
      );
      expect(second).toMatchObject({ attempts: 2, nextAttemptAt: 1_700_000_003_000 });
      // A writer that read attempts 1 lost the race: it re-reads and counts from 2.
      expect(
        await store.tokenFailures.compareAndSwap(
          auth.id,
          { generation: 1, attempts: 1 },
          failureWrite({ attempts: 2 }),
        ),
      ).toBeNull();
      // Another generation starts over, but only from the stored row.
      const newer = await store.tokenFailures.compareAndSwap(
        auth.id,
        { generation: 1, attempts: 2 },
        failureWrite({ generation: 2, attempts: 1 }),
      );
      expect(newer).toMatchObject({ generation: 2, attempts: 1 });
      expect(await store.tokenFailures.compareAndSwap(randomUUID(), null, failureWrite())).toBeNull();
    });

    it('of several instances recording the same count at once, exactly one wins', async () => {
      const auth = await insertAuthentication();
      await store.tokenFailures.compareAndSwap(auth.id, null, failureWrite());
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, index) =>
          (index % 2 === 0 || !target.shared ? store : other).tokenFailures.compareAndSwap(
            auth.id,
            { generation: 1, attempts: 1 },
            failureWrite({ attempts: 2, updatedAt: index }),
          ),
        ),
      );
      expect(results.filter((result) => result !== null)).toHaveLength(1);
      expect((await store.tokenFailures.get(auth.id))?.attempts).toBe(2);
    });

    it('clear forgets failures of that generation and older, never a newer one; delete cascades', async () => {
      const auth = await insertAuthentication();
      await store.tokenFailures.compareAndSwap(auth.id, null, failureWrite({ generation: 3 }));
      await store.tokenFailures.clear(auth.id, 2);
      expect(await store.tokenFailures.get(auth.id)).toMatchObject({ generation: 3 });
      await store.tokenFailures.clear(auth.id, 3);
      expect(await store.tokenFailures.get(auth.id)).toBeNull();
      await store.tokenFailures.clear(auth.id, 3);
      // Without a generation: whatever is stored, however new (a person asked for a fresh start).
      await store.tokenFailures.compareAndSwap(auth.id, null, failureWrite({ generation: 2_000_000_000 }));
      await store.tokenFailures.clear(auth.id);
      expect(await store.tokenFailures.get(auth.id)).toBeNull();

      await store.tokenFailures.compareAndSwap(auth.id, null, failureWrite());
      await store.authentications.delete(auth.id);
      expect(await store.tokenFailures.get(auth.id)).toBeNull();
    });
  });

  describe('keep-alive', () => {
    const DAY = 24 * 60 * 60 * 1000;
    const NOW = 1_800_000_000_000;

    /** An authentication kept alive every `days` days whose tokens were obtained `idleDays` ago. */
    async function kept(
      days: number | undefined,
      idleDays: number,
      tokens: Partial<TokenWrite> = {},
      overrides: Partial<AuthenticationRecord> = {},
    ): Promise<AuthenticationRecord> {
      const base = authentication({ grantType: 'authorization_code', status: 'connected', ...overrides });
      const record = {
        ...base,
        settings: { ...base.settings, ...(days !== undefined ? { keepAliveDays: days } : {}) },
      };
      await store.authentications.insert(record);
      await store.tokens.compareAndSwap(
        record.id,
        null,
        tokenWrite({ obtainedAt: NOW - idleDays * DAY, generation: record.generation, ...tokens }),
      );
      return record;
    }

    it('lists the authentications whose refresh token sat unused for their keep-alive, longest idle first', async () => {
      const due = await kept(30, 31);
      const longer = await kept(10, 40);
      const exactly = await kept(7, 7);
      const notYet = await kept(30, 29);
      const off = await kept(undefined, 400);
      const noRefreshToken = await kept(1, 5, { refreshToken: null });
      const oldGeneration = await kept(1, 5, { generation: 1 }, { generation: 2 });
      const ids = await store.authentications.listDueForKeepAlive(NOW, 500);
      const mine = ids.filter((id) =>
        [due, longer, exactly, notYet, off, noRefreshToken, oldGeneration].some((a) => a.id === id),
      );
      expect(mine).toEqual([longer.id, due.id, exactly.id]);
      expect(await store.authentications.listDueForKeepAlive(NOW, 0)).toEqual([]);
    });

    it('skips an authentication backing off after a failure of its current configuration', async () => {
      const backingOff = await kept(1, 2);
      const backedOff = await kept(1, 2);
      const staleFailure = await kept(1, 2, {}, { generation: 2 });
      const failure = (generation: number, nextAttemptAt: number): TokenFailureWrite => ({
        generation,
        problem: { code: 'token_fetch_failed', message: 'HTTP 500' },
        attempts: 1,
        nextAttemptAt,
        updatedAt: NOW,
      });
      await store.tokenFailures.compareAndSwap(backingOff.id, null, failure(1, NOW + 1));
      await store.tokenFailures.compareAndSwap(backedOff.id, null, failure(1, NOW));
      await store.tokenFailures.compareAndSwap(staleFailure.id, null, failure(1, NOW + DAY));
      const ids = new Set(await store.authentications.listDueForKeepAlive(NOW, 500));
      expect(ids.has(backingOff.id)).toBe(false);
      expect(ids.has(backedOff.id)).toBe(true);
      expect(ids.has(staleFailure.id)).toBe(true);
    });

    it('follows keepAliveDays through an update, and forgets it when it is cleared', async () => {
      const record = await kept(30, 10);
      expect(await store.authentications.listDueForKeepAlive(NOW, 500)).not.toContain(record.id);
      await store.authentications.update({ ...record, settings: { ...record.settings, keepAliveDays: 5 } });
      expect(await store.authentications.listDueForKeepAlive(NOW, 500)).toContain(record.id);
      const { keepAliveDays: _cleared, ...settings } = (await store.authentications.get(record.id))
        ?.settings ?? { keepAliveDays: 0 };
      await store.authentications.update({ ...record, settings });
      expect(await store.authentications.listDueForKeepAlive(NOW, 500)).not.toContain(record.id);
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

  describe('connect links', () => {
    function link(authId: string, overrides: Partial<ConnectLinkRecord> = {}): ConnectLinkRecord {
      return {
        tokenHash: randomUUID().replaceAll('-', '').repeat(2),
        authId,
        generation: 1,
        createdAt: 1_000,
        expiresAt: 2_000,
        usedAt: null,
        ...overrides,
      };
    }

    it('use() succeeds once, then says used; an expired or unknown link says so', async () => {
      const auth = await insertAuthentication();
      const live = link(auth.id);
      await store.connectLinks.insert(live);
      expect(await store.connectLinks.use(live.tokenHash, 1_500)).toEqual({
        outcome: 'ok',
        link: { ...live, usedAt: 1_500 },
      });
      expect(await store.connectLinks.use(live.tokenHash, 1_600)).toEqual({
        outcome: 'used',
        link: { ...live, usedAt: 1_500 },
      });
      const late = link(auth.id);
      await store.connectLinks.insert(late);
      expect((await store.connectLinks.use(late.tokenHash, 2_000)).outcome).toBe('expired');
      expect(await store.connectLinks.use(randomUUID(), 0)).toEqual({ outcome: 'unknown' });
    });

    it('gives the link to exactly one of 10 concurrent openers', async () => {
      const auth = await insertAuthentication();
      const live = link(auth.id, { expiresAt: Number.MAX_SAFE_INTEGER });
      await store.connectLinks.insert(live);
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, index) =>
          (index % 2 === 0 || !target.shared ? store : other).connectLinks.use(live.tokenHash, 1_000),
        ),
      );
      expect(results.filter((result) => result.outcome === 'ok')).toHaveLength(1);
      expect(results.filter((result) => result.outcome === 'used')).toHaveLength(9);
    });

    it('deleteExpired forgets links expired before a time, and goes with its authentication', async () => {
      const auth = await insertAuthentication();
      const base = 9_000_000_000_000;
      const old = link(auth.id, { expiresAt: base + 100 });
      const fresh = link(auth.id, { expiresAt: base + 300 });
      for (const l of [old, fresh]) await store.connectLinks.insert(l);
      expect(await store.connectLinks.deleteExpired(base + 200)).toBeGreaterThanOrEqual(1);
      expect(await store.connectLinks.use(old.tokenHash, base)).toEqual({ outcome: 'unknown' });
      await store.authentications.delete(auth.id);
      expect(await store.connectLinks.use(fresh.tokenHash, base)).toEqual({ outcome: 'unknown' });
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

    it('with timeoutMs, a waiter gives up with LockTimeoutError and never runs; the holder is unaffected', async () => {
      const authId = randomUUID();
      let release: () => void = () => {};
      const holding = new Promise<void>((resolve) => {
        release = resolve;
      });
      let locked: () => void = () => {};
      const isLocked = new Promise<void>((resolve) => {
        locked = resolve;
      });
      const holder = store.withAuthLock(authId, async () => {
        locked();
        await holding;
        return 'holder';
      });
      await isLocked;
      const waiters = target.shared ? [store, other] : [store];
      let ran = 0;
      for (const waiter of waiters) {
        const failure = await waiter
          .withAuthLock(
            authId,
            async () => {
              ran += 1;
            },
            { timeoutMs: 150 },
          )
          .catch((error: unknown) => error);
        expect(failure).toBeInstanceOf(LockTimeoutError);
        expect((failure as LockTimeoutError).timeoutMs).toBe(150);
      }
      expect(ran).toBe(0);
      release();
      expect((await holder).value).toBe('holder');
      // The lock is free again for everyone, the timed-out waiters' places included.
      for (const waiter of waiters) {
        expect((await waiter.withAuthLock(authId, async () => 'next', { timeoutMs: 1_000 })).value).toBe(
          'next',
        );
      }
    });

    it('with timeoutMs, a waiter that gets the lock in time runs as usual, and the queue behind a quitter moves on', async () => {
      const authId = randomUUID();
      let release: () => void = () => {};
      const holding = new Promise<void>((resolve) => {
        release = resolve;
      });
      const order: string[] = [];
      const holder = store.withAuthLock(authId, async () => {
        await holding;
        order.push('holder');
      });
      const quitter = store
        .withAuthLock(authId, async () => order.push('quitter'), { timeoutMs: 50 })
        .catch((error: unknown) => error);
      const patient = store.withAuthLock(authId, async () => order.push('patient'), { timeoutMs: 5_000 });
      expect(await quitter).toBeInstanceOf(LockTimeoutError);
      release();
      await Promise.all([holder, patient]);
      expect(order).toEqual(['holder', 'patient']);
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

  describe('webhooks', () => {
    async function insertWebhook(overrides: Partial<WebhookRecord> = {}): Promise<WebhookRecord> {
      const record = webhook(overrides);
      await store.webhooks.insert(record);
      return record;
    }

    /** Enqueues one event to each webhook, due at `at`; returns the delivery ids, in webhook order. */
    async function enqueue(webhooks: WebhookRecord[], at: number, type?: string): Promise<string[]> {
      const ids = webhooks.map(() => `msg_${randomUUID()}`);
      const event = webhookEvent({ createdAt: at, ...(type !== undefined ? { type } : {}) });
      const created = await store.webhookDeliveries.enqueue(
        event,
        webhooks.map((record, index) => ({ id: ids[index] as string, webhookId: record.id })),
      );
      expect(created.sort()).toEqual([...ids].sort());
      return ids;
    }

    /**
     * Claims and finishes every due delivery left by earlier tests (they share the tables), so a
     * test's claims see only its own rows.
     */
    async function drain(): Promise<void> {
      for (;;) {
        const claims = await store.webhookDeliveries.claimDue(Number.MAX_SAFE_INTEGER - 1, 100, 1);
        if (claims.length === 0) return;
        for (const claim of claims) {
          await store.webhookDeliveries.complete(claim.delivery.id, claim.claimToken, attempt(), {
            state: 'delivered',
            nextAttemptAt: null,
          });
        }
      }
    }

    it('round-trips, lists, updates and deletes a webhook, its deliveries with it', async () => {
      const record = await insertWebhook({ description: null });
      expect(await store.webhooks.get(record.id)).toEqual(record);
      expect(await store.webhooks.get(randomUUID())).toBeNull();
      expect((await store.webhooks.list()).find((w) => w.id === record.id)).toEqual(record);

      const changed: WebhookRecord = {
        ...record,
        url: 'https://other.example.test/hook?x=1',
        events: ['authentication.connected'],
        description: 'renamed ü',
        enabled: false,
        updatedAt: record.updatedAt + 5,
      };
      expect(await store.webhooks.update(changed)).toBe(true);
      expect(await store.webhooks.get(record.id)).toEqual(changed);
      expect(await store.webhooks.update(webhook())).toBe(false);

      await enqueue([changed], 10);
      expect(await store.webhookDeliveries.listByWebhook(record.id, 10)).toHaveLength(1);
      expect(await store.webhooks.delete(record.id)).toBe(true);
      expect(await store.webhooks.get(record.id)).toBeNull();
      expect(await store.webhookDeliveries.listByWebhook(record.id, 10)).toEqual([]);
      expect(await store.webhooks.delete(record.id)).toBe(false);
    });

    it('enqueues an event once however often, and from however many instances, it is enqueued', async () => {
      const first = await insertWebhook();
      const second = await insertWebhook();
      const event = webhookEvent({ createdAt: 500 });
      const attempts = Array.from({ length: 6 }, (_, index) =>
        (index % 2 === 0 || !target.shared ? store : other).webhookDeliveries.enqueue(event, [
          { id: `msg_${randomUUID()}`, webhookId: first.id },
          { id: `msg_${randomUUID()}`, webhookId: second.id },
        ]),
      );
      const created = (await Promise.all(attempts)).flat();
      expect(created).toHaveLength(2);
      for (const record of [first, second]) {
        const [delivery, ...more] = await store.webhookDeliveries.listByWebhook(record.id, 10);
        expect(more).toEqual([]);
        expect(delivery).toMatchObject({
          webhookId: record.id,
          eventId: event.id,
          eventType: event.type,
          state: 'pending',
          attempts: 0,
          nextAttemptAt: 500,
          lastResponseStatus: null,
          attemptLog: [],
        });
      }
      expect(await store.webhookDeliveries.enqueue(webhookEvent(), [])).toEqual([]);
      await expect(
        store.webhookDeliveries.enqueue(webhookEvent(), [{ id: `msg_${randomUUID()}`, webhookId: 'gone' }]),
      ).rejects.toThrow();
    });

    it('claims due deliveries in due order, once while leased, again after the lease, never for a disabled webhook', async () => {
      await drain();
      const hook = await insertWebhook({ url: 'https://claims.example.test/' });
      const disabled = await insertWebhook({ enabled: false });
      const [late] = await enqueue([hook], 3_000);
      const [early] = await enqueue([hook], 2_000);
      const [future] = await enqueue([hook], 9_000);
      await enqueue([disabled], 1_000);

      expect(await store.webhookDeliveries.claimDue(1_999, 10, 1_000)).toEqual([]);
      const claims = await store.webhookDeliveries.claimDue(5_000, 10, 1_000);
      expect(claims.map((claim) => claim.delivery.id)).toEqual([early, late]);
      const [claim] = claims;
      expect(claim).toMatchObject({ url: hook.url, secret: hook.secret, body: webhookEvent().body });
      expect(claim?.claimToken).toMatch(/\S{16,}/);
      // Leased until 6 000: nobody else gets them meanwhile.
      expect(await store.webhookDeliveries.claimDue(5_999, 10, 1_000)).toEqual([]);
      // A claimer that never finished: its lease runs out and the rows are claimed again, by a new token.
      const again = await store.webhookDeliveries.claimDue(6_000, 1, 1_000);
      expect(again.map((c) => c.delivery.id)).toEqual([early]);
      expect(again[0]?.claimToken).not.toBe(claim?.claimToken);

      // The first claimer's token no longer owns the delivery: its result is not recorded.
      expect(
        await store.webhookDeliveries.complete(early as string, claim?.claimToken as string, attempt(), {
          state: 'delivered',
          nextAttemptAt: null,
        }),
      ).toBe(false);
      expect(
        await store.webhookDeliveries.complete(
          early as string,
          again[0]?.claimToken as string,
          attempt({
            attempt: 1,
            at: 6_000,
            responseStatus: 500,
            errorKind: 'http_status',
            errorMessage: 'HTTP 500',
          }),
          { state: 'pending', nextAttemptAt: 8_000 },
        ),
      ).toBe(true);
      // Pending again, due at 8 000; the other claim (late) is leased until 6 000 and free again.
      expect((await store.webhookDeliveries.claimDue(7_999, 10, 1_000)).map((c) => c.delivery.id)).toEqual([
        late,
      ]);
      const retry = await store.webhookDeliveries.claimDue(8_000, 10, 1_000);
      expect(retry.map((c) => c.delivery.id)).toEqual([early]);
      expect(
        await store.webhookDeliveries.complete(
          early as string,
          retry[0]?.claimToken as string,
          attempt({ attempt: 2, at: 8_000, durationMs: 7.6 }),
          { state: 'delivered', nextAttemptAt: null },
        ),
      ).toBe(true);
      expect((await store.webhookDeliveries.claimDue(20_000, 10, 1_000)).map((c) => c.delivery.id)).toEqual([
        late,
        future,
      ]);

      const listed = await store.webhookDeliveries.listByWebhook(hook.id, 10);
      expect(listed.map((d) => d.id)).toEqual([future, late, early]);
      expect(listed.find((d) => d.id === early)).toMatchObject({
        state: 'delivered',
        attempts: 2,
        nextAttemptAt: null,
        lastResponseStatus: 200,
        attemptLog: [
          {
            attempt: 1,
            at: 6_000,
            durationMs: 12,
            responseStatus: 500,
            errorKind: 'http_status',
            errorMessage: 'HTTP 500',
          },
          { attempt: 2, at: 8_000, durationMs: 8, responseStatus: 200, errorKind: null, errorMessage: null },
        ],
      });
      expect(await store.webhookDeliveries.listByWebhook(hook.id, 1)).toHaveLength(1);
      await drain();
    });

    it('hands each due delivery to exactly one of many concurrent claimers', async () => {
      await drain();
      const hooks = [await insertWebhook(), await insertWebhook()];
      const ids: string[] = [];
      for (let n = 0; n < 30; n += 1) ids.push(...(await enqueue(hooks, 100 + n)));
      const claimers = Array.from({ length: 8 }, (_, index) =>
        (index % 2 === 0 || !target.shared ? store : other).webhookDeliveries.claimDue(10_000, 7, 60_000),
      );
      let claimed = (await Promise.all(claimers)).flat().map((claim) => claim.delivery.id);
      // Whatever the eight claims left is still there for the next ones.
      for (;;) {
        const more = await store.webhookDeliveries.claimDue(10_000, 100, 60_000);
        if (more.length === 0) break;
        claimed = [...claimed, ...more.map((claim) => claim.delivery.id)];
      }
      expect(claimed).toHaveLength(ids.length);
      expect(new Set(claimed)).toEqual(new Set(ids));
      await drain();
    });

    it('prunes finished deliveries and unreferenced events older than the cut, and nothing else', async () => {
      await drain();
      const hook = await insertWebhook();
      const [done] = await enqueue([hook], 100);
      // Due later than the claim below, so it stays pending (and an old pending row is never pruned).
      const [pending] = await enqueue([hook], 120);
      const [claim] = await store.webhookDeliveries.claimDue(100, 10, 1_000);
      expect(claim?.delivery.id).toBe(done);
      await store.webhookDeliveries.complete(
        done as string,
        claim?.claimToken as string,
        attempt({ at: 150 }),
        {
          state: 'failed',
          nextAttemptAt: null,
        },
      );
      // A cut before the delivery finished keeps it.
      await store.webhookDeliveries.prune(150);
      expect((await store.webhookDeliveries.listByWebhook(hook.id, 10)).map((d) => d.id).sort()).toEqual(
        [done, pending].sort(),
      );
      expect(await store.webhookDeliveries.prune(1_000)).toBeGreaterThanOrEqual(2);
      expect((await store.webhookDeliveries.listByWebhook(hook.id, 10)).map((d) => d.id)).toEqual([pending]);
      await drain();
    });
  });

  describe('attention', () => {
    it('counts failures from every instance, and resets them on success', async () => {
      const auth = await insertAuthentication();
      expect(await store.attention.get(auth.id)).toBeNull();
      await Promise.all(
        Array.from({ length: 6 }, (_, index) =>
          (index % 2 === 0 || !target.shared ? store : other).attention.recordFailure(auth.id, 1_000 + index),
        ),
      );
      const state = await store.attention.get(auth.id);
      expect(state).toMatchObject({ open: false, episode: 0, failures: 6 });
      expect(state?.firstFailureAt).toBeGreaterThanOrEqual(1_000);
      expect(await store.attention.recordFailure(auth.id, 9_000)).toMatchObject({
        failures: 7,
        firstFailureAt: state?.firstFailureAt,
      });
      expect(await store.attention.recordSuccess(auth.id, 10_000)).toBeNull();
      expect(await store.attention.get(auth.id)).toEqual({
        open: false,
        episode: 0,
        failures: 0,
        firstFailureAt: null,
      });
      expect(await store.attention.recordFailure(randomUUID(), 1)).toBeNull();
    });

    it('opens and closes attention for exactly one of several concurrent callers', async () => {
      const auth = await insertAuthentication();
      await store.attention.recordFailure(auth.id, 1);
      const opened = await Promise.all(
        Array.from({ length: 6 }, (_, index) =>
          (index % 2 === 0 || !target.shared ? store : other).attention.open(auth.id, 2),
        ),
      );
      expect(opened.filter((episode) => episode !== null)).toEqual([1]);
      expect(await store.attention.get(auth.id)).toMatchObject({ open: true, episode: 1 });
      const closed = await Promise.all(
        Array.from({ length: 6 }, (_, index) =>
          (index % 2 === 0 || !target.shared ? store : other).attention.recordSuccess(auth.id, 3),
        ),
      );
      expect(closed.filter((episode) => episode !== null)).toEqual([1]);
      expect(await store.attention.get(auth.id)).toMatchObject({ open: false, episode: 1, failures: 0 });

      await store.attention.recordFailure(auth.id, 4);
      expect(await store.attention.open(auth.id, 5)).toBe(2);
      expect(await store.attention.open(randomUUID(), 5)).toBeNull();
      // Deleting the authentication deletes its attention state.
      await store.authentications.delete(auth.id);
      expect(await store.attention.get(auth.id)).toBeNull();
    });
  });

  describe('sealed values', () => {
    it('lists every sealed value and replaces one only while it is unchanged', async () => {
      const auth = await insertAuthentication({
        secrets: { client_secret: 'sealed:cs', password: 'sealed:pw' },
      });
      const bare = await insertAuthentication({ secrets: { client_secret: 'sealed:cs-bare' } });
      const keyed = await insertAuthentication({
        type: 'api_key',
        grantType: null,
        settings: { apiKeyIn: 'header', apiKeyName: 'X-Api-Key', apiKeyPrefix: '' },
        secrets: { api_key: 'sealed:ak' },
      });
      const hidden = connector({ secretHeaders: { 'x-api-key': 'sealed:sh' } });
      await store.connectors.insert(hidden);
      await store.tokens.compareAndSwap(
        auth.id,
        null,
        tokenWrite({ accessToken: 'sealed:at', refreshToken: 'sealed:rt' }),
      );
      await store.tokens.compareAndSwap(bare.id, null, tokenWrite({ accessToken: null, refreshToken: null }));
      const state = oauthState(auth.id, { codeVerifier: 'sealed:cv', expiresAt: Number.MAX_SAFE_INTEGER });
      await store.oauthStates.insert(state);

      const refs = (await store.listSealed()).filter((ref) =>
        [auth.id, bare.id, keyed.id, hidden.id, state.stateHash].includes(ref.id),
      );
      expect(refs).toEqual(
        expect.arrayContaining([
          { table: 'authentications', id: auth.id, column: 'client_secret', value: 'sealed:cs' },
          { table: 'authentications', id: auth.id, column: 'password', value: 'sealed:pw' },
          { table: 'authentications', id: bare.id, column: 'client_secret', value: 'sealed:cs-bare' },
          { table: 'authentications', id: keyed.id, column: 'api_key', value: 'sealed:ak' },
          { table: 'connectors', id: hidden.id, column: 'x-api-key', value: 'sealed:sh' },
          { table: 'tokens', id: auth.id, column: 'access_token', value: 'sealed:at' },
          { table: 'tokens', id: auth.id, column: 'refresh_token', value: 'sealed:rt' },
          { table: 'oauth_states', id: state.stateHash, column: 'code_verifier', value: 'sealed:cv' },
        ]),
      );
      expect(refs).toHaveLength(8);

      for (const ref of refs) await store.replaceSealed(ref, `${ref.value}:rotated`);
      const rotated = await store.authentications.get(auth.id);
      expect(rotated?.secrets).toEqual({ client_secret: 'sealed:cs:rotated', password: 'sealed:pw:rotated' });
      expect((await store.authentications.get(keyed.id))?.secrets).toEqual({ api_key: 'sealed:ak:rotated' });
      expect((await store.connectors.get(hidden.id))?.secretHeaders).toEqual({
        'x-api-key': 'sealed:sh:rotated',
      });
      // A secret replaced meanwhile (a PATCH) is not overwritten by the re-sealed old one.
      await store.authentications.update({ ...keyed, secrets: { api_key: 'sealed:patched' } });
      await store.replaceSealed(
        { table: 'authentications', id: keyed.id, column: 'api_key', value: 'sealed:ak:rotated' },
        'sealed:stale',
      );
      expect((await store.authentications.get(keyed.id))?.secrets).toEqual({ api_key: 'sealed:patched' });
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
        store.replaceSealed({ table: 'tokens', id: auth.id, column: 'scope', value: 'read' }, 'x'),
      ).rejects.toThrow(/not a sealed column/);
    });

    it('lists and replaces the signing secret of every webhook', async () => {
      const hook = webhook({ secret: 'sealed:whsec' });
      await store.webhooks.insert(hook);
      const refs = (await store.listSealed()).filter((ref) => ref.id === hook.id);
      expect(refs).toEqual([{ table: 'webhooks', id: hook.id, column: 'secret', value: 'sealed:whsec' }]);
      await store.replaceSealed(refs[0] as (typeof refs)[number], 'sealed:whsec:rotated');
      expect((await store.webhooks.get(hook.id))?.secret).toBe('sealed:whsec:rotated');
      // Replaced only while unchanged.
      await store.replaceSealed(refs[0] as (typeof refs)[number], 'sealed:stale');
      expect((await store.webhooks.get(hook.id))?.secret).toBe('sealed:whsec:rotated');
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

    it('survives losing the session that holds the refresh lock: no crash, the holder finishes, the lock is free again', async () => {
      const applicationName = `grantry_lock_${randomUUID().slice(0, 8)}`;
      const separateUrl = new URL(url);
      separateUrl.searchParams.set('application_name', applicationName);
      const holder = await openStore(separateUrl.toString());
      const other = await openStore(url);
      opened.push(other);
      const authId = randomUUID();
      try {
        const { default: pg } = await import('pg');
        const admin = new pg.Client({ connectionString: postgresUrl as string });
        await admin.connect();
        let finished = false;
        try {
          const held = await holder.withAuthLock(authId, async () => {
            // The server ends the session holding the advisory lock (a restart, a failover).
            const killed = await admin.query(
              `SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
               WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1`,
              [applicationName],
            );
            expect(killed.rowCount).toBe(1);
            // Long enough for the dead connection's 'error' to be emitted (unheard, it crashed the process).
            await new Promise((resolve) => setTimeout(resolve, 300));
            finished = true;
            return 'done';
          });
          expect(held.value).toBe('done');
        } finally {
          await admin.end();
        }
        expect(finished).toBe(true);
        // PostgreSQL dropped the lock with the session: another instance takes it at once.
        const next = await other.withAuthLock(authId, async () => 'taken', { timeoutMs: 2_000 });
        expect(next.value).toBe('taken');
        // And the holder's instance still works, on a new connection.
        const again = await holder.withAuthLock(authId, async () => 'again', { timeoutMs: 2_000 });
        expect(again.value).toBe('again');
      } finally {
        await holder.close();
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
