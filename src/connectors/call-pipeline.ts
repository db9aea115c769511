import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { classifyNetworkError, type Egress, redirectTarget } from '../egress/egress.js';
import { EgressError } from '../egress/egress-error.js';
import { type ResponseHead, UpstreamExchange } from '../egress/exchange.js';
import { diagnose } from '../oauth/diagnosis.js';
import { Problem } from '../problem.js';
import type { UsageCounters } from '../tokens/usage-counters.js';
import { type AnsweredOutcome, type CallProgress, type CallRules, decide } from './call-decision.js';
import { refusesCredential } from './call-policy.js';
import type { ConnectorTarget } from './connector-cache.js';
import type { Credential, CredentialSource } from './credential-source.js';
import { asGatewayProblem } from './gateway-problem.js';
import { firstValue } from './http-headers.js';
import { isBelowBase, withoutQueryParameters } from './target-url.js';

/** A call checked and encoded by its entry point, ready to send (and, when replayable, to send again). */
export interface OutboundCall {
  readonly method: string;
  /** Path and query below the connector's base URL (resolved by `resolveCallPath`). */
  readonly path: string;
  /** Connector and caller fields `[name, value, …]`, names lower-cased, no credential. */
  readonly headers: readonly string[];
  /**
   * What a redirect may carry once it has left the base URL (another origin, or another path of
   * the same one): the caller's own fields minus credentials. Unused when redirects pass through.
   */
  readonly headersOutsideBase: readonly string[];
  readonly body: string | Buffer | Readable | null;
  /** Whether `body` can be sent again: a retry or a fresh credential needs a second copy. */
  readonly replayable: boolean;
}

/** The answer the pipeline settled on, its body not read yet. */
export interface UpstreamAnswer {
  readonly head: ResponseHead;
  /** The exchange the body comes from: the entry point reads it, pipes it, or discards it. */
  readonly exchange: UpstreamExchange;
  /** Requests sent: retries, the refusal retry and followed redirects each count. */
  readonly attempts: number;
  readonly credentialReplaced: boolean;
  /**
   * The credential this answer was given to, when the answer is a refusal to diagnose (a 401 or
   * 403 to a request that carried one); undefined otherwise.
   */
  readonly refusedCredential: Credential | undefined;
}

/** Told about every upstream attempt (metrics); implemented by the composition root. */
export interface UpstreamObserver {
  upstreamResponded(status: number): void;
  upstreamFailed(): void;
}

export const NO_OBSERVER: UpstreamObserver = { upstreamResponded: () => {}, upstreamFailed: () => {} };

export interface CallPipelineOptions {
  egress: Egress;
  usage: UsageCounters;
  observer?: UpstreamObserver;
  /** Jitter of the retry backoff (tests pin it). */
  random?: () => number;
}

/** Bytes of an unwanted answer (refused, redirected, retried) read so its connection can be reused. */
const DRAIN_LIMIT = 64 * 1024;

/** Where the next attempt goes, and with what. */
interface Hop {
  readonly origin: string;
  readonly host: string;
  readonly path: string;
  /** The hop left the base URL: no credential, and only `headersOutsideBase`, from here on. */
  readonly outsideBase: boolean;
  readonly credential: Credential | undefined;
}

interface CallState extends CallProgress {
  readonly hop: Hop;
  readonly deadlineAt: number;
  readonly cancellation: CallCancellation | undefined;
  /** The call was already sent again with a server's new DPoP nonce (RFC 9449 §9: once). */
  readonly nonceRetried?: boolean;
}

/**
 * The one pipeline under execute, test and the proxy. For each call it
 *
 * - **prepares**: the credential of the connector's source (from memory without awaiting, the hot
 *   path), added to the entry point's encoded call — header fields and/or query parameters;
 * - **sends**: one exchange on the egress dispatcher under the call's deadline (connector
 *   `timeoutMs`, covering connect, TLS, head and body of every attempt);
 * - **decides**: `decide` — retry a connection failure that is safe to repeat, replace a refused
 *   credential once (connector `refreshOn`; never twice, never while the source pauses), follow a
 *   redirect, retry a "not now" status — with the entry point's policies (`CallRules`);
 * - **reports**: every attempt to the observer (metrics), and calls, 401s and replaced credentials
 *   per authentication to the usage counters.
 *
 * The entry points differ only in how they read their request (`OutboundCall`) and write the
 * answer (`UpstreamAnswer`): execute reads the body into its JSON result, the proxy pipes it to
 * its caller.
 */
export class CallPipeline {
  readonly #egress: Egress;
  readonly #usage: UsageCounters;
  readonly #observer: UpstreamObserver;
  readonly #random: () => number;

  constructor(options: CallPipelineOptions) {
    this.#egress = options.egress;
    this.#usage = options.usage;
    this.#observer = options.observer ?? NO_OBSERVER;
    this.#random = options.random ?? Math.random;
  }

