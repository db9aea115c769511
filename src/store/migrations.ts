/**
 * The schema, as ordered migrations kept in code (no files to ship or find at run time). Each one
 * is written once with Kysely's schema builder and runs on both engines; the only engine-specific
 * piece, the auto-numbered key, comes from the engine's hook. Never edit a migration that has
 * shipped: add the next one.
 */
import type { Kysely, Migration } from 'kysely';
import type { Engine } from './dialect.js';
import { foldForSearch } from './name-search.js';
import type { Database } from './schema.js';

/** Names sort in the order they run (compared as strings). */
export function buildMigrations(engine: Pick<Engine, 'serialPrimaryKey'>): Record<string, Migration> {
  return {
    '0001_initial': {
      // `Kysely<any>`: a migration sees the database as it was then, not today's `Database` type.
      // biome-ignore lint/suspicious/noExplicitAny: see above
      async up(db: Kysely<any>): Promise<void> {
        await db.schema
          .createTable('authentications')
          .addColumn('id', 'text', (column) => column.primaryKey())
          .addColumn('name', 'text', (column) => column.notNull())
          .addColumn('type', 'text', (column) => column.notNull())
          .addColumn('grant_type', 'text', (column) => column.notNull())
          .addColumn('settings', 'text', (column) => column.notNull())
          .addColumn('client_secret', 'text', (column) => column.notNull())
          .addColumn('password', 'text')
          .addColumn('status', 'text', (column) => column.notNull())
          .addColumn('last_error', 'text')
          .addColumn('generation', 'integer', (column) => column.notNull())
          .addColumn('calls', 'bigint', (column) => column.notNull().defaultTo(0))
          .addColumn('unauthorized_count', 'bigint', (column) => column.notNull().defaultTo(0))
          .addColumn('refresh_count', 'bigint', (column) => column.notNull().defaultTo(0))
          .addColumn('created_at', 'bigint', (column) => column.notNull())
          .addColumn('updated_at', 'bigint', (column) => column.notNull())
          .addUniqueConstraint('authentications_name_unique', ['name'])
          .execute();

        await db.schema
          .createTable('connectors')
          .addColumn('id', 'text', (column) => column.primaryKey())
          .addColumn('name', 'text', (column) => column.notNull())
          .addColumn('base_url', 'text', (column) => column.notNull())
          // SET NULL: a connector outlives its authentication (it then calls the API unauthenticated
          // until given another); the API decides whether deleting an authentication in use is allowed.
          .addColumn('authentication_id', 'text', (column) =>
            column.references('authentications.id').onDelete('set null'),
          )
          .addColumn('headers', 'text', (column) => column.notNull())
          .addColumn('query', 'text', (column) => column.notNull())
          .addColumn('timeout_ms', 'integer', (column) => column.notNull())
          .addColumn('created_at', 'bigint', (column) => column.notNull())
          .addColumn('updated_at', 'bigint', (column) => column.notNull())
          .addUniqueConstraint('connectors_name_unique', ['name'])
          .execute();
        await db.schema
          .createIndex('connectors_authentication_id_index')
          .on('connectors')
          .column('authentication_id')
          .execute();

        await db.schema
          .createTable('tokens')
          .addColumn('auth_id', 'text', (column) =>
            column.primaryKey().references('authentications.id').onDelete('cascade'),
          )
          .addColumn('access_token', 'text')
          .addColumn('token_type', 'text')
          .addColumn('scope', 'text')
          .addColumn('obtained_at', 'bigint', (column) => column.notNull())
          .addColumn('expires_at', 'bigint')
          .addColumn('refresh_token', 'text')
          .addColumn('generation', 'integer', (column) => column.notNull())
          .addColumn('version', 'integer', (column) => column.notNull())
          .execute();

        await db.schema
          .createTable('events')
          .addColumn('id', engine.serialPrimaryKey.type, engine.serialPrimaryKey.define)
          .addColumn('auth_id', 'text', (column) =>
            column.notNull().references('authentications.id').onDelete('cascade'),
          )
          .addColumn('at', 'bigint', (column) => column.notNull())
          .addColumn('type', 'text', (column) => column.notNull())
          .addColumn('detail', 'text', (column) => column.notNull())
          .execute();
        await db.schema
          .createIndex('events_auth_id_at_index')
          .on('events')
          .columns(['auth_id', 'at'])
          .execute();

        await db.schema
          .createTable('api_keys')
          .addColumn('id', 'text', (column) => column.primaryKey())
          .addColumn('name', 'text', (column) => column.notNull())
          .addColumn('hash', 'text', (column) => column.notNull())
          .addColumn('prefix', 'text', (column) => column.notNull())
          .addColumn('created_at', 'bigint', (column) => column.notNull())
          .addColumn('last_used_at', 'bigint')
          .addColumn('revoked_at', 'bigint')
          .addUniqueConstraint('api_keys_hash_unique', ['hash'])
          .execute();

        await db.schema
          .createTable('oauth_states')
          .addColumn('state_hash', 'text', (column) => column.primaryKey())
          .addColumn('auth_id', 'text', (column) =>
            column.notNull().references('authentications.id').onDelete('cascade'),
          )
          .addColumn('browser_hash', 'text', (column) => column.notNull())
          .addColumn('code_verifier', 'text')
          .addColumn('redirect_uri', 'text', (column) => column.notNull())
          .addColumn('generation', 'integer', (column) => column.notNull())
          .addColumn('created_at', 'bigint', (column) => column.notNull())
          .addColumn('expires_at', 'bigint', (column) => column.notNull())
          .execute();
        await db.schema
          .createIndex('oauth_states_expires_at_index')
          .on('oauth_states')
          .column('expires_at')
          .execute();
        // The cascade from authentications looks rows up by auth_id.
        await db.schema
          .createIndex('oauth_states_auth_id_index')
          .on('oauth_states')
          .column('auth_id')
          .execute();

        await db.schema
          .createTable('settings')
          .addColumn('key', 'text', (column) => column.primaryKey())
          .addColumn('value', 'text', (column) => column.notNull())
          .execute();
      },
    },
    '0002_api_key_scopes': {
      // Keys made before scopes existed could do everything: they stay `admin`.
      // biome-ignore lint/suspicious/noExplicitAny: a migration sees the database as it was then.
      async up(db: Kysely<any>): Promise<void> {
        await db.schema
          .alterTable('api_keys')
          .addColumn('scope', 'text', (column) => column.notNull().defaultTo('admin'))
          .execute();
      },
    },
    '0003_secrets_documents': {
      // Every kind keeps its secrets in one JSON document keyed by the column name each ciphertext
      // is bound to (its AAD), so the ciphertexts move as they are: no key is needed to migrate.
      // The static kinds have no grant: they store '' in grant_type (the column stays NOT NULL).
      // biome-ignore lint/suspicious/noExplicitAny: a migration sees the database as it was then.
      async up(db: Kysely<any>): Promise<void> {
        await db.schema
          .alterTable('authentications')
          .addColumn('secrets', 'text', (column) => column.notNull().defaultTo('{}'))
          .execute();
        const rows = (await db
          .selectFrom('authentications')
          .select(['id', 'client_secret', 'password'])
          .execute()) as { id: string; client_secret: string; password: string | null }[];
        for (const row of rows) {
          const secrets: Record<string, string> = {};
          if (row.client_secret !== '') secrets.client_secret = row.client_secret;
          if (row.password !== null) secrets.password = row.password;
          await db
            .updateTable('authentications')
            .set({ secrets: JSON.stringify(secrets) })
            .where('id', '=', row.id)
            .execute();
        }
        await db.schema.alterTable('authentications').dropColumn('client_secret').execute();
        await db.schema.alterTable('authentications').dropColumn('password').execute();
        await db.schema
          .alterTable('connectors')
          .addColumn('secret_headers', 'text', (column) => column.notNull().defaultTo('{}'))
          .execute();
      },
    },
    '0004_connector_refresh_on': {
      // The statuses that make Grantry replace a refused token (docs/api.md "Connectors": refreshOn).
      // Null for every existing connector: they keep the default, a 401 only.
      // biome-ignore lint/suspicious/noExplicitAny: a migration sees the database as it was then.
      async up(db: Kysely<any>): Promise<void> {
        await db.schema.alterTable('connectors').addColumn('refresh_on', 'text').execute();
      },
    },
    '0005_webhooks': {
      // biome-ignore lint/suspicious/noExplicitAny: a migration sees the database as it was then.
      async up(db: Kysely<any>): Promise<void> {
        await db.schema
          .createTable('webhooks')
          .addColumn('id', 'text', (column) => column.primaryKey())
          .addColumn('url', 'text', (column) => column.notNull())
          .addColumn('events', 'text', (column) => column.notNull())
          .addColumn('description', 'text')
          .addColumn('secret', 'text', (column) => column.notNull())
          .addColumn('enabled', 'integer', (column) => column.notNull().defaultTo(1))
          .addColumn('created_at', 'bigint', (column) => column.notNull())
          .addColumn('updated_at', 'bigint', (column) => column.notNull())
          .execute();

        await db.schema
          .createTable('webhook_events')
          .addColumn('id', 'text', (column) => column.primaryKey())
          .addColumn('type', 'text', (column) => column.notNull())
          .addColumn('body', 'text', (column) => column.notNull())
          .addColumn('created_at', 'bigint', (column) => column.notNull())
          .execute();

        await db.schema
          .createTable('webhook_deliveries')
          .addColumn('id', 'text', (column) => column.primaryKey())
          .addColumn('webhook_id', 'text', (column) =>
            column.notNull().references('webhooks.id').onDelete('cascade'),
          )
          .addColumn('event_id', 'text', (column) =>
            column.notNull().references('webhook_events.id').onDelete('cascade'),
          )
          .addColumn('event_type', 'text', (column) => column.notNull())
          .addColumn('state', 'text', (column) => column.notNull())
          .addColumn('attempts', 'integer', (column) => column.notNull().defaultTo(0))
          .addColumn('next_attempt_at', 'bigint')
          .addColumn('lease_until', 'bigint')
          .addColumn('claim_token', 'text')
          .addColumn('response_status', 'integer')
          .addColumn('created_at', 'bigint', (column) => column.notNull())
          .addColumn('updated_at', 'bigint', (column) => column.notNull())
          // Enqueueing is idempotent by event: one delivery per webhook per event, whoever enqueues.
          .addUniqueConstraint('webhook_deliveries_event_unique', ['webhook_id', 'event_id'])
          .execute();
        // What a claim scans: the pending rows in due order.
        await db.schema
          .createIndex('webhook_deliveries_due_index')
          .on('webhook_deliveries')
          .columns(['state', 'next_attempt_at'])
          .execute();
        await db.schema
          .createIndex('webhook_deliveries_webhook_index')
          .on('webhook_deliveries')
          .columns(['webhook_id', 'created_at'])
          .execute();
        // The cascade from webhook_events, and pruning, look deliveries up by event.
        await db.schema
          .createIndex('webhook_deliveries_event_index')
          .on('webhook_deliveries')
          .column('event_id')
          .execute();

        await db.schema
          .createTable('webhook_attempts')
          .addColumn('id', engine.serialPrimaryKey.type, engine.serialPrimaryKey.define)
          .addColumn('delivery_id', 'text', (column) =>
            column.notNull().references('webhook_deliveries.id').onDelete('cascade'),
          )
          .addColumn('attempt', 'integer', (column) => column.notNull())
          .addColumn('at', 'bigint', (column) => column.notNull())
          .addColumn('duration_ms', 'integer', (column) => column.notNull())
          .addColumn('response_status', 'integer')
          .addColumn('error_kind', 'text')
          .addColumn('error_message', 'text')
          .execute();
        await db.schema
          .createIndex('webhook_attempts_delivery_index')
          .on('webhook_attempts')
          .column('delivery_id')
          .execute();

        await db.schema
          .createTable('authentication_attention')
          .addColumn('auth_id', 'text', (column) =>
            column.primaryKey().references('authentications.id').onDelete('cascade'),
          )
          .addColumn('open', 'integer', (column) => column.notNull())
          .addColumn('episode', 'integer', (column) => column.notNull())
          .addColumn('failures', 'integer', (column) => column.notNull())
          .addColumn('first_failure_at', 'bigint')
          .addColumn('updated_at', 'bigint', (column) => column.notNull())
          .execute();
      },
    },
    '0006_connect_links': {
      // biome-ignore lint/suspicious/noExplicitAny: a migration sees the database as it was then.
      async up(db: Kysely<any>): Promise<void> {
        await db.schema
          .createTable('connect_links')
          .addColumn('token_hash', 'text', (column) => column.primaryKey())
          .addColumn('auth_id', 'text', (column) =>
            column.notNull().references('authentications.id').onDelete('cascade'),
          )
          .addColumn('generation', 'integer', (column) => column.notNull())
          .addColumn('created_at', 'bigint', (column) => column.notNull())
          .addColumn('expires_at', 'bigint', (column) => column.notNull())
          .addColumn('used_at', 'bigint')
          .execute();
        await db.schema
          .createIndex('connect_links_expires_at_index')
          .on('connect_links')
          .column('expires_at')
          .execute();
        await db.schema
          .createIndex('connect_links_auth_id_index')
          .on('connect_links')
          .column('auth_id')
          .execute();
      },
    },
    '0007_shared_token_failures': {
      // A failed token attempt is remembered in the store, not in one process's memory, so every
      // instance backs off together (src/tokens/failure-backoff.ts). One row per authentication,
      // bound to the configuration generation it failed with; deleted on the next success.
      // biome-ignore lint/suspicious/noExplicitAny: a migration sees the database as it was then.
      async up(db: Kysely<any>): Promise<void> {
        await db.schema
          .createTable('token_failures')
          .addColumn('auth_id', 'text', (column) =>
            column.primaryKey().references('authentications.id').onDelete('cascade'),
          )
          .addColumn('generation', 'integer', (column) => column.notNull())
          .addColumn('problem', 'text', (column) => column.notNull())
          .addColumn('attempts', 'integer', (column) => column.notNull())
          .addColumn('next_attempt_at', 'bigint', (column) => column.notNull())
          .addColumn('updated_at', 'bigint', (column) => column.notNull())
          .execute();
        // `auto` client authentication: the method that obtained the stored tokens, kept with them
        // (a configuration change that drops the tokens forgets it too).
        await db.schema.alterTable('tokens').addColumn('client_auth_method', 'text').execute();
      },
    },
    '0008_keep_alive': {
      // How long a refresh token may sit unused before a background refresh keeps it alive (from
      // the `keepAliveDays` setting), as a column so the due query reads no JSON; null: never.
      // biome-ignore lint/suspicious/noExplicitAny: a migration sees the database as it was then.
      async up(db: Kysely<any>): Promise<void> {
        await db.schema.alterTable('authentications').addColumn('keep_alive_ms', 'bigint').execute();
        // What the due query scans: the authentications that have a keep-alive at all.
        await db.schema
          .createIndex('authentications_keep_alive_index')
          .on('authentications')
          .column('keep_alive_ms')
          .execute();
      },
    },
    '0009_name_search': {
      // List search (`q`) compares a folded copy of the name, folded by Grantry rather than by the
      // engine's lower() (ASCII-only on SQLite, locale-dependent on PostgreSQL): see name-search.ts.
      // The folding is JavaScript's, so existing rows are filled in here, not by an SQL expression.
      // biome-ignore lint/suspicious/noExplicitAny: a migration sees the database as it was then.
      async up(db: Kysely<any>): Promise<void> {
        for (const table of ['authentications', 'connectors']) {
          await db.schema
            .alterTable(table)
            .addColumn('name_folded', 'text', (column) => column.notNull().defaultTo(''))
            .execute();
          const rows = (await db.selectFrom(table).select(['id', 'name']).execute()) as {
            id: string;
            name: string;
          }[];
          for (const row of rows) {
            await db
              .updateTable(table)
              .set({ name_folded: foldForSearch(row.name) })
              .where('id', '=', row.id)
              .execute();
          }
        }
      },
    },
  };
}

