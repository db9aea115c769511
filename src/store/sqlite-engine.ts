/**
 * The embedded engine: one SQLite file owned by one Grantry process. Because a single process owns
 * the file, the cross-instance parts of the contract are in-process here: the refresh lock is a
 * per-key mutex and changes go straight to this process's listeners. (A second process may read the
 * file, e.g. a CLI command, but two servers must not share it: use PostgreSQL for that.)
 */
import { Kysely } from 'kysely';
import { ChangeListeners } from './change-listeners.js';
import type { ChangeEvent } from './contract.js';
import type { Engine } from './dialect.js';
import { createSqliteDialect } from './dialect.js';
import { KeyedMutex } from './keyed-mutex.js';
import type { Database } from './schema.js';

/** `file` is a path or `:memory:`. */
export function openSqliteEngine(file: string): Engine {
  const { dialect, database } = createSqliteDialect(file);
  const db = new Kysely<Database>({ dialect });
  const authLocks = new KeyedMutex();
  const listeners = new ChangeListeners();

  return {
    dialect: 'sqlite',
    db,
    serialPrimaryKey: {
      type: 'integer',
      // AUTOINCREMENT: ids are never reused, so "newest" stays newest even after trimming.
      define: (column) => column.primaryKey().autoIncrement(),
    },
    // Nothing to add (SQLite has no FOR UPDATE): a claim is one UPDATE statement, and statements on
    // this single connection run one at a time, so no other claim can interleave with it.
    lockForClaim: (query) => query,
    // No lock to take: one process owns the file, and Kysely runs every query of this engine over
    // a single connection, one at a time.
    withMigrationLock: (fn) => fn(),
    async withAuthLock(authId, fn, timeoutMs) {
      const start = performance.now();
      let waitedMs = 0;
      // The in-process mutex is the whole lock here, so its timeout is the acquisition timeout.
      const value = await authLocks.run(
        authId,
        () => {
          waitedMs = performance.now() - start;
          return fn();
        },
        timeoutMs,
      );
      return { value, waitedMs };
    },
    async publish(event: ChangeEvent) {
      listeners.deliver(event);
    },
    subscribe: (listener) => listeners.add(listener),
    violatedUniqueConstraint(error) {
      if (
        !(error instanceof Error) ||
        (error as Error & { code?: unknown }).code !== 'SQLITE_CONSTRAINT_UNIQUE'
      ) {
        return null;
      }
      // "UNIQUE constraint failed: authentications.name" → authentications_name_unique
      const match = /UNIQUE constraint failed: (\w+)\.(\w+)$/.exec(error.message);
      return match ? `${match[1]}_${match[2]}_unique` : null;
    },
    async close() {
      await db.destroy();
      // Kysely only closes what it has used: a store closed before its first query still holds the file.
      if (database.open) database.close();
    },
  };
}