  /**
   * Sends `call` through `target` and resolves with the answer to hand over. `credential`: one
   * already in hand (the connector test acquired it); else the target's source is asked.
   * Rejects with a Problem worded for the gateway when no answer can be had.
   */
  run(
    target: ConnectorTarget,
    call: OutboundCall,
    rules: CallRules,
    credential?: Credential,
    cancellation?: CallCancellation,
  ): Promise<UpstreamAnswer> {
    if (target.urlProblem !== null) return Promise.reject(unreachable(target.urlProblem, target));
    // One deadline for the whole call: the credential, every attempt, every pause between them.
    const deadlineAt = Date.now() + target.timeoutMs;
    const source = target.credentials;
    if (source === null) return this.#first(target, call, rules, undefined, deadlineAt, cancellation);
    this.#usage.count(source.authenticationId, 'calls');
    // In memory (the hot path): sent without awaiting anything before the exchange.
    const ready = credential ?? source.peek();
    if (ready !== undefined) return this.#first(target, call, rules, ready, deadlineAt, cancellation);
    return withinDeadline(source.get(), deadlineAt, target).then((fetched) =>
      this.#first(target, call, rules, fetched, deadlineAt, cancellation),
    );
  }

  #first(
    target: ConnectorTarget,
    call: OutboundCall,
    rules: CallRules,
    credential: Credential | undefined,
    deadlineAt: number,
    cancellation: CallCancellation | undefined,
  ): Promise<UpstreamAnswer> {
    return this.#attempt(target, call, rules, {
      attempts: 1,
      retries: 0,
      redirects: 0,
      credentialReplaced: false,
      hop: { origin: target.origin, host: target.host, path: call.path, outsideBase: false, credential },
      deadlineAt,
      cancellation,
    });
  }

  async #attempt(
    target: ConnectorTarget,
    call: OutboundCall,
    rules: CallRules,
    state: CallState,
  ): Promise<UpstreamAnswer> {
    const { hop, cancellation } = state;
    // Nothing is sent for a caller that has gone, nor after the deadline: the API never sees a
    // call whose caller was already answered (a pause, or a credential fetch, may have used it up).
    if (cancellation?.cancelled === true) throw callerGone(target);
    if (Date.now() >= state.deadlineAt) throw unreachable(deadlinePassed(target), target);
    const credential = hop.credential;
    const path =
      credential === undefined || credential.query === '' ? hop.path : withQuery(hop.path, credential.query);
    // A proof is bound to this very request (RFC 9449 §4.2 htm, htu): made anew for every attempt.
    const proof = hop.outsideBase ? undefined : credential?.proof;
    const url = proof === undefined ? '' : hop.origin + path;
    const exchange = new UpstreamExchange(
      credential?.dispatcher ?? this.#egress.dispatcher,
      {
        origin: hop.origin,
        host: hop.host,
        path,
        method: call.method,
        headers: hop.outsideBase
          ? call.headersOutsideBase
          : credential === undefined
            ? call.headers
            : proof === undefined
              ? call.headers.concat(credential.headers)
              : call.headers.concat(credential.headers, proof.fieldsFor(call.method, url)),
        body: call.body,
      },
      state.deadlineAt,
    );
    cancellation?.track(exchange);

    let head: ResponseHead;
    try {
      head = await exchange.head;
    } catch (error) {
      this.#observer.upstreamFailed();
      const failure = error instanceof EgressError ? error : classifyNetworkError(error, hop.host);
      const decision = decide(
        { kind: 'failed', failure: failure.kind },
        state,
        this.#shape(call, state),
        rules,
        this.#random,
      );
      if (decision.kind !== 'retry') throw unreachable(failure, target);
      await sleep(decision.afterMs);
      return this.#attempt(target, call, rules, {
        ...state,
        attempts: state.attempts + 1,
        retries: state.retries + 1,
      });
    }
    const { status, headers } = head;
    this.#observer.upstreamResponded(status);

    // RFC 9449 §9: a 401 asking for a DPoP nonce is not a refused token; the same request goes
    // once more with the nonce (and a fresh proof), when its body can be sent again.
    const nonceAsked = proof?.answered(url, status, headers) === true;
    if (nonceAsked && state.nonceRetried !== true && call.replayable) {
      exchange.discard(DRAIN_LIMIT);
      return this.#attempt(target, call, rules, {
        ...state,
        attempts: state.attempts + 1,
        nonceRetried: true,
      });
    }

    const source = target.credentials;
    const refused =
      credential !== undefined &&
      source !== null &&
      refusesCredential(status, headers['www-authenticate'], target.refreshOn);
    if (status === 401 && credential !== undefined && source !== null) {
      this.#usage.count(source.authenticationId, 'unauthorized');
    }
    const outcome: AnsweredOutcome = {
      kind: 'answered',
      status,
      refusal: refused
        ? (source as CredentialSource).refused(credential as Credential, state.credentialReplaced)
        : null,
      location: firstValue(headers.location),
      retryAfter: firstValue(headers['retry-after']),
    };
    const decision = decide(outcome, state, this.#shape(call, state), rules, this.#random);
    switch (decision.kind) {
      case 'deliver':
        if (decision.replaceCredential && source !== null && credential !== undefined) {
          // The refused credential must not serve the next call; one replacement for every caller
          // refused now. Its refusal by the next call, soon, starts the source's pause.
          source.replace(credential).then(
            () => this.#usage.count(source.authenticationId, 'refreshes'),
            () => {},
          );
        }
        return {
          head,
          exchange,
          attempts: state.attempts,
          credentialReplaced: state.credentialReplaced,
          refusedCredential: (status === 401 || status === 403) && !hop.outsideBase ? credential : undefined,
        };
      case 'replace-credential': {
        exchange.discard(DRAIN_LIMIT);
        const fresh = await withinDeadline(
          (source as CredentialSource).replace(credential as Credential),
          state.deadlineAt,
          target,
        );
        this.#usage.count((source as CredentialSource).authenticationId, 'refreshes');
        return this.#attempt(target, call, rules, {
          ...state,
          attempts: state.attempts + 1,
          credentialReplaced: true,
          hop: { ...hop, credential: fresh },
        });
      }
      case 'retry':
        exchange.discard(DRAIN_LIMIT);
        await sleep(decision.afterMs);
        return this.#attempt(target, call, rules, {
          ...state,
          attempts: state.attempts + 1,
          retries: state.retries + 1,
        });
      case 'follow': {
        exchange.discard(DRAIN_LIMIT);
        let next: URL;
        try {
          // The URL that answered, parsed whole: `new URL(path, origin)` would read a path of
          // `//host/…` as another host, and a relative Location would follow it there.
          next = this.#egress.checkUrl(redirectTarget(new URL(hop.origin + hop.path), decision.location));
        } catch (error) {
          throw unreachable(error, target);
        }
        // RFC 9110 §15.4: credentials are for what they were configured for, only: this base URL,
        // not another origin and not another path of the same one (`/api/v2` → `/admin`).
        const outsideBase = hop.outsideBase || !isBelowBase(target, next);
        let path = next.search === '' ? next.pathname : next.pathname + next.search;
        // An API key in the query that the API echoed in its Location: never taken off the base
        // URL, and below it added once, by the credential, not a second time from the Location.
        const names = source?.names.query;
        if (names !== undefined && names.size > 0 && next.search !== '') {
          path = withoutQueryParameters(path, names);
        }
        return this.#attempt(target, call, rules, {
          ...state,
          attempts: state.attempts + 1,
          redirects: state.redirects + 1,
          hop: {
            origin: next.origin,
            host: next.host,
            path,
            outsideBase,
            credential: outsideBase ? undefined : hop.credential,
          },
        });
      }
    }
  }

  #shape(call: OutboundCall, state: CallState) {
    return { method: call.method, replayable: call.replayable, msLeft: state.deadlineAt - Date.now() };
  }
}

