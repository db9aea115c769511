import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions } from 'node:dns';
import { isIP, type LookupFunction, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { RequestInit as UndiciRequestInit } from 'undici';
import { Agent, buildConnector, type Dispatcher, fetch as undiciFetch } from 'undici';
import { type EgressMode, EgressPolicy, isLoopbackAddress } from './address-policy.js';
import { EgressError, type EgressFailureKind } from './egress-error.js';

export type AllowHttp = 'off' | 'loopback';

/**
 * Resolves a host name to every address it has. The default is the system resolver
 * (`dns.lookup`, so /etc/hosts applies); tests and custom DNS pass their own.
 */
export type AddressResolver = (
  hostname: string,
  options: LookupAllOptions,
  callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

export const systemResolver: AddressResolver = (hostname, options, callback) => {
  dnsLookup(hostname, options, callback);
};

/**
 * `RequestInit` whose members also accept an explicit `undefined`: oauth4webapi passes
 * `body: undefined`, which plain `RequestInit` refuses under exactOptionalPropertyTypes.
 */
export type EgressFetchInit = { [K in keyof RequestInit]?: RequestInit[K] | undefined };

/** Assignable both to `typeof globalThis.fetch` and to oauth4webapi's `customFetch`. */
export type EgressFetch = (input: RequestInfo | URL, init?: EgressFetchInit) => Promise<Response>;

export interface EgressOptions {
  mode: EgressMode;
  /** `loopback` lets plain http through to 127.0.0.0/8, ::1 and localhost only (GRANTRY_ALLOW_HTTP). */
  allowHttp: AllowHttp;
  /** DNS lookup plus TCP connect plus TLS handshake. Default 10 s. */
  connectTimeoutMs?: number;
  /** From sending the request until the response headers arrive. Default 30 s. */
  headersTimeoutMs?: number;
  /** Longest silence between two body chunks. Default 30 s. */
  bodyTimeoutMs?: number;
  /** Cap for bodies read through `fetch`. Default 10 MiB. */
  maxResponseBytes?: number;
  /** How long an idle keep-alive connection is kept. Default: undici's (4 s, or the server's hint). */
  keepAliveTimeoutMs?: number;
  /** Connections per origin. Default 128. */
  connections?: number;
  /** Where host names are resolved. Default `systemResolver`. */
  resolver?: AddressResolver;
}

export interface EgressRequestOptions {
  url: string | URL;
  method: string;
  headers?: Record<string, string | string[]>;
  body?: string | Uint8Array | NodeJS.ReadableStream | null;
  /** Deadline for the whole exchange, body included; on expiry the request fails with kind `timeout`. */
  timeoutMs?: number;
  /** The caller's own cancellation; an abort rejects with the signal's reason, not an EgressError. */
  signal?: AbortSignal;
}

export interface EgressResponse {
  status: number;
  headers: Record<string, string | string[]>;
  /**
   * The undici body stream. The caller must consume it or destroy it: an unread body holds its
   * connection out of the keep-alive pool.
   */
  body: Dispatcher.ResponseData['body'];
  /** `host[:port]` the response came from, safe to show. */
  host: string;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_HEADERS_TIMEOUT_MS = 30_000;
const DEFAULT_BODY_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024;
const DEFAULT_CONNECTIONS = 128;
/**
 * Client-certificate pools kept at once. A pool per authentication that uses mutual TLS is a
 * handful in practice; the bound keeps a stream of certificates (key rotations, many tenants) from
 * growing the map, and its sockets, without end.
 */
const CERTIFICATE_POOLS = 32;

/**
 * The one outbound HTTP client of Grantry. Every URL goes through `checkUrl` (https only, plain http
 * only to loopback when allowed), and every connection through the address policy, checked on the
 * addresses DNS returned before connecting and again on the address actually connected to, so a
 * name that resolves (or re-resolves: DNS rebinding) to a forbidden address is refused before any
 * byte is sent. Redirects are never followed: `fetch` forces `redirect: 'manual'` and `request`
 * returns the 3xx as is.
 */
export class Egress {
  /**
   * The undici Agent behind every call (one keep-alive pool per origin), usable directly with
   * undici APIs: the address policy and the plain-http rule are enforced by its connector, so the
   * policy costs one check per connection, not per request.
   */
  readonly dispatcher: Agent;
  readonly policy: EgressPolicy;
  readonly allowHttp: AllowHttp;
  readonly maxResponseBytes: number;
  readonly #agentOptions: Agent.Options;
  readonly #connectorOptions: PolicyConnectorOptions;
  /**
   * One pool per client certificate (mutual TLS, RFC 8705), by its SHA-256 fingerprint, the most
   * recently used last; at most CERTIFICATE_POOLS (see `#certificateAgent`).
   */
  readonly #certificateAgents = new Map<string, { agent: Agent; fetch: EgressFetch }>();

  constructor(options: EgressOptions) {
    if (options.allowHttp !== 'off' && options.allowHttp !== 'loopback') {
      throw new TypeError(`unknown allowHttp setting: ${String(options.allowHttp)}`);
    }
    this.policy = new EgressPolicy(options.mode);
    this.allowHttp = options.allowHttp;
    this.maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.#connectorOptions = {
      policy: this.policy,
      allowHttp: this.allowHttp,
      connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      resolver: options.resolver ?? systemResolver,
    };
    const connect = createPolicyConnector(this.#connectorOptions);
    const agentOptions: Agent.Options = {
      connect,
      connections: options.connections ?? DEFAULT_CONNECTIONS,
      headersTimeout: options.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS,
      bodyTimeout: options.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS,
    };
    if (options.keepAliveTimeoutMs !== undefined) agentOptions.keepAliveTimeout = options.keepAliveTimeoutMs;
    this.#agentOptions = agentOptions;
    this.dispatcher = new Agent(agentOptions);
    this.fetch = this.#fetchThrough(this.dispatcher);
  }

  /**
   * A dispatcher whose TLS connections present a client certificate (mutual TLS, RFC 8705), under
   * the same address policy, timeouts and https rule as every other call. One keep-alive pool per
   * certificate (the CERTIFICATE_POOLS most recently used are kept: one per authentication using mTLS); its
   * connections never carry another certificate, and the shared pool never carries this one — so the
   * certificate reaches only the servers a caller sends through this dispatcher.
   */
  clientCertificateDispatcher(certificate: ClientCertificateMaterial): Agent {
    return this.#certificateAgent(certificate).agent;
  }

  /** `fetch` through {@link clientCertificateDispatcher}: for token and revocation requests with mTLS. */
  clientCertificateFetch(certificate: ClientCertificateMaterial): EgressFetch {
    return this.#certificateAgent(certificate).fetch;
  }

  #certificateAgent(certificate: ClientCertificateMaterial): { agent: Agent; fetch: EgressFetch } {
    const agents = this.#certificateAgents;
    const found = agents.get(certificate.sha256);
    if (found !== undefined) {
      // Most recently used last: a Map iterates in insertion order.
      agents.delete(certificate.sha256);
      agents.set(certificate.sha256, found);
      return found;
    }
    if (agents.size >= CERTIFICATE_POOLS) {
      // The least recently used pool is forgotten, not closed: a credential made earlier may still
      // hold it and send through it. Its idle connections are unreferenced and close after the
      // keep-alive timeout, and nothing then keeps it alive; a certificate used again gets a new one.
      const oldest = agents.keys().next().value as string;
      agents.delete(oldest);
    }
    const agent = new Agent({
      ...this.#agentOptions,
      connect: createPolicyConnector({
        ...this.#connectorOptions,
        clientCertificate: { key: certificate.key, cert: certificate.cert },
      }),
    });
    const entry = { agent, fetch: this.#fetchThrough(agent) };
    agents.set(certificate.sha256, entry);
    return entry;
  }

  /**
   * Parses (when given a string) and vets a URL: https, or http to 127.0.0.0/8, ::1 or localhost
   * when `allowHttp` is `loopback`. Anything else throws `EgressError('insecure_url')`.
   */
  checkUrl(input: string | URL): URL {
    let url: URL;
    if (typeof input === 'string') {
      try {
        url = new URL(input);
      } catch (err) {
        throw new EgressError('insecure_url', '', 'not a valid absolute URL', { cause: err });
      }
    } else {
      url = input;
    }
    if (url.protocol === 'https:') return url;
    if (url.protocol === 'http:' && this.allowHttp === 'loopback' && isLoopbackHost(url.hostname)) return url;
    throw new EgressError(
      'insecure_url',
      url.host,
      url.protocol === 'http:'
        ? `plain http to ${url.host} is not allowed: use https (http is only allowed to loopback with GRANTRY_ALLOW_HTTP=loopback)`
        : `${url.protocol} URLs are not allowed: use https`,
    );
  }

  /**
   * WHATWG fetch over this client, for oauth4webapi's `customFetch` (token, revocation, discovery).
   * `redirect: 'manual'` is forced: a 3xx comes back as is, never followed. The body is capped at
   * `maxResponseBytes` (reading past it fails with kind `too_large`), so the returned Response is
   * rebuilt around the capped stream and its `url` is empty. Network failures reject with an
   * EgressError; an abort by the caller's own signal rejects with that signal's reason.
   */
  readonly fetch: EgressFetch;

  #fetchThrough(dispatcher: Dispatcher): EgressFetch {
    return async (input, init) => {
      const isRequest = typeof input !== 'string' && !(input instanceof URL);
      const url = this.checkUrl(isRequest ? input.url : input);
      const forced = { dispatcher, redirect: 'manual' } as const;
      const undiciInit = (
        isRequest
          ? {
              method: input.method,
              headers: input.headers,
              body: input.body,
              duplex: 'half',
              signal: input.signal,
              ...init,
              ...forced,
            }
          : { ...init, ...forced }
      ) as UndiciRequestInit;
      const callerSignal = init?.signal ?? (isRequest ? input.signal : null);
      let response: Awaited<ReturnType<typeof undiciFetch>>;
      try {
        response = await undiciFetch(url, undiciInit);
      } catch (err) {
        throw failure(err, url.host, callerSignal);
      }
      return capResponse(response, this.maxResponseBytes, url.host) as unknown as Response;
    };
  }

  /**
   * One HTTP exchange on the keep-alive pool of the URL's origin (the hot path of the proxy).
   * Redirects are returned, not followed; use `isRedirect` / `redirectTarget`, and drop
   * Authorization when the target is on another origin.
   */
  async request(options: EgressRequestOptions): Promise<EgressResponse> {
    const url = this.checkUrl(options.url);
    const host = url.host;
    let signal: AbortSignal | null = options.signal ?? null;
    if (options.timeoutMs !== undefined) {
      const deadline = AbortSignal.timeout(options.timeoutMs);
      signal = signal === null ? deadline : AbortSignal.any([signal, deadline]);
    }
    try {
      const response = await this.dispatcher.request({
        origin: url.origin,
        path: url.search === '' ? url.pathname : url.pathname + url.search,
        method: options.method as Dispatcher.HttpMethod,
        headers: options.headers ?? null,
        body: (options.body ?? null) as string | Uint8Array | Readable | null,
        signal,
      });
      return {
        status: response.statusCode,
        headers: response.headers as Record<string, string | string[]>,
        body: response.body,
        host,
      };
    } catch (err) {
      throw failure(err, host, options.signal ?? null);
    }
  }

  /** Closes every pooled connection once the requests in flight are done. */
  async close(): Promise<void> {
    await Promise.all([
      this.dispatcher.close(),
      ...[...this.#certificateAgents.values()].map((e) => e.agent.close()),
    ]);
  }
}

/** RFC 9110 §15.4: the 3xx statuses that carry a Location to follow (not 300, 304 or 305). */
export function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

/**
 * Resolves a Location header against the URL that answered (RFC 9110 §10.2.2). The result still
 * has to pass `checkUrl` (every request method calls it). A redirect to another origin must not
 * carry the Authorization header or other credentials: callers strip them.
 */
export function redirectTarget(base: URL, location: string): URL {
  try {
    return new URL(location, base);
  } catch (err) {
    throw new EgressError('other', base.host, `${base.host} redirected to an invalid Location`, {
      cause: err,
    });
  }
}

const KIND_BY_CODE: ReadonlyMap<string, EgressFailureKind> = new Map<string, EgressFailureKind>([
  ['ENOTFOUND', 'dns'],
  ['EAI_AGAIN', 'dns'],
  ['EAI_FAIL', 'dns'],
  ['EAI_NONAME', 'dns'],
  ['EAI_NODATA', 'dns'],
  ['ENODATA', 'dns'],
  ['ECONNREFUSED', 'refused'],
  ['EHOSTUNREACH', 'unreachable'],
  ['ENETUNREACH', 'unreachable'],
  ['EHOSTDOWN', 'unreachable'],
  ['ENETDOWN', 'unreachable'],
  ['EADDRNOTAVAIL', 'unreachable'],
  ['ECONNRESET', 'reset'],
  ['ECONNABORTED', 'reset'],
  ['EPIPE', 'reset'],
  ['UND_ERR_SOCKET', 'reset'],
  ['UND_ERR_CLOSED', 'reset'],
  ['UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'reset'],
  ['UND_ERR_CONNECT_TIMEOUT', 'timeout'],
  ['UND_ERR_HEADERS_TIMEOUT', 'timeout'],
  ['UND_ERR_BODY_TIMEOUT', 'timeout'],
  ['ETIMEDOUT', 'timeout'],
  ['UND_ERR_RES_EXCEEDED_MAX_SIZE', 'too_large'],
  ['EPROTO', 'tls'],
  ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'tls'],
  ['UNABLE_TO_GET_ISSUER_CERT', 'tls'],
  ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'tls'],
  ['HOSTNAME_MISMATCH', 'tls'],
]);

const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|ERR_OSSL_)|CERT/;
const SAFE_CODE = /^[A-Z0-9_]{1,64}$/;

/**
 * Turns whatever a failed outbound call threw (undici errors, `fetch failed` TypeErrors with a
 * cause, Node socket errors, AggregateErrors from dual-stack connects, AbortSignal timeouts) into
 * an EgressError whose message names only the host and what happened.
 */
export function classifyNetworkError(err: unknown, host: string): EgressError {
  const found = findFailure(err, 0);
  if (found instanceof EgressError) return found;
  const kind = found?.kind ?? 'other';
  const code = found?.code ?? codeOf(err);
  const suffix = code !== undefined && SAFE_CODE.test(code) ? ` (${code})` : '';
  return new EgressError(kind, host, `${describe(kind, host)}${suffix}`, { cause: err });
}

interface Failure {
  kind: EgressFailureKind;
  code: string | undefined;
}

function findFailure(err: unknown, depth: number): EgressError | Failure | null {
  if (depth > 8 || typeof err !== 'object' || err === null) return null;
  if (err instanceof EgressError) return err;
  const code = codeOf(err);
  if (code !== undefined) {
    const kind = KIND_BY_CODE.get(code) ?? (TLS_CODE.test(code) ? 'tls' : undefined);
    if (kind !== undefined) return { kind, code };
  }
  if ((err as { name?: unknown }).name === 'TimeoutError') return { kind: 'timeout', code: undefined };
  if (err instanceof AggregateError) {
    for (const inner of err.errors) {
      const found = findFailure(inner, depth + 1);
      if (found !== null) return found;
    }
  }
  return findFailure((err as { cause?: unknown }).cause, depth + 1);
}

function codeOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

function describe(kind: EgressFailureKind, host: string): string {
  switch (kind) {
    case 'dns':
      return `could not resolve ${host}`;
    case 'refused':
      return `${host} refused the connection`;
    case 'unreachable':
      return `${host} is unreachable`;
    case 'reset':
      return `the connection to ${host} was closed or reset`;
    case 'tls':
      return `TLS handshake with ${host} failed`;
    case 'timeout':
      return `${host} did not answer in time`;
    case 'too_large':
      return `the response from ${host} is too large`;
    case 'denied':
      return `the egress policy refused ${host}`;
    case 'insecure_url':
      return `the URL for ${host} is not allowed`;
    case 'other':
      return `the request to ${host} failed`;
  }
}

/**
 * A cancellation by the caller stays what it is; everything else, the caller's own
 * `AbortSignal.timeout()` included, becomes an EgressError.
 */
function failure(err: unknown, host: string, callerSignal: AbortSignal | null): unknown {
  if (callerSignal?.aborted && !isTimeoutReason(callerSignal.reason)) return err;
  return classifyNetworkError(err, host);
}

function isTimeoutReason(reason: unknown): boolean {
  return (
    typeof reason === 'object' && reason !== null && (reason as { name?: unknown }).name === 'TimeoutError'
  );
}

function tooLarge(host: string, maxBytes: number): EgressError {
  return new EgressError('too_large', host, `the response from ${host} is larger than ${maxBytes} bytes`);
}

function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || isLoopbackAddress(hostname);
}

