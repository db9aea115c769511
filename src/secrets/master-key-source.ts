import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { generateMasterKey, KeyRing, MasterKeyError, parseMasterKey } from './key-ring.js';

export interface MasterKeySource {
  configured: string | undefined;
  previous: string[];
  /** Where to keep a generated key outside production. */
  keyFilePath: string;
  production: boolean;
  warn: (message: string) => void;
}

/**
 * Builds the key ring from GRANTRY_MASTER_KEY, or — outside production only — from a key file
 * created beside the database with mode 0600, so that `npm start` works on a fresh machine
 * without leaving secrets readable by other users.
 */
export function loadKeyRing(source: MasterKeySource): KeyRing {
  const previous = source.previous.map((k, i) => parseMasterKey(k, `GRANTRY_PREVIOUS_MASTER_KEYS[${i}]`));
  if (source.configured !== undefined) {
    return new KeyRing(parseMasterKey(source.configured, 'GRANTRY_MASTER_KEY'), previous);
  }
  if (source.production) {
    throw new MasterKeyError('GRANTRY_MASTER_KEY is required when NODE_ENV=production.');
  }
  if (!existsSync(source.keyFilePath)) {
    mkdirSync(dirname(source.keyFilePath), { recursive: true });
    writeFileSync(source.keyFilePath, `${generateMasterKey()}\n`, { mode: 0o600, flag: 'wx' });
    source.warn(
      `GRANTRY_MASTER_KEY is not set: generated a master key in ${source.keyFilePath} (mode 0600). ` +
        'Set GRANTRY_MASTER_KEY in production and keep it out of the database backups.',
    );
  }
  chmodSync(source.keyFilePath, 0o600);
  return new KeyRing(parseMasterKey(readFileSync(source.keyFilePath, 'utf8'), source.keyFilePath), previous);
}
