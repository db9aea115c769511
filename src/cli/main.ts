import { parseArgs } from 'node:util';
import { createApp, keyFilePathFor } from '../app.js';
import { ConfigError, loadConfig } from '../config.js';
import { createLogger } from '../logger.js';
import { MasterKeyError } from '../secrets/key-ring.js';
import { loadKeyRing } from '../secrets/master-key-source.js';
import { createApiKey, KEY_SCOPES, type KeyScope } from '../services/api-keys.js';
import { rotateSecrets } from '../services/key-rotation.js';
import { openStore } from '../store/open-store.js';

const USAGE = `Usage: grantry <command>

Commands:
  serve                         run the HTTP service (what \`npm start\` runs)
  migrate                       create or upgrade the database schema
  api-keys create [--name N] [--scope S]
                                create an API key (printed once); S is admin (the
                                default: everything), runtime (execute, test, proxy,
                                reading configuration) or metrics (GET /metrics only)
  api-keys list                 list API keys (never the keys themselves)
  api-keys revoke <id>          revoke an API key
  keys rotate                   re-encrypt every stored secret under GRANTRY_MASTER_KEY
                                (old keys in GRANTRY_PREVIOUS_MASTER_KEYS, comma-separated)

Configuration comes from the environment: see README.md.`;

async function withStore<T>(fn: (store: Awaited<ReturnType<typeof openStore>>) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const store = await openStore(config.databaseUrl);
  try {
    await store.migrate();
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function serve(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  const app = await createApp(config, { logger });
  const address = await app.listen();
  logger.info(
    { address, publicUrl: config.publicUrl, database: config.databaseUrl.split(':')[0] },
    'Grantry is listening',
  );
  const stop = async (signal: string) => {
    logger.info({ signal }, 'shutting down');
    await app.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}

async function rotateKeys(): Promise<void> {
  const config = loadConfig();
  await withStore(async (store) => {
    const ring = loadKeyRing({
      configured: config.masterKey,
      previous: config.previousMasterKeys,
      keyFilePath: keyFilePathFor(config.databaseUrl),
      production: config.production,
      warn: (m) => process.stderr.write(`${m}\n`),
    });
    const resealed = await rotateSecrets(store, ring);
    process.stdout.write(`Re-encrypted ${resealed} value(s) under master key ${ring.currentKeyId}.\n`);
  });
}

function isKeyScope(value: string): value is KeyScope {
  return (KEY_SCOPES as readonly string[]).includes(value);
}

/** `api-keys list`: a header and one aligned row per key (never the key itself, only its prefix). */
export function formatKeyTable(
  keys: readonly {
    id: string;
    prefix: string;
    name: string;
    scope: string;
    createdAt: number;
    lastUsedAt: number | null;
    revokedAt: number | null;
  }[],
): string {
  const when = (ms: number | null) => (ms === null ? 'never' : `${new Date(ms).toISOString().slice(0, 19)}Z`);
  const rows = [
    ['ID', 'PREFIX', 'NAME', 'SCOPE', 'CREATED', 'LAST USED', 'STATE'],
    ...keys.map((k) => [
      k.id,
      `${k.prefix}…`,
      k.name,
      k.scope,
      when(k.createdAt),
      when(k.lastUsedAt),
      k.revokedAt === null ? 'active' : `revoked ${when(k.revokedAt)}`,
    ]),
  ];
  const widths =
    rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  return rows
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
    .concat('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [command, sub, ...rest] = argv;
  try {
    switch (command) {
      case 'serve':
        await serve();
        return -1;
      case 'migrate':
        await withStore(async () => {});
        process.stdout.write('The database schema is up to date.\n');
        return 0;
      case 'api-keys':
        if (sub === 'create') {
          const { values } = parseArgs({
            args: rest,
            options: {
              name: { type: 'string', default: 'api key' },
              scope: { type: 'string', default: 'admin' },
            },
          });
          const scope = values.scope ?? 'admin';
          if (!isKeyScope(scope)) {
            process.stderr.write(
              `grantry: --scope must be one of ${KEY_SCOPES.join(', ')} (got "${scope}").\n`,
            );
            return 2;
          }
          const { key, record } = await withStore((store) =>
            createApiKey(store, values.name ?? 'api key', scope),
          );
          process.stdout.write(`${key}\n`);
          process.stderr.write(
            `Created ${record.id} ("${record.name}", scope ${record.scope}). The key is shown only this once.\n`,
          );
          return 0;
        }
        if (sub === 'list') {
          const keys = await withStore((store) => store.apiKeys.list());
          process.stdout.write(formatKeyTable(keys));
          return 0;
        }
        if (sub === 'revoke' && rest[0] !== undefined) {
          const id = rest[0];
          const done = await withStore((store) => store.apiKeys.revoke(id, Date.now()));
          process.stdout.write(done ? `Revoked ${id}.\n` : `No active key ${id}.\n`);
          return done ? 0 : 1;
        }
        break;
      case 'keys':
        if (sub === 'rotate') {
          await rotateKeys();
          return 0;
        }
        break;
      case undefined:
      case 'help':
      case '--help':
        process.stdout.write(`${USAGE}\n`);
        return 0;
    }
    const given = [command, sub].filter((part) => part !== undefined).join(' ');
    process.stderr.write(`grantry: unknown command "${given}".\n\n${USAGE}\n`);
    return 2;
  } catch (error) {
    if (error instanceof ConfigError || error instanceof MasterKeyError) {
      process.stderr.write(`grantry: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}
