import type { KeyRing } from '../src/secrets/key-ring.js';
import { newId } from '../src/services/ids.js';
import type { AuthenticationRecord, ConnectorRecord } from '../src/store/contract.js';
import { sealContext } from '../src/tokens/sealed-columns.js';
import { BENCH_CLIENT } from './environment.js';

/**
 * Rows written straight through the store's repositories (much faster than the HTTP API for
 * 100,000 of them), shaped as `POST /api/authentications` and `POST /api/connectors` shape them,
 * with the client secret sealed by the key ring as the API seals it.
 */
export function authenticationRecord(keyRing: KeyRing, name: string, tokenUrl: string): AuthenticationRecord {
  const id = newId('auth');
  const now = Date.now();
  return {
    id,
    name,
    type: 'oauth2',
    grantType: 'client_credentials',
    settings: {
      tokenUrl,
      clientId: BENCH_CLIENT.id,
      headerPrefix: 'Bearer',
      audienceParam: 'audience',
      clientAuthMethod: 'client_secret_basic',
    },
    secrets: { client_secret: keyRing.seal(BENCH_CLIENT.secret, sealContext.clientSecret(id)) },
    status: 'ready',
    lastError: null,
    generation: 1,
    calls: 0,
    unauthorizedCount: 0,
    refreshCount: 0,
    createdAt: now,
    updatedAt: now,
  };
}

export function connectorRecord(
  name: string,
  baseUrl: string,
  authenticationId: string | null,
): ConnectorRecord {
  const now = Date.now();
  return {
    id: newId('con'),
    name,
    baseUrl,
    authenticationId,
    headers: {},
    secretHeaders: {},
    query: {},
    refreshOn: null,
    timeoutMs: 30_000,
    createdAt: now,
    updatedAt: now,
  };
}
