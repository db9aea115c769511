import { setTimeout as sleep } from 'node:timers/promises';
import { EgressError } from '../egress/egress-error.js';
import { RETRYABLE_STATUSES } from '../egress/retry-after.js';
import {
  clientAuthCandidates,
  type DetectedRun,
  isClientAuthMethod,
  withClientAuthDetection,
} from '../oauth/client-auth-detection.js';
import type { ClientAuthMethod, DpopBinding } from '../oauth/client-config.js';
import { diagnose } from '../oauth/diagnosis.js';
import { type DpopNonces, isDpopTokenType } from '../oauth/dpop.js';
import { authorizationHeaderValue, isHeaderSafeValue } from '../oauth/header-value.js';
import { OAuthError } from '../oauth/oauth-error.js';
import { boundedExpiresAt, expiresAtFor } from '../oauth/token-lifetime.js';
import type { TokenSet } from '../oauth/token-set.js';
import { Problem, type ProblemBody } from '../problem.js';
import type { KeyRing } from '../secrets/key-ring.js';
import type {
  AuthenticationRecord,
  ChangeEvent,
  Store,
  TokenFailureRecord,
  TokenRecord,
  TokenWrite,
} from '../store/contract.js';
import { LockTimeoutError } from '../store/lock-timeout.js';
import { type AuthEventType, recordEvent } from './auth-events.js';
import { type ClientCertificate, clientCertificateOf, dpopBindingOf } from './authentication-keys.js';
import { failureBackoffMs } from './failure-backoff.js';
import { FetchDeadline } from './fetch-deadline.js';
import { type GrantContext, type GrantRun, runGrant } from './grant-runner.js';
import { oauthOf } from './oauth-settings.js';
import type { ProviderMetadata } from './provider-metadata.js';
import { refreshSchedule } from './refresh-schedule.js';
import { RefusedTokenBackoff, type RefusedTokenBackoffOptions } from './refused-token-backoff.js';
import { openAuthenticationSecrets, openKeySet, sealContext, sealOptional } from './sealed-columns.js';
import { type RefreshReason, shouldRefresh } from './should-refresh.js';

/** A usable access token, as the hot path hands it out. Never logged, never returned by the API. */
export interface CachedToken {
  readonly authId: string;
  /** The value of the `Authorization` header: `<headerPrefix> <token>`, or the bare token. */
  readonly authorization: string;
  /** The access token alone (to read a JWT's claims when an API refuses it). */
  readonly accessToken: string;
  readonly tokenType: string;
  readonly scope: string | null;
  readonly obtainedAt: number;
  readonly expiresAt: number | null;
  readonly refreshAt: number;
  readonly hardExpiresAt: number;
  readonly hasRefreshToken: boolean;
  /** The stored row's version: tells "the token I was given" from "a newer one". */
  readonly version: number;
  readonly generation: number;
  /** A DPoP-bound token (RFC 9449 §5: `token_type` DPoP): every call needs a proof with `ath`. */
  readonly dpop: boolean;
  /** The DPoP key and nonces a call's proof is made with, for a DPoP-bound token. */
  readonly dpopBinding?: DpopBinding;
  /**
   * The client certificate an API call presents, when the provider binds tokens to it
   * (`certificateBoundTokens`, RFC 8705 §3).
   */
  readonly clientCertificate?: ClientCertificate;
}

export type TokenSource = 'cache' | 'fetched' | 'refreshed';

export interface TokenResult {
  token: CachedToken;
  source: TokenSource;
}

export interface GetOptions {
  /** Skip the cache: the caller needs a token other than `rejected` (e.g. after a 401). */
  force?: boolean;
  /** The token the API refused; when the stored token is already another one, that one is used. */
  rejected?: CachedToken;
  /** Ignore the remembered failure (a person pressing Test wants a real attempt). */
  ignoreBackoff?: boolean;
}

/** An authentication's status or lastError was just stored by the token lifecycle. */
export interface StatusChange {
  authId: string;
  from: AuthenticationRecord['status'];
  to: AuthenticationRecord['status'];
  /** The problem now stored as lastError; null when the attempt worked. */
  problem: ProblemBody | null;
  /** True when an Authorization Code flow has just completed (`exchangeCode`). */
  authorized: boolean;
  /** True when the attempt was a background keep-alive refresh (nobody was calling). */
  keepAlive: boolean;
}

/** What one keep-alive of an authentication did (`TokenManager.keepAlive`). */
export type KeepAliveOutcome =
  | { outcome: 'refreshed' }
  | { outcome: 'not_due'; reason: RefreshReason | 'gone' }
  /** Another caller held the refresh lock past the acquisition timeout: it is refreshing already. */
  | { outcome: 'busy' }
  | { outcome: 'failed'; problem: Problem };

export interface TokenManagerOptions {
  store: Store;
  keyRing: KeyRing;
  fetch: typeof globalThis.fetch;
  /**
   * The deadline of one token fetch, everything it does under the refresh lock included: metadata
   * lookup, each request, retries, a second way of client authentication (fetch-deadline.ts).
   */
  tokenTimeoutMs: number;
  redirectUri: string;
  clock?: () => number;
  /** Pause lengths of `refusalBackoff` (defaults: one minute, doubling, up to ten). */
  refusalBackoff?: Omit<RefusedTokenBackoffOptions, 'clock'>;
  /** Told about each token request (with the grant it used) and lock wait (metrics). */
  observe?: (
    event:
      | { kind: 'token_request'; outcome: string; grant: GrantRun['kind'] }
      | { kind: 'lock_wait'; ms: number },
  ) => void;
  /** Told of every status change, behind the caller (webhooks listen here: see src/app.ts). */
  onStatusChange?: (change: StatusChange) => Promise<void>;
  /**
   * The provider metadata behind a token URL: for `clientAuthMethod: auto`, the methods the
   * provider lists decide before any guessing. Without it, auto guesses (Basic, then the body).
   */
  metadata?: Pick<ProviderMetadata, 'forTokenUrl'>;
  /** Where DPoP nonces are kept (RFC 9449 §8): shared with the calls to APIs. */
  dpopNonces?: DpopNonces;
  /**
   * A fetch that presents a client certificate in the TLS handshake (RFC 8705), for
   * authentications with mutual-TLS client authentication; without it, those cannot fetch tokens.
   */
  clientCertificateFetch?: (certificate: ClientCertificate) => typeof globalThis.fetch;
  /** An authentication's published JWKS URL, named by the diagnosis of a refused assertion. */
  jwksUriOf?: (authId: string) => string;
  /**
   * How long a caller waits for an authentication's refresh lock before it gives up and re-reads
   * the stored token instead (a holder stuck on a token endpoint that does not answer). Default 30 s.
   */
  lockTimeoutMs?: number;
}

