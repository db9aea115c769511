import { setTimeout as sleep } from 'node:timers/promises';
import { EgressError } from '../egress/egress-error.js';
import { RETRYABLE_STATUSES } from '../egress/retry-after.js';
import { diagnose } from '../oauth/diagnosis.js';
import { authorizationHeaderValue, isHeaderSafeValue } from '../oauth/header-value.js';
import { OAuthError } from '../oauth/oauth-error.js';
import { boundedExpiresAt, expiresAtFor } from '../oauth/token-lifetime.js';
import type { TokenSet } from '../oauth/token-set.js';
import { Problem } from '../problem.js';
import type { KeyRing } from '../secrets/key-ring.js';
import type { AuthenticationRecord, ChangeEvent, Store, TokenRecord, TokenWrite } from '../store/contract.js';
import { recordEvent } from './auth-events.js';
import { type GrantRun, runGrant } from './grant-runner.js';
import { refreshSchedule } from './refresh-schedule.js';
import { RefusedTokenBackoff, type RefusedTokenBackoffOptions } from './refused-token-backoff.js';
import { openAuthenticationSecrets, sealContext, sealOptional } from './sealed-columns.js';

/** A usable access token, as the hot path hands it out. Never logged, never returned by the API. */
export interface CachedToken {
  readonly authId: string;
  /** The value of the `Authorization` header: `<headerPrefix> <token>`, or the bare token. */
  readonly authorization: string;
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

export interface TokenManagerOptions {
  store: Store;
  keyRing: KeyRing;
  fetch: typeof globalThis.fetch;
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
}

interface Failure {
  problem: Problem;
  generation: number;
  until: number;
  attempts: number;
}

/** OAuth errors a retry cannot fix (RFC 6749 §5.2): never retried, backed off longer. */
const PERMANENT = new Set([
  'invalid_client',
  'invalid_grant',
  'invalid_scope',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_request',
  'invalid_target',
  'invalid_redirect_uri',
  'egress_denied',
  'insecure_url',
  'needs_authorization',
  'wrong_master_key',
]);

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
 */
export class TokenManager {
  readonly #store: Store;
  readonly #ring: KeyRing;
  readonly #fetch: typeof globalThis.fetch;
  readonly #timeoutMs: number;
  readonly #redirectUri: string;
  readonly #clock: () => number;
  readonly #observe: NonNullable<TokenManagerOptions['observe']>;
  readonly #cache = new Map<string, CachedToken>();
  readonly #inflight = new Map<string, Promise<TokenResult>>();
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
    const flight = this.#fly(authId, options).finally(() => this.#inflight.delete(authId));
    this.#inflight.set(authId, flight);
    return flight;
  }

