import type { Dispatcher } from 'undici';
import type { KeyRing } from '../secrets/key-ring.js';
import type { Store } from '../store/contract.js';
import type { ClientCertificate } from '../tokens/authentication-keys.js';
import type { TokenManager } from '../tokens/token-manager.js';
import type { CredentialsFor } from './connector-cache.js';
import { OAuthTokenCredentials } from './oauth-token-credentials.js';
import { StaticCredentialSource, staticCredentialOf } from './static-credentials.js';

/**
 * Where a connector's calls get their credential, by the kind of its authentication: an OAuth 2.0
 * client's tokens from the TokenManager, or a static credential (API key, Basic, bearer) opened
 * once. Read once per compiled connector; a change to the authentication recompiles it.
 */
export function credentialsForAuthentications(options: {
  store: Store;
  tokens: TokenManager;
  keyRing: KeyRing;
  /** The pool that presents a client certificate, for tokens bound to it (RFC 8705 §3). */
  certificateDispatcher?: (certificate: ClientCertificate) => Dispatcher;
}): CredentialsFor {
  const { store, tokens, keyRing, certificateDispatcher } = options;
  return async (authenticationId) => {
    const record = await store.authentications.get(authenticationId);
    const credential = record === null ? null : staticCredentialOf(record, keyRing);
    // A missing authentication (deleted while the connector compiled) goes the OAuth way: its
    // token request answers not_found, and nothing is sent without a credential.
    return credential === null
      ? new OAuthTokenCredentials(tokens, authenticationId, certificateDispatcher)
      : new StaticCredentialSource(authenticationId, credential);
  };
}
