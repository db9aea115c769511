/**
 * The repositories of `contract.ts`, written once over Kysely and shared by both engines. Every
 * race-safe operation is a single statement whose condition carries the rule (compare-and-swap on
 * `version`, DELETE … RETURNING for single-use states), so it holds across instances without locks.
 */
import { randomUUID } from 'node:crypto';
import type { Kysely, RawBuilder, Selectable } from 'kysely';
import { sql } from 'kysely';
import type {
  ApiKeyRecord,
  ApiKeyRepository,
  AttentionRepository,
  AttentionState,
  AuthenticationRecord,
  AuthenticationRepository,
  AuthenticationSettings,
  AuthenticationType,
  AuthLockOptions,
  AuthStatus,
  ChangeEvent,
  ConnectLinkRecord,
  ConnectLinkRepository,
  ConnectorRecord,
  ConnectorRepository,
  EventRecord,
  EventRepository,
  GrantType,
  OAuthStateRecord,
  OAuthStateRepository,
  Sealed,
  SealedSecrets,
  SealedValueRef,
  Store,
  TokenFailureRecord,
  TokenFailureRepository,
  TokenFailureWrite,
  TokenRecord,
  TokenRepository,
  TokenWrite,
  WebhookAttemptRecord,
  WebhookDeliveryRecord,
  WebhookDeliveryRepository,
  WebhookDeliveryState,
  WebhookRecord,
  WebhookRepository,
} from './contract.js';
import type { Engine } from './dialect.js';
import { buildMigrations, runMigrations } from './migrations.js';
import { containsPattern, foldForSearch } from './name-search.js';
import type {
  ApiKeysTable,
  AuthenticationAttentionTable,
  AuthenticationsTable,
  ConnectLinksTable,
  ConnectorsTable,
  Database,
  OAuthStatesTable,
  TokenFailuresTable,
  TokensTable,
  WebhookAttemptsTable,
  WebhookDeliveriesTable,
  WebhooksTable,
} from './schema.js';
import type { UniqueConstraint } from './unique-violation.js';
import { UniqueViolation } from './unique-violation.js';

/** Constraint names (as the engines report them) that the API answers with 409. */
const namedUniqueConstraints: Record<string, UniqueConstraint> = {
  authentications_name_unique: 'authentication_name',
  connectors_name_unique: 'connector_name',
};

/**
 * The conditions of a page of a list ordered by name, then id: after the cursor's row (keyset, so
 * page 1,000 costs what page 1 does, on the (name, id) index), and the name containing the search.
 */
function namePageConditions(query: {
  after?: { name: string; id: string } | undefined;
  nameContains?: string | undefined;
}): RawBuilder<boolean>[] {
  const conditions: RawBuilder<boolean>[] = [];
  const after = query.after;
  if (after !== undefined) {
    // A row value comparison: both engines read it as one range of the (name, id) index, where
    // the spelled-out `name > ? or (name = ? and id > ?)` made SQLite filter instead.
    conditions.push(sql<boolean>`(name, id) > (${after.name}, ${after.id})`);
  }
  if (query.nameContains !== undefined && query.nameContains !== '') {
    // The folded column (see name-search.ts): the same answer on both engines, for any script.
    conditions.push(sql<boolean>`name_folded like ${containsPattern(query.nameContains)} escape '\\'`);
  }
  return conditions;
}

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
    name_folded: foldForSearch(record.name),
    type: record.type,
    grant_type: record.grantType ?? '',
    settings: toJson(record.settings),
    secrets: toJson(record.secrets),
    status: record.status,
    last_error: record.lastError === null || record.lastError === undefined ? null : toJson(record.lastError),
    generation: record.generation,
    calls: record.calls,
    unauthorized_count: record.unauthorizedCount,
    refresh_count: record.refreshCount,
    created_at: record.createdAt,
    updated_at: record.updatedAt,
    keep_alive_ms: keepAliveMsOf(record.settings),
  };
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** `settings.keepAliveDays` as the column the keep-alive query compares with (null: none). */
function keepAliveMsOf(settings: AuthenticationSettings): number | null {
  const days = settings.keepAliveDays;
  return typeof days === 'number' && Number.isFinite(days) && days > 0 ? Math.round(days * DAY_MS) : null;
}

