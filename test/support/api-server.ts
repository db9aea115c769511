/**
 * "The third-party REST API" for integration tests: a real HTTPS server on 127.0.0.1 that checks
 * bearer tokens (RFC 6750) through a test-supplied `verify` and records what it was sent.
 *
 * Routes:
 *   GET|POST /echo       → 200 JSON { method, path, query, headers, body }
 *   GET /text            → 200 text/plain
 *   GET /status/:code    → that status, JSON { status }
 *   GET /large/:bytes    → streams that many bytes of application/octet-stream, never buffered
 *   POST /sink           → consumes the body, answers JSON { bytes }
 *   GET /redirect?to=URL → 302 to URL
 *   anything else        → echo
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { issueServerCertificate } from './tls.js';

export type VerifyResult = boolean | { ok: boolean; wwwAuthenticate?: string; status?: 401 | 403 };

export interface ApiServerOptions {
  /** Decides whether the bearer token is acceptable; called once per request that carries one. */
  verify: (token: string) => Promise<VerifyResult>;
  /**
   * Decides instead of `verify`, from the whole request: for credentials that are not bearer
   * tokens (an API key in a header or the query, Basic).
   */
  authenticate?: (request: { headers: IncomingHttpHeaders; query: URLSearchParams }) => Promise<VerifyResult>;
  /** Serve plain HTTP instead of HTTPS (proxy benchmarks). Default false. */
  http?: boolean;
  /** Host name in `url`; default 'localhost' for HTTPS, '127.0.0.1' for HTTP. Listens on 127.0.0.1. */
  hostname?: 'localhost' | '127.0.0.1';
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  /** The body as text, or '' when it was larger than the recording cap (see `size`). */
  body: string;
  /** Bytes received in the body. */
  size: number;
  /** The bearer token sent, if any. */
  token?: string;
}

/**
 * Forced behaviour, for tests of the caller's reaction:
 * - 'normal': verify tokens, serve routes.
 * - 'always-401': every request → 401 `Bearer error="invalid_token"`, whatever the token.
 * - { kind: 'unauthorized-next', count }: the next `count` requests → 401 invalid_token whatever the
 *   token, then back to 'normal' (for "retry once with a fresh token" tests).
 * - 'insufficient-scope': every authenticated request → 403 `Bearer error="insufficient_scope", scope="<scope>"`.
 * - { status, headers?, body? }: every request gets exactly this response.
 */
export type ApiBehaviour =
  | 'normal'
  | 'always-401'
  | { kind: 'unauthorized-next'; count: number }
  | { kind: 'insufficient-scope'; scope: string }
  | { status: number; headers?: Record<string, string>; body?: string };

export interface ApiFixture {
  /** `https://localhost:<port>` (or `http://127.0.0.1:<port>` with `http: true`), no trailing slash. */
  readonly url: string;
  readonly port: number;
  /** Every request received, in order of arrival (recorded when its body has been read). */
  readonly requests: RecordedRequest[];
  setBehaviour(behaviour: ApiBehaviour): void;
  /** Clears `requests`. */
  reset(): void;
  close(): Promise<void>;
}

const RECORD_BODY_LIMIT = 1024 * 1024;
const INVALID_TOKEN = 'Bearer error="invalid_token"';

function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    ...headers,
  });
  res.end(body);
}

/** Reads the body, keeping at most RECORD_BODY_LIMIT bytes and counting the rest. */
async function consumeBody(req: IncomingMessage): Promise<{ text: string; size: number }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= RECORD_BODY_LIMIT) chunks.push(chunk);
  }
  return { text: size <= RECORD_BODY_LIMIT ? Buffer.concat(chunks).toString('utf8') : '', size };
}

function bearerToken(req: IncomingMessage): string | undefined {
  // RFC 9449 §7.1: a DPoP-bound token comes with the DPoP scheme (its proof is not checked here).
  const match = /^(?:Bearer|DPoP)\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return match?.[1];
}

