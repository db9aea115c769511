/**
 * What differs between the two engines, in one place. The repositories (`kysely-store.ts`) and the
 * migrations (`migrations.ts`) are written once against Kysely; everything engine-specific is a
 * hook of `Engine` (locks, change fan-out, an auto-numbered key, reading a unique violation), so
 * no query ever asks which database it runs on.
 */
import BetterSqlite3 from 'better-sqlite3';
import type { ColumnDataType, ColumnDefinitionBuilder, Kysely, SelectQueryBuilder } from 'kysely';
import { PostgresDialect, type SqliteDatabase, SqliteDialect } from 'kysely';
import pg from 'pg';
import type { ChangeEvent } from './contract.js';
import type { Database } from './schema.js';

export interface Engine {
  readonly dialect: 'sqlite' | 'postgres';
  readonly db: Kysely<Database>;

  /** How to declare an auto-numbered primary key (SQLite: AUTOINCREMENT; PostgreSQL: identity). */
  readonly serialPrimaryKey: {
    readonly type: ColumnDataType;
    readonly define: (column: ColumnDefinitionBuilder) => ColumnDefinitionBuilder;
  };

  /**
   * Makes the row-picking subquery of a queue claim (`webhookDeliveries.claimDue`) lock the rows it
   * picks and pass over rows another claimer holds, so instances claiming at once take disjoint rows
   * without waiting on each other.
   */
  lockForClaim<DB, TB extends keyof DB, O>(
    query: SelectQueryBuilder<DB, TB, O>,
  ): SelectQueryBuilder<DB, TB, O>;

  /** Runs `fn` (the migrations) so that instances starting together do not race. */
  withMigrationLock<T>(fn: () => Promise<T>): Promise<T>;

  /**
   * See `Store.withAuthLock`. A capability of both engines: with `timeoutMs`, the whole wait (the
   * in-process queue and the engine's own lock) ends in `LockTimeoutError` at that deadline.
   */
  withAuthLock<T>(
    authId: string,
    fn: () => Promise<T>,
    timeoutMs: number | undefined,
  ): Promise<{ value: T; waitedMs: number }>;

  /** See `Store.publish` / `Store.subscribe`. */
  publish(event: ChangeEvent): Promise<void>;
  subscribe(listener: (event: ChangeEvent) => void): () => void;

  /**
   * The name of the unique constraint a driver error reports as violated, written
   * `<table>_<column>_unique` on both engines; null when the error is something else.
   */
  violatedUniqueConstraint(error: unknown): string | null;

  close(): Promise<void>;
}

/**
 * The SQLite database behind the Kysely dialect. WAL lets readers (e.g. `grantry api-keys list`
 * from another process) run beside the server; busy_timeout makes such a second process wait for
 * a write lock instead of failing at once; SQLite leaves foreign keys off unless asked, and the
 * cascades of `authentications.delete` depend on them.
 */
export function createSqliteDialect(file: string): {
  dialect: SqliteDialect;
  database: BetterSqlite3.Database;
} {
  const database = new BetterSqlite3(file);
  if (file !== ':memory:') database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.pragma('busy_timeout = 5000');
  database.pragma('foreign_keys = ON');
  return { dialect: new SqliteDialect({ database: withStatementCache(database) }), database };
}

/** Distinct statements kept prepared; Grantry's repositories issue a few dozen. */
const STATEMENT_CACHE_SIZE = 256;

/**
 * The database as Kysely sees it, with its statements prepared once. Kysely's SQLite driver
 * prepares every query anew, and preparing costs about as much as running the small queries of
 * the token path; the SQL text of a query is the same each time (values are bound parameters),
 * so a prepared statement is reused. A statement still busy (an open iterator) is not handed out
 * again: a fresh one is prepared instead.
 */
function withStatementCache(database: BetterSqlite3.Database): SqliteDatabase {
  const prepared = new Map<string, BetterSqlite3.Statement>();
  return {
    close: () => database.close(),
    prepare(sql) {
      const cached = prepared.get(sql);
      if (cached !== undefined && !cached.busy) return cached;
      const statement = database.prepare(sql);
      if (cached === undefined) {
        if (prepared.size >= STATEMENT_CACHE_SIZE) prepared.clear();
        prepared.set(sql, statement);
      }
      return statement;
    },
  };
}

const INT8_OID = 20;

/**
 * A pg pool whose BIGINT (int8) values arrive as JS numbers. Times are epoch milliseconds and
 * counters stay far below 2^53, so a number is exact; pg's default (a string, to be safe for any
 * int8) would leak into every record. Set per pool, not on the global `pg.types`, so other users
 * of `pg` in the process are unaffected.
 */
export function createPostgresPool(connectionString: string, max: number): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max,
    idleTimeoutMillis: 30_000,
    // TCP keep-alive: a connection the network silently dropped is found out, not waited on forever.
    keepAlive: true,
    types: {
      getTypeParser: (oid, format) =>
        oid === INT8_OID && format !== 'binary' ? Number : pg.types.getTypeParser(oid, format),
    },
  });
  // An idle pooled connection that the server closes (restart, failover) emits 'error' on the pool;
  // unheard, that would crash the process. The next query fails on its own and says why.
  pool.on('error', () => {});
  // A checked-out connection has no pool listener (pg-pool removes it at checkout): one that dies
  // while held between queries (a transaction, the refresh lock) would crash the process too. Its
  // holder learns of it from its next query.
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

export function createPostgresDialect(pool: pg.Pool): PostgresDialect {
  return new PostgresDialect({ pool });
}
