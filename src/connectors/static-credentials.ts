import type { KeyRing } from '../secrets/key-ring.js';
import type { AuthenticationRecord } from '../store/contract.js';
import { openAuthenticationSecret } from '../tokens/sealed-columns.js';
import type { Credential, CredentialNames, CredentialSource, CredentialStep } from './credential-source.js';

/** The kinds whose credential is sent as it is on every call (docs/api.md "Static credentials"). */
export type StaticKind = 'api_key' | 'basic' | 'bearer';

/** A static credential: what it adds to a request, and where, for the diagnosis of a refusal. */
export interface StaticCredential extends Credential {
  readonly kind: StaticKind;
  /** "header X-API-Key", "query parameter api_key", "header Authorization (Basic)": never the value. */
  readonly sentAs: string;
}

export function isStaticCredential(credential: Credential): credential is StaticCredential {
  return (credential as Partial<StaticCredential>).kind !== undefined;
}

/**
 * The credential of a static authentication, from its record and its opened secret; null for an
 * OAuth 2.0 one. Opened once per compiled connector: the hot path decrypts nothing.
 */
export function staticCredentialOf(record: AuthenticationRecord, ring: KeyRing): StaticCredential | null {
  const s = record.settings;
  switch (record.type) {
    case 'api_key': {
      const key = openAuthenticationSecret(ring, record, 'api_key') ?? '';
      const name = s.apiKeyName ?? '';
      if (s.apiKeyIn === 'query') {
        return {
          kind: 'api_key',
          sentAs: `query parameter ${name}`,
          headers: [],
          query: `${encodeURIComponent(name)}=${encodeURIComponent(key)}`,
          refreshable: false,
        };
      }
      const prefix = s.apiKeyPrefix ?? '';
      return {
        kind: 'api_key',
        sentAs: `header ${name}`,
        headers: [name.toLowerCase(), prefix === '' ? key : `${prefix} ${key}`],
        query: '',
        refreshable: false,
      };
    }
    case 'basic': {
      const password = openAuthenticationSecret(ring, record, 'password') ?? '';
      // RFC 7617 §2.1: user-id ":" password, UTF-8 (the charset every current server expects).
      const encoded = Buffer.from(`${s.username ?? ''}:${password}`, 'utf8').toString('base64');
      return {
        kind: 'basic',
        sentAs: 'header Authorization (Basic)',
        headers: ['authorization', `Basic ${encoded}`],
        query: '',
        refreshable: false,
      };
    }
    case 'bearer': {
      const token = openAuthenticationSecret(ring, record, 'token') ?? '';
      const prefix = s.headerPrefix ?? 'Bearer';
      return {
        kind: 'bearer',
        sentAs: prefix === '' ? 'header Authorization (no prefix)' : `header Authorization (${prefix})`,
        headers: ['authorization', prefix === '' ? token : `${prefix} ${token}`],
        query: '',
        refreshable: false,
        bearerToken: token,
      };
    }
    default:
      return null;
  }
}

/**
 * The source of a static credential: always the same one, nothing to fetch or refresh. The API's
 * refusal of it is reported (upstream_unauthorized, naming the kind), never answered with a retry:
 * another attempt would send the very same key.
 */
export class StaticCredentialSource implements CredentialSource<StaticCredential> {
  readonly authenticationId: string;
  readonly names: CredentialNames;
  readonly #credential: StaticCredential;

  constructor(authenticationId: string, credential: StaticCredential) {
    this.authenticationId = authenticationId;
    this.#credential = credential;
    const query = credential.query === '' ? [] : [decodeURIComponent(credential.query.split('=')[0] ?? '')];
    this.names = {
      headers: new Set(credential.headers.filter((_, index) => index % 2 === 0)),
      query: new Set(query),
    };
  }

  peek(): StaticCredential {
    return this.#credential;
  }

  async get(): Promise<StaticCredential> {
    return this.#credential;
  }

  refused(): { mayReplace: false; pausedUntil: null } {
    return { mayReplace: false, pausedUntil: null };
  }

  async replace(): Promise<StaticCredential> {
    // `refused` never allows a replacement; a second attempt would send the same credential.
    return this.#credential;
  }

  pausedUntil(): null {
    return null;
  }

  async acquireForTest(): Promise<{ credential: StaticCredential; step: CredentialStep }> {
    const { kind, sentAs } = this.#credential;
    return { credential: this.#credential, step: { ok: true, kind, sentAs } };
  }
}
