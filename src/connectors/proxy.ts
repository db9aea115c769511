import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { Problem, type ProblemCode } from '../problem.js';
import type { CachedToken } from '../tokens/token-manager.js';
import type { ConnectorTarget } from './connector-cache.js';
import type { ConnectorEngine } from './execute.js';
import { proxyRequestHeaders, proxyResponseHeaders } from './http-headers.js';
import { resolveCallPath } from './target-url.js';

/**
 * Bodies up to this size are read into memory before forwarding, so that the request can be sent
 * again with a fresh token after a 401. Larger (or chunked) bodies stream straight through and a
 * 401 is passed back to the caller, since the bytes already sent cannot be sent twice.
 */
export const REPLAYABLE_BODY_BYTES = 64 * 1024;

export interface IncomingProxyCall {
  method: string;
  /** What follows `/proxy/:connectorId` in the request target, still percent-encoded, query included. */
  target: string;
  headers: IncomingHttpHeaders;
  /** The raw request body stream; read only when the request has a body. */
  body: Readable;
}

export interface ProxiedResponse {
  status: number;
  headers: Record<string, string | string[]>;
  /** The upstream body stream, to be piped to the caller (never buffered). */
  body: Dispatcher.ResponseData['body'];
  /** The diagnosis of a 401/403 passed through, for the `x-grantry-error` header; else null. */
  diagnosis: ProblemCode | null;
}

/**
 * The transparent proxy: method, path, query, headers and body to `baseUrl + path`, the token
 * added, the answer streamed back unchanged (3xx included: redirects are the caller's business),
 * except for the fields that would speak for Grantry's own origin (`proxyResponseHeaders`).
 *
 * It takes no share of the execute buffer budget (ExecuteBufferBudget): no answer is buffered —
 * it is piped to the caller as it arrives and backpressure bounds what one call holds — and a
 * request body is held only up to REPLAYABLE_BODY_BYTES.
 *
 * Uses the egress dispatcher directly: its connector enforces the address policy and the https
 * rule, and the base URL was vetted once when the connector was compiled.
 */
export async function forwardThroughConnector(
  engine: ConnectorEngine,
  target: ConnectorTarget,
  incoming: IncomingProxyCall,
): Promise<ProxiedResponse> {
  if (target.urlProblem !== null) throw engine.unreachable(target.urlProblem, target);
  const resolved = resolveCallPath(target, incoming.target);
  if (!resolved.ok) {
    throw new Problem('validation_failed', 'The proxied path is not allowed.', {
      errors: [{ path: '/path', message: resolved.message }],
    });
  }

  const declared = incoming.headers['content-length'];
  const chunked = incoming.headers['transfer-encoding'] !== undefined;
  let body: Buffer | Readable | null = null;
  let replayable = true;
  if (chunked || (declared !== undefined && Number(declared) > REPLAYABLE_BODY_BYTES)) {
    body = incoming.body;
    replayable = false;
  } else if (declared !== undefined && declared !== '0') {
    body = await readSmallBody(incoming.body);
  }
  const headers = proxyRequestHeaders(target.headers, incoming.headers, !replayable && !chunked);

  const authId = target.authId;
  let token: CachedToken | undefined;
  if (authId !== null) {
    engine.usage.count(authId, 'calls');
    token = await engine.token(authId);
  }
  const request: Dispatcher.RequestOptions = {
    origin: target.origin,
    path: resolved.pathAndQuery,
    method: incoming.method as Dispatcher.HttpMethod,
    headers,
    body,
    headersTimeout: target.timeoutMs,
  };

  for (let retried = false; ; retried = true) {
    if (token !== undefined) headers.authorization = token.authorization;
    let response: Dispatcher.ResponseData;
    try {
      response = await engine.egress.dispatcher.request(request);
      engine.observer.upstreamResponded(response.statusCode);
    } catch (error) {
      engine.observer.upstreamFailed();
      throw engine.unreachable(error, target);
    }
    const status = response.statusCode;
    let diagnosis: ProblemCode | null = null;
    if (status === 401 && token !== undefined && authId !== null) {
      engine.usage.count(authId, 'unauthorized');
      // While fresh tokens of this authentication are refused too, no new one is forced: neither
      // for a replay nor in the background (RefusedTokenBackoff).
      const backoff = engine.tokens.refusalBackoff;
      const pausedUntil = backoff.refused(token, retried);
      if (replayable && !retried && pausedUntil === null) {
        await response.body.dump({ limit: REPLAYABLE_BODY_BYTES }).catch(() => {});
        token = await engine.token(authId, token);
        backoff.replaced(token);
        engine.usage.count(authId, 'refreshes');
        continue;
      }
      diagnosis = 'upstream_unauthorized';
      // The refused token must not serve the next call; fetched once for all callers refused now.
      // Its refusal by the next call, soon, starts the pause.
      if (!retried && pausedUntil === null) {
        Promise.resolve(engine.token(authId, token)).then(
          (fresh) => backoff.replaced(fresh),
          () => {},
        );
      }
    } else if (status === 403 && token !== undefined) {
      diagnosis = 'upstream_forbidden';
    }
    return {
      status,
      headers: proxyResponseHeaders(response.headers),
      body: response.body,
      diagnosis,
    };
  }
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