type UndiciResponse = Awaited<ReturnType<typeof undiciFetch>>;

const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

function capResponse(response: UndiciResponse, maxBytes: number, host: string): UndiciResponse {
  const source = response.body;
  if (source === null || NULL_BODY_STATUSES.has(response.status)) return response;
  // A declared length within the cap already bounds the body: the HTTP/1.1 parser reads exactly
  // Content-Length bytes (RFC 9112 §6.3) and fails the response on fewer. Not so for an encoded
  // body, which fetch decodes to any size.
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  const encoding = response.headers.get('content-encoding');
  if (
    Number.isSafeInteger(declared) &&
    declared <= maxBytes &&
    (encoding === null || encoding === 'identity')
  ) {
    return response;
  }
  const reader = source.getReader();
  let received = 0;
  const capped = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const next = await reader.read();
          if (next.done) {
            controller.close();
            return;
          }
          received += next.value.byteLength;
          if (received > maxBytes) {
            const error = tooLarge(host, maxBytes);
            controller.error(error);
            await reader.cancel(error).catch(() => {});
            return;
          }
          controller.enqueue(next.value);
        } catch (err) {
          controller.error(classifyNetworkError(err, host));
        }
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
  return new (response.constructor as typeof Response)(capped, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers as unknown as Headers,
  }) as unknown as UndiciResponse;
}

