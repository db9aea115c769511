/**
 * The repositories of `contract.ts`, written once over Kysely and shared by both engines. Every
 * race-safe operation is a single statement whose condition carries the rule (compare-and-swap on
 * `version`, DELETE … RETURNING for single-use states), so it holds across instances without locks.
 */
import type { Kysely, Selectable } from 'kysely';
import { sql } from 'kysely';
import type {
  ApiKeyRecord,
  ApiKeyRepository,
  AuthenticationRecord,
  AuthenticationRepository,
  AuthenticationSettings,
  AuthStatus,
  ChangeEvent,
  ConnectorRecord,
  ConnectorRepository,
  EventRecord,
  EventRepository,
  GrantType,
  OAuthStateRecord,
  OAuthStateRepository,
  Sealed,
  SealedValueRef,
  Store,
  TokenRecord,
  TokenRepository,
  TokenWrite,
} from './contract.js';
import type { Engine } from './dialect.js';
import { buildMigrations, runMigrations } from './migrations.js';
import type {
  ApiKeysTable,
  AuthenticationsTable,
  ConnectorsTable,
  Database,
  OAuthStatesTable,
  TokensTable,
} from './schema.js';
import type { UniqueConstraint } from './unique-violation.js';
import { UniqueViolation } from './unique-violation.js';

/** Constraint names (as the engines report them) that the API answers with 409. */
const namedUniqueConstraints: Record<string, UniqueConstraint> = {
  authentications_name_unique: 'authentication_name',
  connectors_name_unique: 'connector_name',
};

function affected(count: bigint | number | undefined): number {
  return Number(count ?? 0);
}

function toJson(value: unknown): string {
  return JSON.stringify(value);
}

function authenticationToRow(record: AuthenticationRecord): AuthenticationsTable {
  return {
    id: record.id,
    name: record.name,
    type: record.type,
    grant_type: record.grantType,
    settings: toJson(record.settings),
    client_secret: record.clientSecret,
    password: record.password,
    status: record.status,
    last_error: record.lastError === null || record.lastError === undefined ? null : toJson(record.lastError),
    generation: record.generation,
    calls: record.calls,
    unauthorized_count: record.unauthorizedCount,
    refresh_count: record.refreshCount,
    created_at: record.createdAt,
    updated_at: record.updatedAt,
  };
}

