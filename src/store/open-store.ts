import { chmodSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Store } from './contract.js';
import { KyselyStore } from './kysely-store.js';
import { openPostgresEngine } from './postgres-engine.js';
import { openSqliteEngine } from './sqlite-engine.js';

/**
 * Opens the store named by `GRANTRY_DATABASE_URL` (docs/api.md "Configuration"):
 * - `sqlite:<path>`: a file, relative to the working directory; its folder is created if missing.
 *   `sqlite:///abs/path` is read as `/abs/path`.
 * - `sqlite::memory:`: a private in-memory database (tests, demos).
 * - `postgres://…` or `postgresql://…`: a PostgreSQL database shared by several instances. A
 *   `?options=-c%20search_path%3D<schema>` parameter places the tables in another schema.
 *
 * Does not migrate: call `store.migrate()` (the server does at start-up, `grantry migrate` on demand).
 */
export async function openStore(databaseUrl: string): Promise<Store> {
  if (databaseUrl === 'sqlite::memory:') return new KyselyStore(openSqliteEngine(':memory:'));
  if (databaseUrl.startsWith('sqlite:')) {
    let path = databaseUrl.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2);
    if (path === '')
      throw new Error('GRANTRY_DATABASE_URL: sqlite: needs a path, e.g. sqlite:./data/grantry.db');
    const file = resolve(process.cwd(), path);
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    keepPrivate(file);
    return new KyselyStore(openSqliteEngine(file));
  }
  if (/^postgres(ql)?:\/\//i.test(databaseUrl)) return new KyselyStore(await openPostgresEngine(databaseUrl));
  // The URL itself is not echoed: a postgres URL may carry a password.
  throw new Error('GRANTRY_DATABASE_URL: expected sqlite:<path>, sqlite::memory: or postgres://…');
}

/**
 * The database holds ciphertexts, hashes and who calls which API: readable by its owner only, like
 * the key file. An empty file is a valid empty SQLite database, so it is created first with mode
 * 0600 (SQLite gives its -wal and -shm files the database's permissions); a file an older version
 * created 0644 is tightened.
 */
function keepPrivate(file: string): void {
  if (!existsSync(file)) {
    writeFileSync(file, '', { mode: 0o600, flag: 'wx' });
    return;
  }
  if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
}
