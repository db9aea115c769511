import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { Problem, type ProblemCode } from '../problem.js';
import type { CallRules } from './call-decision.js';
import { CallCancellation, type CallPipeline, type UpstreamAnswer, unreachable } from './call-pipeline.js';
import {
  isDpopProofRefusal,
  PASS_REDIRECTS_THROUGH,
  PROXY_RETRY,
  proxiedBodyHandling,
  REPLAYABLE_BODY_BYTES,
} from './call-policy.js';
import type { ConnectorTarget } from './connector-cache.js';
import {
  firstValue,
  proxyRequestFields,
  proxyResponseHeaders,
  readProxiedRequestHead,
} from './http-headers.js';
import { resolveCallPath, withoutEchoedCredential, withoutQueryParameters } from './target-url.js';

/** The proxy: connection failures that are safe to repeat are retried; statuses and redirects are the caller's. */
export const PROXY_RULES: CallRules = { retry: PROXY_RETRY, redirects: PASS_REDIRECTS_THROUGH };

export interface IncomingProxyCall {
  method: string;
  /** What follows `/proxy/:connectorId` in the request target, still percent-encoded, query included. */
  target: string;
  /** Node's `rawHeaders`: names as sent, repeats kept. */
  rawHeaders: readonly string[];
  /** The raw request body stream; read only when the request has a body. */
  body: Readable;
}

/** Fields Grantry sets on every proxied answer itself (x-request-id, cache-control, …), written last. */
export type OwnFields = Readonly<Record<string, string>>;

/**
 * The field that names Grantry's own diagnosis (an error code) on a proxied answer, so a caller can
 * tell Grantry's failures, and its reading of an upstream 401/403, from the upstream's own answer.
 */
export const ERROR_HEADER = 'x-grantry-error';

/**
 * The transparent proxy: method, path, query, headers and body to `baseUrl + path` through the
 * call pipeline (credential added, connection failures that are safe to repeat retried, a refused
 * credential replaced once when the body can be sent again), the answer streamed back unchanged
 * (3xx included: redirects are the caller's business), except for the fields that would speak for
 * Grantry's own origin (`proxyResponseHeaders`).
 *
 * It takes no share of the execute buffer budget (ExecuteBufferBudget): no answer is buffered —
 * each chunk is written to the caller as undici hands it over, and the upstream connection pauses
 * while the caller's socket is full — and a request body is held only up to REPLAYABLE_BODY_BYTES.
 *
 * Resolves once the answer's head is written, with its status; `finished` is told when the answer
 * is complete or the caller has gone after that. Rejects with a Problem when nothing was written,
 * for the entry point to answer in the error shape — also when the upstream's body fails before
 * its first byte (the head is held until then, so that failure is a 502, not an empty reply).
 * When the caller goes away first, the upstream request is aborted and nothing more is sent.
 */
export async function forwardThroughConnector(
  pipeline: CallPipeline,
  target: ConnectorTarget,
  incoming: IncomingProxyCall,
  res: ServerResponse,
  own: OwnFields,
  finished: (status: number) => void,
): Promise<number> {
  if (target.urlProblem !== null) throw unreachable(target.urlProblem, target);
  const resolved = resolveCallPath(target, incoming.target);
  if (!resolved.ok) {
    throw new Problem('validation_failed', 'The proxied path is not allowed.', {
      errors: [{ path: '/path', message: resolved.message }],
    });
  }
  const head = readProxiedRequestHead(incoming.rawHeaders);
  const names = target.credentials?.names;
  // An OAuth token goes in Authorization, which the caller's fields never carry on (it holds the
  // caller's Grantry key); other credentials (an API key) may share a name with a caller's field.
  if (names !== undefined && (names.headers.size > 1 || !names.headers.has('authorization'))) {
    dropFields(head.fields, names.headers);
  }
  const pathAndQuery =
    names === undefined || names.query.size === 0
      ? resolved.pathAndQuery
      : withoutQueryParameters(resolved.pathAndQuery, names.query);
  const handling = proxiedBodyHandling(head.contentLength, head.chunked);
  const writer = new AnswerWriter(res, own, target, finished);
  const body =
    handling === 'none' ? null : handling === 'buffer' ? await readSmallBody(incoming.body) : incoming.body;
  const answer = await pipeline.run(
    target,
    {
      method: incoming.method,
      path: pathAndQuery,
      headers: proxyRequestFields(head, target.headerList, handling === 'stream' && !head.chunked),
      headersOutsideBase: [],
      body,
      replayable: handling !== 'stream',
    },
    PROXY_RULES,
    undefined,
    writer.cancellation,
  );
  const writing = writer.write(answer);
  if (writing !== null) await writing;
  return answer.head.status;
}

/** Removes the fields of these names from a `[name, value, …]` list, in place: the credential sets them. */
function dropFields(fields: string[], names: ReadonlySet<string>): void {
  let kept = 0;
  for (let index = 0; index < fields.length; index += 2) {
    if (names.has(fields[index] as string)) continue;
    fields[kept] = fields[index] as string;
    fields[kept + 1] = fields[index + 1] as string;
    kept += 2;
  }
  fields.length = kept;
}

