import { parseArgs } from 'node:util';
import { createApiKey } from '../api/api-keys.js';
import { createApp, KEY_CHECK_CONTEXT, KEY_CHECK_SETTING, keyFilePathFor } from '../app.js';
import { ConfigError, loadConfig } from '../config.js';
import { createLogger } from '../logger.js';
import { MasterKeyError } from '../secrets/key-ring.js';
import { loadKeyRing } from '../secrets/master-key-source.js';
import { openStore } from '../store/open-store.js';

const USAGE = `Usage: grantry <command>

Commands:
  serve                         run the HTTP service (what \`npm start\` runs)
  migrate                       create or upgrade the database schema
  api-keys create [--name N]    create an API key (printed once)
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
    let resealed = 0;
    for (const ref of await store.listSealed()) {
      if (!ring.needsReseal(ref.value)) continue;
      const context = { table: ref.table, id: ref.id, column: ref.column };
      await store.replaceSealed(ref, ring.seal(ring.open(ref.value, context), context));
      resealed++;
    }
    const check = await store.getSetting(KEY_CHECK_SETTING);
    if (check !== null && ring.needsReseal(check)) {
      await store.setSetting(
        KEY_CHECK_SETTING,
        ring.seal(ring.open(check, KEY_CHECK_CONTEXT), KEY_CHECK_CONTEXT),
      );
    }
    process.stdout.write(`Re-encrypted ${resealed} value(s) under master key ${ring.currentKeyId}.\n`);
  });
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
            options: { name: { type: 'string', default: 'api key' } },
          });
          const { key, record } = await withStore((store) => createApiKey(store, values.name ?? 'api key'));
          process.stdout.write(`${key}\n`);
          process.stderr.write(`Created ${record.id} ("${record.name}"). The key is shown only this once.\n`);
          return 0;
        }
        if (sub === 'list') {
          const keys = await withStore((store) => store.apiKeys.list());
          for (const k of keys) {
            const state = k.revokedAt === null ? 'active' : `revoked ${new Date(k.revokedAt).toISOString()}`;
            process.stdout.write(`${k.id}\t${k.prefix}…\t${k.name}\t${state}\n`);
          }
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
    process.stderr.write(`${USAGE}\n`);
    return 2;
  } catch (error) {
    if (error instanceof ConfigError || error instanceof MasterKeyError) {
      process.stderr.write(`grantry: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}