function authenticationFromRow(row: Selectable<AuthenticationsTable>): AuthenticationRecord {
  return {
    id: row.id,
    name: row.name,
    type: 'oauth2',
    grantType: row.grant_type as GrantType,
    settings: JSON.parse(row.settings) as AuthenticationSettings,
    clientSecret: row.client_secret,
    password: row.password,
    status: row.status as AuthStatus,
    lastError: row.last_error === null ? null : (JSON.parse(row.last_error) as unknown),
    generation: row.generation,
    calls: row.calls,
    unauthorizedCount: row.unauthorized_count,
    refreshCount: row.refresh_count,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function connectorToRow(record: ConnectorRecord): ConnectorsTable {
  return {
    id: record.id,
    name: record.name,
    base_url: record.baseUrl,
    authentication_id: record.authenticationId,
    headers: toJson(record.headers),
    query: toJson(record.query),
    refresh_on: record.refreshOn === null ? null : toJson(record.refreshOn),
    timeout_ms: record.timeoutMs,
    created_at: record.createdAt,
    updated_at: record.updatedAt,
  };
}

function connectorFromRow(row: Selectable<ConnectorsTable>): ConnectorRecord {
  return {
    id: row.id,
    name: row.name,
    baseUrl: row.base_url,
    authenticationId: row.authentication_id,
    headers: JSON.parse(row.headers) as Record<string, string>,
    query: JSON.parse(row.query) as Record<string, string>,
    refreshOn: row.refresh_on === null ? null : (JSON.parse(row.refresh_on) as (401 | 403)[]),
    timeoutMs: row.timeout_ms,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function tokenWriteToRow(write: TokenWrite): Omit<TokensTable, 'auth_id' | 'version'> {
  return {
    access_token: write.accessToken,
    token_type: write.tokenType,
    scope: write.scope,
    obtained_at: write.obtainedAt,
    expires_at: write.expiresAt,
    refresh_token: write.refreshToken,
    generation: write.generation,
  };
}

function tokenFromRow(row: Selectable<TokensTable>): TokenRecord {
  return {
    authId: row.auth_id,
    accessToken: row.access_token,
    tokenType: row.token_type,
    scope: row.scope,
    obtainedAt: row.obtained_at,
    expiresAt: row.expires_at,
    refreshToken: row.refresh_token,
    generation: row.generation,
    version: row.version,
  };
}

function apiKeyFromRow(row: Selectable<ApiKeysTable>): ApiKeyRecord {
  return {
    id: row.id,
    name: row.name,
    hash: row.hash,
    prefix: row.prefix,
    scope: row.scope as ApiKeyRecord['scope'],
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  };
}

function oauthStateFromRow(row: Selectable<OAuthStatesTable>): OAuthStateRecord {
  return {
    stateHash: row.state_hash,
    authId: row.auth_id,
    browserHash: row.browser_hash,
    codeVerifier: row.code_verifier,
    redirectUri: row.redirect_uri,
    generation: row.generation,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
  };
}

export class KyselyStore implements Store {
  readonly dialect: 'sqlite' | 'postgres';
  readonly authentications: AuthenticationRepository;
  readonly connectors: ConnectorRepository;
  readonly tokens: TokenRepository;
  readonly events: EventRepository;
  readonly apiKeys: ApiKeyRepository;
  readonly oauthStates: OAuthStateRepository;
  readonly #engine: Engine;
  readonly #db: Kysely<Database>;
  #closed = false;

  constructor(engine: Engine) {
    this.#engine = engine;
    this.#db = engine.db;
    this.dialect = engine.dialect;
    this.authentications = this.#authenticationRepository();
    this.connectors = this.#connectorRepository();
    this.tokens = this.#tokenRepository();
    this.events = this.#eventRepository();
    this.apiKeys = this.#apiKeyRepository();
    this.oauthStates = this.#oauthStateRepository();
  }

  /** Runs `write`, turning a violated unique name into a `UniqueViolation`. */
  async #uniqueNames<T>(write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (error) {
      const constraint = this.#engine.violatedUniqueConstraint(error);
      const named = constraint === null ? undefined : namedUniqueConstraints[constraint];
      if (named !== undefined) throw new UniqueViolation(named, { cause: error });
      throw error;
    }
  }

  #authenticationRepository(): AuthenticationRepository {
    const db = this.#db;
    return {
      insert: async (record) => {
        await this.#uniqueNames(() =>
          db.insertInto('authentications').values(authenticationToRow(record)).execute(),
        );
      },
      get: async (id) => {
        const row = await db
          .selectFrom('authentications')
          .selectAll()
          .where('id', '=', id)
          .executeTakeFirst();
        return row ? authenticationFromRow(row) : null;
      },
      getByName: async (name) => {
        const row = await db
          .selectFrom('authentications')
          .selectAll()
          .where('name', '=', name)
          .executeTakeFirst();
        return row ? authenticationFromRow(row) : null;
      },
      list: async () => {
        const rows = await db
          .selectFrom('authentications')
          .selectAll()
          .orderBy('created_at')
          .orderBy('id')
          .execute();
        return rows.map(authenticationFromRow);
      },
      update: async (record) => {
        const { id, ...changes } = authenticationToRow(record);
        const result = await this.#uniqueNames(() =>
          db.updateTable('authentications').set(changes).where('id', '=', id).executeTakeFirst(),
        );
        return affected(result.numUpdatedRows) > 0;
      },
      setStatus: async (id, status, lastError) => {
        await db
          .updateTable('authentications')
          .set({
            status,
            last_error: lastError === null || lastError === undefined ? null : toJson(lastError),
          })
          .where('id', '=', id)
          .execute();
      },
      addUsage: async (id, delta) => {
        // Increments in SQL, so concurrent instances adding their batches never overwrite each other.
        await db
          .updateTable('authentications')
          .set((eb) => ({
            calls: eb('calls', '+', delta.calls),
            unauthorized_count: eb('unauthorized_count', '+', delta.unauthorized),
            refresh_count: eb('refresh_count', '+', delta.refreshes),
          }))
          .where('id', '=', id)
          .execute();
      },
      delete: async (id) => {
        // Tokens, events and flow states go by ON DELETE CASCADE; connectors are detached (SET NULL).
        const result = await db.deleteFrom('authentications').where('id', '=', id).executeTakeFirst();
        return affected(result.numDeletedRows) > 0;
      },
    };
  }

  #connectorRepository(): ConnectorRepository {
    const db = this.#db;
    return {
      insert: async (record) => {
        await this.#uniqueNames(() => db.insertInto('connectors').values(connectorToRow(record)).execute());
      },
      get: async (id) => {
        const row = await db.selectFrom('connectors').selectAll().where('id', '=', id).executeTakeFirst();
        return row ? connectorFromRow(row) : null;
      },
      getByName: async (name) => {
        const row = await db.selectFrom('connectors').selectAll().where('name', '=', name).executeTakeFirst();
        return row ? connectorFromRow(row) : null;
      },
      list: async () => {
        const rows = await db
          .selectFrom('connectors')
          .selectAll()
          .orderBy('created_at')
          .orderBy('id')
          .execute();
        return rows.map(connectorFromRow);
      },
      listByAuthentication: async (authId) => {
        const rows = await db
          .selectFrom('connectors')
          .selectAll()
          .where('authentication_id', '=', authId)
          .orderBy('created_at')
          .orderBy('id')
          .execute();
        return rows.map(connectorFromRow);
      },
      update: async (record) => {
        const { id, ...changes } = connectorToRow(record);
        const result = await this.#uniqueNames(() =>
          db.updateTable('connectors').set(changes).where('id', '=', id).executeTakeFirst(),
        );
        return affected(result.numUpdatedRows) > 0;
      },
      detachAuthentication: async (authId) => {
        const rows = await db
          .updateTable('connectors')
          .set({ authentication_id: null })
          .where('authentication_id', '=', authId)
          .returning('id')
          .execute();
        return rows.map((row) => row.id);
      },
      delete: async (id) => {
        const result = await db.deleteFrom('connectors').where('id', '=', id).executeTakeFirst();
        return affected(result.numDeletedRows) > 0;
      },
    };
  }

  #tokenRepository(): TokenRepository {
    const db = this.#db;
    return {
      get: async (authId) => {
        const row = await db
          .selectFrom('tokens')
          .selectAll()
          .where('auth_id', '=', authId)
          .executeTakeFirst();
        return row ? tokenFromRow(row) : null;
      },
      list: async () => (await db.selectFrom('tokens').selectAll().execute()).map(tokenFromRow),
      compareAndSwap: async (authId, expectedVersion, write) => {
        // One statement each way, so the check and the write cannot be split by another writer.
        const row =
          expectedVersion === null
            ? await db
                .insertInto('tokens')
                .values({ auth_id: authId, ...tokenWriteToRow(write), version: 1 })
                .onConflict((conflict) => conflict.column('auth_id').doNothing())
                .returningAll()
                .executeTakeFirst()
            : await db
                .updateTable('tokens')
                .set((eb) => ({ ...tokenWriteToRow(write), version: eb('version', '+', 1) }))
                .where('auth_id', '=', authId)
                .where('version', '=', expectedVersion)
                .returningAll()
                .executeTakeFirst();
        return row ? tokenFromRow(row) : null;
      },
      dropAccessToken: async (authId) => {
        // A write like any other: bumping the version makes a writer holding the old version re-read.
        await db
          .updateTable('tokens')
          .set((eb) => ({ access_token: null, version: eb('version', '+', 1) }))
          .where('auth_id', '=', authId)
          .execute();
      },
      delete: async (authId) => {
        await db.deleteFrom('tokens').where('auth_id', '=', authId).execute();
      },
    };
  }

  #eventRepository(): EventRepository {
    const db = this.#db;
    return {
      append: async (authId, event, keep) => {
        await db
          .insertInto('events')
          .values({ auth_id: authId, at: event.at, type: event.type, detail: toJson(event.detail) })
          .execute();
        // Deletes only what lies past the newest `keep` (usually one row, or none), found through
        // the (auth_id, at) index, rather than testing every row of the authentication against
        // the kept ones. Not in one transaction with the insert: a crash in between leaves one
        // event too many, which the next append trims; the timeline is a record, not a ledger.
        await db
          .deleteFrom('events')
          .where('id', 'in', (eb) =>
            eb
              .selectFrom('events')
              .select('id')
              .where('auth_id', '=', authId)
              .orderBy('at', 'desc')
              .orderBy('id', 'desc')
              // SQLite takes OFFSET only after a LIMIT; this one is no limit at all.
              .limit(Number.MAX_SAFE_INTEGER)
              .offset(Math.max(0, Math.floor(keep))),
          )
          .execute();
      },
      list: async (authId, limit) => {
        const rows = await db
          .selectFrom('events')
          .select(['at', 'type', 'detail'])
          .where('auth_id', '=', authId)
          .orderBy('at', 'desc')
          .orderBy('id', 'desc')
          .limit(Math.max(0, Math.floor(limit)))
          .execute();
        return rows.map(
          (row): EventRecord => ({
            at: row.at,
            type: row.type,
            detail: JSON.parse(row.detail) as Record<string, unknown>,
          }),
        );
      },
    };
  }

  #apiKeyRepository(): ApiKeyRepository {
    const db = this.#db;
    return {
      insert: async (record) => {
        await db
          .insertInto('api_keys')
          .values({
            id: record.id,
            name: record.name,
            hash: record.hash,
            prefix: record.prefix,
            scope: record.scope,
            created_at: record.createdAt,
            last_used_at: record.lastUsedAt,
            revoked_at: record.revokedAt,
          })
          .execute();
      },
      findByHash: async (hash) => {
        const row = await db.selectFrom('api_keys').selectAll().where('hash', '=', hash).executeTakeFirst();
        return row ? apiKeyFromRow(row) : null;
      },
      list: async () => {
        const rows = await db
          .selectFrom('api_keys')
          .selectAll()
          .orderBy('created_at')
          .orderBy('id')
          .execute();
        return rows.map(apiKeyFromRow);
      },
      revoke: async (id, at) => {
        // Revoking twice keeps the first revocation time; true whenever the key exists.
        const result = await db
          .updateTable('api_keys')
          .set((eb) => ({ revoked_at: eb.fn.coalesce('revoked_at', eb.val(at)) }))
          .where('id', '=', id)
          .executeTakeFirst();
        return affected(result.numUpdatedRows) > 0;
      },
      touch: async (id, at) => {
        await db.updateTable('api_keys').set({ last_used_at: at }).where('id', '=', id).execute();
      },
      countActive: async () => {
        const row = await db
          .selectFrom('api_keys')
          .select((eb) => eb.fn.countAll<number>().as('count'))
          .where('revoked_at', 'is', null)
          .executeTakeFirstOrThrow();
        return Number(row.count);
      },
    };
  }

  #oauthStateRepository(): OAuthStateRepository {
    const db = this.#db;
    return {
      insert: async (record) => {
        await db
          .insertInto('oauth_states')
          .values({
            state_hash: record.stateHash,
            auth_id: record.authId,
            browser_hash: record.browserHash,
            code_verifier: record.codeVerifier,
            redirect_uri: record.redirectUri,
            generation: record.generation,
            created_at: record.createdAt,
            expires_at: record.expiresAt,
          })
          .execute();
      },
      consumeOne: async (stateHash, now) => {
        const row = await db
          .deleteFrom('oauth_states')
          .where('state_hash', '=', stateHash)
          .where('expires_at', '>', now)
          .returningAll()
          .executeTakeFirst();
        return row ? oauthStateFromRow(row) : null;
      },
      deleteExpired: async (now) => {
        const result = await db.deleteFrom('oauth_states').where('expires_at', '<=', now).executeTakeFirst();
        return affected(result.numDeletedRows);
      },
    };
  }

  async migrate(): Promise<void> {
    await this.#engine.withMigrationLock(() => runMigrations(this.#db, buildMigrations(this.#engine)));
  }

  async ping(): Promise<boolean> {
    if (this.#closed) return false;
    try {
      await sql`SELECT 1`.execute(this.#db);
      return true;
    } catch {
      return false;
    }
  }

  withAuthLock<T>(authId: string, fn: () => Promise<T>): Promise<{ value: T; waitedMs: number }> {
    return this.#engine.withAuthLock(authId, fn);
  }

  publish(event: ChangeEvent): Promise<void> {
    return this.#engine.publish(event);
  }

  subscribe(listener: (event: ChangeEvent) => void): () => void {
    return this.#engine.subscribe(listener);
  }

  async listSealed(): Promise<SealedValueRef[]> {
    const refs: SealedValueRef[] = [];
    const add = (table: SealedValueRef['table'], id: string, column: string, value: Sealed | null): void => {
      if (value !== null) refs.push({ table, id, column, value });
    };
    const authentications = await this.#db
      .selectFrom('authentications')
      .select(['id', 'client_secret', 'password'])
      .orderBy('id')
      .execute();
    for (const row of authentications) {
      add('authentications', row.id, 'client_secret', row.client_secret);
      add('authentications', row.id, 'password', row.password);
    }
    const tokens = await this.#db
      .selectFrom('tokens')
      .select(['auth_id', 'access_token', 'refresh_token'])
      .orderBy('auth_id')
      .execute();
    for (const row of tokens) {
      add('tokens', row.auth_id, 'access_token', row.access_token);
      add('tokens', row.auth_id, 'refresh_token', row.refresh_token);
    }
    const states = await this.#db
      .selectFrom('oauth_states')
      .select(['state_hash', 'code_verifier'])
      .orderBy('state_hash')
      .execute();
    for (const row of states) add('oauth_states', row.state_hash, 'code_verifier', row.code_verifier);
    return refs;
  }

  /**
   * Replaces one sealed value, but only while the column still holds `ref.value`: a token refreshed
   * during a key rotation (already sealed with the new key) must not be overwritten by the
   * re-sealed old token. A ref whose value has changed or gone is left alone.
   */
  async replaceSealed(ref: SealedValueRef, value: Sealed): Promise<void> {
    const db = this.#db;
    switch (`${ref.table}.${ref.column}`) {
      case 'authentications.client_secret':
        await db
          .updateTable('authentications')
          .set({ client_secret: value })
          .where('id', '=', ref.id)
          .where('client_secret', '=', ref.value)
          .execute();
        return;
      case 'authentications.password':
        await db
          .updateTable('authentications')
          .set({ password: value })
          .where('id', '=', ref.id)
          .where('password', '=', ref.value)
          .execute();
        return;
      case 'tokens.access_token':
        await db
          .updateTable('tokens')
          .set({ access_token: value })
          .where('auth_id', '=', ref.id)
          .where('access_token', '=', ref.value)
          .execute();
        return;
      case 'tokens.refresh_token':
        await db
          .updateTable('tokens')
          .set({ refresh_token: value })
          .where('auth_id', '=', ref.id)
          .where('refresh_token', '=', ref.value)
          .execute();
        return;
      case 'oauth_states.code_verifier':
        await db
          .updateTable('oauth_states')
          .set({ code_verifier: value })
          .where('state_hash', '=', ref.id)
          .where('code_verifier', '=', ref.value)
          .execute();
        return;
      default:
        throw new Error(`not a sealed column: ${ref.table}.${ref.column}`);
    }
  }

  async getSetting(key: string): Promise<string | null> {
    const row = await this.#db
      .selectFrom('settings')
      .select('value')
      .where('key', '=', key)
      .executeTakeFirst();
    return row?.value ?? null;
  }

  async setSetting(key: string, value: string): Promise<void> {
    await this.#db
      .insertInto('settings')
      .values({ key, value })
      .onConflict((conflict) => conflict.column('key').doUpdateSet({ value }))
      .execute();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#engine.close();
  }
}
