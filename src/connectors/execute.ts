import type { Egress } from '../egress/egress.js';
import { type DiagnosisContext, diagnoseApiResponse } from '../oauth/diagnosis.js';
import { DPOP_ALG, htuOf } from '../oauth/dpop.js';
import { explainWithAccessToken } from '../oauth/token-refusal-explanation.js';
import { type FieldError, Problem, type ProblemBody } from '../problem.js';
import type { Store } from '../store/contract.js';
import type { TokenManager } from '../tokens/token-manager.js';
import type { UsageCounters } from '../tokens/usage-counters.js';
import type { CallRules } from './call-decision.js';
import {
  type CallCancellation,
  CallPipeline,
  type OutboundCall,
  type UpstreamAnswer,
  type UpstreamObserver,
  unreachable,
} from './call-pipeline.js';
import { EXECUTE_RETRY, FOLLOW_REDIRECTS } from './call-policy.js';
import {
  ConnectorCache,
  type ConnectorTarget,
  type CredentialsFor,
  type SecretHeaderOpener,
} from './connector-cache.js';
import type { Credential, CredentialStep } from './credential-source.js';
import { type BufferLease, ExecuteBufferBudget } from './execute-buffer-budget.js';
import { asGatewayProblem } from './gateway-problem.js';
import {
  firstValue,
  forwardableResponseHeaders,
  headerValueProblem,
  isTransportRequestHeader,
} from './http-headers.js';
import { OAuthTokenCredentials } from './oauth-token-credentials.js';
import { BodyCollector, type ResponseBody } from './response-body.js';
import { isStaticCredential } from './static-credentials.js';
import { hasQueryParameter, resolveCallPath, withoutEchoedCredential } from './target-url.js';

/** What an integration step asks for (docs/api.md `POST /api/connectors/:id/execute`). */
export interface ExecuteCall {
  method: string;
  path: string;
  query?: Record<string, string> | undefined;
  headers?: Record<string, string> | undefined;
  /** A JSON value is sent as JSON; a string as given, with the caller's content type. */
  body?: unknown;
}

/** A call checked and encoded, ready to send (and to send again: execute bodies are always held). */
export type PreparedCall = OutboundCall;

export interface ExecuteResult {
  status: number;
  headers: Record<string, string | string[]>;
  body: unknown;
  truncated: boolean;
  durationMs: number;
  /** HTTP requests sent: retries, the refusal retry and followed redirects each count. */
  attempts: number;
  tokenRefreshed: boolean;
  /** The diagnosis of a 401 or 403 to a request that carried the credential. */
  error?: ProblemBody;
}

export type TokenStep = CredentialStep;

/** The Test button: token step and API step in one answer. */
export interface ConnectorTestOutcome {
  ok: boolean;
  /** null when the connector has no authentication (or its credential has nothing to report). */
  token: TokenStep | null;
  response: ExecuteResult | null;
  error?: ProblemBody;
}

export type { UpstreamObserver } from './call-pipeline.js';

export interface ConnectorEngineOptions {
  store: Store;
  egress: Egress;
  tokens: TokenManager;
  usage: UsageCounters;
  /** Upstream body bytes an execute result carries before it is marked truncated. */
  maxBodyBytes: number;
  /** Upstream body bytes all execute/test calls together may hold at once (ExecuteBufferBudget). */
  bufferLimitBytes: number;
  observer?: UpstreamObserver;
  /**
   * The credential source of an authentication; default: its OAuth tokens. The static kinds
   * (API key, Basic, bearer) plug in here.
   */
  credentialsFor?: CredentialsFor;
  /** Opens a connector's secret headers once per compile (they are sealed at rest). */
  openSecretHeaders?: SecretHeaderOpener;
}

/**
 * Response fields with an API key sent in the query redacted wherever they carry a URL: an API
 * that echoes the request's query in a redirect or a Link would hand the key to the caller.
 */
export function withoutCredential<T extends Record<string, string | string[] | undefined>>(
  headers: T,
  target: ConnectorTarget,
): T {
  return withoutEchoedCredential(headers, target.credentials?.names.query);
}

function existing(target: ConnectorTarget | null): ConnectorTarget {
  if (target === null) throw new Problem('not_found', 'No connector with this id.');
  return target;
}