function streamBytes(res: ServerResponse, total: number): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  let sent = 0;
  const pump = (): void => {
    while (sent < total) {
      const size = Math.min(chunk.length, total - sent);
      sent += size;
      if (!res.write(size === chunk.length ? chunk : chunk.subarray(0, size))) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  res.on('close', () => {
    sent = total;
  });
  pump();
}

export async function startApiServer(options: ApiServerOptions): Promise<ApiFixture> {
  const { verify } = options;
  const requests: RecordedRequest[] = [];
  let behaviour: ApiBehaviour = 'normal';

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://api.invalid');
    const token = bearerToken(req);
    const { text, size } = await consumeBody(req);
    const record: RecordedRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: req.headers,
      body: text,
      size,
      ...(token !== undefined ? { token } : {}),
    };
    requests.push(record);

    if (typeof behaviour === 'object' && 'status' in behaviour) {
      res.writeHead(behaviour.status, behaviour.headers ?? {});
      res.end(behaviour.body ?? '');
      return;
    }
    let forcedUnauthorized = behaviour === 'always-401';
    if (typeof behaviour === 'object' && 'kind' in behaviour && behaviour.kind === 'unauthorized-next') {
      forcedUnauthorized = true;
      const remaining = behaviour.count - 1;
      behaviour = remaining > 0 ? { kind: 'unauthorized-next', count: remaining } : 'normal';
    }
    if (forcedUnauthorized || (token === undefined && options.authenticate === undefined)) {
      sendJson(res, 401, { error: 'invalid_token' }, { 'www-authenticate': INVALID_TOKEN });
      return;
    }

    const verdict =
      options.authenticate === undefined
        ? await verify(token as string)
        : await options.authenticate({ headers: req.headers, query: url.searchParams });
    const ok = typeof verdict === 'boolean' ? verdict : verdict.ok;
    if (!ok) {
      const status = typeof verdict === 'object' ? (verdict.status ?? 401) : 401;
      const challenge =
        typeof verdict === 'object' ? (verdict.wwwAuthenticate ?? INVALID_TOKEN) : INVALID_TOKEN;
      sendJson(
        res,
        status,
        { error: status === 403 ? 'insufficient_scope' : 'invalid_token' },
        {
          'www-authenticate': challenge,
        },
      );
      return;
    }
    if (typeof behaviour === 'object' && 'kind' in behaviour && behaviour.kind === 'insufficient-scope') {
      // RFC 6750 §3.1: insufficient_scope is a 403 that names the scope needed.
      sendJson(
        res,
        403,
        { error: 'insufficient_scope' },
        {
          'www-authenticate': `Bearer error="insufficient_scope", scope="${behaviour.scope}"`,
        },
      );
      return;
    }

    const segments = url.pathname.split('/').filter((s) => s !== '');
    const route = `${req.method} /${segments[0] ?? ''}`;
    if (route === 'GET /text') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('hello from the test API');
    } else if (route === 'GET /status' && segments[1] !== undefined) {
      const status = Number(segments[1]);
      sendJson(res, status >= 200 && status <= 599 ? status : 400, { status });
    } else if (route === 'GET /large' && segments[1] !== undefined) {
      streamBytes(res, Math.max(0, Math.floor(Number(segments[1])) || 0));
    } else if (route === 'POST /sink') {
      sendJson(res, 200, { bytes: size });
    } else if (route === 'GET /redirect') {
      res.writeHead(302, { location: url.searchParams.get('to') ?? '/echo' });
      res.end();
    } else {
      sendJson(res, 200, {
        method: record.method,
        path: record.path,
        query: record.query,
        headers: record.headers,
        body: record.body,
      });
    }
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendJson(res, 500, { error: 'test API failure' });
      else res.destroy();
    });
  };

  let server: Server;
  if (options.http) {
    server = createHttpServer(onRequest);
  } else {
    const { cert, key } = issueServerCertificate(['localhost', '127.0.0.1']);
    server = createHttpsServer({ cert, key }, onRequest);
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: options.http
      ? `http://${options.hostname ?? '127.0.0.1'}:${port}`
      : `https://${options.hostname ?? 'localhost'}:${port}`,
    port,
    requests,
    setBehaviour(next: ApiBehaviour) {
      behaviour = next;
    },
    reset() {
      requests.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