  /** Drops the access token everywhere (keeps the refresh token): the next use refreshes. */
  async invalidate(authId: string): Promise<void> {
    this.#cache.delete(authId);
    this.#failures.delete(authId);
    this.refusalBackoff.forget(authId);
    await this.#store.tokens.dropAccessToken(authId);
    await recordEvent(this.#store, authId, 'token_invalidated', {}, this.#clock());
    await this.#store.publish({ kind: 'tokens_changed', authId });
  }

  /** Forgets everything held in memory for an authentication (configuration changed, deleted). */
  forget(authId: string): void {
    this.#cache.delete(authId);
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
    const secrets = openAuthenticationSecrets(this.#ring, record);
    let tokenSet: TokenSet;
    try {
      tokenSet = await runGrant(record, secrets, { kind: 'code', ...exchange }, this.#requestOptions());
      this.#observe({ kind: 'token_request', outcome: 'success', grant: 'code' });
    } catch (error) {
      this.#observe({ kind: 'token_request', outcome: 'failure', grant: 'code' });
      throw this.#diagnose(error, record, 'authorize');
    }
    const { value } = await this.#store.withAuthLock(record.id, async () => {
      const row = await this.#store.tokens.get(record.id);
      return this.#save(record, row, tokenSet, null);
    });
    this.#failures.delete(record.id);
    this.refusalBackoff.forget(record.id);
    this.#cache.set(record.id, value);
    await this.#store.authentications.setStatus(record.id, 'connected', null);
    await recordEvent(this.#store, record.id, 'authorized', describeTokens(tokenSet), this.#clock());
    await this.#store.publish({ kind: 'tokens_changed', authId: record.id, version: value.version });
    return value;
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

  async #fly(authId: string, options: GetOptions): Promise<TokenResult> {
    const record = await this.#store.authentications.get(authId);
    if (record === null) throw new Problem('not_found', 'No such authentication.');
    const now = this.#clock();
    const failure = this.#failures.get(authId);
    if (
      failure !== undefined &&
      failure.generation === record.generation &&
      now < failure.until &&
      options.ignoreBackoff !== true
    ) {
      throw failure.problem;
    }
    try {
      // Another instance may already have stored a fresh token: use it without taking the lock.
      // (A forced call that names no refused token wants a new one whatever is stored.)
      if (options.force !== true || options.rejected !== undefined) {
        const stored = this.#usableStored(record, await this.#store.tokens.get(authId), options);
        if (stored !== null) {
          this.#cache.set(authId, stored);
          return { token: stored, source: 'cache' };
        }
      }
      const { value, waitedMs } = await this.#store.withAuthLock(authId, () =>
        this.#underLock(record, options),
      );
      this.#observe({ kind: 'lock_wait', ms: waitedMs });
      this.#failures.delete(authId);
      this.#cache.set(authId, value.token);
      return value;
    } catch (error) {
      const problem = error instanceof Problem ? error : this.#diagnose(error, record, 'token');
      await this.#remember(record, problem);
      throw problem;
    }
  }

  /**
   * The stored token when it can be used as it is: of the current configuration, fresh, and not
   * the one the caller was refused with (after a 401).
   */
  #usableStored(
    record: AuthenticationRecord,
    row: TokenRecord | null,
    options: GetOptions,
  ): CachedToken | null {
    if (row === null || row.generation !== record.generation || row.accessToken === null) return null;
    const refusedThisOne =
      options.force === true && (options.rejected === undefined || options.rejected.version === row.version);
    if (refusedThisOne) return null;
    const accessToken = this.#ring.open(row.accessToken, sealContext.accessToken(record.id));
    // Stored before the parser refused such tokens: fetch a new one instead of failing every call.
    if (!isHeaderSafeValue(accessToken)) return null;
    const token = this.#toCached(record, row, accessToken);
    return this.#clock() < token.refreshAt ? token : null;
  }

  /** Runs with the cross-instance lock held: re-read, and fetch only if still stale. */
  async #underLock(record: AuthenticationRecord, options: GetOptions): Promise<TokenResult> {
    const row = await this.#store.tokens.get(record.id);
    const usable = this.#usableStored(record, row, options);
    if (usable !== null) return { token: usable, source: 'cache' };
    const current = row !== null && row.generation === record.generation ? row : null;