/** Execute and test: retries of "not now" statuses, redirects of GET/HEAD followed below the base URL. */
export const EXECUTE_RULES: CallRules = { retry: EXECUTE_RETRY, redirects: FOLLOW_REDIRECTS };

/** Caller headers that carry credentials of their own: never sent to another origin. */
const CREDENTIAL_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization']);
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
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
  /** A credential already in hand (the connector test acquired it); else the pipeline gets one. */
  credential?: Credential | undefined;
  /** Told when the caller has gone: the call is ended, nothing more is sent. */
  cancellation?: CallCancellation | undefined;
  /**
   * This call's share of the buffer budget, when the caller releases it (once the answer carrying
   * the body is written); else the engine takes a share and releases it when `execute` returns.
   */
  buffer?: BufferLease | undefined;
}

/**
 * Connectors at work: the compiled connectors (ConnectorCache), the call pipeline they share
 * (CallPipeline: credential, retries, refusals, redirects, usage), and the two ways of answering
 * that read the whole body — execute (an integration step) and test (the console's button). The
 * proxy (proxy.ts) uses the same connectors and pipeline and streams the body instead.
 */
export class ConnectorEngine {
  readonly egress: Egress;
  readonly usage: UsageCounters;
  readonly connectors: ConnectorCache;
  readonly pipeline: CallPipeline;
  /** Upstream bytes buffered by execute and test at once, process-wide (the proxy streams). */
  readonly buffers: ExecuteBufferBudget;
  readonly #store: Store;
  readonly #maxBodyBytes: number;
  readonly #minBufferRoom: number;

  constructor(options: ConnectorEngineOptions) {
    this.egress = options.egress;
    this.usage = options.usage;
    this.#store = options.store;
    this.#maxBodyBytes = options.maxBodyBytes;
    this.buffers = new ExecuteBufferBudget(options.bufferLimitBytes);
    this.#minBufferRoom = Math.min(MIN_BUFFER_ROOM, options.bufferLimitBytes);
    this.pipeline = new CallPipeline({
      egress: options.egress,
      usage: options.usage,
      ...(options.observer === undefined ? {} : { observer: options.observer }),
    });
    const { tokens } = options;
    this.connectors = new ConnectorCache(
      options.store,
      (url) => {
        options.egress.checkUrl(url);
      },
      options.credentialsFor ??
        ((authenticationId) =>
          new OAuthTokenCredentials(tokens, authenticationId, (certificate) =>
            options.egress.clientCertificateDispatcher(certificate),
          )),
      options.openSecretHeaders,
    );
  }

  /** The compiled connector (from memory without awaiting when it is there); `not_found` when there is none. */
  connector(id: string): ConnectorTarget | Promise<ConnectorTarget> {
    const cached = this.connectors.get(id);
    if (cached instanceof Promise) return cached.then(existing);
    return existing(cached);
  }

