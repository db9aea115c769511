import { randomBytes } from 'node:crypto';

/** Opaque ids with a type prefix (docs/api.md): `auth_…`, `con_…`. 96 random bits, base32-ish. */
export function newId(prefix: 'auth' | 'con'): string {
  return `${prefix}_${randomBytes(12).toString('base64url').replace(/[-_]/g, 'x')}`;
}
