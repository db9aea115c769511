import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { Problem, type ProblemCode } from '../problem.js';
import type { CallRules } from './call-decision.js';
import { type CallPipeline, type UpstreamAnswer, unreachable } from './call-pipeline.js';
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
import { resolveCallPath } from './target-url.js';

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
 * is complete or the caller has gone. Rejects with a Problem when nothing was written, for the
 * entry point to answer in the error shape.
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
  );
  writeAnswer(answer, res, own, finished);
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

/** The path with the caller's query parameters of these names removed: the credential adds its own. */
function withoutQueryParameters(pathAndQuery: string, names: ReadonlySet<string>): string {
  const at = pathAndQuery.indexOf('?');
  if (at === -1) return pathAndQuery;
  const kept = pathAndQuery
    .slice(at + 1)
    .split('&')
    .filter((pair) => {
      const name = pair.split('=')[0] ?? '';
      try {
        return !names.has(decodeURIComponent(name.replace(/\+/g, ' ')));
      } catch {
        return true;
      }
    });
  return kept.length === 0 ? pathAndQuery.slice(0, at) : `${pathAndQuery.slice(0, at)}?${kept.join('&')}`;
}

/** Writes the head and pipes the body, pausing the upstream while the caller's socket is full. */
function writeAnswer(
  answer: UpstreamAnswer,
  res: ServerResponse,
  own: OwnFields,
  finished: (status: number) => void,
): void {
  const { exchange } = answer;
  const { status } = answer.head;
  const fields = proxyResponseHeaders(answer.head.headers);
  // Grantry's own fields go last, so they win; the upstream's versions were already dropped.
  for (const name in own) fields[name] = own[name] as string;
  const diagnosis = refusalCode(answer);
  if (diagnosis !== null) fields[ERROR_HEADER] = diagnosis;

  if (res.destroyed) {
    // The caller is gone: the answer is not wanted.
    exchange.abort();
    finished(status);
    return;
  }
  try {
    res.writeHead(status, fields);
  } catch (error) {
    exchange.abort();
    // Node refuses to write a field value with control characters (RFC 9110 §5.5).
    throw new Problem('upstream_failed', 'The API answered with a header field that cannot be forwarded.', {
      hint: 'The API sent a header value with control characters; fix the API, or call it through execute, which does not forward headers verbatim.',
      provider: { status },
      status: 502,
      cause: error,
    });
  }
  let complete = false;
  res.once('close', () => {
    if (!complete) exchange.abort();
    finished(status);
  });
  const resume = () => exchange.resume();
  exchange.receive({
    chunk: (data) => {
      if (res.write(data)) return true;
      res.once('drain', resume);
      return false;
    },
    end: (last) => {
      complete = true;
      if (last === undefined) res.end();
      // Head and whole body in one write: no cork, no second syscall.
      else res.end(last);
    },
    // The head is out: a broken body can only be told by a broken connection.
    fail: () => res.destroy(),
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