export interface PolicyConnectorOptions {
  policy: EgressPolicy;
  allowHttp: AllowHttp;
  connectTimeoutMs: number;
  resolver: AddressResolver;
  /** A client certificate to present in TLS handshakes (mutual TLS): PEM key and chain. */
  clientCertificate?: { key: string; cert: string } | undefined;
}

/** A client certificate with its private key (PEM) and SHA-256 fingerprint (the pool's name). */
export interface ClientCertificateMaterial {
  key: string;
  cert: string;
  sha256: string;
}

/**
 * A `net`/`tls` lookup that resolves every address of a name and refuses the connection when any
 * of them is forbidden. Refusing on any (rather than skipping the bad ones) makes a name that
 * mixes public and internal addresses fail loudly instead of working by chance.
 */
export function createPolicyLookup(
  policy: EgressPolicy,
  resolver: AddressResolver = systemResolver,
): LookupFunction {
  return (hostname, options, callback) => {
    const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : (options.family ?? 0);
    const resolveOptions: LookupAllOptions = { all: true, family };
    if (options.hints !== undefined) resolveOptions.hints = options.hints;
    resolver(hostname, resolveOptions, (err, addresses) => {
      if (err !== null) {
        callback(err, '');
        return;
      }
      const first = addresses[0];
      if (first === undefined) {
        const notFound: NodeJS.ErrnoException = new Error(`could not resolve ${hostname}`);
        notFound.code = 'ENOTFOUND';
        callback(notFound, '');
        return;
      }
      for (const entry of addresses) {
        const verdict = policy.check(entry.address);
        if (!verdict.allowed) {
          callback(deniedError(hostname, entry.address, verdict.reason), '');
          return;
        }
      }
      if (options.all === true) callback(null, addresses);
      else callback(null, first.address, first.family);
    });
  };
}

