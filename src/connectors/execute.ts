import { setTimeout as sleep } from 'node:timers/promises';
import {
  classifyNetworkError,
  type Egress,
  type EgressResponse,
  isRedirect,
  redirectTarget,
} from '../egress/egress.js';
import { EgressError, type EgressFailureKind } from '../egress/egress-error.js';
import { type DiagnosisContext, diagnose, diagnoseApiResponse } from '../oauth/diagnosis.js';
import { explainWithAccessToken } from '../oauth/token-refusal-explanation.js';
import { type FieldError, Problem, type ProblemBody } from '../problem.js';
import type { Store } from '../store/contract.js';
import type { CachedToken, TokenManager, TokenSource } from '../tokens/token-manager.js';
import type { UsageCounters } from '../tokens/usage-counters.js';
import { ConnectorCache, type ConnectorTarget, type SecretHeaderOpener } from './connector-cache.js';
import { type BufferLease, ExecuteBufferBudget } from './execute-buffer-budget.js';
import {
  firstValue,
  forwardableResponseHeaders,
  headerValueProblem,
  isTransportRequestHeader,
} from './http-headers.js';
import { readResponseBody } from './response-body.js';
import { isBelowBase, resolveCallPath } from './target-url.js';

/** What an integration step asks for (docs/api.md `POST /api/connectors/:id/execute`). */
export interface ExecuteCall {
  method: string;
  path: string;
  query?: Record<string, string> | undefined;
  headers?: Record<string, string> | undefined;
  /** A JSON value is sent as JSON; a string as given, with the caller's content type. */
  body?: unknown;
}

/** A call checked and encoded, ready to send (and to send again). */
export interface PreparedCall {
  method: string;
  /** Absolute URL below the connector's base URL. */
  url: string;
  /** Connector headers, then the caller's; lower-case names; no Authorization from the token yet. */
  headers: Record<string, string>;
  /**
   * Only the caller's headers, minus credentials: what a redirect may carry once it has left the
   * base URL (another origin, or another path of the same origin).
   */
  headersOutsideBase: Record<string, string>;
  body: string | null;
}

export interface ExecuteResult {
  status: number;
  headers: Record<string, string | string[]>;
  body: unknown;
  truncated: boolean;
  durationMs: number;
  /** HTTP requests sent: retries, the 401 retry and followed redirects each count. */
  attempts: number;
  tokenRefreshed: boolean;
  /** The diagnosis of a 401 (after the one retry) or a 403. */
  error?: ProblemBody;
}

export interface TokenStep {
  ok: boolean;
  source?: TokenSource;
  tokenType?: string;
  expiresAt?: string | null;
  scope?: string | null;
  error?: ProblemBody;
}

/** The Test button: token step and API step in one answer. */
export interface ConnectorTestOutcome {
  ok: boolean;
  /** null when the connector has no authentication. */
  token: TokenStep | null;
  response: ExecuteResult | null;
  error?: ProblemBody;
}

export interface RetryPolicy {
  /** Retries after the first attempt, for idempotent methods (RFC 9110 §9.2.2). */
  retries: number;
  /** First backoff; doubles per retry, with jitter. */
  baseDelayMs: number;
  /** A Retry-After longer than this is not waited for: the 429/503 is returned as data. */
  maxRetryAfterMs: number;
  /** Redirects followed for GET and HEAD. */
  maxRedirects: number;
}

/** Told about every upstream attempt (metrics); implemented by the composition root. */
export interface UpstreamObserver {
  upstreamResponded(status: number): void;
  upstreamFailed(): void;
}

const NO_OBSERVER: UpstreamObserver = { upstreamResponded: () => {}, upstreamFailed: () => {} };

export interface ConnectorEngineOptions {
  store: Store;
  /** Opens a connector's secret headers when it is compiled. */
  openSecretHeaders?: SecretHeaderOpener;
  egress: Egress;
  tokens: TokenManager;
  usage: UsageCounters;
  /** Upstream body bytes an execute result carries before it is marked truncated. */
  maxBodyBytes: number;
  /** Upstream body bytes all execute/test calls together may hold at once (ExecuteBufferBudget). */
  bufferLimitBytes: number;
  retry?: Partial<RetryPolicy>;
  observer?: UpstreamObserver;
}