/** A failure in force for an authentication: the cluster's back-off, as this process last saw it. */
interface Failure {
  problem: Problem;
  generation: number;
  until: number;
  attempts: number;
}

export const DEFAULT_LOCK_TIMEOUT_MS = 30_000;

/** Under the lock, a failure another instance recorded still holds: nothing was asked. */
class BackedOff extends Error {
  constructor(readonly failure: Failure) {
    super('backing off');
  }
}

/** Under the lock, the provider was asked and failed; the failure is already in the store. */
class RecordedFailure extends Error {
  constructor(readonly failure: Failure) {
    super('recorded failure');
  }
}

const RETRY_DELAYS_MS = [250, 1_000];
const MAX_RETRY_AFTER_MS = 10_000;

/**
 * Hands out valid access tokens, fetching them as rarely as possible.
 *
 * Order of coordination (as Nango does it): a memory cache (the hot path: no I/O); one in-flight
 * fetch per authentication per process (single-flight); then the store's cross-instance lock;
 * then a re-read of the stored token — another instance may have refreshed it meanwhile — and a
 * request to the provider only if it is still stale. Rotated refresh tokens are saved with
 * compare-and-swap so none is ever lost.
 *
 * Failures are the cluster's, not this process's (failure-backoff.ts): a failed attempt is stored
 * before the lock is released, and every instance reads it before it asks the provider, so the
 * whole cluster backs off together. A caller that waits for the lock longer than `lockTimeoutMs`
 * (its holder is stuck on a token endpoint) stops waiting and uses the stored token while it has
 * not expired, or says why there is none. `keepAlive` refreshes refresh tokens nobody uses before
 * the provider lets them lapse (keep-alive.ts schedules it).
 */
export class TokenManager {
  readonly #store: Store;
  readonly #ring: KeyRing;
  readonly #fetch: typeof globalThis.fetch;
  readonly #timeoutMs: number;
  readonly #redirectUri: string;
  readonly #clock: () => number;
  readonly #observe: NonNullable<TokenManagerOptions['observe']>;
  readonly #onStatusChange: NonNullable<TokenManagerOptions['onStatusChange']>;
  readonly #metadata: TokenManagerOptions['metadata'];
  readonly #dpopNonces: DpopNonces | undefined;
  readonly #clientCertificateFetch: TokenManagerOptions['clientCertificateFetch'];
  readonly #jwksUriOf: TokenManagerOptions['jwksUriOf'];
  readonly #lockTimeoutMs: number;
  readonly #cache = new Map<string, CachedToken>();
  readonly #inflight = new Map<string, Promise<TokenResult>>();
  /**
   * Counts, per authentication, what `forget` was told (a change, a delete); `#resyncs` counts missed
   * notices. A token fetched across one of them answers a configuration that may be gone: it is
   * not cached, and the flight starts over with the configuration as it is now.
   */
  readonly #epochs = new Map<string, number>();
  #resyncs = 0;
  /**
   * The failures in force, as this process last read or wrote them: a cache of the store's
   * (`tokenFailures`), so that calls during a back-off are answered without a query.
   */
  readonly #failures = new Map<string, Failure>();
  readonly #pending = new Set<Promise<void>>();
  readonly #unsubscribe: () => void;
  #cacheHits = 0;
  /**
   * Whether a 401 may still force a fresh token for an authentication (the connector engine asks
   * it); reset with everything else this manager holds for an authentication (`forget`).
   */
  readonly refusalBackoff: RefusedTokenBackoff;

  constructor(options: TokenManagerOptions) {
    this.#store = options.store;
    this.#ring = options.keyRing;
    this.#fetch = options.fetch;
    this.#timeoutMs = options.tokenTimeoutMs;
    this.#redirectUri = options.redirectUri;
    this.#clock = options.clock ?? Date.now;
    this.#observe = options.observe ?? (() => {});
    this.#onStatusChange = options.onStatusChange ?? (async () => {});
    this.#metadata = options.metadata;
    this.#dpopNonces = options.dpopNonces;
    this.#clientCertificateFetch = options.clientCertificateFetch;
    this.#jwksUriOf = options.jwksUriOf;
    this.#lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
    this.refusalBackoff = new RefusedTokenBackoff({ ...options.refusalBackoff, clock: this.#clock });
    this.#unsubscribe = this.#store.subscribe((event) => this.#onChange(event));
  }

  /**
   * The cached token when it is fresh, synchronously: the hot path, no I/O, no allocation.
   * Starts a background refresh when the token is in its refresh window.
   */
  peek(authId: string): CachedToken | undefined {
    const entry = this.#cache.get(authId);
    if (entry === undefined) return undefined;
    const now = this.#clock();
    if (now < entry.refreshAt) {
      this.#cacheHits++;
      return entry;
    }
    if (now < entry.hardExpiresAt) {
      this.#cacheHits++;
      this.#refreshInBackground(authId, entry);
      return entry;
    }
    return undefined;
  }

  /** Tokens handed out from memory so far: a plain number, read by the metrics on a scrape. */
  get cacheHits(): number {
    return this.#cacheHits;
  }

  async get(authId: string, options: GetOptions = {}): Promise<CachedToken> {
    if (options.force !== true) {
      const entry = this.peek(authId);
      if (entry !== undefined) return entry;
    }
    return (await this.acquire(authId, options)).token;
  }

  /** Like `get`, and says where the token came from (for the Test button). */
  async acquire(authId: string, options: GetOptions = {}): Promise<TokenResult> {
    if (options.force !== true) {
      const entry = this.peek(authId);
      if (entry !== undefined) return { token: entry, source: 'cache' };
    } else if (options.rejected !== undefined) {
      const entry = this.#cache.get(authId);
      // Someone already replaced the refused token (a concurrent 401 on this instance).
      if (
        entry !== undefined &&
        entry.version !== options.rejected.version &&
        this.#clock() < entry.hardExpiresAt
      ) {
        return { token: entry, source: 'cache' };
      }
    }
    // Single-flight: every caller for this authentication shares one fetch. A forced caller
    // joins a flight already under way, since that flight yields a token newer than its own.
    const running = this.#inflight.get(authId);
    if (running === undefined) return this.#startFlight(authId, options);
    const result = await running;
    // The flight joined was an ordinary one that re-used the very token this caller was refused.
    if (options.rejected !== undefined && result.token.version === options.rejected.version) {
      return this.#inflight.get(authId) ?? this.#startFlight(authId, options);
    }
    return result;
  }

  #startFlight(authId: string, options: GetOptions): Promise<TokenResult> {
    const flight = this.#flyUntilCurrent(authId, options).finally(() => {
      // `forget` may have let a newer flight take this one's place: that one stays.
      if (this.#inflight.get(authId) === flight) this.#inflight.delete(authId);
    });
    this.#inflight.set(authId, flight);
    return flight;
  }