    const secrets = openAuthenticationSecrets(this.#ring, record);
    const refreshToken =
      current?.refreshToken != null
        ? this.#ring.open(current.refreshToken, sealContext.refreshToken(record.id))
        : null;

    if (refreshToken !== null) {
      try {
        const tokenSet = await this.#request(record, secrets, { kind: 'refresh', refreshToken });
        const token = await this.#save(record, row, tokenSet, refreshToken);
        await this.#succeeded(record, 'token_refreshed', tokenSet, token);
        return { token, source: 'refreshed' };
      } catch (error) {
        const problem = this.#diagnose(error, record, 'refresh');
        if (problem.code !== 'invalid_grant') throw problem;
        if (record.grantType === 'authorization_code') throw await this.#needsAuthorization(record, problem);
        // Password and client credentials can start over without a person: the refresh token
        // is dead (revoked, expired, rotated away), the original grant still works.
        await recordEvent(this.#store, record.id, 'token_failed', {
          code: problem.code,
          step: 'refresh',
          message: 'The refresh token was refused; fetching a new token with the original grant.',
        });
      }
    }
    if (record.grantType === 'authorization_code') {
      throw await this.#needsAuthorization(record, null);
    }
    const tokenSet = await this.#request(record, secrets, { kind: 'initial' });
    const token = await this.#save(record, row, tokenSet, null);
    await this.#succeeded(record, 'token_fetched', tokenSet, token);
    return { token, source: 'fetched' };
  }

  async #request(
    record: AuthenticationRecord,
    secrets: ReturnType<typeof openAuthenticationSecrets>,
    run: GrantRun,
  ): Promise<TokenSet> {
    for (let attempt = 0; ; attempt++) {
      try {
        const tokenSet = await runGrant(record, secrets, run, this.#requestOptions());
        this.#observe({ kind: 'token_request', outcome: 'success', grant: run.kind });
        return tokenSet;
      } catch (error) {
        this.#observe({ kind: 'token_request', outcome: 'failure', grant: run.kind });
        const delay = RETRY_DELAYS_MS[attempt];
        const wait = retryDelay(error, delay);
        if (wait === null) throw error;
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
  ): Promise<void> {
    const status = record.grantType === 'authorization_code' ? 'connected' : 'ready';
    if (record.status !== status || record.lastError !== null) {
      await this.#store.authentications.setStatus(record.id, status, null);
    }
    // The timeline entry and the change notice need not hold the lock nor the callers waiting
    // for the token: they are written behind (see `settled`).
    this.#behind(async () => {
      await this.#store.publish({ kind: 'tokens_changed', authId: record.id, version: token.version });
      await recordEvent(this.#store, record.id, type, describeTokens(tokenSet), this.#clock());
    });
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

  /** Resolves when every write made behind a token fetch has landed (the event timeline reads this). */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  async #needsAuthorization(record: AuthenticationRecord, cause: Problem | null): Promise<Problem> {
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
      await this.#store.tokens.delete(record.id);
      await recordEvent(this.#store, record.id, 'needs_authorization', {
        code: cause.code,
        message: cause.message,
      });
      await this.#store.publish({ kind: 'tokens_changed', authId: record.id });
    }
    await this.#store.authentications.setStatus(record.id, 'needs_authorization', problem.toJSON());
    return problem;
  }

  /** Remembers a failure so a failing provider is not asked again on every call. */
  async #remember(record: AuthenticationRecord, problem: Problem): Promise<void> {
    if (problem.code === 'not_found') return;
    const previous = this.#failures.get(record.id);
    const attempts =
      previous !== undefined && previous.generation === record.generation ? previous.attempts + 1 : 1;
    const base = PERMANENT.has(problem.code) ? 5_000 : 1_000;
    const cap = PERMANENT.has(problem.code) ? 300_000 : 60_000;
    const backoff = Math.min(cap, base * 2 ** (attempts - 1));
    this.#failures.set(record.id, {
      problem,
      generation: record.generation,
      until: this.#clock() + backoff,
      attempts,
    });
    if (problem.code === 'needs_authorization') return;
    const status = record.grantType === 'authorization_code' ? record.status : 'error';
    await this.#store.authentications.setStatus(record.id, status, problem.toJSON()).catch(() => {});
    await recordEvent(this.#store, record.id, 'token_failed', {
      code: problem.code,
      message: problem.message,
      ...(problem.provider?.status !== undefined ? { providerStatus: problem.provider.status } : {}),
    }).catch(() => {});
  }

  #diagnose(error: unknown, record: AuthenticationRecord, step: 'token' | 'refresh' | 'authorize'): Problem {
    return diagnose(error, {
      tokenUrl: record.settings.tokenUrl,
      redirectUri: this.#redirectUri,
      clientAuthMethod: record.settings.clientAuthMethod,
      grantType: record.grantType,
      ...(record.settings.scope !== undefined ? { scope: record.settings.scope } : {}),
      ...(record.settings.audience !== undefined ? { audience: record.settings.audience } : {}),
      step,
    });
  }

  #requestOptions() {
    return { fetch: this.#fetch, timeoutMs: this.#timeoutMs };
  }

  #toCached(record: AuthenticationRecord, row: TokenRecord, plain?: string): CachedToken {
    const accessToken = plain ?? this.#ring.open(row.accessToken ?? '', sealContext.accessToken(record.id));
    // Rows written before lifetimes were clamped may hold an expiry past the end of dates.
    const expiresAt = boundedExpiresAt(row.obtainedAt, row.expiresAt);
    const schedule =
      expiresAt === null
        ? { refreshAt: Number.POSITIVE_INFINITY, hardExpiresAt: Number.POSITIVE_INFINITY }
        : refreshSchedule(row.obtainedAt, expiresAt);
    return {
      authId: record.id,
      authorization: authorizationHeaderValue(record.settings.headerPrefix, accessToken),
      tokenType: row.tokenType ?? 'Bearer',
      scope: row.scope,
      obtainedAt: row.obtainedAt,
      expiresAt,
      refreshAt: schedule.refreshAt,
      hardExpiresAt: schedule.hardExpiresAt,
      hasRefreshToken: row.refreshToken !== null,
      version: row.version,
      generation: row.generation,
    };
  }

  #onChange(event: ChangeEvent): void {
    switch (event.kind) {
      case 'authentication_changed':
      case 'authentication_deleted':
        this.forget(event.authId);
        return;
      case 'resync':
        // Notices may have been missed, configuration changes among them.
        this.#cache.clear();
        this.refusalBackoff.clear();
        return;
      case 'tokens_changed': {
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