/**
 * Writes one proxied answer to the caller: the head with the first body bytes (or the end), then
 * every chunk as undici hands it over, the upstream paused while the caller's socket is full.
 *
 * The head is written when the body's first bytes (or its end) are there — when Node would send
 * it anyway, as it holds a head until the first write — so a body that fails before its first
 * byte (the API resets the connection after its head) is answered as a 502 problem, not with a
 * status line and a cut connection, or an empty reply.
 * Owns the caller's `close`: it cancels the upstream call when the caller goes first, and tells
 * `finished` once a written answer is done with.
 */
class AnswerWriter {
  readonly cancellation = new CallCancellation();
  readonly #res: ServerResponse;
  readonly #own: OwnFields;
  readonly #target: ConnectorTarget;
  readonly #finished: (status: number) => void;
  /** The status once the head is written; 0 before. */
  #status = 0;
  #complete = false;

  constructor(
    res: ServerResponse,
    own: OwnFields,
    target: ConnectorTarget,
    finished: (status: number) => void,
  ) {
    this.#res = res;
    this.#own = own;
    this.#target = target;
    this.#finished = finished;
    res.once('close', () => {
      if (!this.#complete) this.cancellation.cancel();
      if (this.#status !== 0) finished(this.#status);
    });
  }

  /**
   * Writes `answer`. Null when its head is already written (the usual case: a small body comes
   * with its head); else a promise that resolves once it is, or rejects with a Problem when
   * nothing could be written (the body failed first, or the caller went away).
   */
  write(answer: UpstreamAnswer): Promise<void> | null {
    const { exchange } = answer;
    const res = this.#res;
    if (res.destroyed) {
      // The caller is gone: the answer is not wanted.
      exchange.abort();
      this.#finished(answer.head.status);
      return null;
    }
    const fields = this.#fields(answer);
    const status = answer.head.status;
    let settle: { resolve: () => void; reject: (error: unknown) => void } | null = null;
    let problem: Problem | null = null;
    const writeHead = (): boolean => {
      try {
        res.writeHead(status, fields);
      } catch (error) {
        exchange.abort();
        // Node refuses to write a field value with control characters (RFC 9110 §5.5).
        problem = new Problem(
          'upstream_failed',
          'The API answered with a header field that cannot be forwarded.',
          {
            hint: 'The API sent a header value with control characters; fix the API, or call it through execute, which does not forward headers verbatim.',
            provider: { status },
            status: 502,
            cause: error,
          },
        );
        settle?.reject(problem);
        return false;
      }
      this.#status = status;
      settle?.resolve();
      return true;
    };
    let draining = false;
    const resume = () => exchange.resume();
    exchange.receive({
      chunk: (data) => {
        if (this.#status === 0 && !writeHead()) return false;
        if (res.write(data)) return true;
        // One listener for the whole answer, not one per chunk that filled the socket.
        if (!draining) {
          draining = true;
          res.on('drain', resume);
        }
        return false;
      },
      end: (last) => {
        this.#complete = true;
        if (this.#status === 0 && !writeHead()) return;
        if (last === undefined) res.end();
        // Head and whole body in one write: no cork, no second syscall.
        else res.end(last);
      },
      fail: (error) => {
        // The head is out: a broken body can only be told by a broken connection.
        if (this.#status !== 0) {
          res.destroy();
          return;
        }
        this.#complete = true;
        problem = res.destroyed ? callerClosed() : unreachable(error, this.#target);
        settle?.reject(problem);
      },
    });
    if (problem !== null) throw problem;
    if (this.#status !== 0) return null;
    return new Promise<void>((resolve, reject) => {
      settle = { resolve, reject };
    });
  }

  #fields(answer: UpstreamAnswer): Record<string, string | string[]> {
    const fields = proxyResponseHeaders(answer.head.headers);
    // Grantry's own fields go last, so they win; the upstream's versions were already dropped.
    for (const name in this.#own) fields[name] = this.#own[name] as string;
    const diagnosis = refusalCode(answer);
    if (diagnosis !== null) fields[ERROR_HEADER] = diagnosis;
    // An API key sent in the query, echoed by the API in a URL it answers: never handed to the caller.
    return withoutEchoedCredential(fields, this.#target.credentials?.names.query);
  }
}

/** What a call whose caller closed its connection ends with (for the log; nobody reads it). */
function callerClosed(): Problem {
  return new Problem('upstream_failed', 'The caller closed its connection before the answer.', {
    status: 502,
  });
}

/** The diagnosis of a 401/403 to a request that carried the credential, for `x-grantry-error`. */
function refusalCode(answer: UpstreamAnswer): ProblemCode | null {
  if (answer.refusedCredential === undefined) return null;
  const challenge = firstValue(answer.head.headers['www-authenticate']);
  if (answer.refusedCredential.proof !== undefined && isDpopProofRefusal(challenge))
    return 'invalid_dpop_proof';
  return answer.head.status === 401 ? 'upstream_unauthorized' : 'upstream_forbidden';
}

async function readSmallBody(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    // Content-Length said small; a client that sends more is not believed (RFC 9112 §6.3).
    if (size > REPLAYABLE_BODY_BYTES) {
      throw new Problem('validation_failed', 'The request body is longer than its Content-Length.', {
        errors: [{ path: '', message: 'body longer than Content-Length' }],
      });
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}