/**
 * Lets an entry point end a call whose caller has gone (its connection closed): the exchange in
 * flight is aborted — its receiver, if one is attached, told — and no further attempt is sent.
 */
export class CallCancellation {
  #exchange: UpstreamExchange | null = null;
  #cancelled = false;

  get cancelled(): boolean {
    return this.#cancelled;
  }

  cancel(): void {
    if (this.#cancelled) return;
    this.#cancelled = true;
    this.#exchange?.abort(CALLER_GONE);
  }

  /** The pipeline's latest exchange (the one delivered, at the end). */
  track(exchange: UpstreamExchange): void {
    this.#exchange = exchange;
    if (this.#cancelled) exchange.abort(CALLER_GONE);
  }
}

const CALLER_GONE = new EgressError('other', '', 'the caller closed its connection');

/** The answer to a call whose caller has gone: nobody reads it; it ends the call and names why in logs. */
function callerGone(target: ConnectorTarget): Problem {
  return unreachable(new EgressError('other', target.host, 'the caller closed its connection'), target);
}

function deadlinePassed(target: ConnectorTarget): EgressError {
  return new EgressError('timeout', target.host, `${target.host} did not answer in time`);
}

/**
 * `promise`, or the timeout failure of the call (upstream_failed, as when the API does not
 * answer in time) once its deadline has passed: a credential that takes longer (a slow token
 * endpoint, a refresh stuck behind a lock) does not stretch the connector's timeoutMs.
 */
function withinDeadline<T>(promise: Promise<T>, deadlineAt: number, target: ConnectorTarget): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          asGatewayProblem(
            new Problem(
              'upstream_failed',
              `No credential for ${target.host} could be had within the connector's timeout (${target.timeoutMs} ms); the API was not called.`,
              {
                hint: "The token endpoint is slow or a refresh is still under way: try again, check the authentication's token endpoint, or raise the connector's timeoutMs.",
              },
            ),
          ),
        ),
      Math.max(0, deadlineAt - Date.now()),
    );
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** An outbound failure as the answer of an execute or proxy call (upstream_failed, egress_denied, …). */
export function unreachable(error: unknown, target: ConnectorTarget): Problem {
  const classified = error instanceof EgressError ? error : classifyNetworkError(error, target.host);
  return asGatewayProblem(diagnose(classified, { step: 'api', baseUrl: target.baseUrl }));
}

function withQuery(path: string, query: string): string {
  return path.includes('?') ? `${path}&${query}` : `${path}?${query}`;
}