  #epochOf(authId: string): string {
    return `${this.#resyncs}:${this.#epochs.get(authId) ?? 0}`;
  }

  /**
   * A flight whose authentication changed while its token was on its way starts over (at most
   * twice more): its token was fetched with a configuration that is gone (another client, scope,
   * audience or endpoint), and must not serve the calls made after the change.
   */
  async #flyUntilCurrent(authId: string, options: GetOptions): Promise<TokenResult> {
    for (let attempt = 0; ; attempt++) {
      const epoch = this.#epochOf(authId);
      const result = await this.#fly(authId, options, epoch);
      if (this.#epochOf(authId) === epoch || attempt === 2) return result;
    }
  }

  /** Caches a token unless the authentication changed since `epoch` (see `#epochs`). */
  #remember(authId: string, token: CachedToken, epoch: string): void {
    if (this.#epochOf(authId) === epoch) this.#cache.set(authId, token);
  }

  /** Drops the access token everywhere (keeps the refresh token): the next use refreshes. */
  async invalidate(authId: string): Promise<void> {
    this.#cache.delete(authId);
    this.#failures.delete(authId);
    this.refusalBackoff.forget(authId);
    // A person asked for a fresh start: the cluster's back-off ends too.
    await this.#store.tokenFailures.clear(authId);
    await this.#store.tokens.dropAccessToken(authId);
    await this.#event(authId, 'token_invalidated');
    await this.#store.publish({ kind: 'tokens_changed', authId });
  }

  /** Forgets everything held in memory for an authentication (configuration changed, deleted). */
  forget(authId: string): void {
    this.#epochs.set(authId, (this.#epochs.get(authId) ?? 0) + 1);
    this.#cache.delete(authId);
    // Callers from now on start a flight of their own: the one under way may be for the old configuration.
    this.#inflight.delete(authId);
    this.#failures.delete(authId);
    this.refusalBackoff.forget(authId);
  }

  /**
   * Completes the Authorization Code flow (RFC 6749 §4.1.3): exchanges the code and stores the
   * tokens, replacing whatever the authentication held before.
   */
  async exchangeCode(
    record: AuthenticationRecord,
    exchange: { code: string; codeVerifier: string | null; redirectUri: string },
  ): Promise<CachedToken> {
    const epoch = this.#epochOf(record.id);
    const secrets = openAuthenticationSecrets(this.#ring, record);
    const before = await this.#store.tokens.get(record.id);
    let obtained: Obtained;
    try {
      const deadline = new FetchDeadline(this.#timeoutMs);
      obtained = await this.#request(record, secrets, { kind: 'code', ...exchange }, before, deadline);
    } catch (error) {
      throw this.#diagnose(error, record, 'authorize');
    }
    const { tokenSet } = obtained;
    // No acquisition timeout: the code is spent, so these tokens must be saved whatever it takes.
    const { value } = await this.#store.withAuthLock(record.id, async () => {
      const row = await this.#store.tokens.get(record.id);
      const token = await this.#save(record, row, tokenSet, null, obtained.method);
      await this.#store.tokenFailures.clear(record.id, record.generation);
      return token;
    });
    this.#failures.delete(record.id);
    this.refusalBackoff.forget(record.id);
    this.#remember(record.id, value, epoch);
    await this.#setStatus(record, 'connected', null, { authorized: true });
    await this.#event(record.id, 'authorized', describeTokens(tokenSet));
    await this.#store.publish({ kind: 'tokens_changed', authId: record.id, version: value.version });
    return value;
  }

  /**
   * Keeps an authentication's refresh token alive (the keep-alive scheduler's one call): under the
   * refresh lock, re-reads the stored tokens and the shared failure, asks `shouldRefresh`, and
   * refreshes only when it says so — so of several instances finding the same authentication due,
   * the first refreshes and the others find it used recently. A failure is stored like any other
   * (the cluster backs off) and reported with `keepAlive`, which raises `needs_attention`.
   */
  async keepAlive(authId: string): Promise<KeepAliveOutcome> {
    const epoch = this.#epochOf(authId);
    const record = await this.#store.authentications.get(authId);
    if (record === null || record.type !== 'oauth2' || record.grantType === null) {
      return { outcome: 'not_due', reason: 'gone' };
    }
    try {
      const { value } = await this.#store.withAuthLock(authId, () => this.#keepAliveUnderLock(record), {
        timeoutMs: this.#lockTimeoutMs,
      });
      if (value.outcome === 'not_due') return value;
      this.#failures.delete(authId);
      this.#remember(authId, value.token, epoch);
      return { outcome: 'refreshed' };
    } catch (error) {
      if (error instanceof LockTimeoutError) return { outcome: 'busy' };
      if (error instanceof RecordedFailure) {
        await this.#reportFailure(record, error.failure, true);
        return { outcome: 'failed', problem: error.failure.problem };
      }
      const problem = ownProblem(error);
      // Grantry's own failure (its store): the provider is not to blame, and nobody backs off.
      if (problem.code === 'internal_error') return { outcome: 'failed', problem };
      await this.#reportFailure(record, await this.#storeFailure(record, problem), true);
      return { outcome: 'failed', problem };
    }
  }

  async #keepAliveUnderLock(
    record: AuthenticationRecord,
  ): Promise<{ outcome: 'refreshed'; token: CachedToken } | { outcome: 'not_due'; reason: RefreshReason }> {
    const [row, failure] = await Promise.all([
      this.#store.tokens.get(record.id),
      this.#store.tokenFailures.get(record.id),
    ]);
    const current = row !== null && row.generation === record.generation ? row : null;
    const days = record.settings.keepAliveDays;
    const decision = shouldRefresh(
      {
        tokens:
          current === null
            ? null
            : { obtainedAt: current.obtainedAt, hasRefreshToken: current.refreshToken !== null },
        keepAliveMs: typeof days === 'number' ? days * DAY_MS : null,
        failure: failure !== null && failure.generation === record.generation ? failure : null,
      },
      this.#clock(),
    );
    if (!decision.should) return { outcome: 'not_due', reason: decision.reason };
    const { token } = await this.#recordingFailures(record, () => this.#obtain(record, row, 'keep_alive'));
    return { outcome: 'refreshed', token };
  }

  async close(): Promise<void> {
    this.#unsubscribe();
    await this.settled();
  }

  #refreshInBackground(authId: string, entry: CachedToken): void {
    if (this.#inflight.has(authId)) return;
    // `rejected: entry`: if another instance already stored a newer token, that one is used.
    this.acquire(authId, { force: true, rejected: entry }).catch(() => {
      // Recorded as lastError and an event; callers still hold a token valid for a while.
    });
  }

  async #fly(authId: string, options: GetOptions, epoch: string): Promise<TokenResult> {
    const record = await this.#store.authentications.get(authId);
    if (record === null) throw new Problem('not_found', 'No such authentication.');
    oauthOf(record); // a static credential has no token to fetch: refused before any request
    if (options.ignoreBackoff !== true) {
      const failure = await this.#failureInForce(record);
      if (failure !== null) {
        // The back-off is from the provider, not from a token that still works: an instance that
        // has none in memory (new, restarted, just told of a change) uses the stored one meanwhile.
        const stored = this.#storedToken(record, await this.#store.tokens.get(authId), options, 'unexpired');
        if (stored === null) throw failure.problem;
        this.#remember(authId, stored, epoch);
        return { token: stored, source: 'cache' };
      }
    }
    try {
      // Another instance may already have stored a fresh token: use it without taking the lock.
      // (A forced call that names no refused token wants a new one whatever is stored.)
      if (options.force !== true || options.rejected !== undefined) {
        const stored = this.#storedToken(record, await this.#store.tokens.get(authId), options, 'fresh');
        if (stored !== null) {
          this.#remember(authId, stored, epoch);
          return { token: stored, source: 'cache' };
        }
      }
      const { value, waitedMs } = await this.#store.withAuthLock(
        authId,
        () => this.#recordingFailures(record, () => this.#underLock(record, options)),
        { timeoutMs: this.#lockTimeoutMs },
      );
      this.#observe({ kind: 'lock_wait', ms: waitedMs });
      this.#failures.delete(authId);
      this.#remember(authId, value.token, epoch);
      return value;
    } catch (error) {
      if (error instanceof LockTimeoutError) return this.#afterLockTimeout(record, options, error, epoch);
      if (error instanceof BackedOff) {
        this.#failures.set(authId, error.failure);
        throw error.failure.problem;
      }
      if (error instanceof RecordedFailure) {
        await this.#reportFailure(record, error.failure, false);
        throw error.failure.problem;
      }
      const problem = ownProblem(error);
      // Grantry's own failure (its store): the provider is not to blame, and nobody backs off.
      if (problem.code === 'internal_error') throw problem;
      await this.#reportFailure(record, await this.#storeFailure(record, problem), false);
      throw problem;
    }
  }

  /**
   * The failure in force for this configuration, if any: the one this process knows of, else the
   * one another instance stored (the store is the cluster's memory of failures).
   */
  async #failureInForce(record: AuthenticationRecord): Promise<Failure | null> {
    const now = this.#clock();
    const known = this.#failures.get(record.id);
    if (known !== undefined && known.generation === record.generation && now < known.until) return known;
    let stored: TokenFailureRecord | null;
    try {
      stored = await this.#store.tokenFailures.get(record.id);
    } catch {
      return null; // a store hiccup must not stop the attempt; the lock's re-read tries again
    }
    const failure = this.#failureOf(record, stored);
    if (failure === null) return null;
    this.#failures.set(record.id, failure);
    return failure;
  }

  /** A stored failure as it applies to this configuration now, or null when it does not. */
  #failureOf(record: AuthenticationRecord, stored: TokenFailureRecord | null): Failure | null {
    if (stored === null || stored.generation !== record.generation) return null;
    if (this.#clock() >= stored.nextAttemptAt) return null;
    return {
      problem: Problem.fromBody(stored.problem),
      generation: stored.generation,
      until: stored.nextAttemptAt,
      attempts: stored.attempts,
    };
  }

  /**
   * Runs a request to the provider under the lock, and stores its failure before the lock is
   * released: the next instance to get the lock then finds the back-off, instead of asking again.
   * Only the provider's failures are stored (`#request` words them as Problems); Grantry's own —
   * a store that cannot be read or written — are `internal_error`, and back nobody off.
   */
  async #recordingFailures<T>(record: AuthenticationRecord, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof BackedOff) throw error;
      const problem = ownProblem(error);
      if (problem.code === 'not_found' || problem.code === 'internal_error') throw problem;
      throw new RecordedFailure(await this.#storeFailure(record, problem));
    }
  }

  /**
   * The refresh lock was not free within the acquisition timeout: its holder is stuck (or slow). The
   * stored token is read again and used while it has not expired, even in its refresh window — the
   * holder is refreshing it; otherwise the caller hears why there is no token instead of waiting on.
   */
  async #afterLockTimeout(
    record: AuthenticationRecord,
    options: GetOptions,
    timeout: LockTimeoutError,
    epoch: string,
  ): Promise<TokenResult> {
    const row = await this.#store.tokens.get(record.id);
    const token = this.#storedToken(record, row, options, 'unexpired');
    if (token !== null) {
      this.#remember(record.id, token, epoch);
      return { token, source: 'cache' };
    }
    const seconds = Math.round(timeout.timeoutMs / 100) / 10;
    throw new Problem(
      'refresh_lock_timeout',
      `Another caller has been fetching this authentication's token for more than ${seconds} s, and no unexpired token is stored.`,
      {
        hint: 'The instance holding the refresh is probably waiting on a token endpoint that answers slowly or not at all (a fetch gives up after GRANTRY_TOKEN_TIMEOUT_MS): try again shortly; if it persists, check the token endpoint and the instances’ logs.',
      },
    );
  }

  /**
   * The stored token when it may serve this caller: of the current configuration, one a header can
   * carry, and not the one the caller was refused with (after a 401). How long it serves:
   * - `fresh`: until its refresh window; a forced call that names no refused token wants a new
   *   one whatever is stored, and gets none here;
   * - `unexpired`: until it (nearly) expires, refresh window or not — while the provider is backed
   *   off from, or the lock's holder is refreshing it.
   */
  #storedToken(
    record: AuthenticationRecord,
    row: TokenRecord | null,
    options: GetOptions,
    serves: 'fresh' | 'unexpired',
  ): CachedToken | null {
    if (row === null || row.generation !== record.generation || row.accessToken === null) return null;
    const refused =
      options.rejected !== undefined
        ? options.rejected.version === row.version
        : serves === 'fresh' && options.force === true;
    if (refused) return null;
    const accessToken = this.#ring.open(row.accessToken, sealContext.accessToken(record.id));
    // Stored before the parser refused such tokens: fetch a new one instead of failing every call.
    if (!isHeaderSafeValue(accessToken)) return null;
    const token = this.#toCached(record, row, accessToken);
    return this.#clock() < (serves === 'fresh' ? token.refreshAt : token.hardExpiresAt) ? token : null;
  }

  /** Runs with the cross-instance lock held: re-read, and fetch only if still stale. */
  async #underLock(record: AuthenticationRecord, options: GetOptions): Promise<TokenResult> {
    const row = await this.#store.tokens.get(record.id);
    const usable = this.#storedToken(record, row, options, 'fresh');
    if (usable !== null) return { token: usable, source: 'cache' };
    if (options.ignoreBackoff !== true) {
      // Another instance may have failed while this one waited for the lock: its back-off holds here.
      const failure = this.#failureOf(record, await this.#store.tokenFailures.get(record.id));
      if (failure !== null) throw new BackedOff(failure);
    }
    return this.#obtain(record, row, 'call');
  }

  /**
   * New tokens, under the lock: a refresh with the stored refresh token, or — without one, or
   * after the provider refused it — the grant itself (a person, for Authorization Code).
   */
  async #obtain(
    record: AuthenticationRecord,
    row: TokenRecord | null,
    trigger: 'call' | 'keep_alive',
  ): Promise<TokenResult> {
    const current = row !== null && row.generation === record.generation ? row : null;
    const secrets = openAuthenticationSecrets(this.#ring, record);
    // One deadline for the refresh, and the original grant after a refused one (fetch-deadline.ts).
    const deadline = new FetchDeadline(this.#timeoutMs);
    const refreshToken =
      current?.refreshToken != null
        ? this.#ring.open(current.refreshToken, sealContext.refreshToken(record.id))
        : null;

    if (refreshToken !== null) {
      let refreshed: Obtained | null = null;
      try {
        refreshed = await this.#request(record, secrets, { kind: 'refresh', refreshToken }, row, deadline);
      } catch (error) {
        // Only the provider's answer is judged here: saving what it issued is outside this try, so
        // a store failure is not taken for a refused refresh token (nor for the provider's fault).
        const problem = ownProblem(error);
        if (problem.code !== 'invalid_grant') throw problem;
        if (record.grantType === 'authorization_code') {
          throw await this.#needsAuthorization(record, problem, row);
        }
        // Password and client credentials can start over without a person: the refresh token
        // is dead (revoked, expired, rotated away), the original grant still works.
        await this.#event(record.id, 'token_failed', {
          code: problem.code,
          step: 'refresh',
          message: 'The refresh token was refused; fetching a new token with the original grant.',
        });
      }
      if (refreshed !== null) {
        const token = await this.#save(record, row, refreshed.tokenSet, refreshToken, refreshed.method);
        await this.#succeeded(record, 'token_refreshed', refreshed.tokenSet, token, trigger);
        return { token, source: 'refreshed' };
      }
    }
    if (record.grantType === 'authorization_code') {
      throw await this.#needsAuthorization(record, null);
    }
    const { tokenSet, method } = await this.#request(record, secrets, { kind: 'initial' }, row, deadline);
    const token = await this.#save(record, row, tokenSet, null, method);
    await this.#succeeded(record, 'token_fetched', tokenSet, token, trigger);
    return { token, source: 'fetched' };
  }

  /**
   * One token request: with `clientAuthMethod: auto`, sent the way detection says (one retry the
   * other way on a refused client), the way that worked recorded as `client_auth_detected` when it
   * is new. Returns the method to store with the tokens (null unless auto). Every failure it throws
   * is a diagnosed Problem about the provider (or the way to it).
   */
  async #request(
    record: AuthenticationRecord,
    secrets: ReturnType<typeof openAuthenticationSecrets>,
    run: GrantRun,
    row: TokenRecord | null,
    deadline: FetchDeadline,
  ): Promise<Obtained> {
    const auto = oauthOf(record).settings.clientAuthMethod === 'auto';
    const detected =
      auto && row !== null && row.generation === record.generation && isClientAuthMethod(row.clientAuthMethod)
        ? row.clientAuthMethod
        : null;
    let result: DetectedRun<TokenSet>;
    try {
      const candidates = await this.#clientAuthCandidates(record, detected, deadline);
      result = await withClientAuthDetection(candidates, (method) =>
        this.#requestWithRetries(record, secrets, run, method, deadline),
      );
    } catch (error) {
      // Worded here, where it is known to come from the request: callers tell it from their own failures.
      throw this.#asProblem(error, record, STEP_OF_RUN[run.kind]);
    }
    if (!auto) return { tokenSet: result.value, method: null };
    if (result.method !== detected) {
      this.#behind(() =>
        this.#event(record.id, 'client_auth_detected', {
          clientAuthMethod: result.method,
          tried: result.tried,
          ...(detected === null ? {} : { previous: detected }),
        }),
      );
    }
    return { tokenSet: result.value, method: result.method };
  }

  /** The ways to send the client secret, in order (client-auth-detection.ts). */
  async #clientAuthCandidates(
    record: AuthenticationRecord,
    detected: ClientAuthMethod | null,
    deadline: FetchDeadline,
  ): Promise<ClientAuthMethod[]> {
    const { settings } = oauthOf(record);
    if (settings.clientAuthMethod !== 'auto' || detected !== null || this.#metadata === undefined) {
      return clientAuthCandidates(settings.clientAuthMethod, detected, null);
    }
    // Only until a method is detected: the metadata is cached per token URL, and never throws. It
    // gets half the time left at most, so a provider whose metadata hangs still gets the token
    // request (Basic, then the body, guessed as without metadata).
    const metadata = await deadline.within(this.#metadata.forTokenUrl(settings.tokenUrl), null, 0.5);
    return clientAuthCandidates('auto', null, metadata?.clientAuthMethods ?? null);
  }

  async #requestWithRetries(
    record: AuthenticationRecord,
    secrets: ReturnType<typeof openAuthenticationSecrets>,
    run: GrantRun,
    method: ClientAuthMethod,
    deadline: FetchDeadline,
  ): Promise<TokenSet> {
    for (let attempt = 0; ; attempt++) {
      try {
        const tokenSet = await runGrant(
          record,
          secrets,
          run,
          this.#requestOptionsFor(secrets, method, deadline),
          method,
          this.#grantContext(record, deadline),
        );
        this.#observe({ kind: 'token_request', outcome: 'success', grant: run.kind });
        return tokenSet;
      } catch (error) {
        this.#observe({ kind: 'token_request', outcome: 'failure', grant: run.kind });
        // A code is single-use: a provider that failed after redeeming it would refuse it again.
        const delay = run.kind === 'code' ? undefined : RETRY_DELAYS_MS[attempt];
        const wait = retryDelay(error, delay);
        // A retry that could not be answered before the deadline is not worth holding the lock for.
        if (wait === null || !deadline.allows(wait)) throw error;
        await sleep(wait);
      }
    }
  }

  /**
   * Saves new tokens with compare-and-swap. Under the lock the swap only fails when something
   * that takes no lock wrote in between (an invalidation): re-read and swap again, since the
   * provider may already have rotated the refresh token and the new one must not be lost.
   */
  async #save(
    record: AuthenticationRecord,
    row: TokenRecord | null,
    tokenSet: TokenSet,
    usedRefreshToken: string | null,
    clientAuthMethod: ClientAuthMethod | null,
  ): Promise<CachedToken> {
    const now = this.#clock();
    // Google and others answer a refresh without a new refresh token: keep the one we have.
    const refreshToken = tokenSet.refreshToken ?? usedRefreshToken;
    const write: TokenWrite = {
      accessToken: this.#ring.seal(tokenSet.accessToken, sealContext.accessToken(record.id)),
      tokenType: tokenSet.tokenType,
      scope: tokenSet.scope ?? record.settings.scope ?? null,
      obtainedAt: now,
      expiresAt: expiresAtFor(now, tokenSet.expiresIn),
      refreshToken: sealOptional(this.#ring, refreshToken, sealContext.refreshToken(record.id)),
      generation: record.generation,
      clientAuthMethod,
    };
    let expected = row?.version ?? null;
    for (let attempt = 0; attempt < 5; attempt++) {
      const saved = await this.#store.tokens.compareAndSwap(record.id, expected, write);
      if (saved !== null) return this.#toCached(record, saved, tokenSet.accessToken);
      const latest = await this.#store.tokens.get(record.id);
      expected = latest?.version ?? null;
    }
    throw new Problem('internal_error', 'Could not save the new tokens: the store kept changing underneath.');
  }

  async #succeeded(
    record: AuthenticationRecord,
    type: 'token_fetched' | 'token_refreshed',
    tokenSet: TokenSet,
    token: CachedToken,
    trigger: 'call' | 'keep_alive',
  ): Promise<void> {
    // Still under the lock: the next instance to take it must not find the old back-off.
    await this.#store.tokenFailures.clear(record.id, record.generation);
    const status = record.grantType === 'authorization_code' ? 'connected' : 'ready';
    if (record.status !== status || record.lastError !== null) {
      await this.#setStatus(record, status, null, { keepAlive: trigger === 'keep_alive' });
    }
    // The timeline entry and the change notice need not hold the lock nor the callers waiting
    // for the token: they are written behind (see `settled`).
    this.#behind(async () => {
      await this.#store.publish({ kind: 'tokens_changed', authId: record.id, version: token.version });
      const detail = describeTokens(tokenSet);
      if (trigger === 'keep_alive') {
        const eventType = type === 'token_refreshed' ? 'keep_alive_refreshed' : type;
        await this.#event(record.id, eventType, { ...detail, keepAlive: true });
      } else {
        await this.#event(record.id, type, detail);
      }
    });
  }

  async #setStatus(
    record: AuthenticationRecord,
    to: StatusChange['to'],
    problem: ProblemBody | null,
    flags: { authorized?: boolean; keepAlive?: boolean } = {},
  ): Promise<void> {
    await this.#store.authentications.setStatus(record.id, to, problem);
    const change: StatusChange = {
      authId: record.id,
      from: record.status,
      to,
      problem,
      authorized: flags.authorized === true,
      keepAlive: flags.keepAlive === true,
    };
    this.#behind(() => this.#onStatusChange(change));
  }

  /**
   * Runs a write after the caller has its token; failures are only logged by the caller of
   * `settled`. It starts on the next turn of the event loop, not at once: the store's queries run
   * one at a time (SQLite: one connection, synchronous), so a write started now would hold up
   * whatever the caller does next — typically the next store read — while started later it runs
   * in the time the process waits on the network anyway.
   */
  #behind(write: () => Promise<void>): void {
    const pending = new Promise<void>((resolve) => setImmediate(resolve))
      .then(write)
      .catch(() => {
        // A lost timeline entry is not worth failing a call for (the authentication was deleted).
      })
      .finally(() => this.#pending.delete(pending));
    this.#pending.add(pending);
  }

  /** Appends to the authentication's timeline at this manager's time (its clock, not the wall's). */
  #event(authId: string, type: AuthEventType, detail: Record<string, unknown> = {}): Promise<void> {
    return recordEvent(this.#store, authId, type, detail, this.#clock());
  }

  /** Resolves when every write made behind a token fetch has landed (the event timeline reads this). */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  async #needsAuthorization(
    record: AuthenticationRecord,
    cause: Problem | null,
    refused: TokenRecord | null = null,
  ): Promise<Problem> {
    const problem = new Problem(
      'needs_authorization',
      cause === null
        ? 'This authentication is not connected yet: a person must grant access at the provider.'
        : 'The provider no longer accepts the refresh token: a person must connect this authentication again.',
      {
        hint: 'Open the authentication in Grantry and press Connect, then sign in and consent at the provider.',
        provider: cause?.provider,
      },
    );
    if (cause !== null) {
      // Only the tokens that were refused: if the lock was lost meanwhile (a dropped database
      // session), tokens another instance saved since are newer and stay.
      await this.#store.tokens.delete(record.id, refused ?? undefined);
      await this.#event(record.id, 'needs_authorization', {
        code: cause.code,
        message: cause.message,
      });
      await this.#store.publish({ kind: 'tokens_changed', authId: record.id });
    }
    await this.#setStatus(record, 'needs_authorization', problem.toJSON());
    return problem;
  }

  /**
   * Stores one more failed attempt for the cluster (compare-and-swap on the count, so attempts from
   * several instances each count once), with the time before which nobody asks the provider again.
   * A store that cannot be written still leaves this process backing off.
   */
  async #storeFailure(record: AuthenticationRecord, problem: Problem): Promise<Failure> {
    const now = this.#clock();
    const known = this.#failures.get(record.id);
    let attempts = known !== undefined && known.generation === record.generation ? known.attempts + 1 : 1;
    if (problem.code !== 'not_found') {
      try {
        for (let round = 0; round < 5; round++) {
          const current = await this.#store.tokenFailures.get(record.id);
          attempts = current !== null && current.generation === record.generation ? current.attempts + 1 : 1;
          const saved = await this.#store.tokenFailures.compareAndSwap(
            record.id,
            current === null ? null : { generation: current.generation, attempts: current.attempts },
            {
              generation: record.generation,
              problem: problem.toJSON(),
              attempts,
              nextAttemptAt: now + failureBackoffMs(problem.code, attempts),
              updatedAt: now,
            },
          );
          if (saved !== null) break;
        }
      } catch {
        // Kept in this process only, until the store answers again.
      }
    }
    const failure: Failure = {
      problem,
      generation: record.generation,
      until: now + failureBackoffMs(problem.code, attempts),
      attempts,
    };
    this.#failures.set(record.id, failure);
    return failure;
  }

  /** Tells the failure: lastError and status, the timeline, and the status hook (webhooks). */
  async #reportFailure(record: AuthenticationRecord, failure: Failure, keepAlive: boolean): Promise<void> {
    const { problem } = failure;
    this.#failures.set(record.id, failure);
    if (problem.code === 'not_found' || problem.code === 'needs_authorization') return;
    const status = record.grantType === 'authorization_code' ? record.status : 'error';
    await this.#setStatus(record, status, problem.toJSON(), { keepAlive }).catch(() => {});
    await this.#event(record.id, keepAlive ? 'keep_alive_failed' : 'token_failed', {
      code: problem.code,
      message: problem.message,
      attempts: failure.attempts,
      nextAttemptAt: new Date(failure.until).toISOString(),
      ...(problem.provider?.status !== undefined ? { providerStatus: problem.provider.status } : {}),
    }).catch(() => {});
  }

  #asProblem(error: unknown, record: AuthenticationRecord, step: 'token' | 'refresh' | 'authorize'): Problem {
    // Under auto, the request's own diagnosis knew one method; worded again, it knows what was tried.
    if (error instanceof OAuthError && record.settings.clientAuthMethod === 'auto') {
      return this.#diagnose(error, record, step);
    }
    return error instanceof Problem ? error : this.#diagnose(error, record, step);
  }

  #diagnose(error: unknown, record: AuthenticationRecord, step: 'token' | 'refresh' | 'authorize'): Problem {
    return diagnose(error, {
      tokenUrl: record.settings.tokenUrl,
      redirectUri: this.#redirectUri,
      clientAuthMethod: record.settings.clientAuthMethod,
      grantType: record.grantType ?? undefined,
      ...(record.settings.scope !== undefined ? { scope: record.settings.scope } : {}),
      ...(record.settings.audience !== undefined ? { audience: record.settings.audience } : {}),
      // Which parameter carried the audience: the advice differs for `resource` (RFC 8707).
      audienceParam: record.settings.audienceParam ?? 'audience',
      step,
    });
  }

  /**
   * The request options of one token request: the time left before the fetch's deadline, and with
   * mutual-TLS client authentication, a fetch that presents the authentication's certificate — to
   * the token endpoint only (RFC 8705 §2; the API gets it only when tokens are bound to it, which
   * the connector engine decides).
   */
  #requestOptionsFor(
    secrets: ReturnType<typeof openAuthenticationSecrets>,
    method: ClientAuthMethod,
    deadline: FetchDeadline,
  ) {
    const timeoutMs = deadline.remainingMs();
    if (method !== 'tls_client_auth' && method !== 'self_signed_tls_client_auth')
      return { fetch: this.#fetch, timeoutMs };
    const certificate = clientCertificateOf(secrets.keys);
    if (certificate === null || this.#clientCertificateFetch === undefined) {
      throw new Problem(
        'token_fetch_failed',
        'Mutual TLS needs a client certificate, and none is available.',
        {
          hint: 'Give privateKey and certificate, or set generateKey (self_signed_tls_client_auth).',
        },
      );
    }
    return { fetch: this.#clientCertificateFetch(certificate), timeoutMs };
  }

  /** What a token request of this authentication needs for keys: DPoP nonces, metadata, the JWKS URL. */
  #grantContext(record: AuthenticationRecord, deadline: FetchDeadline): GrantContext {
    const metadata = this.#metadata;
    const tokenUrl = record.settings.tokenUrl ?? '';
    return {
      dpopNonces: this.#dpopNonces,
      metadata:
        metadata === undefined
          ? undefined
          : async () => {
              // Looked up to explain a refusal, within what is left of the fetch's time.
              const found = await deadline.within(metadata.forTokenUrl(tokenUrl), null);
              return found === null
                ? null
                : { issuer: found.issuer, clientAssertionAlgs: found.clientAssertionAlgs };
            },
      jwksUri: record.settings.publishJwks === true ? (this.#jwksUriOf?.(record.id) ?? null) : null,
    };
  }

  #toCached(record: AuthenticationRecord, row: TokenRecord, plain?: string): CachedToken {
    const accessToken = plain ?? this.#ring.open(row.accessToken ?? '', sealContext.accessToken(record.id));
    // Rows written before lifetimes were clamped may hold an expiry past the end of dates.
    const expiresAt = boundedExpiresAt(row.obtainedAt, row.expiresAt);
    const schedule =
      expiresAt === null
        ? { refreshAt: Number.POSITIVE_INFINITY, hardExpiresAt: Number.POSITIVE_INFINITY }
        : refreshSchedule(row.obtainedAt, expiresAt);
    const dpop = isDpopTokenType(row.tokenType);
    const binding = this.#callBinding(record, dpop);
    return {
      ...binding,
      authId: record.id,
      // RFC 9449 §7.1: a DPoP-bound token goes with the DPoP scheme, whatever prefix is configured.
      authorization: authorizationHeaderValue(
        isDpopTokenType(row.tokenType) ? 'DPoP' : (record.settings.headerPrefix ?? 'Bearer'),
        accessToken,
      ),
      accessToken,
      tokenType: row.tokenType ?? 'Bearer',
      scope: row.scope,
      obtainedAt: row.obtainedAt,
      expiresAt,
      refreshAt: schedule.refreshAt,
      hardExpiresAt: schedule.hardExpiresAt,
      hasRefreshToken: row.refreshToken !== null,
      version: row.version,
      generation: row.generation,
      dpop,
    };
  }

  /**
   * What calls with a token of this authentication need besides the token: the DPoP key (a bound
   * token), the client certificate (tokens bound to it). Opened here, once per token, not per call.
   */
  #callBinding(
    record: AuthenticationRecord,
    dpop: boolean,
  ): { dpopBinding?: DpopBinding; clientCertificate?: ClientCertificate } {
    const settings = record.settings;
    const certificateBound =
      settings.certificateBoundTokens === true &&
      (settings.clientAuthMethod === 'tls_client_auth' ||
        settings.clientAuthMethod === 'self_signed_tls_client_auth');
    if (!(dpop && this.#dpopNonces !== undefined) && !certificateBound) return {};
    const keys = openKeySet(this.#ring, record);
    const binding: { dpopBinding?: DpopBinding; clientCertificate?: ClientCertificate } = {};
    if (dpop && this.#dpopNonces !== undefined) {
      const found = dpopBindingOf(keys, this.#dpopNonces);
      if (found !== undefined) binding.dpopBinding = found;
    }
    if (certificateBound) {
      const certificate = clientCertificateOf(keys);
      if (certificate !== null) binding.clientCertificate = certificate;
    }
    return binding;
  }

  #onChange(event: ChangeEvent): void {
    switch (event.kind) {
      case 'authentication_changed':
      case 'authentication_deleted':
        this.forget(event.authId);
        return;
      case 'resync':
        // Notices may have been missed, configuration changes among them.
        this.#resyncs += 1;
        this.#cache.clear();
        this.#inflight.clear();
        this.#failures.clear();
        this.refusalBackoff.clear();
        return;
      case 'tokens_changed': {
        // Someone got (or dropped) tokens: what this process remembers of a failure may be over.
        this.#failures.delete(event.authId);
        const entry = this.#cache.get(event.authId);
        if (entry !== undefined && (event.version === undefined || entry.version !== event.version)) {
          this.#cache.delete(event.authId);
        }
        return;
      }
      default:
        return;
    }
  }
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** The diagnosis step of each kind of token request. */
const STEP_OF_RUN = { initial: 'token', refresh: 'refresh', code: 'authorize' } as const;

/**
 * A failure of the token lifecycle as a Problem. The provider's failures already are (see
 * `#request`); anything else was Grantry's own — a store that could not be read or written after
 * the provider answered, say — and is `internal_error`: not the provider's fault, no back-off.
 */
function ownProblem(error: unknown): Problem {
  if (error instanceof Problem) return error;
  return new Problem(
    'internal_error',
    'Grantry could not finish getting a token: a step inside Grantry failed (its database, most likely), not the provider.',
    { hint: "Check Grantry's log and its database; the next call tries again.", cause: error },
  );
}

/** What a token request obtained, and how the client authenticated (under `auto`; else null). */
interface Obtained {
  tokenSet: TokenSet;
  method: ClientAuthMethod | null;
}

function describeTokens(tokenSet: TokenSet): Record<string, unknown> {
  return {
    tokenType: tokenSet.tokenType,
    scope: tokenSet.scope,
    expiresIn: tokenSet.expiresIn,
    refreshTokenIssued: tokenSet.refreshToken !== null,
  };
}

/**
 * How long to wait before retrying a token request, or null when it must not be retried:
 * network failures that may pass, 429 and 5xx — never an OAuth error a retry cannot fix. A
 * provider's Retry-After is honoured up to MAX_RETRY_AFTER_MS; a longer wait is not worth holding
 * the callers, so the failure is reported (and backed off) instead.
 */
function retryDelay(error: unknown, delay: number | undefined): number | null {
  if (delay === undefined) return null;
  const egress = error instanceof EgressError ? error : error instanceof Error ? error.cause : undefined;
  if (egress instanceof EgressError) {
    return egress.kind === 'refused' || egress.kind === 'reset' || egress.kind === 'unreachable'
      ? delay
      : null;
  }
  if (error instanceof Problem && error.code === 'token_fetch_failed') {
    const status = error.provider?.status;
    if (status === undefined || !RETRYABLE_STATUSES.has(status)) return null;
    const retryAfter = error instanceof OAuthError ? error.facts.retryAfterSeconds : undefined;
    if (retryAfter === undefined) return delay;
    const wait = retryAfter * 1000;
    return wait > MAX_RETRY_AFTER_MS ? null : Math.max(delay, wait);
  }
  return null;
}
