import { EMPTY_KEY_SET, type KeySet, parseKeySet } from '../keys/key-set.js';
import type { KeyRing } from '../secrets/key-ring.js';
import type { AuthenticationRecord, ConnectorRecord, Sealed } from '../store/contract.js';

/**
 * Where each secret lives, as the additional authenticated data of its ciphertext: a value sealed
 * for one row and column opens nowhere else. One place names them, so writers and readers agree.
 * An authentication's secrets are keyed by the column their ciphertext is bound to (`client_secret`,
 * `password`, `api_key`, `token`); a connector's secret headers by their lower-case name.
 */
export const sealContext = {
  authenticationSecret: (authId: string, column: string) => ({
    table: 'authentications',
    id: authId,
    column,
  }),
  clientSecret: (authId: string) => sealContext.authenticationSecret(authId, 'client_secret'),
  /** The key set (keys/key-set.ts): every private key of the authentication, one document. */
  keys: (authId: string) => sealContext.authenticationSecret(authId, KEYS_COLUMN),
  password: (authId: string) => sealContext.authenticationSecret(authId, 'password'),
  secretHeader: (connectorId: string, lowerName: string) => ({
    table: 'connectors',
    id: connectorId,
    column: lowerName,
  }),
  accessToken: (authId: string) => ({ table: 'tokens', id: authId, column: 'access_token' }),
  refreshToken: (authId: string) => ({ table: 'tokens', id: authId, column: 'refresh_token' }),
  codeVerifier: (stateHash: string) => ({ table: 'oauth_states', id: stateHash, column: 'code_verifier' }),
} as const;

/** One stored secret of an authentication, opened; null when it has none under that column. */
export function openAuthenticationSecret(
  ring: KeyRing,
  record: AuthenticationRecord,
  column: string,
): string | null {
  const sealed = record.secrets[column];
  return sealed === undefined ? null : ring.open(sealed, sealContext.authenticationSecret(record.id, column));
}

/** The secrets-document column the key set is sealed under. */
export const KEYS_COLUMN = 'keys';

export interface AuthenticationSecrets {
  clientSecret: string;
  password: string | null;
  /** The authentication's keys (empty for one that uses none). */
  keys: KeySet;
}

/** The key set of an authentication, opened; empty when it has none. */
export function openKeySet(ring: KeyRing, record: AuthenticationRecord): KeySet {
  const json = openAuthenticationSecret(ring, record, KEYS_COLUMN);
  return json === null ? EMPTY_KEY_SET : parseKeySet(json);
}

/** The secrets an OAuth 2.0 token request may send. */
export function openAuthenticationSecrets(
  ring: KeyRing,
  record: AuthenticationRecord,
): AuthenticationSecrets {
  return {
    clientSecret: openAuthenticationSecret(ring, record, 'client_secret') ?? '',
    password: openAuthenticationSecret(ring, record, 'password'),
    keys: openKeySet(ring, record),
  };
}

/** A connector's secret headers, opened: lower-case name → value. */
export function openSecretHeaders(ring: KeyRing, record: ConnectorRecord): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, sealed] of Object.entries(record.secretHeaders)) {
    headers[name] = ring.open(sealed, sealContext.secretHeader(record.id, name));
  }
  return headers;
}

export function sealOptional(
  ring: KeyRing,
  value: string | null,
  context: { table: string; id: string; column: string },
): Sealed | null {
  return value === null ? null : ring.seal(value, context);
}
