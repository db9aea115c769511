import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * Envelope encryption of every secret Grantry stores: AES-256-GCM, a random 96-bit IV per value
 * (NIST SP 800-38D §8.2.2), and the place the value belongs to — table, row id, column — bound as
 * additional authenticated data, so a ciphertext copied to another row or column fails to open.
 *
 * Sealed format: `g1.<keyId>.<iv>.<ciphertext>.<tag>` (base64url parts). The key id travels with
 * every value so that `grantry keys rotate` can re-seal under a new key while instances holding
 * both keys keep reading old and new values: rotation without downtime.
 */
export interface SealContext {
  table: string;
  id: string;
  column: string;
}

export class MasterKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MasterKeyError';
  }
}

const FORMAT = 'g1';

export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 12);
}

export function parseMasterKey(base64: string, source: string): Buffer {
  const key = Buffer.from(base64.trim(), 'base64');
  if (key.length !== 32) {
    throw new MasterKeyError(
      `${source} must be the base64 encoding of exactly 32 bytes (got ${key.length}).`,
    );
  }
  return key;
}

export function generateMasterKey(): string {
  return randomBytes(32).toString('base64');
}

function aad(context: SealContext): Buffer {
  return Buffer.from(`${context.table}\u0000${context.id}\u0000${context.column}`, 'utf8');
}

export class KeyRing {
  readonly currentKeyId: string;
  readonly #keys = new Map<string, Buffer>();
  readonly #current: Buffer;

  /** @param current the key new values are sealed with; @param previous keys still accepted for reading. */
  constructor(current: Buffer, previous: Buffer[] = []) {
    this.#current = current;
    this.currentKeyId = keyIdOf(current);
    this.#keys.set(this.currentKeyId, current);
    for (const key of previous) this.#keys.set(keyIdOf(key), key);
  }

  seal(plaintext: string, context: SealContext): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#current, iv);
    cipher.setAAD(aad(context));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [
      FORMAT,
      this.currentKeyId,
      iv.toString('base64url'),
      ciphertext.toString('base64url'),
      cipher.getAuthTag().toString('base64url'),
    ].join('.');
  }

  open(sealed: string, context: SealContext): string {
    const parts = sealed.split('.');
    if (parts.length !== 5 || parts[0] !== FORMAT) {
      throw new MasterKeyError(
        `The stored value of ${context.table}.${context.column} is not a sealed value.`,
      );
    }
    const [, keyId, iv, ciphertext, tag] = parts as [string, string, string, string, string];
    const key = this.#keys.get(keyId);
    if (key === undefined) {
      throw new MasterKeyError(
        `Stored secrets were encrypted with master key ${keyId}, but the configured master key is ${this.currentKeyId}. ` +
          'Set GRANTRY_MASTER_KEY to the key the data was written with (or list it in GRANTRY_PREVIOUS_MASTER_KEYS).',
      );
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(aad(context));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([
        decipher.update(Buffer.from(ciphertext, 'base64url')),
        decipher.final(),
      ]).toString('utf8');
    } catch {
      throw new MasterKeyError(
        `A stored secret (${context.table}.${context.column}) failed its integrity check: it was altered, or moved from another row.`,
      );
    }
  }

  /** True when the value is sealed under a key other than the current one (for rotation). */
  needsReseal(sealed: string): boolean {
    return sealed.split('.')[1] !== this.currentKeyId;
  }
}
