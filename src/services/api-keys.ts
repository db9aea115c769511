import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { ApiKeyRecord, Store } from '../store/contract.js';

/** What an API key may do (docs/api.md "Access"): everything, the data plane and reads, or the metrics only. */
export const KEY_SCOPES = ['admin', 'runtime', 'metrics'] as const;
export type KeyScope = (typeof KEY_SCOPES)[number];

/**
 * API keys: `grk_` + 256 random bits. Only a SHA-256 hash is stored — a key is a random secret,
 * not a password, so a slow hash adds nothing — and shown once when created.
 */
export function generateApiKey(): string {
  return `grk_${randomBytes(32).toString('base64url')}`;
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export async function createApiKey(
  store: Store,
  name: string,
  scope: KeyScope = 'admin',
): Promise<{ key: string; record: ApiKeyRecord }> {
  const key = generateApiKey();
  const record: ApiKeyRecord = {
    id: `key_${randomUUID().replaceAll('-', '').slice(0, 20)}`,
    name,
    hash: hashApiKey(key),
    prefix: key.slice(0, 10),
    scope,
    createdAt: Date.now(),
    lastUsedAt: null,
    revokedAt: null,
  };
  await store.apiKeys.insert(record);
  return { key, record };
}

/** Constant-time comparison of two hex digests of equal length. */
export function sameDigest(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && timingSafeEqual(left, right);
}
