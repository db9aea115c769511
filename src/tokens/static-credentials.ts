import type { KeyRing } from '../secrets/key-ring.js';
import type { AuthenticationRecord, ChangeEvent, Store } from '../store/contract.js';
import { openAuthenticationSecret } from './sealed-columns.js';

/**
 * A credential sent as it is on every call (docs/api.md "Static credentials"): an API key, HTTP Basic,
 * or a static bearer token. There is nothing to fetch and nothing to refresh; a 401 with one is
 * reported, never retried.
 */
export interface StaticCredential {
  readonly authId: string;
  readonly type: 'api_key' | 'basic' | 'bearer';
  /** The header to set (name lower-cased), or null when the key goes in the query. */
  readonly header: readonly [name: string, value: string] | null;
  /** The query parameter to add (name and value, not yet encoded), or null. */
  readonly query: readonly [name: string, value: string] | null;
}

/** What a static authentication sends, built from its record and its opened secret. */
export function staticCredentialOf(record: AuthenticationRecord, ring: KeyRing): StaticCredential | null {
  const s = record.settings;
  switch (record.type) {
    case 'api_key': {
      const key = openAuthenticationSecret(ring, record, 'api_key') ?? '';
      const name = s.apiKeyName ?? '';
      if (s.apiKeyIn === 'query')
        return { authId: record.id, type: 'api_key', header: null, query: [name, key] };
      const prefix = s.apiKeyPrefix ?? '';
      return {
        authId: record.id,
        type: 'api_key',
        header: [name.toLowerCase(), prefix === '' ? key : `${prefix} ${key}`],
        query: null,
      };
    }
    case 'basic': {
      const password = openAuthenticationSecret(ring, record, 'password') ?? '';
      // RFC 7617 §2.1: user-id ":" password, UTF-8 (the charset every current server expects).
      const credentials = Buffer.from(`${s.username ?? ''}:${password}`, 'utf8').toString('base64');
      return {
        authId: record.id,
        type: 'basic',
        header: ['authorization', `Basic ${credentials}`],
        query: null,
      };
    }
    case 'bearer': {
      const token = openAuthenticationSecret(ring, record, 'token') ?? '';
      const prefix = s.headerPrefix ?? 'Bearer';
      return {
        authId: record.id,
        type: 'bearer',
        header: ['authorization', prefix === '' ? token : `${prefix} ${token}`],
        query: null,
      };
    }
    default:
      return null;
  }
}

/**
 * Static credentials in memory, opened once and dropped when any instance changes or deletes the
 * authentication (the store's change feed reaches every instance), so the hot path decrypts
 * nothing. A load that races a change is not kept, as in the connector cache.
 */
export class StaticCredentials {
  readonly #store: Store;
  readonly #ring: KeyRing;
  readonly #entries = new Map<string, StaticCredential>();
  /** Counts changes heard: a load that saw a change while it read is not kept (it may be stale). */
  #changes = 0;
  readonly #unsubscribe: () => void;

  constructor(store: Store, ring: KeyRing) {
    this.#store = store;
    this.#ring = ring;
    this.#unsubscribe = store.subscribe((event) => this.#onChange(event));
  }

  /** The cached credential, synchronously; undefined when not loaded (or not a static one). */
  peek(authId: string): StaticCredential | undefined {
    return this.#entries.get(authId);
  }

  /** The credential of a static authentication; null for an OAuth 2.0 one or a missing one. */
  async load(authId: string): Promise<StaticCredential | null> {
    const cached = this.#entries.get(authId);
    if (cached !== undefined) return cached;
    const changesBefore = this.#changes;
    const record = await this.#store.authentications.get(authId);
    if (record === null) return null;
    const credential = staticCredentialOf(record, this.#ring);
    if (credential !== null && this.#changes === changesBefore) this.#entries.set(authId, credential);
    return credential;
  }

  close(): void {
    this.#unsubscribe();
    this.#entries.clear();
  }

  #onChange(event: ChangeEvent): void {
    if (event.kind === 'resync') {
      this.#changes++;
      this.#entries.clear();
    } else if (event.kind === 'authentication_changed' || event.kind === 'authentication_deleted') {
      this.#changes++;
      this.#entries.delete(event.authId);
    }
  }
}
