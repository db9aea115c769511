import { parseArgs } from 'node:util';
import { createApp, keyFilePathFor } from '../app.js';
import { ConfigError, loadConfig } from '../config.js';
import { createLogger } from '../logger.js';
import { MasterKeyError } from '../secrets/key-ring.js';
import { loadKeyRing } from '../secrets/master-key-source.js';
import { createApiKey, KEY_SCOPES, type KeyScope } from '../services/api-keys.js';
import { BLANK_NAME, hasControlCharacters, hasVisibleCharacter } from '../services/field-checks.js';
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

/** A mistake in how the command was called: one line on stderr, exit 2 (no stack trace). */
class UsageError extends Error {}

/**
 * Text from the database (names anyone with an admin key chose) made safe for a terminal: control
 * characters (ESC starts escape sequences that can rewrite the screen or the clipboard), DEL, the C1
 * controls and the bidirectional overrides that reorder what is shown are written as \u{…} escapes.
 */
export function printable(text: string): string {
  return text.replace(
    // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
    /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u{${(c.codePointAt(0) ?? 0).toString(16)}}`,
  );
}

/** The options of one command, refusing any it does not know (a one-line usage error). */
function parseOptions<O extends Record<string, { type: 'string'; default?: string }>>(
  usage: string,
  args: string[],
  options: O,
  positionals = 0,
): { values: { [K in keyof O]?: string }; positionals: string[] } {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args, options, allowPositionals: positionals > 0, strict: true });
  } catch (error) {
    const message = (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
    throw new UsageError(`${message.replace(/\.$/, '')}. Usage: ${usage}`);
  }
  if (parsed.positionals.length > positionals) {
    throw new UsageError(
      `unexpected argument "${printable(parsed.positionals[positionals] ?? '')}". Usage: ${usage}`,
    );
  }
  return parsed as { values: { [K in keyof O]?: string }; positionals: string[] };
}

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
      printable(k.id),
      `${printable(k.prefix)}…`,
      printable(k.name),
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
        parseOptions('grantry serve', argv.slice(1), {});
        await serve();
        return -1;
      case 'migrate':
        parseOptions('grantry migrate', argv.slice(1), {});
        await withStore(async () => {});
        process.stdout.write('The database schema is up to date.\n');
        return 0;
      case 'api-keys':
        if (sub === 'create') {
          const { values } = parseOptions('grantry api-keys create [--name N] [--scope S]', rest, {
            name: { type: 'string', default: 'api key' },
            scope: { type: 'string', default: 'admin' },
          });
          const scope = values.scope ?? 'admin';
          if (!isKeyScope(scope)) {
            throw new UsageError(
              `--scope must be one of ${KEY_SCOPES.join(', ')} (got "${printable(scope)}").`,
            );
          }
          const name = values.name ?? 'api key';
          if (hasControlCharacters(name)) {
            throw new UsageError('--name must not contain control characters (such as line breaks or ESC).');
          }
          if (!hasVisibleCharacter(name) || name.length > 100) {
            throw new UsageError(
              `--name ${name.length > 100 ? 'must be at most 100 characters' : BLANK_NAME}.`,
            );
          }
          const { key, record } = await withStore((store) => createApiKey(store, name, scope));
          process.stdout.write(`${key}\n`);
          process.stderr.write(
            `Created ${record.id} ("${printable(record.name)}", scope ${record.scope}). The key is shown only this once.\n`,
          );
          return 0;
        }
        if (sub === 'list') {
          parseOptions('grantry api-keys list', rest, {});
          const keys = await withStore((store) => store.apiKeys.list());
          process.stdout.write(formatKeyTable(keys));
          return 0;
        }
        if (sub === 'revoke') {
          const usage = 'grantry api-keys revoke <id> (the ids are in grantry api-keys list)';
          const { positionals } = parseOptions(usage, rest, {}, 1);
          const id = positionals[0];
          if (id === undefined || id === '') {
            throw new UsageError(`api-keys revoke needs the id of the key to revoke. Usage: ${usage}`);
          }
          const done = await withStore((store) => store.apiKeys.revoke(id, Date.now()));
          process.stdout.write(done ? `Revoked ${printable(id)}.\n` : `No active key ${printable(id)}.\n`);
          return done ? 0 : 1;
        }
        break;
      case 'keys':
        if (sub === 'rotate') {
          parseOptions('grantry keys rotate', rest, {});
          await rotateKeys();
          return 0;
        }
        break;
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(`${USAGE}\n`);
        return 0;
    }
    if (command.startsWith('-')) {
      throw new UsageError(
        `unknown option "${printable(command)}". Usage: grantry <command> (grantry help lists them)`,
      );
    }
    const given = [command, sub].filter((part) => part !== undefined).join(' ');
    process.stderr.write(`grantry: unknown command "${printable(given)}".\n\n${USAGE}\n`);
    return 2;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`grantry: ${error.message}\n`);
      return 2;
    }
    if (error instanceof ConfigError || error instanceof MasterKeyError) {
      process.stderr.write(`grantry: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}
