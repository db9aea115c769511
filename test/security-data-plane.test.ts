import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { type AddressInfo, connect } from 'node:net';
import { Readable } from 'node:stream';
import { request as undiciRequest } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiAnswer, type GrantryHandle, startGrantry } from './support/grantry.js';
import { issueServerCertificate } from './support/tls.js';

/**
 * The data-plane items of the security issue, attacked over the network: a real Grantry
 * (`startGrantry`), a hand-written HTTPS API that misbehaves on purpose, and a hand-written token
 * endpoint that counts what it is asked.
 *
 * - a same-origin redirect out of the connector's base path must not carry credentials;
 * - an API that always answers 401 must not cost a token request per call;
 * - the proxy must not let the upstream set cookies or run HTML on Grantry's origin, nor speak
 *   for Grantry (Cache-Control, x-request-id, x-grantry-error);
 * - header values that can never be sent are refused when they are given, not on every call;
 * - buffered execute bodies share one memory budget, beyond which the answer is 503.
 */

interface SeenRequest {
  method: string;
  /** The request target exactly as it arrived (still percent-encoded). */
  target: string;
  headers: IncomingHttpHeaders;
}

interface RefusedBody {
  error: { code: string; errors: Array<{ path: string; message: string }> };
}

interface HttpsFixture {
  url: string;
  port: number;
  close(): Promise<void>;
}