function authenticationFromRow(row: Selectable<AuthenticationsTable>): AuthenticationRecord {
  return {
    id: row.id,
    name: row.name,
    type: row.type as AuthenticationType,
    grantType: row.grant_type === '' ? null : (row.grant_type as GrantType),
    settings: JSON.parse(row.settings) as AuthenticationSettings,
    secrets: JSON.parse(row.secrets) as SealedSecrets,
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
    name_folded: foldForSearch(record.name),
    base_url: record.baseUrl,
    authentication_id: record.authenticationId,
    headers: toJson(record.headers),
    secret_headers: toJson(record.secretHeaders),
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
    secretHeaders: JSON.parse(row.secret_headers) as SealedSecrets,
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
    client_auth_method: write.clientAuthMethod ?? null,
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
    clientAuthMethod: row.client_auth_method,
  };
}

function tokenFailureFromRow(row: Selectable<TokenFailuresTable>): TokenFailureRecord {
  return {
    authId: row.auth_id,
    generation: row.generation,
    problem: JSON.parse(row.problem) as unknown,
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
    updatedAt: row.updated_at,
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

function webhookToRow(record: WebhookRecord): WebhooksTable {
  return {
    id: record.id,
    url: record.url,
    events: toJson(record.events),
    description: record.description,
    secret: record.secret,
    enabled: record.enabled ? 1 : 0,
    created_at: record.createdAt,
    updated_at: record.updatedAt,
  };
}

function webhookFromRow(row: Selectable<WebhooksTable>): WebhookRecord {
  return {
    id: row.id,
    url: row.url,
    events: JSON.parse(row.events) as string[],
    description: row.description,
    secret: row.secret,
    enabled: row.enabled === 1,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function deliveryFromRow(row: Selectable<WebhookDeliveriesTable>): WebhookDeliveryRecord {
  return {
    id: row.id,
    webhookId: row.webhook_id,
    eventId: row.event_id,
    eventType: row.event_type,
    state: row.state as WebhookDeliveryState,
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
    lastResponseStatus: row.response_status,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function attemptFromRow(row: Selectable<WebhookAttemptsTable>): WebhookAttemptRecord {
  return {
    attempt: row.attempt,
    at: row.at,
    durationMs: row.duration_ms,
    responseStatus: row.response_status,
    errorKind: row.error_kind,
    errorMessage: row.error_message,
  };
}

function attentionFromRow(
  row: Pick<AuthenticationAttentionTable, 'open' | 'episode' | 'failures' | 'first_failure_at'>,
): AttentionState {
  return {
    open: row.open === 1,
    episode: row.episode,
    failures: row.failures,
    firstFailureAt: row.first_failure_at,
  };
}

const FINISHED_STATES: WebhookDeliveryState[] = ['delivered', 'failed'];

export class KyselyStore implements Store {
  readonly dialect: 'sqlite' | 'postgres';
  readonly authentications: AuthenticationRepository;
  readonly connectors: ConnectorRepository;
  readonly tokens: TokenRepository;
  readonly events: EventRepository;
  readonly apiKeys: ApiKeyRepository;
  readonly oauthStates: OAuthStateRepository;
  readonly connectLinks: ConnectLinkRepository;
  readonly webhooks: WebhookRepository;
  readonly webhookDeliveries: WebhookDeliveryRepository;
  readonly attention: AttentionRepository;
  readonly tokenFailures: TokenFailureRepository;
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
    this.connectLinks = this.#connectLinkRepository();
    this.webhooks = this.#webhookRepository();
    this.webhookDeliveries = this.#webhookDeliveryRepository();
    this.attention = this.#attentionRepository();
    this.tokenFailures = this.#tokenFailureRepository();
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
      page: async (query) => {
        let select = db.selectFrom('authentications').selectAll();
        for (const condition of namePageConditions(query)) select = select.where(condition);
        if (query.type !== undefined) select = select.where('type', '=', query.type);
        if (query.status !== undefined) select = select.where('status', '=', query.status);
        const rows = await select.orderBy('name').orderBy('id').limit(query.limit).execute();
        return rows.map(authenticationFromRow);
      },
      update: async (record) => {
        const { id, ...changes } = authenticationToRow(record);
        const result = await this.#uniqueNames(() =>
          db.updateTable('authentications').set(changes).where('id', '=', id).executeTakeFirst(),
        );
        return affected(result.numUpdatedRows) > 0;
      },
      replaceSettings: async (id, expected, next) => {
        const result = await db
          .updateTable('authentications')
          .set({ settings: toJson(next) })
          .where('id', '=', id)
          .where('settings', '=', toJson(expected))
          .executeTakeFirst();
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
      listDueForKeepAlive: async (now, limit) => {
        const rows = await db
          .selectFrom('authentications')
          .innerJoin('tokens', 'tokens.auth_id', 'authentications.id')
          .leftJoin('token_failures', 'token_failures.auth_id', 'authentications.id')
          .select('authentications.id as id')
          .where('authentications.keep_alive_ms', 'is not', null)
          .where('tokens.refresh_token', 'is not', null)
          .whereRef('tokens.generation', '=', 'authentications.generation')
          // Idle at least keep_alive_ms: obtained_at + keep_alive_ms <= now (BIGINT on both engines).
          .where((eb) =>
            eb(eb('tokens.obtained_at', '+', eb.ref('authentications.keep_alive_ms')), '<=', now),
          )
          .where((eb) =>
            eb.or([
              eb('token_failures.auth_id', 'is', null),
              eb('token_failures.generation', '<>', eb.ref('authentications.generation')),
              eb('token_failures.next_attempt_at', '<=', now),
            ]),
          )
          .orderBy('tokens.obtained_at')
          .orderBy('authentications.id')
          .limit(Math.max(0, Math.floor(limit)))
          .execute();
        return rows.map((row) => row.id);
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
      page: async (query) => {
        let select = db.selectFrom('connectors').selectAll();
        for (const condition of namePageConditions(query)) select = select.where(condition);
        if (query.authenticationId !== undefined) {
          select = select.where('authentication_id', '=', query.authenticationId);
        }
        const rows = await select.orderBy('name').orderBy('id').limit(query.limit).execute();
        return rows.map(connectorFromRow);
      },
      usersOf: async (authIds) => {
        if (authIds.length === 0) return [];
        const rows = await db
          .selectFrom('connectors')
          .select(['id', 'authentication_id'])
          .where('authentication_id', 'in', [...authIds])
          .orderBy('name')
          .orderBy('id')
          .execute();
        return rows.map((row) => ({ id: row.id, authenticationId: row.authentication_id as string }));
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
      getMany: async (authIds) => {
        if (authIds.length === 0) return [];
        const rows = await db
          .selectFrom('tokens')
          .selectAll()
          .where('auth_id', 'in', [...authIds])
          .execute();
        return rows.map(tokenFromRow);
      },
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
      delete: async (authId, expected) => {
        let query = db.deleteFrom('tokens').where('auth_id', '=', authId);
        if (expected !== undefined) {
          query = query
            .where('version', '=', expected.version)
            .where('obtained_at', '=', expected.obtainedAt);
        }
        await query.execute();
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

  #connectLinkRepository(): ConnectLinkRepository {
    const db = this.#db;
    const fromRow = (row: Selectable<ConnectLinksTable>): ConnectLinkRecord => ({
      tokenHash: row.token_hash,
      authId: row.auth_id,
      generation: row.generation,
      createdAt: row.created_at,
      expiresAt: row.expires_at,
      usedAt: row.used_at,
    });
    return {
      insert: async (record) => {
        await db
          .insertInto('connect_links')
          .values({
            token_hash: record.tokenHash,
            auth_id: record.authId,
            generation: record.generation,
            created_at: record.createdAt,
            expires_at: record.expiresAt,
            used_at: record.usedAt,
          })
          .execute();
      },
      use: async (tokenHash, now) => {
        // The condition carries the rule: exactly one caller turns an unused, live link into a used one.
        const used = await db
          .updateTable('connect_links')
          .set({ used_at: now })
          .where('token_hash', '=', tokenHash)
          .where('used_at', 'is', null)
          .where('expires_at', '>', now)
          .returningAll()
          .executeTakeFirst();
        if (used !== undefined) return { outcome: 'ok', link: fromRow(used) };
        const row = await db
          .selectFrom('connect_links')
          .selectAll()
          .where('token_hash', '=', tokenHash)
          .executeTakeFirst();
        if (row === undefined) return { outcome: 'unknown' };
        return { outcome: row.used_at !== null ? 'used' : 'expired', link: fromRow(row) };
      },
      deleteExpired: async (before) => {
        const result = await db
          .deleteFrom('connect_links')
          .where('expires_at', '<', before)
          .executeTakeFirst();
        return affected(result.numDeletedRows);
      },
    };
  }

  #webhookRepository(): WebhookRepository {
    const db = this.#db;
    return {
      insert: async (record) => {
        await db.insertInto('webhooks').values(webhookToRow(record)).execute();
      },
      get: async (id) => {
        const row = await db.selectFrom('webhooks').selectAll().where('id', '=', id).executeTakeFirst();
        return row ? webhookFromRow(row) : null;
      },
      list: async () => {
        const rows = await db
          .selectFrom('webhooks')
          .selectAll()
          .orderBy('created_at')
          .orderBy('id')
          .execute();
        return rows.map(webhookFromRow);
      },
      update: async (record) => {
        const { id, ...changes } = webhookToRow(record);
        const result = await db.updateTable('webhooks').set(changes).where('id', '=', id).executeTakeFirst();
        return affected(result.numUpdatedRows) > 0;
      },
      delete: async (id) => {
        // Deliveries and their attempts go by ON DELETE CASCADE; events are pruned when unreferenced.
        const result = await db.deleteFrom('webhooks').where('id', '=', id).executeTakeFirst();
        return affected(result.numDeletedRows) > 0;
      },
    };
  }

  #webhookDeliveryRepository(): WebhookDeliveryRepository {
    const db = this.#db;
    const engine = this.#engine;
    return {
      enqueue: async (event, deliveries) => {
        if (deliveries.length === 0) return [];
        return db.transaction().execute(async (trx) => {
          await trx
            .insertInto('webhook_events')
            .values({ id: event.id, type: event.type, body: event.body, created_at: event.createdAt })
            .onConflict((conflict) => conflict.column('id').doNothing())
            .execute();
          // One statement; rows whose (webhook, event) pair exists already are skipped, not errors.
          const created = await trx
            .insertInto('webhook_deliveries')
            .values(
              deliveries.map((delivery) => ({
                id: delivery.id,
                webhook_id: delivery.webhookId,
                event_id: event.id,
                event_type: event.type,
                state: 'pending',
                attempts: 0,
                next_attempt_at: event.createdAt,
                lease_until: null,
                claim_token: null,
                response_status: null,
                created_at: event.createdAt,
                updated_at: event.createdAt,
              })),
            )
            .onConflict((conflict) => conflict.columns(['webhook_id', 'event_id']).doNothing())
            .returning('id')
            .execute();
          return created.map((row) => row.id);
        });
      },
      claimDue: async (now, limit, leaseMs) => {
        const claimToken = randomUUID();
        const due = engine.lockForClaim(
          db
            .selectFrom('webhook_deliveries')
            .select('id')
            .where('state', '=', 'pending')
            .where('next_attempt_at', '<=', now)
            .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<=', now)]))
            .where('webhook_id', 'in', db.selectFrom('webhooks').select('id').where('enabled', '=', 1))
            .orderBy('next_attempt_at')
            .limit(Math.max(0, Math.floor(limit))),
        );
        // The outer conditions repeat the inner ones: PostgreSQL re-checks them on the newest version
        // of a row that another claimer changed after this statement's snapshot was taken.
        const claimed = await db
          .updateTable('webhook_deliveries')
          .set({ lease_until: now + leaseMs, claim_token: claimToken })
          .where('id', 'in', due)
          .where('state', '=', 'pending')
          .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<=', now)]))
          .returningAll()
          .execute();
        if (claimed.length === 0) return [];
        // RETURNING follows no order: hand the rows out in due order, oldest first.
        claimed.sort(
          (a, b) =>
            (a.next_attempt_at ?? 0) - (b.next_attempt_at ?? 0) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
        );
        const targets = await db
          .selectFrom('webhook_deliveries')
          .innerJoin('webhooks', 'webhooks.id', 'webhook_deliveries.webhook_id')
          .innerJoin('webhook_events', 'webhook_events.id', 'webhook_deliveries.event_id')
          .select([
            'webhook_deliveries.id as id',
            'webhooks.url as url',
            'webhooks.secret as secret',
            'webhook_events.body as body',
          ])
          .where(
            'webhook_deliveries.id',
            'in',
            claimed.map((row) => row.id),
          )
          .execute();
        const byId = new Map(targets.map((target) => [target.id, target]));
        // A webhook deleted between the two statements took its deliveries with it.
        return claimed.flatMap((row) => {
          const target = byId.get(row.id);
          if (target === undefined) return [];
          return [
            {
              delivery: deliveryFromRow(row),
              claimToken,
              url: target.url,
              secret: target.secret,
              body: target.body,
            },
          ];
        });
      },
      complete: async (deliveryId, claimToken, attempt, next) =>
        db.transaction().execute(async (trx) => {
          const updated = await trx
            .updateTable('webhook_deliveries')
            .set({
              state: next.state,
              attempts: attempt.attempt,
              next_attempt_at: next.nextAttemptAt,
              lease_until: null,
              claim_token: null,
              response_status: attempt.responseStatus,
              updated_at: Math.round(attempt.at + attempt.durationMs),
            })
            .where('id', '=', deliveryId)
            .where('claim_token', '=', claimToken)
            .executeTakeFirst();
          if (affected(updated.numUpdatedRows) === 0) return false;
          await trx
            .insertInto('webhook_attempts')
            .values({
              delivery_id: deliveryId,
              attempt: attempt.attempt,
              at: attempt.at,
              duration_ms: Math.max(0, Math.round(attempt.durationMs)),
              response_status: attempt.responseStatus,
              error_kind: attempt.errorKind,
              error_message: attempt.errorMessage,
            })
            .execute();
          return true;
        }),
      listByWebhook: async (webhookId, limit) => {
        const rows = await db
          .selectFrom('webhook_deliveries')
          .selectAll()
          .where('webhook_id', '=', webhookId)
          .orderBy('created_at', 'desc')
          .orderBy('id', 'desc')
          .limit(Math.max(0, Math.floor(limit)))
          .execute();
        if (rows.length === 0) return [];
        const attempts = await db
          .selectFrom('webhook_attempts')
          .selectAll()
          .where(
            'delivery_id',
            'in',
            rows.map((row) => row.id),
          )
          .orderBy('attempt')
          .orderBy('id')
          .execute();
        const byDelivery = new Map<string, WebhookAttemptRecord[]>();
        for (const row of attempts) {
          const list = byDelivery.get(row.delivery_id) ?? [];
          list.push(attemptFromRow(row));
          byDelivery.set(row.delivery_id, list);
        }
        return rows.map((row) => ({ ...deliveryFromRow(row), attemptLog: byDelivery.get(row.id) ?? [] }));
      },
      prune: async (before) => {
        const deliveries = await db
          .deleteFrom('webhook_deliveries')
          .where('state', 'in', FINISHED_STATES)
          .where('updated_at', '<', before)
          .executeTakeFirst();
        const events = await db
          .deleteFrom('webhook_events')
          .where('created_at', '<', before)
          .where(({ not, exists, selectFrom }) =>
            not(
              exists(
                selectFrom('webhook_deliveries')
                  .select('webhook_deliveries.id')
                  .whereRef('webhook_deliveries.event_id', '=', 'webhook_events.id'),
              ),
            ),
          )
          .executeTakeFirst();
        return affected(deliveries.numDeletedRows) + affected(events.numDeletedRows);
      },
    };
  }

  #attentionRepository(): AttentionRepository {
    const db = this.#db;
    const columns = ['open', 'episode', 'failures', 'first_failure_at'] as const;
    return {
      recordFailure: async (authId, at) => {
        try {
          // One upsert: concurrent failures on several instances each add one, none is lost.
          const row = await db
            .insertInto('authentication_attention')
            .values({
              auth_id: authId,
              open: 0,
              episode: 0,
              failures: 1,
              first_failure_at: at,
              updated_at: at,
            })
            .onConflict((conflict) =>
              conflict.column('auth_id').doUpdateSet((eb) => ({
                failures: eb('authentication_attention.failures', '+', 1),
                first_failure_at: eb.fn.coalesce(
                  'authentication_attention.first_failure_at',
                  eb.ref('excluded.first_failure_at'),
                ),
                updated_at: eb.ref('excluded.updated_at'),
              })),
            )
            .returning(columns)
            .executeTakeFirstOrThrow();
          return attentionFromRow(row);
        } catch (error) {
          // The authentication was deleted meanwhile: there is nobody to tell about it.
          if (await this.#authenticationGone(authId)) return null;
          throw error;
        }
      },
      open: async (authId, at) => {
        const row = await db
          .updateTable('authentication_attention')
          .set((eb) => ({ open: 1, episode: eb('episode', '+', 1), updated_at: at }))
          .where('auth_id', '=', authId)
          .where('open', '=', 0)
          .returning('episode')
          .executeTakeFirst();
        return row?.episode ?? null;
      },
      abandon: async (authId, episode, at) => {
        await db
          .updateTable('authentication_attention')
          .set({ open: 0, updated_at: at })
          .where('auth_id', '=', authId)
          .where('episode', '=', episode)
          .where('open', '=', 1)
          .execute();
      },
      recordSuccess: async (authId, at) => {
        const closed = await db
          .updateTable('authentication_attention')
          .set({ open: 0, failures: 0, first_failure_at: null, updated_at: at })
          .where('auth_id', '=', authId)
          .where('open', '=', 1)
          .returning('episode')
          .executeTakeFirst();
        if (closed !== undefined) return closed.episode;
        await db
          .updateTable('authentication_attention')
          .set({ failures: 0, first_failure_at: null, updated_at: at })
          .where('auth_id', '=', authId)
          .where('failures', '>', 0)
          .execute();
        return null;
      },
      get: async (authId) => {
        const row = await db
          .selectFrom('authentication_attention')
          .select(columns)
          .where('auth_id', '=', authId)
          .executeTakeFirst();
        return row ? attentionFromRow(row) : null;
      },
    };
  }

  #tokenFailureRepository(): TokenFailureRepository {
    const db = this.#db;
    const columns = (write: TokenFailureWrite) => ({
      generation: write.generation,
      problem: toJson(write.problem),
      attempts: write.attempts,
      next_attempt_at: write.nextAttemptAt,
      updated_at: write.updatedAt,
    });
    return {
      get: async (authId) => {
        const found = await db
          .selectFrom('token_failures')
          .selectAll()
          .where('auth_id', '=', authId)
          .executeTakeFirst();
        return found ? tokenFailureFromRow(found) : null;
      },
      compareAndSwap: async (authId, expected, write) => {
        try {
          // One statement each way, as for tokens: the check and the write cannot be split.
          const saved =
            expected === null
              ? await db
                  .insertInto('token_failures')
                  .values({ auth_id: authId, ...columns(write) })
                  .onConflict((conflict) => conflict.column('auth_id').doNothing())
                  .returningAll()
                  .executeTakeFirst()
              : await db
                  .updateTable('token_failures')
                  .set(columns(write))
                  .where('auth_id', '=', authId)
                  .where('generation', '=', expected.generation)
                  .where('attempts', '=', expected.attempts)
                  .returningAll()
                  .executeTakeFirst();
          return saved ? tokenFailureFromRow(saved) : null;
        } catch (error) {
          // The authentication was deleted meanwhile (the foreign key refused the row).
          if (await this.#authenticationGone(authId)) return null;
          throw error;
        }
      },
      clear: async (authId, generation) => {
        let query = db.deleteFrom('token_failures').where('auth_id', '=', authId);
        if (generation !== undefined) query = query.where('generation', '<=', generation);
        await query.execute();
      },
    };
  }

  async #authenticationGone(authId: string): Promise<boolean> {
    const row = await this.#db
      .selectFrom('authentications')
      .select('id')
      .where('id', '=', authId)
      .executeTakeFirst();
    return row === undefined;
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

  withAuthLock<T>(
    authId: string,
    fn: () => Promise<T>,
    options: AuthLockOptions = {},
  ): Promise<{ value: T; waitedMs: number }> {
    return this.#engine.withAuthLock(authId, fn, options.timeoutMs);
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
      .select(['id', 'secrets'])
      .orderBy('id')
      .execute();
    for (const row of authentications) {
      for (const [column, value] of Object.entries(JSON.parse(row.secrets) as SealedSecrets)) {
        add('authentications', row.id, column, value);
      }
    }
    const connectors = await this.#db
      .selectFrom('connectors')
      .select(['id', 'secret_headers'])
      .orderBy('id')
      .execute();
    for (const row of connectors) {
      for (const [column, value] of Object.entries(JSON.parse(row.secret_headers) as SealedSecrets)) {
        add('connectors', row.id, column, value);
      }
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
    const webhooks = await this.#db.selectFrom('webhooks').select(['id', 'secret']).orderBy('id').execute();
    for (const row of webhooks) add('webhooks', row.id, 'secret', row.secret);
    return refs;
  }

  /**
   * Replaces one sealed value, but only while the column still holds `ref.value`: a token refreshed
   * during a key rotation (already sealed with the new key) must not be overwritten by the
   * re-sealed old token. A ref whose value has changed or gone is left alone.
   */
  async replaceSealed(ref: SealedValueRef, value: Sealed): Promise<void> {
    const db = this.#db;
    if (ref.table === 'authentications' || ref.table === 'connectors') {
      await this.#replaceInSecretsDocument(ref, value);
      return;
    }
    switch (`${ref.table}.${ref.column}`) {
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
      case 'webhooks.secret':
        await db
          .updateTable('webhooks')
          .set({ secret: value })
          .where('id', '=', ref.id)
          .where('secret', '=', ref.value)
          .execute();
        return;
      default:
        throw new Error(`not a sealed column: ${ref.table}.${ref.column}`);
    }
  }

  /**
   * Replaces one ciphertext inside a secrets document, with the same rule as a column: only while
   * the document still holds `ref.value` there. The write is a compare-and-swap on the whole
   * document, so a concurrent change (a PATCH of another secret) is never overwritten; the caller
   * then finds the new document already sealed under the new key, or re-runs the rotation.
   */
  async #replaceInSecretsDocument(ref: SealedValueRef, value: Sealed): Promise<void> {
    // Both documents are read and written alike; only where they live differs.
    const { table, column } =
      ref.table === 'authentications'
        ? ({ table: 'authentications', column: 'secrets' } as const)
        : ({ table: 'connectors', column: 'secret_headers' } as const);
    const db = this.#db as unknown as Kysely<Record<typeof table, Record<typeof column | 'id', string>>>;
    const row = await db.selectFrom(table).select(column).where('id', '=', ref.id).executeTakeFirst();
    if (row === undefined) return;
    const current = row[column];
    const document = JSON.parse(current) as Record<string, Sealed>;
    if (document[ref.column] !== ref.value) return;
    document[ref.column] = value;
    await db
      .updateTable(table)
      .set({ [column]: toJson(document) } as Record<typeof column, string>)
      .where('id', '=', ref.id)
      .where(column, '=', current)
      .execute();
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