  /**
   * Checks a call against the connector and encodes it. Reads only well-typed fields, so its
   * findings can be reported together with the schema's.
   */
  prepare(target: ConnectorTarget, call: Partial<ExecuteCall>): { call: PreparedCall; errors: FieldError[] } {
    const errors: FieldError[] = [];
    const method = call.method ?? 'GET';
    const extraQuery = call.query === undefined ? '' : new URLSearchParams(call.query).toString();
    const credentialQuery = target.credentials?.names.query;
    if (credentialQuery !== undefined && credentialQuery.size > 0) {
      for (const name in call.query) {
        if (credentialQuery.has(name)) {
          errors.push({
            path: `/query/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`,
            message: "is set from the connector's authentication",
          });
        }
      }
    }
    const resolved = resolveCallPath(target, call.path ?? '', extraQuery);
    let path = '';
    if (resolved.ok) path = resolved.pathAndQuery;
    else errors.push({ path: '/path', message: resolved.message });
    // The credential's own parameter in the caller's query would be sent beside it (which of the
    // two counts is the API's choice) or override it: refused, as in `query`.
    if (
      resolved.ok &&
      credentialQuery !== undefined &&
      credentialQuery.size > 0 &&
      hasQueryParameter(call.path ?? '', credentialQuery)
    ) {
      errors.push({
        path: '/path',
        message: "must not carry a query parameter the connector's authentication sets",
      });
    }

    // Connector headers, then the caller's (a caller field replaces the connector's of that name).
    let given: Record<string, string> | null = null;
    const outsideBase: Record<string, string> = {};
    for (const name in call.headers) {
      const value = call.headers[name] as string;
      const lower = name.toLowerCase();
      const at = `/headers/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`;
      const valueProblem = headerValueProblem(value);
      if (!HEADER_NAME.test(name)) {
        errors.push({ path: at, message: 'is not a valid header name' });
      } else if (isTransportRequestHeader(lower)) {
        errors.push({ path: at, message: 'is set by the HTTP transport and cannot be sent' });
      } else if (
        (lower === 'authorization' && target.authId !== null) ||
        target.credentials?.names.headers.has(lower) === true
      ) {
        errors.push({ path: at, message: "is set from the connector's authentication" });
      } else if (valueProblem !== null) {
        errors.push({ path: at, message: valueProblem });
      } else {
        given ??= { ...target.headers };
        given[lower] = value;
        if (!CREDENTIAL_HEADERS.has(lower)) outsideBase[lower] = value;
      }
    }

    let body: string | null = null;
    if (call.body !== undefined && call.body !== null) {
      if (method === 'HEAD') errors.push({ path: '/body', message: 'a HEAD request cannot carry a body' });
      given ??= { ...target.headers };
      if (typeof call.body === 'string') {
        body = call.body;
        given['content-type'] ??= 'text/plain; charset=utf-8';
      } else {
        body = JSON.stringify(call.body);
        given['content-type'] ??= 'application/json';
      }
      outsideBase['content-type'] = given['content-type'];
    }
    // Most calls add no field of their own: they share the connector's list, built once.
    const headers = given === null ? target.headerList : Object.entries(given).flat();
    return {
      call: {
        method,
        path,
        headers,
        headersOutsideBase: Object.entries(outsideBase).flat(),
        body,
        replayable: true,
      },
      errors,
    };
  }

  /** Sends a prepared call and reads the answer into the execute result. */
  execute(target: ConnectorTarget, call: PreparedCall, options: ExecuteOptions = {}): Promise<ExecuteResult> {
    if (options.buffer !== undefined) return this.#execute(target, call, options, options.buffer);
    const lease = this.buffers.lease();
    return this.#execute(target, call, options, lease).finally(() => lease.release());
  }