async function startHttps(
  handle: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<HttpsFixture> {
  const { cert, key } = issueServerCertificate(['localhost', '127.0.0.1']);
  const server = createHttpsServer({ cert, key }, (req, res) => {
    res.on('error', () => {});
    handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://localhost:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A token endpoint that grants every client_credentials request a new token, and counts them. */
async function startTokenEndpoint(): Promise<HttpsFixture & { readonly requests: number }> {
  let requests = 0;
  const fixture = await startHttps((req, res) => {
    req.resume();
    req.on('end', () => {
      requests++;
      const body = JSON.stringify({
        access_token: `tok-${requests}-${Math.random().toString(36).slice(2)}`,
        token_type: 'Bearer',
        // A day: moving the test clock forward by an hour never makes a token expire.
        expires_in: 86_400,
      });
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(body);
    });
  });
  return {
    ...fixture,
    get requests() {
      return requests;
    },
  };
}

/** Fields an upstream sends to speak for Grantry's origin, in mixed case and repeated. */
const HOSTILE_FIELDS = [
  ['Content-Type', 'text/html; charset=utf-8'],
  ['Set-Cookie', 'grantry_session=stolen; Path=/'],
  ['set-cookie', 'second=1; Path=/; HttpOnly'],
  ['SET-COOKIE', 'third=1; Path=/'],
  ['Set-Cookie2', 'legacy=1; Version=1'],
  ['Content-Security-Policy', "default-src *; script-src * 'unsafe-inline'"],
  ['Cache-Control', 'public, max-age=86400'],
  ['cache-control', 'immutable'],
  ['X-Request-Id', 'upstream-chosen-id'],
  ['x-request-id', 'another-upstream-id'],
  ['X-Grantry-Error', 'forged_by_upstream'],
  ['x-grantry-error', 'forged_again'],
] as const;

/**
 * What a /big answer sends before its barrier. Small enough that the heads of every concurrent
 * call fit in the budget together, so each call is sent before any is refused.
 */
const BIG_HEAD_BYTES = 256 * 1024;

const HTML = '<html><body><script>fetch("/api/connectors")</script></body></html>';

/**
 * The misbehaving API. Routes (whatever the token):
 *   …/hop?to=<Location>  → 302 to that Location
 *   /refusing/…          → 401 invalid_token, always
 *   /hostile/…?status=N  → status N (default 200) with HOSTILE_FIELDS and an HTML body
 *   /big, /big-chunked   → `big.bytes` (with or without Content-Length), all but BIG_HEAD_BYTES
 *                          held back until `big.barrier` calls to that route have arrived
 *   anything else        → 200 JSON echo
 */
function misbehavingApi(seen: SeenRequest[], big: { barrier: number; bytes: number }) {
  const arrived = new Map<string, number>();
  const heldBack = new Map<string, Array<() => void>>();
  return (req: IncomingMessage, res: ServerResponse): void => {
    const target = req.url ?? '/';
    seen.push({ method: req.method ?? 'GET', target, headers: req.headers });
    const url = new URL(target, 'https://api.invalid');
    req.resume();
    if (url.pathname.endsWith('/hop')) {
      res.writeHead(302, { location: url.searchParams.get('to') ?? '/' });
      res.end();
    } else if (url.pathname.startsWith('/refusing')) {
      const body = JSON.stringify({ error: 'invalid_token' });
      res.writeHead(401, {
        'content-type': 'application/json',
        'www-authenticate': 'Bearer error="invalid_token"',
      });
      res.end(body);
    } else if (url.pathname.startsWith('/hostile')) {
      const status = Number(url.searchParams.get('status') ?? '200');
      // Node writes a flat [name, value, …] list as given: names in their case, repeats kept.
      const fields: string[] = HOSTILE_FIELDS.flat();
      if (status === 401) fields.push('WWW-Authenticate', 'Bearer error="invalid_token"');
      res.writeHead(status, fields);
      res.end(HTML);
    } else if (url.pathname === '/big' || url.pathname === '/big-chunked') {
      // A small head first, the rest once `barrier` calls to this route have arrived.
      const count = (arrived.get(url.pathname) ?? 0) + 1;
      arrived.set(url.pathname, count);
      const waiting = heldBack.get(url.pathname) ?? [];
      heldBack.set(url.pathname, waiting);
      const head = Math.min(BIG_HEAD_BYTES, big.bytes);
      const fields: Record<string, string> = { 'content-type': 'application/octet-stream' };
      if (url.pathname === '/big') fields['content-length'] = String(big.bytes);
      res.writeHead(200, fields);
      res.write(Buffer.alloc(head, 0x61));
      const finish = () => {
        if (!res.destroyed) res.end(Buffer.alloc(big.bytes - head, 0x61));
      };
      if (count < big.barrier) {
        waiting.push(finish);
      } else {
        finish();
        for (const release of waiting.splice(0)) release();
      }
    } else {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ target }));
    }
  };
}

/** One HTTP/1.1 exchange on a raw socket: every response field line as sent, repeats and case kept. */
async function rawExchange(
  port: number,
  requestHead: string,
): Promise<{ status: number; fields: Array<[string, string]>; body: string }> {
  const socket = connect(port, '127.0.0.1');
  socket.write(requestHead);
  const chunks: Buffer[] = [];
  for await (const chunk of socket) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n');
  const fields = lines.map((line): [string, string] => {
    const colon = line.indexOf(':');
    return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
  });
  return { status: Number(statusLine.split(' ')[1]), fields, body: text.slice(end + 4) };
}

const unique = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2)}`;
const BACKING_OFF =
  /Grantry is not fetching new tokens for this authentication until (\S+) because fresh tokens were refused too/;

describe('security: data plane', () => {
  const seen: SeenRequest[] = [];
  let api: HttpsFixture;
  let tokenEndpoint: Awaited<ReturnType<typeof startTokenEndpoint>>;
  let g: GrantryHandle;
  /** Added to the real time of Grantry's token clock: moves it past a back-off window. */
  let clockOffsetMs = 0;
  const grantryNow = () => Date.now() + clockOffsetMs;

  beforeAll(async () => {
    api = await startHttps(misbehavingApi(seen, { barrier: 1, bytes: 2 }));
    tokenEndpoint = await startTokenEndpoint();
    g = await startGrantry({ clock: grantryNow });
  });
  afterAll(async () => {
    await g?.stop();
    await api?.close();
    await tokenEndpoint?.close();
  });

  async function connectorWithToken(
    baseUrl: string,
    over: Record<string, unknown> = {},
  ): Promise<{ auth: string; con: string }> {
    const auth = await g.api('POST', '/api/authentications', {
      name: unique('auth'),
      type: 'oauth2',
      grantType: 'client_credentials',
      tokenUrl: `${tokenEndpoint.url}/oauth/token`,
      clientId: 'svc',
      clientSecret: 'svc-secret',
    });
    expect(auth.status, auth.text).toBe(201);
    const con = await g.api('POST', '/api/connectors', {
      name: unique('con'),
      baseUrl,
      authenticationId: auth.body.id,
      ...over,
    });
    expect(con.status, con.text).toBe(201);
    return { auth: auth.body.id, con: con.body.id };
  }

  const execute = (con: string, body: Record<string, unknown>) =>
    g.api('POST', `/api/connectors/${con}/execute`, body);

  describe('redirects out of the base path carry no credentials', () => {
    let con: string;
    beforeAll(async () => {
      ({ con } = await connectorWithToken(`${api.url}/api/v2`, {
        headers: { 'X-Api-Key': 'static-credential' },
      }));
    });

    async function followed(location: string): Promise<SeenRequest> {
      seen.length = 0;
      const answer = await execute(con, { method: 'GET', path: '/hop', query: { to: location } });
      expect(answer.status, answer.text).toBe(200);
      expect(answer.body.attempts, answer.text).toBe(2);
      expect(seen).toHaveLength(2);
      const [hop, redirected] = seen as [SeenRequest, SeenRequest];
      // The hop itself is inside the base path: it carries both.
      expect(hop.headers.authorization).toMatch(/^Bearer tok-/);
      expect(hop.headers['x-api-key']).toBe('static-credential');
      return redirected;
    }

    it.each([
      ['/admin/secret', '/admin/secret'],
      ['/api/v2/../admin/secret', '/api/admin/secret'],
      ['/api/v2/%2e%2e/%2E%2E/admin/secret', '/admin/secret'],
      ['/api/v2/..%2fadmin/secret', '/api/v2/..%2fadmin/secret'],
      ['/api/v2/%2e%2e%2fadmin/secret', '/api/v2/%2e%2e%2fadmin/secret'],
      ['/api/v2/%252e%252e/admin/secret', '/api/v2/%252e%252e/admin/secret'],
      ['/api/v2/..;/admin/secret', '/api/v2/..;/admin/secret'],
      ['/api/v2evil/secret', '/api/v2evil/secret'],
      ['{origin}/admin/secret', '/admin/secret'],
      ['//localhost:{port}/admin/secret', '/admin/secret'],
    ])('Location %s arrives without Authorization and static headers', async (location, arrivesAt) => {
      const redirected = await followed(
        location.replace('{origin}', api.url).replace('{port}', String(api.port)),
      );
      expect(redirected.target).toBe(arrivesAt);
      expect(redirected.headers.authorization).toBeUndefined();
      expect(redirected.headers['x-api-key']).toBeUndefined();
    });

    it('keeps them on redirects that stay below the base path, and only there', async () => {
      const inside = [
        ['/api/v2/inside', '/api/v2/inside'],
        ['sibling', '/api/v2/sibling'],
        ['/api/v2/a/../b', '/api/v2/b'],
        [`${api.url}/api/v2/deeper/x?q=1`, '/api/v2/deeper/x?q=1'],
      ] as const;
      for (const [location, arrivesAt] of inside) {
        const redirected = await followed(location);
        expect(redirected.target).toBe(arrivesAt);
        expect(redirected.headers.authorization, location).toMatch(/^Bearer tok-/);
        expect(redirected.headers['x-api-key'], location).toBe('static-credential');
      }
      const outside = await followed('/admin/secret');
      expect(outside.headers.authorization).toBeUndefined();
      expect(outside.headers['x-api-key']).toBeUndefined();
    });
  });

  describe('an API that always answers 401', () => {
    it('costs two token requests for 50 executes, says so in the hint, and refreshes again after the window', async () => {
      const { auth, con } = await connectorWithToken(`${api.url}/refusing`);
      const before = tokenEndpoint.requests;
      const answers = [];
      for (let call = 0; call < 50; call++) answers.push(await execute(con, { method: 'GET', path: '/x' }));
      // The bound: one token for the first call, one forced by its 401; that fresh token is
      // refused too, so no further token is forced until the window ends.
      expect(tokenEndpoint.requests - before).toBe(2);
      for (const answer of answers) {
        expect(answer.status, answer.text).toBe(200);
        expect(answer.body).toMatchObject({ status: 401, error: { code: 'upstream_unauthorized' } });
        expect(answer.body.error.hint).toMatch(BACKING_OFF);
      }
      expect(answers[0]?.body).toMatchObject({ attempts: 2, tokenRefreshed: true });
      expect(answers[49]?.body).toMatchObject({ attempts: 1, tokenRefreshed: false });
      const until = Date.parse(BACKING_OFF.exec(answers[49]?.body.error.hint)?.[1] ?? '');
      expect(until).toBeGreaterThan(grantryNow());
      // No secret in what the caller reads about it.
      expect(JSON.stringify(answers[49]?.body.error)).not.toMatch(/tok-/);

      // The connector test is bound by the same pause.
      const tested = await g.api('POST', `/api/connectors/${con}/test`);
      expect(tested.body).toMatchObject({
        ok: false,
        response: { status: 401, tokenRefreshed: false },
        error: { code: 'upstream_unauthorized' },
      });
      expect(tested.body.error.hint).toMatch(BACKING_OFF);
      expect(tokenEndpoint.requests - before).toBe(2);

      // The pause ends: past it, a 401 forces one fresh token again (which is refused too).
      clockOffsetMs += 60 * 60 * 1000;
      const later = await execute(con, { method: 'GET', path: '/x' });
      expect(later.body).toMatchObject({ status: 401, attempts: 2, tokenRefreshed: true });
      expect(later.body.error.hint).toMatch(BACKING_OFF);
      expect(tokenEndpoint.requests - before).toBe(3);
      const paused = await execute(con, { method: 'GET', path: '/x' });
      expect(paused.body.tokenRefreshed).toBe(false);
      expect(tokenEndpoint.requests - before).toBe(3);

      // A change to the authentication's configuration ends the pause.
      const renamed = await g.api('PATCH', `/api/authentications/${auth}`, { name: unique('renamed') });
      expect(renamed.status, renamed.text).toBe(200);
      const afterChange = await execute(con, { method: 'GET', path: '/x' });
      expect(afterChange.body).toMatchObject({ status: 401, tokenRefreshed: true });
      expect(tokenEndpoint.requests - before).toBe(4);
    });

    it('costs two token requests for 50 proxied calls, replayed or passed through', async () => {
      const replayed = await connectorWithToken(`${api.url}/refusing`);
      let before = tokenEndpoint.requests;
      for (let call = 0; call < 50; call++) {
        const response = await fetch(`${g.url}/proxy/${replayed.con}/x`, {
          headers: { authorization: `Bearer ${g.apiKey}` },
        });
        expect(response.status).toBe(401);
        expect(response.headers.get('x-grantry-error')).toBe('upstream_unauthorized');
        await response.arrayBuffer();
      }
      // As for execute: the first token, and one forced by the first 401; never more.
      expect(tokenEndpoint.requests - before).toBe(2);

      // A chunked body cannot be replayed: the 401 is passed through and a fresh token is fetched
      // in the background for the next call. That background fetch is bounded the same way.
      const streamed = await connectorWithToken(`${api.url}/refusing`);
      before = tokenEndpoint.requests;
      for (let call = 0; call < 50; call++) {
        const response = await undiciRequest(`${g.url}/proxy/${streamed.con}/upload`, {
          method: 'POST',
          headers: { authorization: `Bearer ${g.apiKey}`, 'content-type': 'text/plain' },
          body: Readable.from([Buffer.from('streamed body')]),
        });
        expect(response.statusCode).toBe(401);
        expect(response.headers['x-grantry-error']).toBe('upstream_unauthorized');
        await response.body.arrayBuffer();
      }
      expect(tokenEndpoint.requests - before).toBe(2);
    });
  });

  describe('proxied answers cannot speak for Grantry’s origin', () => {
    const grantryPort = () => Number(new URL(g.url).port);
    const get = (con: string, path: string, requestId: string) =>
      rawExchange(
        grantryPort(),
        `GET /proxy/${con}${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${g.apiKey}\r\n` +
          `X-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n`,
      );
    const valuesOf = (fields: Array<[string, string]>, name: string) =>
      fields.filter(([field]) => field === name).map(([, value]) => value);

    it('drops Set-Cookie and Set-Cookie2, sandboxes the answer, keeps Grantry’s own fields', async () => {
      const { con } = await connectorWithToken(`${api.url}/hostile`);
      const answer = await get(con, '/page', 'sec-req-1');
      expect(answer.status).toBe(200);
      expect(answer.body).toContain('<script>');
      expect(valuesOf(answer.fields, 'set-cookie')).toEqual([]);
      expect(valuesOf(answer.fields, 'set-cookie2')).toEqual([]);
      // Several policies are all enforced (CSP3 §8.1): the upstream's own may stay beside ours.
      expect(valuesOf(answer.fields, 'content-security-policy')).toContain('sandbox');
      expect(valuesOf(answer.fields, 'cache-control')).toEqual(['no-store']);
      expect(valuesOf(answer.fields, 'x-request-id')).toEqual(['sec-req-1']);
      expect(valuesOf(answer.fields, 'x-grantry-error')).toEqual([]);
      expect(valuesOf(answer.fields, 'content-type')).toEqual(['text/html; charset=utf-8']);
    });

    it('keeps its own x-grantry-error on a 401 passed through, whatever the upstream sent', async () => {
      const { con } = await connectorWithToken(`${api.url}/hostile`);
      const answer = await get(con, '/page?status=401', 'sec-req-2');
      expect(answer.status).toBe(401);
      expect(valuesOf(answer.fields, 'x-grantry-error')).toEqual(['upstream_unauthorized']);
      expect(valuesOf(answer.fields, 'x-request-id')).toEqual(['sec-req-2']);
      expect(valuesOf(answer.fields, 'cache-control')).toEqual(['no-store']);
      expect(valuesOf(answer.fields, 'set-cookie')).toEqual([]);
      expect(valuesOf(answer.fields, 'content-security-policy')).toContain('sandbox');
    });
  });

  describe('header values that can never be sent', () => {
    const refusedAt = (answer: ApiAnswer<RefusedBody>, pointer: string) => {
      expect(answer.status, answer.text).toBe(400);
      expect(answer.body.error.code).toBe('validation_failed');
      expect(answer.body.error.errors).toContainEqual({ path: pointer, message: expect.any(String) });
    };

    it.each([
      ['an emoji', '🙂'],
      ['U+0100', 'ok\u0100'],
    ])(
      'a connector header with %s is refused at create and at PATCH; a query value is not',
      async (_what, value) => {
        const created = await g.api('POST', '/api/connectors', {
          name: unique('con'),
          baseUrl: api.url,
          headers: { 'X-Emoji': value },
          query: { mood: value },
        });
        refusedAt(created, '/headers/X-Emoji');
        // Static query values are sent percent-encoded, so any character is fine there.
        expect(created.body.error.errors).toHaveLength(1);
        expect(created.text).not.toContain(value);

        // obs-text (0x80–0xFF) can be sent (RFC 9110 §5.5): "café" is a Latin-1 value.
        const fine = await g.api('POST', '/api/connectors', {
          name: unique('con'),
          baseUrl: api.url,
          headers: { 'X-Latin': 'café' },
          query: { mood: value },
        });
        expect(fine.status, fine.text).toBe(201);
        const patched = await g.api('PATCH', `/api/connectors/${fine.body.id}`, {
          headers: { 'X-Latin': 'café', 'X-Emoji': value },
        });
        refusedAt(patched, '/headers/X-Emoji');

        seen.length = 0;
        const sent = await execute(fine.body.id, { method: 'GET', path: '/echo' });
        expect(sent.body.status, sent.text).toBe(200);
        expect(seen[0]?.headers['x-latin']).toBe('café');
        expect(seen[0]?.target).toBe(`/echo?mood=${encodeURIComponent(value)}`);
      },
    );

    it('a caller header with such a value is refused on execute and test with validation_failed, not 502', async () => {
      const { con } = await connectorWithToken(api.url);
      seen.length = 0;
      for (const value of ['🙂', 'ok\u0100']) {
        const executed = await execute(con, { method: 'GET', path: '/echo', headers: { 'X-Emoji': value } });
        refusedAt(executed, '/headers/X-Emoji');
        const tested = await g.api('POST', `/api/connectors/${con}/test`, {
          method: 'GET',
          path: '/echo',
          headers: { 'X-Emoji': value },
        });
        refusedAt(tested, '/headers/X-Emoji');
      }
      expect(seen).toHaveLength(0);
    });
  });
});

describe('security: the memory budget of buffered execute answers', () => {
  const CONCURRENT = 6;
  const BODY_BYTES = 2 * 1024 * 1024;
  const seen: SeenRequest[] = [];
  let api: HttpsFixture;
  let g: GrantryHandle;

  beforeAll(async () => {
    // The API holds back the second half of every body until all CONCURRENT calls have arrived,
    // so all of them are being read at the same time.
    api = await startHttps(misbehavingApi(seen, { barrier: CONCURRENT, bytes: BODY_BYTES }));
    g = await startGrantry({
      env: {
        GRANTRY_EXECUTE_BUFFER_LIMIT: String(3 * 1024 * 1024),
        GRANTRY_EXECUTE_MAX_BODY: String(3 * 1024 * 1024),
      },
    });
  });
  afterAll(async () => {
    await g?.stop();
    await api?.close();
  });

  it.each([
    ['with Content-Length (reserved before reading)', '/big'],
    ['without Content-Length (reserved chunk by chunk)', '/big-chunked'],
  ])(
    'answers 503 with Retry-After beyond the budget, never 500, and releases it afterwards: %s',
    async (_how, path) => {
      const created = await g.api('POST', '/api/connectors', { name: unique('con'), baseUrl: api.url });
      expect(created.status, created.text).toBe(201);
      const execute = () =>
        g.api('POST', `/api/connectors/${created.body.id}/execute`, { method: 'GET', path });

      // All CONCURRENT bodies are open at once (the API's barrier), 2 MiB each against 3 MiB: they
      // cannot all be held, so some are refused; a refused call gives its share back at once, so
      // the others can finish.
      const answers = await Promise.all(Array.from({ length: CONCURRENT }, execute));
      const statuses = answers.map((answer) => answer.status);
      expect(
        statuses.every((status) => status === 200 || status === 503),
        String(statuses),
      ).toBe(true);
      const succeeded = answers.filter((answer) => answer.status === 200);
      const refused = answers.filter((answer) => answer.status === 503);
      expect(succeeded.length, String(statuses)).toBeGreaterThanOrEqual(1);
      expect(refused.length, String(statuses)).toBeGreaterThanOrEqual(1);
      for (const answer of succeeded) {
        expect(answer.body).toMatchObject({ status: 200, truncated: false });
        expect(answer.body.body).toHaveLength(BODY_BYTES);
      }
      for (const answer of refused) {
        expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0);
        expect(answer.body.error).toMatchObject({
          code: 'server_busy',
          message: expect.any(String),
          hint: expect.any(String),
        });
      }

      // Every reservation was given back: one call alone fits again.
      const after = await execute();
      expect(after.status, after.text.slice(0, 300)).toBe(200);
      expect(after.body.body).toHaveLength(BODY_BYTES);
    },
  );
});
