/**
 * The storage contract: everything Grantry keeps, and the race-safe operations it relies on.
 * Implemented once with Kysely over two dialects (SQLite embedded, PostgreSQL shared); both must
 * pass the same contract test suite (`src/store/contract.test.ts`).
 *
 * The store knows nothing of OAuth: secrets arrive here already encrypted (opaque strings made by
 * `secrets/`), and come back the same way. Times are epoch milliseconds.
 */

/** An opaque ciphertext produced by `secrets/` (key id + IV + ciphertext + tag). */
export type Sealed = string;

export type GrantType = 'client_credentials' | 'password' | 'authorization_code';
export type AuthStatus = 'ready' | 'connected' | 'needs_authorization' | 'error';

/** Non-secret configuration of an authentication, kept as one JSON document. */
export interface AuthenticationSettings {
  authorizationUrl?: string;
  tokenUrl: string;
  clientId: string;
  headerPrefix: string;
  audience?: string;
  audienceParam: 'audience' | 'resource';
  scope?: string;
  username?: string;
  clientAuthMethod: 'client_secret_basic' | 'client_secret_post';
  extraAuthorizationParams?: Record<string, string>;
  extraTokenParams?: Record<string, string>;
  pkce?: boolean;
  revocationUrl?: string;
}

export interface AuthenticationRecord {
  id: string;
  name: string;
  type: 'oauth2';
  grantType: GrantType;
  settings: AuthenticationSettings;
  clientSecret: Sealed;
  password: Sealed | null;
  status: AuthStatus;
  /** JSON of the last problem (a `ProblemBody`), or null. */
  lastError: unknown;
  /**
   * Bumped whenever a field that shapes the token request changes. Tokens remember the
   * generation they were fetched for; a token of an older generation is never used.
   */
  generation: number;
  calls: number;
  unauthorizedCount: number;
  refreshCount: number;
  createdAt: number;
  updatedAt: number;
}

export interface ConnectorRecord {
  id: string;
  name: string;
  baseUrl: string;
  authenticationId: string | null;
  headers: Record<string, string>;
  query: Record<string, string>;
  /**
   * API statuses that make Grantry replace the credential and retry once; null means the default
   * (401 only), so a connector that never chose follows the default if it changes.
   */
  refreshOn: (401 | 403)[] | null;
  timeoutMs: number;
  createdAt: number;
  updatedAt: number;
}

export interface TokenRecord {
  authId: string;
  accessToken: Sealed | null;
  tokenType: string | null;
  scope: string | null;
  obtainedAt: number;
  /** null when the provider did not say (Salesforce, Zendesk): rely on a 401. */
  expiresAt: number | null;
  refreshToken: Sealed | null;
  /** The authentication's `generation` these tokens were obtained for. */
  generation: number;
  /** Incremented on every write; the compare-and-swap key. */
  version: number;
}

export type TokenWrite = Omit<TokenRecord, 'authId' | 'version'>;

export interface EventRecord {
  at: number;
  type: string;
  detail: Record<string, unknown>;
}

