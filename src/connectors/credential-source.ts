import type { Dispatcher } from 'undici';
import type { ProblemBody } from '../problem.js';

/**
 * What a credential must add to each request itself because it depends on the request: a DPoP
 * proof (RFC 9449 §7), bound to the method, the URL, the token and the server's latest nonce.
 */
export interface RequestProof {
  /** Fields `[name, value]` for one attempt of `method` to `url` (a fresh proof every time). */
  fieldsFor(method: string, url: string): readonly string[];
  /**
   * Told every answer to a request that carried a proof: keeps a new nonce (RFC 9449 §9) and says
   * whether the answer asks for the request again with it (`use_dpop_nonce`).
   */
  answered(
    url: string,
    status: number,
    headers: Readonly<Record<string, string | string[] | undefined>>,
  ): boolean;
}

/**
 * What a credential adds to one request. Built once per credential (not per call), so sending it
 * costs an array append.
 */
export interface Credential {
  /** Field list `[name, value, …]`, names lower-cased: `authorization`, or an API key's header. */
  readonly headers: readonly string[];
  /** Query parameters, already encoded (`name=value&…`), '' when none (an API key sent in the query). */
  readonly query: string;
  /**
   * Whether a refusal (a status in the connector's `refreshOn`) can be answered with another
   * credential of this source: true for OAuth tokens, false for static keys and passwords, which
   * are sent as they are and whose refusal is reported, never retried.
   */
  readonly refreshable: boolean;
  /**
   * The bearer token this credential sends, when it sends one: a refusal is explained from its
   * claims when it is a JWT (never shown; src/oauth/token-refusal-explanation.ts).
   */
  readonly bearerToken?: string;
  /** A proof made per request (DPoP-bound tokens). */
  readonly proof?: RequestProof;
  /**
   * The dispatcher that presents this credential's client certificate (RFC 8705 §3: tokens bound
   * to it). Only requests that carry the credential use it; others go through the shared pool.
   */
  readonly dispatcher?: Dispatcher;
}

/** What a source says when the API refused one of its credentials. */
export interface RefusalVerdict {
  /** A replacement may be fetched now for this refusal (see {@link CredentialSource.replace}). */
  readonly mayReplace: boolean;
  /** While fresh credentials of this source are refused too, no new one is fetched until then (ms since the epoch). */
  readonly pausedUntil: number | null;
}

/**
 * The header and query parameter names a source's credentials set. The credential wins: a caller's
 * or the connector's own field of one of these names is not sent beside it.
 */
export interface CredentialNames {
  /** Lower-cased. */
  readonly headers: ReadonlySet<string>;
  readonly query: ReadonlySet<string>;
}

/** The credential step of the connector test: where the credential came from, or why there is none. */
export interface CredentialStep {
  ok: boolean;
  source?: 'cache' | 'fetched' | 'refreshed';
  /** A static credential (API key, Basic, bearer): its kind and where it is sent, never its value. */
  kind?: 'api_key' | 'basic' | 'bearer';
  sentAs?: string;
  tokenType?: string;
  expiresAt?: string | null;
  scope?: string | null;
  error?: ProblemBody;
}

/**
 * Where a connector's calls get what proves who is calling. The call pipeline knows nothing else
 * about credentials: it asks for one (synchronously when it is in memory, the hot path), adds what
 * it yields to the request, and tells the source when the API refused it.
 *
 * Implemented for OAuth tokens by {@link OAuthTokenCredentials}; static kinds (an API key in a
 * header or the query, Basic, a fixed bearer token) implement it with `refreshable: false`, so a
 * refusal is never answered with a new request. Failures to produce a credential reject with a
 * `Problem` worded for the gateway (424 needs_authorization, 502 for the rest).
 */
export interface CredentialSource<C extends Credential = Credential> {
  /** The authentication the calls are counted against (calls, 401s, refreshes). */
  readonly authenticationId: string;
  /** What its credentials set: see {@link CredentialNames}. */
  readonly names: CredentialNames;
  /** The credential when it is in memory and fresh, without awaiting anything; else undefined. */
  peek(): C | undefined;
  /** A usable credential: from memory, the store or the provider. */
  get(): Promise<C>;
  /**
   * The API refused `credential` with a status of the connector's `refreshOn`.
   * `replacedForThisCall`: this very call already had its credential replaced once.
   * Records the refusal (a fresh credential refused too starts a pause: RefusedTokenBackoff).
   */
  refused(credential: C, replacedForThisCall: boolean): RefusalVerdict;
  /** Another credential than `refused`, shared by every caller refused at the same time. Only after `refused` allowed it. */
  replace(refused: C): Promise<C>;
  /** When fetching new credentials pauses for this one's source, for the diagnosis of a refusal; null when not paused. */
  pausedUntil(credential: C): number | null;
  /**
   * For the connector test (a person pressing Test wants a real attempt, whatever pause holds):
   * a credential and what to report about it — null when there is nothing to report.
   */
  acquireForTest(): Promise<{ credential: C; step: CredentialStep | null }>;
}