const DEFAULT_RETRY: RetryPolicy = { retries: 2, baseDelayMs: 200, maxRetryAfterMs: 5_000, maxRedirects: 5 };
/** RFC 9110 §9.2.2: a repeat has the same effect, so an unanswered request may be sent again. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);
const RETRY_STATUSES = new Set([429, 502, 503, 504]);
/** Connection failures where the request most likely never reached the application. */
const RETRY_KINDS = new Set<EgressFailureKind>(['refused', 'reset', 'unreachable']);
/** Caller headers that carry credentials of their own: never sent to another origin. */
const CREDENTIAL_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization']);
const DRAIN_LIMIT = 64 * 1024;
/**
 * With less room than this left in the buffer budget (or than the whole budget, when that is
 * smaller), a call is refused before anything is sent.
 */
const MIN_BUFFER_ROOM = 64 * 1024;
/** What a 503 server_busy asks to wait: the budget frees as soon as the answers in flight are written. */
const BUSY_RETRY_AFTER_SECONDS = 1;
/** Statuses whose answers have no body (RFC 9110 §15.3.5, §15.4.5), whatever Content-Length says. */
const NO_BODY_STATUSES = new Set([204, 304]);

export interface ExecuteOptions {
  /** A token already in hand (the connector test fetched it); else the engine gets one. */
  token?: CachedToken | undefined;
  /**
   * This call's share of the buffer budget, when the caller releases it (once the answer carrying
   * the body is written); else the engine takes a share and releases it when `execute` returns.
   */
  buffer?: BufferLease | undefined;
}

/**
 * The one engine under execute, test and the proxy: resolves the target below the base URL, adds
 * `Authorization: <prefix> <token>`, handles the 401 (drop the token, one fresh one through the
 * single-flight path, one retry — never a loop; and no fresh one at all while fresh tokens of that
 * authentication are being refused too), retries idempotent calls on connection failures
 * and 429/502/503/504, follows redirects for GET/HEAD without leaking credentials outside the
 * base URL, and counts calls, 401s and refreshes per authentication.
 */
export class ConnectorEngine {
  readonly egress: Egress;
  readonly tokens: TokenManager;
  readonly usage: UsageCounters;
  readonly connectors: ConnectorCache;
  readonly observer: UpstreamObserver;
  /** Upstream bytes buffered by execute and test at once, process-wide (the proxy streams). */
  readonly buffers: ExecuteBufferBudget;
  readonly #store: Store;
  readonly #maxBodyBytes: number;
  readonly #minBufferRoom: number;
  readonly #retry: RetryPolicy;

  constructor(options: ConnectorEngineOptions) {
    this.egress = options.egress;
    this.tokens = options.tokens;
    this.usage = options.usage;
    this.observer = options.observer ?? NO_OBSERVER;
    this.#store = options.store;
    this.#maxBodyBytes = options.maxBodyBytes;
    this.buffers = new ExecuteBufferBudget(options.bufferLimitBytes);
    this.#minBufferRoom = Math.min(MIN_BUFFER_ROOM, options.bufferLimitBytes);
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
    this.connectors = new ConnectorCache(
      options.store,
      (url) => {
        options.egress.checkUrl(url);
      },
      options.openSecretHeaders,
    );
  }

  /** The compiled connector; `not_found` when there is none. */
  async connector(id: string): Promise<ConnectorTarget> {
    const target = await this.connectors.get(id);
    if (target === null) throw new Problem('not_found', 'No connector with this id.');
    return target;
  }

  /**
   * Checks a call against the connector and encodes it. Reads only well-typed fields, so its
   * findings can be reported together with the schema's.
   */
  prepare(target: ConnectorTarget, call: Partial<ExecuteCall>): { call: PreparedCall; errors: FieldError[] } {
    const errors: FieldError[] = [];
    const method = call.method ?? 'GET';
    let extraQuery = '';
    if (call.query !== undefined) extraQuery = new URLSearchParams(call.query).toString();
    const resolved = resolveCallPath(target, call.path ?? '', extraQuery);
    let url = '';
    if (resolved.ok) url = target.origin + resolved.pathAndQuery;
    else errors.push({ path: '/path', message: resolved.message });

    const headers: Record<string, string> = { ...target.headers };
    const headersOutsideBase: Record<string, string> = {};
    for (const [name, value] of Object.entries(call.headers ?? {})) {
      const lower = name.toLowerCase();
      const at = `/headers/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`;
      const valueProblem = headerValueProblem(value);
      if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) {
        errors.push({ path: at, message: 'is not a valid header name' });
      } else if (isTransportRequestHeader(lower)) {
        errors.push({ path: at, message: 'is set by the HTTP transport and cannot be sent' });
      } else if (lower === 'authorization' && target.authId !== null) {
        errors.push({ path: at, message: "is set from the connector's authentication" });
      } else if (valueProblem !== null) {
        errors.push({ path: at, message: valueProblem });
      } else {
        headers[lower] = value;
        if (!CREDENTIAL_HEADERS.has(lower)) headersOutsideBase[lower] = value;
      }
    }