export interface ApiKeyRecord {
  id: string;
  name: string;
  /** sha256 of the key, hex. The key itself is never stored. */
  hash: string;
  /** First characters of the key, to recognise it in a list. */
  prefix: string;
  /** What the key may do (API.md "Access"): `admin`, `runtime` or `metrics`. */
  scope: 'admin' | 'runtime' | 'metrics';
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

export interface OAuthStateRecord {
  /** sha256 of the `state` value, hex: a leaked table does not let anyone finish a flow. */
  stateHash: string;
  authId: string;
  /** sha256 of the browser-binding cookie value, hex. */
  browserHash: string;
  codeVerifier: Sealed | null;
  redirectUri: string;
  /** The authentication generation when the flow started. */
  generation: number;
  createdAt: number;
  expiresAt: number;
}

/** Published to every instance sharing the store (in process for SQLite, LISTEN/NOTIFY for Postgres). */
export type ChangeEvent =
  | { kind: 'authentication_changed'; authId: string }
  | { kind: 'authentication_deleted'; authId: string }
  /** `version` is the token row's new version: an instance that already holds it keeps its cache. */
  | { kind: 'tokens_changed'; authId: string; version?: number }
  | { kind: 'connector_changed'; connectorId: string }
  | { kind: 'connector_deleted'; connectorId: string }
  /** The change feed was interrupted: changes may have been missed, so drop every cache. */
  | { kind: 'resync' };

export interface AuthenticationRepository {
  insert(record: AuthenticationRecord): Promise<void>;
  get(id: string): Promise<AuthenticationRecord | null>;
  getByName(name: string): Promise<AuthenticationRecord | null>;
  list(): Promise<AuthenticationRecord[]>;
  /** Replaces the whole record (by id). Returns false when it does not exist. */
  update(record: AuthenticationRecord): Promise<boolean>;
  setStatus(id: string, status: AuthStatus, lastError: unknown): Promise<void>;
  /** Adds to the usage counters (batched by the caller). */
  addUsage(id: string, delta: { calls: number; unauthorized: number; refreshes: number }): Promise<void>;
  /** Deletes the authentication with its tokens, events and flow states. */
  delete(id: string): Promise<boolean>;
}

export interface ConnectorRepository {
  insert(record: ConnectorRecord): Promise<void>;
  get(id: string): Promise<ConnectorRecord | null>;
  getByName(name: string): Promise<ConnectorRecord | null>;
  list(): Promise<ConnectorRecord[]>;
  listByAuthentication(authId: string): Promise<ConnectorRecord[]>;
  update(record: ConnectorRecord): Promise<boolean>;
  /** Sets authenticationId to null on every connector using it; returns their ids. */
  detachAuthentication(authId: string): Promise<string[]>;
  delete(id: string): Promise<boolean>;
}

export interface TokenRepository {
  get(authId: string): Promise<TokenRecord | null>;
  /** Every token row, in one query (for listing authentications with their token metadata). */
  list(): Promise<TokenRecord[]>;
  /**
   * Compare-and-swap: writes only if the stored version is `expectedVersion` (null: no row yet).
   * Returns the new record, or null when someone else wrote first — the caller must re-read.
   * This is what keeps a rotated refresh token from being lost to a concurrent writer.
   */
  compareAndSwap(
    authId: string,
    expectedVersion: number | null,
    write: TokenWrite,
  ): Promise<TokenRecord | null>;
  /** Drops the access token but keeps the refresh token (POST …/invalidate). */
  dropAccessToken(authId: string): Promise<void>;
  delete(authId: string): Promise<void>;
}

export interface EventRepository {
  /** Appends and trims to the newest `keep` events of that authentication. */
  append(authId: string, event: EventRecord, keep: number): Promise<void>;
  /** Newest first. */
  list(authId: string, limit: number): Promise<EventRecord[]>;
}

export interface ApiKeyRepository {
  insert(record: ApiKeyRecord): Promise<void>;
  findByHash(hash: string): Promise<ApiKeyRecord | null>;
  list(): Promise<ApiKeyRecord[]>;
  revoke(id: string, at: number): Promise<boolean>;
  touch(id: string, at: number): Promise<void>;
  countActive(): Promise<number>;
}

export interface OAuthStateRepository {
  insert(record: OAuthStateRecord): Promise<void>;
  /**
   * Atomically removes and returns the state row if it exists and has not expired at `now`
   * (DELETE … RETURNING). Two concurrent callers with the same state: exactly one gets the row.
   */
  consumeOne(stateHash: string, now: number): Promise<OAuthStateRecord | null>;
  deleteExpired(now: number): Promise<number>;
}

/** Every sealed value in the store, for `grantry keys rotate`. */
export interface SealedValueRef {
  table: 'authentications' | 'tokens' | 'oauth_states';
  id: string;
  column: string;
  value: Sealed;
}

export interface Store {
  readonly dialect: 'sqlite' | 'postgres';
  readonly authentications: AuthenticationRepository;
  readonly connectors: ConnectorRepository;
  readonly tokens: TokenRepository;
  readonly events: EventRepository;
  readonly apiKeys: ApiKeyRepository;
  readonly oauthStates: OAuthStateRepository;

  /** Runs pending migrations (under a cross-instance lock where the engine has one). */
  migrate(): Promise<void>;
  /** True when the database answers a trivial query. */
  ping(): Promise<boolean>;

  /**
   * Runs `fn` while holding the refresh lock of one authentication, across every instance that
   * shares this store. SQLite: an in-process mutex (one process owns the file). PostgreSQL: a
   * session advisory lock on a dedicated connection, released if the process dies.
   * Returns how long the caller waited for the lock, with `fn`'s result.
   */
  withAuthLock<T>(authId: string, fn: () => Promise<T>): Promise<{ value: T; waitedMs: number }>;

  /** Tells every instance (including this one) about a change. */
  publish(event: ChangeEvent): Promise<void>;
  /** Listens for changes from every instance. Returns an unsubscribe function. */
  subscribe(listener: (event: ChangeEvent) => void): () => void;

  /** All sealed values (for key rotation), and a way to replace one by reference. */
  listSealed(): Promise<SealedValueRef[]>;
  replaceSealed(ref: SealedValueRef, value: Sealed): Promise<void>;

  /** A key-value setting kept in the store (e.g. the master key check value). */
  getSetting(key: string): Promise<string | null>;
  setSetting(key: string, value: string): Promise<void>;

  close(): Promise<void>;
}
