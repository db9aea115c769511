import type { KeyRing } from '../secrets/key-ring.js';
import type { AuthenticationRecord, Sealed } from '../store/contract.js';

/**
 * Where each secret lives, as the additional authenticated data of its ciphertext: a value sealed
 * for one row and column opens nowhere else. One place names them, so writers and readers agree.
 */
export const sealContext = {
  clientSecret: (authId: string) => ({ table: 'authentications', id: authId, column: 'client_secret' }),
  password: (authId: string) => ({ table: 'authentications', id: authId, column: 'password' }),
  accessToken: (authId: string) => ({ table: 'tokens', id: authId, column: 'access_token' }),
  refreshToken: (authId: string) => ({ table: 'tokens', id: authId, column: 'refresh_token' }),
  codeVerifier: (stateHash: string) => ({ table: 'oauth_states', id: stateHash, column: 'code_verifier' }),
} as const;

export interface AuthenticationSecrets {
  clientSecret: string;
  password: string | null;
}

export function openAuthenticationSecrets(
  ring: KeyRing,
  record: AuthenticationRecord,
): AuthenticationSecrets {
  return {
    clientSecret: ring.open(record.clientSecret, sealContext.clientSecret(record.id)),
    password: record.password === null ? null : ring.open(record.password, sealContext.password(record.id)),
  };
}

export function sealOptional(
  ring: KeyRing,
  value: string | null,
  context: { table: string; id: string; column: string },
): Sealed | null {
  return value === null ? null : ring.seal(value, context);
}
