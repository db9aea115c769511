/**
 * For test suites that run against a shared PostgreSQL database (`GRANTRY_TEST_DATABASE_URL`): a
 * fresh schema per run, so reruns and suites running side by side never see each other's rows.
 * The returned URL selects the schema through libpq's `options` parameter (search_path), which
 * `openStore` passes through to every connection.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export interface PostgresTestSchema {
  /** The database URL with the schema selected. */
  readonly url: string;
  readonly schema: string;
  /** Drops the schema and everything in it. */
  drop(): Promise<void>;
}

export async function createPostgresTestSchema(
  baseUrl: string,
  prefix = 'grantry_test',
): Promise<PostgresTestSchema> {
  const schema = `${prefix}_${randomBytes(6).toString('hex')}`;
  await runAdmin(baseUrl, `CREATE SCHEMA ${schema}`);
  const url = new URL(baseUrl);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return {
    url: url.toString(),
    schema,
    drop: () => runAdmin(baseUrl, `DROP SCHEMA IF EXISTS ${schema} CASCADE`),
  };
}

async function runAdmin(url: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}