    let body: string | null = null;
    if (call.body !== undefined && call.body !== null) {
      if (method === 'HEAD') errors.push({ path: '/body', message: 'a HEAD request cannot carry a body' });
      if (typeof call.body === 'string') {
        body = call.body;
        headers['content-type'] ??= 'text/plain; charset=utf-8';
      } else {
        body = JSON.stringify(call.body);
        headers['content-type'] ??= 'application/json';
      }
      if (headers['content-type'] !== undefined) headersOutsideBase['content-type'] = headers['content-type'];
    }
    return { call: { method, url, headers, headersOutsideBase, body }, errors };
  }

  /**
   * A token for the authentication: the cached one without awaiting anything when it is fresh.
   * With `rejected`, a token other than the refused one (after a 401), shared by every caller
   * refused at the same time. Failures come as the token diagnosis: 424 for needs_authorization,
   * 502 for the rest (the gateway could not do its job).
   */
  token(authId: string, rejected?: CachedToken): CachedToken | Promise<CachedToken> {
    if (rejected === undefined) {
      const cached = this.tokens.peek(authId);
      if (cached !== undefined) return cached;
    }
    const options = rejected === undefined ? {} : { force: true, rejected };
    return this.tokens.get(authId, options).catch((error: unknown) => {
      throw asGatewayProblem(error);
    });
  }

  /** An outbound failure as the answer of an execute or proxy call (upstream_failed, egress_denied, …). */
  unreachable(error: unknown, target: ConnectorTarget): Problem {
    const classified = error instanceof EgressError ? error : classifyNetworkError(error, target.host);
    return asGatewayProblem(diagnose(classified, { step: 'api', baseUrl: target.baseUrl }));
  }

  /**
   * The diagnosis of a 401/403 from the API, worded with the authentication's scope and audience,
   * and for a 401 with the pause of forced refreshes, if one holds.
   */
  async diagnoseRefusal(
    target: ConnectorTarget,
    status: number,
    wwwAuthenticate: string | undefined,
    token?: CachedToken,
  ): Promise<Problem | null> {
    const context: DiagnosisContext = { step: 'api', baseUrl: target.baseUrl };
    if (status === 401 && token !== undefined) {
      context.tokenRefreshPausedUntil = this.tokens.refusalBackoff.pausedUntil(token);
    }
    if (target.authId !== null) {
      const record = await this.#store.authentications.get(target.authId).catch(() => null);
      if (record !== null) {
        context.scope = record.settings.scope;
        context.audience = record.settings.audience;
        if (record.settings.audience !== undefined) context.audienceParam = record.settings.audienceParam;
      }
    }
    const problem = diagnoseApiResponse(status, wwwAuthenticate, context);
    // A JWT access token says what it was issued for: the hint names the mismatch it finds.
    return problem === null || token === undefined
      ? problem
      : explainWithAccessToken(problem, token.accessToken, context, Date.now());
  }

  /** Sends a prepared call and reads the answer (see the class comment for what happens on the way). */
  async execute(
    target: ConnectorTarget,
    call: PreparedCall,
    options: ExecuteOptions = {},
  ): Promise<ExecuteResult> {
    if (options.buffer !== undefined) return this.#execute(target, call, options.token, options.buffer);
    const lease = this.buffers.lease();
    try {
      return await this.#execute(target, call, options.token, lease);
    } finally {
      lease.release();
    }
  }

  async #execute(
    target: ConnectorTarget,
    call: PreparedCall,
    given: CachedToken | undefined,
    lease: BufferLease,
  ): Promise<ExecuteResult> {
    const started = performance.now();
    if (target.urlProblem !== null) throw this.unreachable(target.urlProblem, target);
    // Nothing is sent while the budget is spent: the API never sees a call whose answer could not be read.
    if (!this.buffers.hasRoomFor(this.#minBufferRoom)) throw this.#busy(null, lease);
    const authId = target.authId;
    let token: CachedToken | undefined = given;
    if (authId !== null) {
      this.usage.count(authId, 'calls');
      token ??= await this.token(authId);
    }
    const policy = this.#retry;
    const deadlineAt = Date.now() + target.timeoutMs;
    const signal = AbortSignal.timeout(target.timeoutMs);
    const idempotent = IDEMPOTENT.has(call.method);
    const followsRedirects = call.method === 'GET' || call.method === 'HEAD';
    let url = new URL(call.url);
    /** Once a redirect leaves the base URL, no later hop carries credentials again. */
    let foreign = false;
    let attempts = 0;
    let retries = 0;
    let redirects = 0;
    let refreshed = false;

    for (;;) {
      attempts++;
      const headers: Record<string, string> = foreign ? call.headersOutsideBase : { ...call.headers };
      if (token !== undefined && !foreign) headers.authorization = token.authorization;
      let response: EgressResponse;
      try {
        response = await this.egress.request({ url, method: call.method, headers, body: call.body, signal });
        this.observer.upstreamResponded(response.status);
      } catch (error) {
        this.observer.upstreamFailed();
        if (
          error instanceof EgressError &&
          RETRY_KINDS.has(error.kind) &&
          idempotent &&
          retries < policy.retries &&
          (await this.#pause(this.#backoff(retries), deadlineAt))
        ) {
          retries++;
          continue;
        }
        throw this.unreachable(error, target);
      }
      const { status } = response;

      if (status === 401 && token !== undefined && authId !== null && !foreign) {
        this.usage.count(authId, 'unauthorized');
        // A fresh token refused too starts a pause of forced refreshes (RefusedTokenBackoff):
        // an API that always answers 401 must not cost a token request per call.
        const pausedUntil = this.tokens.refusalBackoff.refused(token, refreshed);
        if (!refreshed && pausedUntil === null) {
          await discard(response);
          token = await this.token(authId, token);
          this.tokens.refusalBackoff.replaced(token);
          refreshed = true;
          this.usage.count(authId, 'refreshes');
          continue;
        }
      }
      if (followsRedirects && isRedirect(status) && redirects < policy.maxRedirects) {
        const location = firstValue(response.headers.location);
        if (location !== undefined) {
          await discard(response);
          let next: URL;
          try {
            next = redirectTarget(url, location);
          } catch (error) {
            throw this.unreachable(error, target);
          }
          // RFC 9110 §15.4: credentials are for what they were configured for, only: this base URL,
          // not another origin and not another path of the same one (`/api/v2` → `/admin`).
          if (!isBelowBase(target, next)) foreign = true;
          url = next;
          redirects++;
          continue;
        }
      }
      if (RETRY_STATUSES.has(status) && idempotent && retries < policy.retries) {
        const asked = retryAfterMs(firstValue(response.headers['retry-after']));
        const wait = asked ?? this.#backoff(retries);
        if (wait <= policy.maxRetryAfterMs && wait <= deadlineAt - Date.now()) {
          await discard(response);
          if (await this.#pause(wait, deadlineAt)) {
            retries++;
            continue;
          }
        }
      }

      // The declared length is reserved before reading, so concurrent calls cannot each take part
      // of the budget and all fail; chunks past it (no Content-Length, or a wrong one) as they come.
      const declared = Number(firstValue(response.headers['content-length']));
      const expected =
        call.method === 'HEAD' || NO_BODY_STATUSES.has(status) || !Number.isSafeInteger(declared)
          ? 0
          : Math.min(Math.max(declared, 0), this.#maxBodyBytes);
      if (!lease.reserve(expected)) {
        response.body.destroy();
        throw this.#busy(status, lease);
      }
      let read: Awaited<ReturnType<typeof readResponseBody>>;
      try {
        read = await readResponseBody(
          response.body,
          firstValue(response.headers['content-type']),
          this.#maxBodyBytes,
          (bytes) => {
            if (!lease.reserve(bytes)) throw this.#busy(status, lease);
          },
        );
      } catch (error) {
        if (error instanceof Problem) throw error;
        throw this.unreachable(error, target);
      }
      const result: ExecuteResult = {
        status,
        headers: forwardableResponseHeaders(response.headers, true),
        body: read.body,
        truncated: read.truncated,
        durationMs: Math.round(performance.now() - started),
        attempts,
        tokenRefreshed: refreshed,
      };
      if ((status === 401 || status === 403) && token !== undefined && !foreign) {
        const problem = await this.diagnoseRefusal(
          target,
          status,
          firstValue(response.headers['www-authenticate']),
          token,
        );
        if (problem !== null) result.error = problem.toJSON();
      }
      return result;
    }
  }

  /**
   * "Test token fetch + API call": the token step (where the token came from, or why there is
   * none) and the API step, ok only when both succeed with a 2xx.
   */
  async test(
    target: ConnectorTarget,
    call: PreparedCall,
    options: Pick<ExecuteOptions, 'buffer'> = {},
  ): Promise<ConnectorTestOutcome> {
    let token: CachedToken | undefined;
    let tokenStep: TokenStep | null = null;
    if (target.authId !== null) {
      try {
        const acquired = await this.tokens.acquire(target.authId, { ignoreBackoff: true });
        token = acquired.token;
        tokenStep = {
          ok: true,
          source: acquired.source,
          tokenType: token.tokenType,
          expiresAt: token.expiresAt === null ? null : new Date(token.expiresAt).toISOString(),
          scope: token.scope,
        };
      } catch (error) {
        const problem = asGatewayProblem(error);
        if (target.authId !== null) this.usage.count(target.authId, 'calls');
        return {
          ok: false,
          token: { ok: false, error: problem.toJSON() },
          response: null,
          error: problem.toJSON(),
        };
      }
    }
    let response: ExecuteResult;
    try {
      response = await this.execute(target, call, { token, buffer: options.buffer });
    } catch (error) {
      // Not a finding about the connector: the answer is 503, to be retried.
      if (error instanceof Problem && error.code === 'server_busy') throw error;
      const problem = asGatewayProblem(error);
      return { ok: false, token: tokenStep, response: null, error: problem.toJSON() };
    }
    if (response.status >= 200 && response.status < 300) return { ok: true, token: tokenStep, response };
    const error =
      response.error ??
      new Problem('upstream_failed', `The API answered HTTP ${response.status}.`, {
        hint:
          response.status === 404
            ? "Check the connector's base URL and the path: the API has nothing there."
            : 'The API was reached and answered with an error status: read the response body for its reason.',
        provider: { status: response.status },
      }).toJSON();
    return { ok: false, token: tokenStep, response, error };
  }

  close(): void {
    this.connectors.close();
  }

  /**
   * 503: the buffer budget is spent. `status` is the API's, when it had already answered. The
   * call's share is given back at once, not when the 503 is written: of several calls that each
   * hold part of the budget, the ones refused make room for the rest, so one always finishes.
   */
  #busy(status: number | null, lease: BufferLease): Problem {
    lease.release();
    const limit = 'GRANTRY_EXECUTE_BUFFER_LIMIT';
    const streams =
      'for large answers use the proxy (/proxy/<connector id>/…), which streams them instead of holding them, or raise';
    if (status === null) {
      return new Problem(
        'server_busy',
        `Grantry is holding as many API answers in memory as it may (${limit}); this call was not sent.`,
        {
          hint: `Retry after the seconds in Retry-After; ${streams} ${limit}.`,
          retryAfterSeconds: BUSY_RETRY_AFTER_SECONDS,
        },
      );
    }
    return new Problem(
      'server_busy',
      `The API answered HTTP ${status}, but Grantry is holding as many API answers in memory as it may (${limit}), so this answer was not read.`,
      {
        hint: `The request did reach the API: if it is not idempotent, check its effect before sending it again. Retry after the seconds in Retry-After; ${streams} ${limit}.`,
        provider: { status },
        retryAfterSeconds: BUSY_RETRY_AFTER_SECONDS,
      },
    );
  }

  #backoff(retry: number): number {
    const base = this.#retry.baseDelayMs * 2 ** retry;
    return Math.round(base / 2 + Math.random() * (base / 2));
  }

  /** Waits unless the wait would run past the deadline; says whether it waited. */
  async #pause(ms: number, deadlineAt: number): Promise<boolean> {
    if (Date.now() + ms >= deadlineAt) return false;
    if (ms > 0) await sleep(ms);
    return true;
  }
}

/**
 * Execute and proxy answer for the gateway: when a token or the upstream could not be had, the
 * status is 424 (needs_authorization) or 502 — never the 400 a management route would give.
 */
export function asGatewayProblem(error: unknown): Problem {
  const problem = error instanceof Problem ? error : diagnose(error, { step: 'api' });
  if (problem.code === 'server_busy') return problem;
  if (problem.code === 'not_found') {
    return new Problem('not_found', "The connector's authentication no longer exists.", { status: 404 });
  }
  const status = problem.code === 'needs_authorization' ? 424 : 502;
  if (problem.status === status) return problem;
  return new Problem(problem.code, problem.message, {
    hint: problem.hint,
    provider: problem.provider,
    errors: problem.errors,
    status,
    cause: problem,
  });
}

/** RFC 9110 §10.2.3: delay-seconds or an HTTP-date; null when absent or unreadable. */
export function retryAfterMs(value: string | undefined, now = Date.now()): number | null {
  if (value === undefined) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** Reads a small unwanted body to the end so its connection returns to the pool; closes a big one. */
async function discard(response: EgressResponse): Promise<void> {
  await response.body.dump({ limit: DRAIN_LIMIT }).catch(() => {});
}