/**
 * Wraps undici's connector: literal IP hosts are checked before connecting, names through
 * `createPolicyLookup`, and the socket's remote address once more after connecting (whatever path
 * produced it). Plain http is only accepted when the peer really is a loopback address, even for a
 * caller that uses the dispatcher directly and skipped `checkUrl`.
 */
export function createPolicyConnector(options: PolicyConnectorOptions): buildConnector.connector {
  const connect = buildConnector({
    timeout: options.connectTimeoutMs,
    lookup: createPolicyLookup(options.policy, options.resolver),
    ...(options.clientCertificate === undefined
      ? {}
      : { key: options.clientCertificate.key, cert: options.clientCertificate.cert }),
  });
  const { policy, allowHttp } = options;
  return (target, callback) => {
    const host = target.host ?? target.hostname;
    if (isIP(target.hostname) !== 0) {
      const verdict = policy.check(target.hostname);
      if (!verdict.allowed) {
        const error = deniedError(host, target.hostname, verdict.reason);
        process.nextTick(() => callback(error, null));
        return;
      }
    }
    connect(target, (...result) => {
      const [err, socket] = result;
      if (err !== null) {
        callback(err, null);
        return;
      }
      const problem = checkConnectedSocket(socket, target.protocol, host, policy, allowHttp);
      if (problem === null) {
        callback(null, socket);
        return;
      }
      socket.destroy();
      callback(problem, null);
    });
  };
}

function checkConnectedSocket(
  socket: Socket,
  protocol: string,
  host: string,
  policy: EgressPolicy,
  allowHttp: AllowHttp,
): EgressError | null {
  const remote = socket.remoteAddress;
  if (remote === undefined) {
    return new EgressError('reset', host, `the connection to ${host} closed while connecting`);
  }
  const verdict = policy.check(remote);
  if (!verdict.allowed) return deniedError(host, remote, verdict.reason);
  if (protocol !== 'https:' && !(allowHttp === 'loopback' && isLoopbackAddress(remote))) {
    return new EgressError('insecure_url', host, `plain http to ${host} is not allowed: use https`);
  }
  return null;
}

function deniedError(host: string, address: string, reason: string): EgressError {
  const where = host === address ? address : `${host} (${address})`;
  return new EgressError('denied', host, `the egress policy refuses ${where}: ${reason}`);
}
