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

export type GrantType = 'client_credentials' | 'password' | 'authorization_code' | 'jwt_bearer';
export type AuthStatus = 'ready' | 'connected' | 'needs_authorization' | 'error';
/** The kinds of authentication (docs/api.md "Authentications"); the store keeps them without looking inside. */
export type AuthenticationType = 'oauth2' | 'api_key' | 'basic' | 'bearer';

/**
 * Non-secret configuration of an authentication, kept as one JSON document. Which fields a kind
 * has is the catalogue's business (`services/catalogue/`); the store only keeps them.
 */
export interface AuthenticationSettings {
  authorizationUrl?: string;
  tokenUrl?: string;
  clientId?: string;
  headerPrefix?: string;
  audience?: string;
  audienceParam?: 'audience' | 'resource';
  scope?: string;
  username?: string;
  clientAuthMethod?:
    | 'client_secret_basic'
    | 'client_secret_post'
    | 'auto'
    | 'client_secret_jwt'
    | 'private_key_jwt'
    | 'tls_client_auth'
    | 'self_signed_tls_client_auth'
    | 'none';
  /** Keys (docs/keys.md): the algorithm, whether Grantry made the key, a published JWKS. */
  signingAlg?: 'RS256' | 'PS256' | 'ES256' | 'EdDSA';
  generateKey?: boolean;
  publishJwks?: boolean;
  clientAssertionAudience?: string;
  certificateBoundTokens?: boolean;
  dpop?: boolean;
  /** The JWT-bearer grant's claims (iss, sub, aud and others). */
  assertion?: Record<string, string>;
  /** Refresh in the background when the refresh token has sat unused this many days. */
  keepAliveDays?: number;
  extraAuthorizationParams?: Record<string, string>;
  extraTokenParams?: Record<string, string>;
  pkce?: boolean;
  revocationUrl?: string;
  apiKeyIn?: 'header' | 'query';
  apiKeyName?: string;
  apiKeyPrefix?: string;
  /** The provider preset it was created from, and the values of the preset's placeholders. */
  provider?: string;
  providerParams?: Record<string, string>;
  /**
   * Static kinds: the origins (scheme://host:port) this credential may be sent to, bound when a
   * connector first attaches it; absent while unbound. Giving the secret again unbinds it.
   */
  boundOrigins?: string[];
}

/**
 * An authentication's secrets, sealed, keyed by the column name their ciphertext is bound to
 * (`client_secret`, `password`, `api_key`, `token`): one JSON document, so a kind with new secrets
 * needs no new column.
 */
export type SealedSecrets = Readonly<Record<string, Sealed>>;

export interface AuthenticationRecord {
  id: string;
  name: string;
  type: AuthenticationType;
  /** The OAuth 2.0 grant; null for the static kinds. */
  grantType: GrantType | null;
  settings: AuthenticationSettings;
  secrets: SealedSecrets;
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
  /** Headers whose values are secret, sealed, keyed by lower-case name. */
  secretHeaders: SealedSecrets;
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
  /**
   * The client authentication method that obtained these tokens, when the authentication's method
   * is `auto` (what detection found); null otherwise. It lives and dies with the tokens.
   */
  clientAuthMethod: string | null;
}

/** A token row to write; `clientAuthMethod` omitted is null. */
export type TokenWrite = Omit<TokenRecord, 'authId' | 'version' | 'clientAuthMethod'> & {
  clientAuthMethod?: string | null;
};

/** The last failed token attempt of an authentication, as every instance sees it. */
export interface TokenFailureRecord {
  authId: string;
  /** The authentication generation the attempt was made with: another generation starts over. */
  generation: number;
  /** JSON of the problem (a `ProblemBody`), answered to callers while the back-off holds. */
  problem: unknown;
  /** Failed attempts in a row for this generation, counted by every instance. */
  attempts: number;
  /** No instance asks the provider again before this time (epoch ms). */
  nextAttemptAt: number;
  updatedAt: number;
}

export type TokenFailureWrite = Omit<TokenFailureRecord, 'authId'>;

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
  /** What the key may do (docs/api.md "Access"): `admin`, `runtime` or `metrics`. */
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

/**
 * A one-time link that starts the Authorization Code flow in whatever browser opens it (docs/api.md
 * "connect links"). Only a hash of its token is stored.
 */
export interface ConnectLinkRecord {
  /** sha256 of the link's token, hex. */
  tokenHash: string;
  authId: string;
  /** The authentication generation when the link was made: a link of old settings is refused. */
  generation: number;
  createdAt: number;
  expiresAt: number;
  usedAt: number | null;
}