interface MigrationRow {
  name: string;
  applied_at: number;
}

/**
 * Runs the migrations not yet recorded in `grantry_migration`, in name order, each in a transaction
 * with its record. Returns the names it ran. The caller holds the engine's migration lock.
 *
 * Not Kysely's Migrator: it looks for its own table by introspecting every table of the database,
 * which is wasteful on a shared PostgreSQL and fails when another schema is dropped meanwhile.
 */
export async function runMigrations(
  database: Kysely<Database>,
  migrations: Record<string, Migration>,
  now: () => number = Date.now,
): Promise<string[]> {
  const db = database.withTables<{ grantry_migration: MigrationRow }>();
  await db.schema
    .createTable('grantry_migration')
    .ifNotExists()
    .addColumn('name', 'text', (column) => column.primaryKey())
    .addColumn('applied_at', 'bigint', (column) => column.notNull())
    .execute();
  const applied = new Set(
    (await db.selectFrom('grantry_migration').select('name').execute()).map((row) => row.name),
  );
  const ran: string[] = [];
  for (const name of Object.keys(migrations).sort()) {
    const migration = migrations[name];
    if (migration === undefined || applied.has(name)) continue;
    await db.transaction().execute(async (trx) => {
      await migration.up(trx);
      await trx.insertInto('grantry_migration').values({ name, applied_at: now() }).execute();
    });
    ran.push(name);
  }
  return ran;
}