  async #execute(
    target: ConnectorTarget,
    call: PreparedCall,
    options: ExecuteOptions,
    lease: BufferLease,
  ): Promise<ExecuteResult> {
    const started = performance.now();
    if (target.urlProblem !== null) throw unreachable(target.urlProblem, target);
    // Nothing is sent while the budget is spent: the API never sees a call whose answer could not be read.
    if (!this.buffers.hasRoomFor(this.#minBufferRoom)) throw this.#busy(null, lease);
    const answer = await this.pipeline.run(
      target,
      call,
      EXECUTE_RULES,
      options.credential,
      options.cancellation,
    );
    const { status, headers } = answer.head;
    const read = await this.#readBody(target, call.method, answer, lease);
    const result: ExecuteResult = {
      status,
      headers: withoutCredential(forwardableResponseHeaders(headers), target),
      body: read.body,
      truncated: read.truncated,
      durationMs: Math.round(performance.now() - started),
      attempts: answer.attempts,
      tokenRefreshed: answer.credentialReplaced,
    };
    if (answer.refusedCredential !== undefined) {
      const problem = await this.#diagnoseRefusal(target, status, headers, answer.refusedCredential, call);
      if (problem !== null) result.error = problem.toJSON();
    }
    return result;
  }

  /**
   * Reads the answer's body for an execute result, at most `maxBodyBytes`, accounting each byte
   * held to the buffer budget: the declared length before reading (so concurrent calls cannot
   * each take part of the budget and all fail), chunks past it as they come.
   */
  #readBody(
    target: ConnectorTarget,
    method: string,
    answer: UpstreamAnswer,
    lease: BufferLease,
  ): Promise<ResponseBody> {
    const { status, headers } = answer.head;
    const { exchange } = answer;
    const declared = Number(firstValue(headers['content-length']));
    const expected =
      method === 'HEAD' || NO_BODY_STATUSES.has(status) || !Number.isSafeInteger(declared)
        ? 0
        : Math.min(Math.max(declared, 0), this.#maxBodyBytes);
    if (!lease.reserve(expected)) {
      exchange.abort();
      return Promise.reject(this.#busy(status, lease));
    }
    const collector = new BodyCollector(this.#maxBodyBytes, (bytes) => {
      if (!lease.reserve(bytes)) throw this.#busy(status, lease);
    });
    const contentType = firstValue(headers['content-type']);
    return new Promise((resolve, reject) => {
      /** Keeps a chunk; false once the body is settled (cut at the cap, or refused by the budget). */
      const take = (data: Buffer): boolean => {
        let more: boolean;
        try {
          more = collector.add(data);
        } catch (error) {
          exchange.abort();
          reject(error);
          return false;
        }
        if (more) return true;
        // Past the cap: the rest is not read, and the connection is not kept waiting for it.
        exchange.abort();
        resolve(collector.result(contentType));
        return false;
      };
      exchange.receive({
        chunk: take,
        end: (last) => {
          if (last === undefined || take(last)) resolve(collector.result(contentType));
        },
        fail: (error) => reject(unreachable(error, target)),
      });
    });
  }

  /**
   * "Test token fetch + API call": the credential step (where the token came from, or why there
   * is none) and the API step, ok only when both succeed with a 2xx.
   */
  async test(
    target: ConnectorTarget,
    call: PreparedCall,
    options: Pick<ExecuteOptions, 'buffer' | 'cancellation'> = {},
  ): Promise<ConnectorTestOutcome> {
    let credential: Credential | undefined;
    let tokenStep: TokenStep | null = null;
    const source = target.credentials;
    if (source !== null) {
      try {
        const acquired = await source.acquireForTest();
        credential = acquired.credential;
        tokenStep = acquired.step;
      } catch (error) {
        const problem = asGatewayProblem(error);
        this.usage.count(source.authenticationId, 'calls');
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
      response = await this.execute(target, call, {
        credential,
        buffer: options.buffer,
        cancellation: options.cancellation,
      });
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
   * The diagnosis of a 401/403 from the API, worded with the authentication's scope and audience,
   * and with the pause of forced refreshes, if one holds.
   */
  async #diagnoseRefusal(
    target: ConnectorTarget,
    status: number,
    headers: Readonly<Record<string, string | string[] | undefined>>,
    credential: Credential,
    call: PreparedCall,
  ): Promise<Problem | null> {
    const wwwAuthenticate = headers['www-authenticate'];
    const context: DiagnosisContext = { step: 'api', baseUrl: target.baseUrl };
    if (credential.proof !== undefined) {
      // What the refused proof said (its iat within the call, its htu the call's URL).
      context.dpopProof = {
        sent: {
          htm: call.method,
          htu: htuOf(target.origin + call.path),
          iat: Math.floor(Date.now() / 1000),
          ath: true,
          nonce: true,
          alg: DPOP_ALG,
        },
        providerDate: firstValue(headers.date) ?? null,
        receivedAt: Date.now(),
      };
    }
    if (isStaticCredential(credential)) {
      context.staticCredential = { kind: credential.kind, sentAs: credential.sentAs };
    }
    const source = target.credentials;
    if (source !== null) context.tokenRefreshPausedUntil = source.pausedUntil(credential);
    if (target.authId !== null && context.staticCredential === undefined) {
      const record = await this.#store.authentications.get(target.authId).catch(() => null);
      if (record !== null) {
        context.scope = record.settings.scope;
        context.audience = record.settings.audience;
        if (record.settings.audience !== undefined) context.audienceParam = record.settings.audienceParam;
      }
    }
    const problem = diagnoseApiResponse(status, firstValue(wwwAuthenticate), context);
    // A JWT access token says what it was issued for: the hint names the mismatch it finds.
    return problem === null || credential.bearerToken === undefined
      ? problem
      : explainWithAccessToken(problem, credential.bearerToken, context, Date.now());
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
}