/** What opening a connect link found. */
export type ConnectLinkUse =
  | { outcome: 'ok'; link: ConnectLinkRecord }
  | { outcome: 'used' | 'expired'; link: ConnectLinkRecord }
  | { outcome: 'unknown' };

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

/**
 * One page of a list ordered by name, then id. Keyset pagination (`after` the last item of the
 * previous page): a page costs the same whatever its depth, and stays right while rows are added.
 */
export interface PageQuery {
  limit: number;
  after?: { name: string; id: string } | undefined;
  /** Case-insensitive (ASCII) substring of the name. */
  nameContains?: string | undefined;
}

export interface AuthenticationRepository {
  insert(record: AuthenticationRecord): Promise<void>;
  get(id: string): Promise<AuthenticationRecord | null>;
  getByName(name: string): Promise<AuthenticationRecord | null>;
  list(): Promise<AuthenticationRecord[]>;
  page(
    query: PageQuery & { type?: AuthenticationType | undefined; status?: AuthStatus | undefined },
  ): Promise<AuthenticationRecord[]>;
  /** Replaces the whole record (by id). Returns false when it does not exist. */
  update(record: AuthenticationRecord): Promise<boolean>;
  /**
   * Replaces only the settings document, and only if it is still `expected` (compare-and-swap):
   * returns false when it changed meanwhile (or the authentication is gone). Secrets, status and
   * counters are not touched, so a concurrent change of those is never overwritten.
   */
  replaceSettings(
    id: string,
    expected: AuthenticationSettings,
    next: AuthenticationSettings,
  ): Promise<boolean>;
  setStatus(id: string, status: AuthStatus, lastError: unknown): Promise<void>;
  /** Adds to the usage counters (batched by the caller). */
  addUsage(id: string, delta: { calls: number; unauthorized: number; refreshes: number }): Promise<void>;
  /** Deletes the authentication with its tokens, events and flow states. */
  delete(id: string): Promise<boolean>;
  /**
   * Ids of the authentications whose refresh token is due for a keep-alive at `now`, longest idle
   * first, at most `limit`: a keep-alive is configured (`settings.keepAliveDays`), tokens of the
   * current generation with a refresh token are stored and were obtained at least that long ago,
   * and no failed attempt of the current generation holds a back-off past `now`. One indexed query;
   * whoever acts on an id decides again under the refresh lock (another instance may be first).
   */
  listDueForKeepAlive(now: number, limit: number): Promise<string[]>;
}

export interface ConnectorRepository {
  insert(record: ConnectorRecord): Promise<void>;
  get(id: string): Promise<ConnectorRecord | null>;
  getByName(name: string): Promise<ConnectorRecord | null>;
  list(): Promise<ConnectorRecord[]>;
  listByAuthentication(authId: string): Promise<ConnectorRecord[]>;
  page(query: PageQuery & { authenticationId?: string | undefined }): Promise<ConnectorRecord[]>;
  /** The connectors using each of these authentications (id and authentication only), in one query. */
  usersOf(authIds: readonly string[]): Promise<{ id: string; authenticationId: string }[]>;
  update(record: ConnectorRecord): Promise<boolean>;
  /** Sets authenticationId to null on every connector using it; returns their ids. */
  detachAuthentication(authId: string): Promise<string[]>;
  delete(id: string): Promise<boolean>;
}

export interface TokenRepository {
  get(authId: string): Promise<TokenRecord | null>;
  /** Every token row, in one query (for listing authentications with their token metadata). */
  list(): Promise<TokenRecord[]>;
  /** The token rows of these authentications, in one query (a page of the list). */
  getMany(authIds: readonly string[]): Promise<TokenRecord[]>;
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
  /**
   * Removes the tokens; with `expected`, only while they are still those (what the caller found
   * refused), never newer ones another instance saved meanwhile. Versions start again at 1 after a
   * delete, so the time they were obtained tells two rows of the same version apart.
   */
  delete(authId: string, expected?: Pick<TokenRecord, 'version' | 'obtainedAt'>): Promise<void>;
}

/**
 * Failed token attempts, shared by every instance so that the whole cluster backs off together
 * (the Nango way: failures are stored, not kept in one process's memory). The writer holds the
 * authentication's refresh lock, and the rules below keep the count right even when it does not.
 */
