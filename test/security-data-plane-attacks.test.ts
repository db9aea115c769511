import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GrantryHandle, startGrantry } from './support/grantry.js';
import { rawRequest } from './support/raw-http.js';
import { issueServerCertificate } from './support/tls.js';

/**
 * A reviewer's attacks on the data plane (execute and the proxy), replayed over the network: a real
 * Grantry (`startGrantry`), a hand-written HTTPS API that misbehaves on purpose, a second HTTPS
 * server standing for another host an attacker wants the credential sent to, and a token endpoint
 * that can be made slow. Raw sockets where what is on the wire matters.
 */

interface Seen {
  method: string;
  /** The request target exactly as it arrived. */
  target: string;
  /** Resolves when the request's connection closed (the caller of the upstream went away). */
  closed: Promise<void>;
}

interface HttpsFixture {
  url: string;
  port: number;
  seen: Seen[];
  close(): Promise<void>;
}

async function startHttps(
  handle: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<HttpsFixture> {
  const { cert, key } = issueServerCertificate(['localhost', '127.0.0.1']);
  const seen: Seen[] = [];
  const server = createHttpsServer({ cert, key }, (req, res) => {
    res.on('error', () => {});
    const closed = new Promise<void>((resolve) => res.once('close', () => resolve()));
    seen.push({ method: req.method ?? 'GET', target: req.url ?? '/', closed });
    handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://localhost:${port}`,
    port,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const KEY = 'query-key-s3cret';
const unique = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2)}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it holds or `ms` pass. */
async function eventually(check: () => boolean, ms = 3_000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await sleep(20);
  }
}

describe('security: data-plane attacks', () => {
  let api: HttpsFixture;
  let other: HttpsFixture;
  let tokens: HttpsFixture;
  /** Delay of the token endpoint's next answers, ms. */
  let tokenDelays: number[] = [];
  let tokenCount = 0;
  let g: GrantryHandle;

  beforeAll(async () => {
    other = await startHttps((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"stolen":true}');
    });
    api = await startHttps((req, res) => {
      // Parsed whole: `new URL('//host/x', base)` would read the path as a host.
      const url = new URL(`https://api.invalid${req.url ?? '/'}`);
      req.resume();
      const path = url.pathname;
      if (path.endsWith('/network-path-hop')) {
        // An absolute Location on the same origin whose path reads as //host.
        res.writeHead(302, { location: `https://localhost:${api.port}//127.0.0.1:${other.port}/second` });
        res.end();
      } else if (path === `//127.0.0.1:${other.port}/second`) {
        res.writeHead(302, { location: 'third' });
        res.end();
      } else if (path.endsWith('/echo-to-other')) {
        // A redirect that keeps the request's query, as many do.
        res.writeHead(302, { location: `https://127.0.0.1:${other.port}/landing${url.search}` });
        res.end();
      } else if (path.endsWith('/echo-in-links')) {
        // Pagination and a canonical URL built from the request's query (RFC 8288 Link, RFC 9110
        // Content-Location), and a Refresh a browser would follow.
        res.writeHead(200, {
          link: `<https://127.0.0.1:${other.port}/items${url.search}&page=3>; rel="next", <https://127.0.0.1:${other.port}/items${url.search}>; rel="self"`,
          'content-location': `/v1/items${url.search}`,
          refresh: `0; url=https://127.0.0.1:${other.port}/x${url.search}`,
          'content-type': 'application/json',
        });
        res.end('{}');
      } else if (path.endsWith('/echo-to-self')) {
        res.writeHead(302, { location: `/v1/landing${url.search}` });
        res.end();
      } else if (path.endsWith('/refuse')) {
        res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' });
        res.end();
      } else if (path.endsWith('/never')) {
        // Holds the request until its caller goes away.
      } else if (path.endsWith('/reset')) {
        req.socket.destroy();
      } else if (path.endsWith('/reset-after-head')) {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '1000' });
        res.flushHeaders();
        setTimeout(() => req.socket.destroy(), 50);
      } else if (path.endsWith('/big')) {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const chunk = Buffer.alloc(16 * 1024, 0x61);
        let left = 1024; // 16 MiB in 16 KiB writes
        const pump = () => {
          while (left > 0) {
            left--;
            if (!res.write(chunk)) {
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        pump();
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ target: req.url }));
      }
    });
    tokens = await startHttps((req, res) => {
      req.resume();
      req.on('end', () => {
        tokenCount++;
        const delay = tokenDelays.shift() ?? 0;
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(
            JSON.stringify({ access_token: `tok-${tokenCount}`, token_type: 'Bearer', expires_in: 3600 }),
          );
        }, delay);
      });
    });
    g = await startGrantry();
  });
  afterAll(async () => {
    await g?.stop();
    await api?.close();
    await other?.close();
    await tokens?.close();
  });

  async function connector(baseUrl: string, authentication: Record<string, unknown> | null, over = {}) {
    let authenticationId: string | undefined;
    if (authentication !== null) {
      const auth = await g.api('POST', '/api/authentications', { name: unique('auth'), ...authentication });
      expect(auth.status, auth.text).toBe(201);
      authenticationId = auth.body.id;
    }
    const con = await g.api('POST', '/api/connectors', {
      name: unique('con'),
      baseUrl,
      ...(authenticationId === undefined ? {} : { authenticationId }),
      ...over,
    });
    expect(con.status, con.text).toBe(201);
    return con.body.id as string;
  }

  const oauth = () => ({
    type: 'oauth2',
    grantType: 'client_credentials',
    tokenUrl: `${tokens.url}/token`,
    clientId: 'svc',
    clientSecret: 'svc-secret',
  });
  const queryKey = { type: 'api_key', apiKey: KEY, apiKeyIn: 'query', apiKeyName: 'api_key' };
  const execute = (con: string, body: Record<string, unknown> | string) =>
    g.api('POST', `/api/connectors/${con}/execute`, body);

  /** A raw request to Grantry with the API key, `Connection: close`. */
  const raw = (method: string, target: string, extra = '') =>
    rawRequest(
      Number(new URL(g.url).port),
      `${method} ${target} HTTP/1.1\r\nHost: grantry\r\nAuthorization: Bearer ${g.apiKey}\r\n${extra}Connection: close\r\n\r\n`,
    );

  describe('a path that resolves to //host (SSRF through a relative redirect)', () => {
    it('execute refuses /x/..//host/… below a root base URL, and sends nothing', async () => {
      const con = await connector(api.url, oauth());
      api.seen.length = 0;
      const answer = await execute(con, { method: 'GET', path: `/x/..//127.0.0.1:${other.port}/steal` });
      expect(answer.status, answer.text).toBe(400);
      expect(answer.body.error.code).toBe('validation_failed');
      expect(answer.body.error.errors).toEqual([
        { path: '/path', message: expect.stringMatching(/\/\/host/) },
      ]);
      expect(api.seen).toEqual([]);
      expect(other.seen).toEqual([]);
    });

    it('the proxy refuses it too, as the raw target sends it', async () => {
      const con = await connector(api.url, oauth());
      api.seen.length = 0;
      const answer = await raw('GET', `/proxy/${con}/x/..//127.0.0.1:${other.port}/steal`);
      expect(answer.status, answer.raw).toBe(400);
      expect(answer.headers.get('x-grantry-error')).toEqual(['validation_failed']);
      expect(api.seen).toEqual([]);
      expect(other.seen).toEqual([]);
    });

    it('a relative Location is resolved against the whole URL that answered, never as //host', async () => {
      const con = await connector(api.url, oauth());
      api.seen.length = 0;
      const answer = await execute(con, { method: 'GET', path: '/network-path-hop' });
      expect(answer.status, answer.text).toBe(200);
      // Three requests, all to the API's own host: `third` stayed there.
      expect(answer.body.attempts).toBe(3);
      expect(api.seen.map((s) => s.target)).toEqual([
        '/network-path-hop',
        `//127.0.0.1:${other.port}/second`,
        `//127.0.0.1:${other.port}/third`,
      ]);
      expect(other.seen).toEqual([]);
    });
  });

  describe('one deadline for the whole call, the credential included', () => {
    it('a token endpoint slower than timeoutMs answers the timeout, and the API is never called late', async () => {
      const con = await connector(api.url, oauth(), { timeoutMs: 400 });
      api.seen.length = 0;
      tokenDelays = [1_500];
      const started = Date.now();
      const answer = await execute(con, { method: 'GET', path: '/items' });
      const took = Date.now() - started;
      expect(answer.status, answer.text).toBe(502);
      expect(answer.body.error.code).toBe('upstream_failed');
      expect(answer.body.error.message).toMatch(/timeout/);
      expect(took).toBeLessThan(1_300);
      // The token arrives later: nothing is sent with it for the call that was already answered.
      await sleep(1_500);
      expect(api.seen).toEqual([]);
    });

    it('a slow replacement of a refused token is raced against the same deadline', async () => {
      const con = await connector(api.url, oauth(), { timeoutMs: 600 });
      // A first token at once, to be refused.
      tokenDelays = [0];
      const warm = await execute(con, { method: 'GET', path: '/items' });
      expect(warm.status, warm.text).toBe(200);
      api.seen.length = 0;
      tokenDelays = [2_000];
      const started = Date.now();
      const answer = await execute(con, { method: 'GET', path: '/refuse' });
      expect(answer.status, answer.text).toBe(502);
      expect(answer.body.error.code).toBe('upstream_failed');
      expect(Date.now() - started).toBeLessThan(1_500);
      await sleep(2_000);
      // Only the refused attempt: the retry with the late token was never dispatched.
      expect(api.seen.map((s) => s.target)).toEqual(['/refuse']);
    });
  });

  describe('an API key sent in the query', () => {
    let con: string;
    beforeAll(async () => {
      con = await connector(`${api.url}/v1`, queryKey);
    });

    it('is not taken along by a redirect to another origin that echoes the query', async () => {
      other.seen.length = 0;
      const answer = await execute(con, { method: 'GET', path: '/echo-to-other?page=2' });
      expect(answer.status, answer.text).toBe(200);
      expect(other.seen.map((s) => s.target)).toEqual(['/landing?page=2']);
      expect(answer.text).not.toContain(KEY);
    });

    it('is sent once, not twice, on a redirect below the base URL that echoes it', async () => {
      api.seen.length = 0;
      const answer = await execute(con, { method: 'GET', path: '/echo-to-self?page=2' });
      expect(answer.status, answer.text).toBe(200);
      const landing = api.seen[1]?.target ?? '';
      expect(landing.startsWith('/v1/landing?')).toBe(true);
      expect(new URL(landing, 'https://x').searchParams.getAll('api_key')).toEqual([KEY]);
      expect(new URL(landing, 'https://x').searchParams.get('page')).toBe('2');
    });

    it('is redacted from a Location that execute hands back', async () => {
      // POST redirects are not followed: the 302 is the result.
      const answer = await execute(con, { method: 'POST', path: '/echo-to-other?page=2', body: {} });
      expect(answer.status, answer.text).toBe(200);
      expect(answer.body.status).toBe(302);
      expect(answer.text).not.toContain(KEY);
      expect(answer.body.headers.location).toBe(
        `https://127.0.0.1:${other.port}/landing?page=2&api_key=REDACTED`,
      );
    });

    it('is redacted from a Location that the proxy passes through', async () => {
      const answer = await raw('GET', `/proxy/${con}/echo-to-other?page=2`);
      expect(answer.status, answer.raw).toBe(302);
      expect(answer.raw).not.toContain(KEY);
      expect(answer.headers.get('location')).toEqual([
        `https://127.0.0.1:${other.port}/landing?page=2&api_key=REDACTED`,
      ]);
    });

    it('is redacted from Link, Content-Location and Refresh, by execute and by the proxy', async () => {
      const executed = await execute(con, { method: 'GET', path: '/echo-in-links?page=2' });
      expect(executed.status, executed.text).toBe(200);
      const proxied = await raw('GET', `/proxy/${con}/echo-in-links?page=2`);
      expect(proxied.status, proxied.raw).toBe(200);
      for (const text of [executed.text, proxied.raw]) {
        expect(text).not.toContain(KEY);
        expect(text).toContain('api_key=REDACTED');
      }
      expect(executed.body.headers.link).toBe(
        `<https://127.0.0.1:${other.port}/items?page=2&api_key=REDACTED&page=3>; rel="next", <https://127.0.0.1:${other.port}/items?page=2&api_key=REDACTED>; rel="self"`,
      );
      expect(proxied.headers.get('content-location')).toEqual(['/v1/items?page=2&api_key=REDACTED']);
      expect(proxied.headers.get('refresh')).toEqual([
        `0; url=https://127.0.0.1:${other.port}/x?page=2&api_key=REDACTED`,
      ]);
    });

    it.each(['/items?api_key=mine', '/items?page=1&api_key=mine', '/items?api%5Fkey=mine', '/items?api_key'])(
      'execute refuses the parameter in the caller path %s, naming the field',
      async (path) => {
        api.seen.length = 0;
        const answer = await execute(con, { method: 'GET', path });
        expect(answer.status, answer.text).toBe(400);
        expect(answer.body.error.code).toBe('validation_failed');
        expect(answer.body.error.errors).toEqual([
          { path: '/path', message: expect.stringMatching(/authentication/) },
        ]);
        expect(api.seen).toEqual([]);
      },
    );
  });

  it('execute answers a lone surrogate in the path with validation_failed, not a 500', async () => {
    const con = await connector(api.url, null);
    for (const path of ['/a\\ud800', '/a?q=\\udfff', '/\\udc00\\ud800']) {
      const answer = await execute(con, `{"method":"GET","path":"${path}"}`);
      expect(answer.status, answer.text).toBe(400);
      expect(answer.body.error.code).toBe('validation_failed');
      expect(answer.body.error.errors).toEqual([
        { path: '/path', message: expect.stringMatching(/Unicode/) },
      ]);
    }
  });

  describe('a caller that goes away', () => {
    /** Sends a request on a raw socket, waits for the API to see it, then closes the socket. */
    async function leaveWhileWaiting(request: string): Promise<Seen> {
      api.seen.length = 0;
      const socket: Socket = connect(Number(new URL(g.url).port), '127.0.0.1');
      socket.on('error', () => {});
      socket.write(request);
      await eventually(() => api.seen.length > 0);
      socket.destroy();
      return api.seen[0] as Seen;
    }

    it('execute aborts the upstream request', async () => {
      const con = await connector(api.url, null);
      const body = JSON.stringify({ method: 'GET', path: '/never' });
      const seen = await leaveWhileWaiting(
        `POST /api/connectors/${con}/execute HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer ${g.apiKey}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      // Without the abort the API would hold it until the connector's 30 s timeout.
      await expect(Promise.race([seen.closed.then(() => 'closed'), sleep(2_000)])).resolves.toBe('closed');
    });

    it('the proxy aborts the upstream request, and logs the call', async () => {
      const con = await connector(api.url, null);
      const seen = await leaveWhileWaiting(
        `GET /proxy/${con}/never HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer ${g.apiKey}\r\nX-Request-Id: gone-${con}\r\n\r\n`,
      );
      await expect(Promise.race([seen.closed.then(() => 'closed'), sleep(2_000)])).resolves.toBe('closed');
      await eventually(() => logLines().some((line) => line.reqId === `gone-${con}`));
      const line = logLines().find((l) => l.reqId === `gone-${con}`);
      expect(line).toMatchObject({ msg: 'request', status: 499 });
    });
  });

  describe('a proxy request Fastify routes (a spelling the front leaves to it)', () => {
    const proxySamples = async () => {
      const metrics = await g.api('GET', '/metrics');
      return Number(/^grantry_proxy_duration_seconds_count (\d+)/m.exec(metrics.text)?.[1] ?? Number.NaN);
    };

    it("answers the access hook's refusals with x-grantry-error, as the front does", async () => {
      const con = await connector(api.url, null);
      for (const target of [`/proxy/${con}/items`, `/proxy/${con.replace('_', '%5F')}/items`]) {
        const answer = await rawRequest(
          Number(new URL(g.url).port),
          `GET ${target} HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer grk_wrong\r\nConnection: close\r\n\r\n`,
        );
        expect(answer.status, target).toBe(401);
        expect(answer.headers.get('x-grantry-error'), target).toEqual(['unauthorized']);
      }
    });

    it('is answered, measured and logged once, by the same code as the front', async () => {
      const con = await connector(api.url, null);
      for (const [target, status, code] of [
        [`/proxy/${con};v=1/items`, 404, 'not_found'],
        [`/proxy/${con.replace('_', '%5F')}/items`, 400, 'validation_failed'],
      ] as const) {
        const id = `routed-${status}-${con}`;
        const before = await proxySamples();
        const answer = await raw('GET', target, `X-Request-Id: ${id}\r\n`);
        expect(answer.status, answer.raw).toBe(status);
        expect(answer.headers.get('x-grantry-error')).toEqual([code]);
        expect(answer.headers.get('x-request-id')).toEqual([id]);
        await sleep(50);
        expect(await proxySamples()).toBe(before + 1);
        expect(logLines().filter((line) => line.reqId === id && line.msg === 'request')).toHaveLength(1);
      }
    });
  });

  function logLines(): Array<Record<string, unknown>> {
    return readFileSync(g.logFile, 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  describe('upstream failures through the proxy', () => {
    it('a connection reset by the API is a 502 upstream_failed, logged as such, not internal_error', async () => {
      const con = await connector(api.url, null);
      for (const method of ['GET', 'POST']) {
        const id = `reset-${method}-${con}`;
        const answer = await raw(
          method,
          `/proxy/${con}/reset`,
          `X-Request-Id: ${id}\r\nContent-Length: 0\r\n`,
        );
        expect(answer.status, answer.raw).toBe(502);
        expect(answer.headers.get('x-grantry-error')).toEqual(['upstream_failed']);
        expect(JSON.parse(answer.body).error.code).toBe('upstream_failed');
        const lines = logLines().filter((line) => line.reqId === id);
        expect(lines.map((line) => line.status)).toEqual([502]);
        expect(lines.some((line) => line.level === 50)).toBe(false);
      }
    });

    it('a reset while a large request body streams up is a 502 upstream_failed, not internal_error', async () => {
      const con = await connector(api.url, null);
      const id = `reset-upload-${con}`;
      const size = 4 * 1024 * 1024;
      const socket = connect(Number(new URL(g.url).port), '127.0.0.1');
      socket.on('error', () => {});
      socket.write(
        `POST /proxy/${con}/reset HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer ${g.apiKey}\r\n` +
          `X-Request-Id: ${id}\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n`,
      );
      const received: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => received.push(chunk));
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      // The body goes up slowly, so the API's reset comes while it streams.
      for (let sent = 0; sent < size && !socket.destroyed; sent += 64 * 1024) {
        socket.write(Buffer.alloc(64 * 1024, 0x62));
        await sleep(5);
        if (received.length > 0) break;
      }
      await Promise.race([closed, sleep(3_000)]);
      socket.destroy();
      const text = Buffer.concat(received).toString('latin1');
      await eventually(() => logLines().some((line) => line.reqId === id));
      const lines = logLines().filter((line) => line.reqId === id);
      expect(
        lines.some((line) => line.level === 50),
        JSON.stringify(lines),
      ).toBe(false);
      if (text !== '') {
        expect(text.slice(0, 12)).toBe('HTTP/1.1 502');
        expect(text.toLowerCase()).toContain('x-grantry-error: upstream_failed');
      }
    });

    it('a caller that resets its connection mid-body is logged as gone (499), not as internal_error', async () => {
      const con = await connector(api.url, null);
      const id = `caller-reset-${con}`;
      const socket = connect(Number(new URL(g.url).port), '127.0.0.1');
      socket.on('error', () => {});
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      socket.write(
        `POST /proxy/${con}/items HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer ${g.apiKey}\r\n` +
          `X-Request-Id: ${id}\r\nContent-Length: 1000\r\n\r\n${'x'.repeat(500)}`,
      );
      await sleep(100);
      socket.resetAndDestroy();
      await eventually(() => logLines().some((line) => line.reqId === id));
      await sleep(100);
      const lines = logLines().filter((line) => line.reqId === id);
      expect(
        lines.some((line) => line.level === 50),
        JSON.stringify(lines),
      ).toBe(false);
      expect(lines).toEqual([expect.objectContaining({ msg: 'request', status: 499 })]);
    });

    it('a body that fails before its first byte is a 502 problem, not an empty reply', async () => {
      const con = await connector(api.url, null);
      const answer = await raw('GET', `/proxy/${con}/reset-after-head`);
      expect(answer.status, answer.raw).toBe(502);
      expect(answer.headers.get('x-grantry-error')).toEqual(['upstream_failed']);
      expect(JSON.parse(answer.body).error.code).toBe('upstream_failed');
    });

    it('a large answer to a slow reader is streamed whole, with one drain listener at a time', async () => {
      const con = await connector(api.url, null);
      const warnings: Error[] = [];
      const onWarning = (warning: Error) => warnings.push(warning);
      process.on('warning', onWarning);
      try {
        const socket = connect(Number(new URL(g.url).port), '127.0.0.1');
        socket.write(
          `GET /proxy/${con}/big HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer ${g.apiKey}\r\nConnection: close\r\n\r\n`,
        );
        let bytes = 0;
        // A reader slower than the API: Grantry's socket to it fills again and again.
        for await (const chunk of socket) {
          bytes += (chunk as Buffer).length;
          socket.pause();
          await sleep(1);
          socket.resume();
        }
        expect(bytes).toBeGreaterThan(16 * 1024 * 1024);
      } finally {
        process.off('warning', onWarning);
      }
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    });
  });
});