export interface TokenFailureRepository {
  get(authId: string): Promise<TokenFailureRecord | null>;
  /**
   * Compare-and-swap: writes `write` only while the stored row is the one the caller read —
   * `expected` its generation and attempts, or null for "no row". Returns the new row, or null when
   * another instance recorded a failure first (the caller re-reads and counts on from there), or
   * when the authentication no longer exists. Two instances recording at once never lose a count.
   */
  compareAndSwap(
    authId: string,
    expected: { generation: number; attempts: number } | null,
    write: TokenFailureWrite,
  ): Promise<TokenFailureRecord | null>;
  /**
   * A token attempt of `generation` worked: forgets the failures of that generation and older ones.
   * A failure of a newer configuration, recorded meanwhile, stays. Without `generation` (a person
   * asked for a fresh start), forgets whatever is stored.
   */
  clear(authId: string, generation?: number): Promise<void>;
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

export interface ConnectLinkRepository {
  insert(record: ConnectLinkRecord): Promise<void>;
  /**
   * Marks the link used at `now` if it is unused and unexpired, in one statement: two browsers
   * opening the same link at once, on any instances, get `ok` exactly once. Otherwise says why not.
   */
  use(tokenHash: string, now: number): Promise<ConnectLinkUse>;
  /** Forgets links that expired before `before` (used or not). */
  deleteExpired(before: number): Promise<number>;
}

export interface WebhookRecord {
  id: string;
  url: string;
  /** The event types it is subscribed to. */
  events: string[];
  description: string | null;
  /** The signing secret (`whsec_…`), sealed for this row. */
  secret: Sealed;
  enabled: boolean;
  createdAt: number;
  updatedAt: number;
}

/** One event, stored once however many webhooks it goes to. */
export interface WebhookEventRecord {
  /**
   * Derived from what happened where several instances can see the same happening, so that
   * enqueueing it twice stores it once (see `WebhookDeliveryRepository.enqueue`).
   */
  id: string;
  type: string;
  /** The exact JSON body every delivery of this event sends (and signs): the same on every retry. */
  body: string;
  createdAt: number;
}

export type WebhookDeliveryState = 'pending' | 'delivered' | 'failed';

/** One event on its way to one webhook. Its id is the `webhook-id` header of every attempt. */
export interface WebhookDeliveryRecord {
  id: string;
  webhookId: string;
  eventId: string;
  eventType: string;
  state: WebhookDeliveryState;
  attempts: number;
  /** When a pending delivery is due; null once it is delivered or given up. */
  nextAttemptAt: number | null;
  /** The HTTP status of the last attempt, null when none came back. */
  lastResponseStatus: number | null;
  createdAt: number;
  updatedAt: number;
}

export interface WebhookAttemptRecord {
  /** 1 for the first attempt. */
  attempt: number;
  at: number;
  durationMs: number;
  responseStatus: number | null;
  /** null when the receiver answered 2xx; else why not (`http_status`, or an egress failure kind). */
  errorKind: string | null;
  /** A short sentence safe to show (host and what happened, never the receiver's body). */
  errorMessage: string | null;
}

export type WebhookDeliveryWithAttempts = WebhookDeliveryRecord & { attemptLog: WebhookAttemptRecord[] };

/** A delivery this instance now owns until its lease ends, with what it needs to send it. */
export interface ClaimedDelivery {
  delivery: WebhookDeliveryRecord;
  /** Proves ownership to `complete`: another claimer (after the lease ran out) gets another. */
  claimToken: string;
  url: string;
  secret: Sealed;
  body: string;
}

/** What the store knows about an authentication's need for a person, shared by every instance. */
export interface AttentionState {
  open: boolean;
  episode: number;
  /** Failed token attempts since the last success. */
  failures: number;
  firstFailureAt: number | null;
}

/** Every sealed value in the store, for `grantry keys rotate`. */
export interface SealedValueRef {
  table: 'authentications' | 'connectors' | 'tokens' | 'oauth_states' | 'webhooks';
  id: string;
  column: string;
  value: Sealed;
}

export interface WebhookRepository {
  insert(record: WebhookRecord): Promise<void>;
  get(id: string): Promise<WebhookRecord | null>;
  /** Every webhook, oldest first (then by id). */
  list(): Promise<WebhookRecord[]>;
  /** Replaces the whole record (by id). Returns false when it does not exist. */
  update(record: WebhookRecord): Promise<boolean>;
  /** Deletes the webhook with its deliveries and their attempts. */
  delete(id: string): Promise<boolean>;
}

export interface WebhookDeliveryRepository {
  /**
   * Stores `event` and one pending delivery per entry of `deliveries`, due at `event.createdAt`, in
   * one transaction. Idempotent by event id: an event already stored (another instance saw the same
   * happening first) adds no second delivery to a webhook that has one. Returns the ids of the
   * deliveries it created. Fails if a webhook does not exist (deleted meanwhile): list again and retry.
   */
  enqueue(
    event: WebhookEventRecord,
    deliveries: ReadonlyArray<{ id: string; webhookId: string }>,
  ): Promise<string[]>;
  /**
   * Claims up to `limit` due deliveries — pending, `nextAttemptAt <= now`, nobody's lease running,
   * webhook enabled — for `leaseMs`, in one statement: of several instances claiming at once, each
   * row goes to exactly one (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so claimers never wait on each
   * other; SQLite: one writer at a time). A claimer that dies leaves its lease to run out, after
   * which the delivery is claimed again (at least once, never lost).
   */
  claimDue(now: number, limit: number, leaseMs: number): Promise<ClaimedDelivery[]>;
  /**
   * Records one attempt and what follows it (`delivered`, `failed`, or `pending` again at
   * `nextAttemptAt`), and ends the lease — only while `claimToken` still owns the delivery. Returns
   * false (recording nothing) when it does not.
   */
  complete(
    deliveryId: string,
    claimToken: string,
    attempt: WebhookAttemptRecord,
    next: { state: WebhookDeliveryState; nextAttemptAt: number | null },
  ): Promise<boolean>;
  /** The webhook's newest `limit` deliveries, newest first, each with its attempts (oldest first). */
  listByWebhook(webhookId: string, limit: number): Promise<WebhookDeliveryWithAttempts[]>;
  /** Deletes finished deliveries last changed before `before`, and events no delivery refers to. */
  prune(before: number): Promise<number>;
}

/**
 * Whether an authentication needs a person, counted across every instance. Each transition is a
 * single conditional statement, so that of several instances reporting the same one, exactly one
 * is told it happened (and sends the event).
 */
export interface AttentionRepository {
  /** Counts one more failed token attempt; returns the state after it. */
  recordFailure(authId: string, at: number): Promise<AttentionState | null>;
  /** Opens attention if it is closed: the new episode number to exactly one caller, null to the others. */
  open(authId: string, at: number): Promise<number | null>;
  /**
   * Closes `episode` again when nobody could be told it opened (its event was not stored): the next
   * failure opens a new one, with an event of its own. Keeps the failure count.
   */
  abandon(authId: string, episode: number, at: number): Promise<void>;
  /**
   * A token attempt worked: resets the failure count, and closes attention if it is open —
   * returning the episode it closed to exactly one caller, null to the others.
   */
  recordSuccess(authId: string, at: number): Promise<number | null>;
  get(authId: string): Promise<AttentionState | null>;
}

export interface AuthLockOptions {
  /** Give up waiting for the lock after this many milliseconds (LockTimeoutError). Default: wait. */
  timeoutMs?: number | undefined;
}

export interface Store {
  readonly dialect: 'sqlite' | 'postgres';
  readonly authentications: AuthenticationRepository;
  readonly connectors: ConnectorRepository;
  readonly tokens: TokenRepository;
  readonly events: EventRepository;
  readonly apiKeys: ApiKeyRepository;
  readonly oauthStates: OAuthStateRepository;
  readonly connectLinks: ConnectLinkRepository;
  readonly webhooks: WebhookRepository;
  readonly webhookDeliveries: WebhookDeliveryRepository;
  readonly attention: AttentionRepository;
  readonly tokenFailures: TokenFailureRepository;

  /** Runs pending migrations (under a cross-instance lock where the engine has one). */
  migrate(): Promise<void>;
  /** True when the database answers a trivial query. */
  ping(): Promise<boolean>;

  /**
   * Runs `fn` while holding the refresh lock of one authentication, across every instance that
   * shares this store. SQLite: an in-process mutex (one process owns the file). PostgreSQL: a
   * session advisory lock on a dedicated connection, released if the process dies.
   * Returns how long the caller waited for the lock, with `fn`'s result.
   *
   * With `timeoutMs`, a caller that has not got the lock within that time stops waiting: `fn` does
   * not run and `LockTimeoutError` (lock-timeout.ts) is thrown — the same on both engines. A lock
   * holder that is stuck (a token endpoint that never answers) then cannot hold every other caller
   * forever; they re-read what is stored instead.
   */
  withAuthLock<T>(
    authId: string,
    fn: () => Promise<T>,
    options?: AuthLockOptions,
  ): Promise<{ value: T; waitedMs: number }>;

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
