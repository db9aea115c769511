import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sealContext } from '../src/tokens/sealed-columns.js';
import { type GrantryHandle, startGrantry } from './support/grantry.js';
import { issueServerCertificate } from './support/tls.js';

/**
 * A hostile (or merely broken) token endpoint, over HTTPS, against a real Grantry:
 * - absurd lifetimes (`expires_in` 8640000000000 or 1e20, JSON or form-encoded) must not make any
 *   route answer 500, and are shown clamped to one year; 0 and -5 mean "expires now", never "never",
 *   and do not make every call fetch a new token;
 * - access tokens that cannot go in an HTTP header (CR/LF, non-Latin-1) are refused at once with
 *   token_fetch_failed, not later as a network error;
 * - a token_type, scope, access or refresh token longer than Grantry keeps (40 characters, 2 KiB,
 *   32 KiB) is refused, never stored;
 * - an error endpoint that echoes the request (body, Basic header) never gets the client secret or
 *   the password into an answer, lastError, the events or the log, in any encoding Grantry sent.
 */

const ONE_YEAR_MS = 365 * 24 * 60 * 60 * 1000;

// Every character class whose encodings differ: space, +, :, %, /, and non-ASCII (Latin-1 and not).
const CLIENT_ID = 'hostile client:1';
const CLIENT_SECRET = 'Cs3 cr+t:50%/é€~zz';
const PASSWORD = 'Pw0 rd+x:9%2F/ü€!q';

type Answer = { status: number; type: string; body: string };
type Received = { body: string; authorization: string };

function json(body: unknown, status = 200): Answer {
  return { status, type: 'application/json', body: JSON.stringify(body) };
}

/** The Basic credentials exactly as RFC 6749 §2.3.1 builds them (Appendix B form-urlencoding). */
function strictFormUrlEncode(value: string): string {
  return encodeURIComponent(value)
    .replace(/[-_.!~*'()]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+');
}

function decodedParams(received: Received): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(received.body));
}

function basicPayload(received: Received): string {
  return Buffer.from(received.authorization.replace(/^Basic /, ''), 'base64').toString('utf8');
}

/** JSON as Python's json.dumps writes it by default: non-ASCII as \uXXXX. */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\u0080-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Error endpoints that echo what they received, each in another form. */
const echoes: Record<string, (received: Received) => Answer> = {
  // The raw form body: client_secret and password form-urlencoded with `+` for spaces.
  'echo-body': (r) => json({ error: 'invalid_request', error_description: `Bad request: ${r.body}` }, 400),
  // A provider that re-serialises the body with %20 for spaces.
  'echo-body-pct20': (r) =>
    json({ error: 'invalid_client', error_description: `got ${r.body.replaceAll('+', '%20')}` }, 401),
  // The decoded parameter values, raw, in the description and in the error_uri.
  'echo-decoded': (r) => {
    const p = decodedParams(r);
    return json(
      {
        error: 'server_error',
        error_description: `secret=${p.client_secret} pw=${p.password}`,
        error_uri: `https://provider.example/help#${p.password}`,
      },
      400,
    );
  },
  // The Authorization header as received, and the password with encodeURIComponent.
  'echo-basic': (r) =>
    json(
      {
        error: 'invalid_client',
        error_description: `Authorization: ${r.authorization}; password=${encodeURIComponent(decodedParams(r).password ?? '')}`,
      },
      401,
    ),
  // The Basic payload decoded (urlenc(id):urlenc(secret)), and base64 of the raw id:secret.
  'echo-basic-decoded': (r) => {
    const [id = '', secret = ''] = basicPayload(r).split(':');
    const raw = `${decodeURIComponent(id.replaceAll('+', ' '))}:${decodeURIComponent(secret.replaceAll('+', ' '))}`;
    return json(
      {
        error: 'invalid_request',
        error_description: `credentials ${basicPayload(r)} raw64 ${Buffer.from(raw).toString('base64')} url64 ${Buffer.from(raw).toString('base64url')}`,
      },
      400,
    );
  },
  // The parameters as JSON with non-ASCII escaped, inside the description.
  'echo-json': (r) =>
    json({ error: 'invalid_request', error_description: `params ${asciiJson(decodedParams(r))}` }, 400),
  // The body in the error_uri.
  'echo-uri': (r) =>
    json({ error: 'invalid_grant', error_uri: `https://provider.example/errors?request=${r.body}` }, 400),
  // An HTML error page whose title names the password.
  'echo-title': (r) => ({
    status: 400,
    type: 'text/html',
    body: `<html><head><title>No ${decodedParams(r).password}</title></head><body>${r.body}</body></html>`,
  }),
};

const ECHO_METHOD: Record<string, 'client_secret_basic' | 'client_secret_post'> = {
  'echo-body': 'client_secret_post',
  'echo-body-pct20': 'client_secret_post',
  'echo-decoded': 'client_secret_post',
  'echo-basic': 'client_secret_basic',
  'echo-basic-decoded': 'client_secret_basic',
  'echo-json': 'client_secret_post',
  'echo-uri': 'client_secret_post',
  'echo-title': 'client_secret_basic',
};

const tokenAnswers: Record<string, () => Answer> = {
  'huge-json': () => json({ access_token: 'tok-huge-json', token_type: 'Bearer', expires_in: 8640000000000 }),
  'e20-json': () => ({
    status: 200,
    type: 'application/json',
    body: '{"access_token":"tok-e20-json","token_type":"Bearer","expires_in":1e20}',
  }),
  'huge-form': () => ({
    status: 200,
    type: 'application/x-www-form-urlencoded',
    body: 'access_token=tok-huge-form&token_type=bearer&expires_in=8640000000000',
  }),
  'e20-form': () => ({
    status: 200,
    type: 'application/x-www-form-urlencoded',
    body: 'access_token=tok-e20-form&token_type=bearer&expires_in=1e20',
  }),
  zero: () => json({ access_token: 'tok-zero', token_type: 'Bearer', expires_in: 0 }),
  negative: () => json({ access_token: 'tok-negative', token_type: 'Bearer', expires_in: -5 }),
  normal: () => json({ access_token: 'tok-normal', token_type: 'Bearer', expires_in: 3600 }),
  crlf: () => json({ access_token: 'tok-SECRETPART\r\nX-Injected: yes', expires_in: 3600 }),
  'non-latin1': () => json({ access_token: 'tok-SECRETPART-€', expires_in: 3600 }),
  'long-token-type': () =>
    json({
      access_token: 'tok-long-type',
      token_type: `Bearer${'SECRETPART'.repeat(100_000)}`,
      expires_in: 3600,
    }),
  'long-scope': () =>
    json({
      access_token: 'tok-long-scope',
      token_type: 'Bearer',
      scope: 'SECRETPART '.repeat(50_000),
      expires_in: 3600,
    }),
  // A token response of megabytes: under the egress cap (10 MiB), far over what a header can carry.
  'long-access-token': () => json({ access_token: `tok-${'SECRETPART'.repeat(300_000)}`, expires_in: 3600 }),
  'long-refresh-token': () =>
    json({ access_token: 'tok-long-refresh', refresh_token: 'SECRETPART'.repeat(10_000), expires_in: 3600 }),
};

/** Every form in which Grantry sends the secret and the password, computed here independently. */
function forbiddenForms(): string[] {
  const forms = new Set<string>();
  for (const value of [CLIENT_SECRET, PASSWORD]) {
    const formPlus = new URLSearchParams({ v: value }).toString().slice(2);
    forms.add(value);
    forms.add(formPlus);
    forms.add(formPlus.replaceAll('+', '%20'));
    forms.add(encodeURIComponent(value));
    forms.add(strictFormUrlEncode(value));
    forms.add(asciiJson(value).slice(1, -1));
  }
  for (const pair of [
    `${strictFormUrlEncode(CLIENT_ID)}:${strictFormUrlEncode(CLIENT_SECRET)}`,
    `${CLIENT_ID}:${CLIENT_SECRET}`,
  ]) {
    forms.add(Buffer.from(pair).toString('base64'));
    forms.add(Buffer.from(pair).toString('base64url'));
  }
  return [...forms];
}

describe('security: a hostile token endpoint', () => {
  let server: Server;
  let base = '';
  const hits = new Map<string, number>();
  let g: GrantryHandle & { app: Awaited<ReturnType<typeof startGrantry>>['app'] };

  beforeAll(async () => {
    const { cert, key } = issueServerCertificate();
    server = createServer({ cert, key }, (req, res) => {
      const name = (req.url ?? '').split('/')[1] ?? '';
      hits.set(name, (hits.get(name) ?? 0) + 1);
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const received = {
          body: Buffer.concat(chunks).toString('utf8'),
          authorization: req.headers.authorization ?? '',
        };
        const answer =
          name === 'api'
            ? json({ ok: true })
            : (echoes[name]?.(received) ??
              tokenAnswers[name]?.() ?? { status: 404, type: 'text/plain', body: '' });
        res.writeHead(answer.status, { 'content-type': answer.type }).end(answer.body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    base = `https://localhost:${typeof address === 'object' && address !== null ? address.port : 0}`;
    g = await startGrantry();
  });
  afterAll(async () => {
    await g?.stop();
    server?.close();
  });

  async function createAuth(route: string, extra: Record<string, unknown> = {}): Promise<string> {
    const auth = await g.api('POST', '/api/authentications', {
      name: `${route}-${Math.random().toString(36).slice(2)}`,
      type: 'oauth2',
      grantType: 'client_credentials',
      tokenUrl: `${base}/${route}/token`,
      clientId: 'c',
      clientSecret: 'plain-secret',
      ...extra,
    });
    expect(auth.status, auth.text).toBe(201);
    return auth.body.id as string;
  }

  async function createConnector(authId: string): Promise<string> {
    const connector = await g.api('POST', '/api/connectors', {
      name: `con-${Math.random().toString(36).slice(2)}`,
      baseUrl: `${base}/api`,
      authenticationId: authId,
    });
    expect(connector.status, connector.text).toBe(201);
    return connector.body.id as string;
  }

  describe('absurd lifetimes are clamped to one year, and no route answers 500', () => {
    for (const route of ['huge-json', 'e20-json', 'huge-form', 'e20-form']) {
      it(`expires_in from ${route}`, async () => {
        const id = await createAuth(route);
        const test = await g.api('POST', `/api/authentications/${id}/test`);
        expect(test.status, test.text).toBe(200);
        expect(test.body.ok, test.text).toBe(true);
        const lifetime = Date.parse(test.body.token.expiresAt) - Date.parse(test.body.token.obtainedAt);
        expect(lifetime).toBe(ONE_YEAR_MS);

        const one = await g.api('GET', `/api/authentications/${id}`);
        expect(one.status, one.text).toBe(200);
        expect(one.body.token.expiresAt).toBe(test.body.token.expiresAt);
        const list = await g.api('GET', '/api/authentications');
        expect(list.status, list.text).toBe(200);
        expect(list.body.items.find((item: { id: string }) => item.id === id).token.expiresAt).toBe(
          test.body.token.expiresAt,
        );
        const again = await g.api('POST', `/api/authentications/${id}/test`);
        expect(again.status, again.text).toBe(200);
        expect(again.body).toMatchObject({ ok: true, token: { source: 'cache' } });

        const connectorTest = await g.api('POST', `/api/connectors/${await createConnector(id)}/test`, {});
        expect(connectorTest.status, connectorTest.text).toBe(200);
        expect(connectorTest.body, connectorTest.text).toMatchObject({
          ok: true,
          token: { expiresAt: test.body.token.expiresAt },
        });
      });
    }
  });

  describe('expires_in 0 or negative means "expires now", and does not make every call fetch', () => {
    for (const route of ['zero', 'negative']) {
      it(`expires_in from ${route}`, async () => {
        const id = await createAuth(route);
        const test = await g.api('POST', `/api/authentications/${id}/test`);
        expect(test.body.ok, test.text).toBe(true);
        // "Expires now", not "never": the expiry is the moment it was obtained.
        expect(test.body.token.expiresAt).toBe(test.body.token.obtainedAt);
        const one = await g.api('GET', `/api/authentications/${id}`);
        expect(one.status, one.text).toBe(200);
        expect(one.body.token.expiresAt).toBe(test.body.token.obtainedAt);
        expect(hits.get(route)).toBe(1);

        const connector = await createConnector(id);
        for (let i = 0; i < 20; i++) {
          const call = await g.api('POST', `/api/connectors/${connector}/execute`, {
            method: 'GET',
            path: '/',
          });
          expect(call.status, call.text).toBe(200);
          expect(call.body.status).toBe(200);
        }
        const burst = await Promise.all(
          Array.from({ length: 20 }, () =>
            g.api('POST', `/api/connectors/${connector}/execute`, { method: 'GET', path: '/' }),
          ),
        );
        for (const call of burst) expect(call.status, call.text).toBe(200);
        for (let i = 0; i < 20; i++) await g.app.tokens.get(id);
        // 61 uses within the reuse window: the provider was asked once, not once per call.
        expect(hits.get(route)).toBe(1);
      });
    }
  });

  describe('an access token that cannot go in a header is refused at parse time', () => {
    for (const route of ['crlf', 'non-latin1']) {
      it(`token from ${route}`, async () => {
        const id = await createAuth(route);
        const test = await g.api('POST', `/api/authentications/${id}/test`);
        expect(test.status, test.text).toBe(200);
        expect(test.body.ok, test.text).toBe(false);
        expect(test.body.error.code).toBe('token_fetch_failed');
        expect(test.body.error.message).toMatch(/header/i);
        expect(test.text).not.toContain('SECRETPART');

        const execute = await g.api('POST', `/api/connectors/${await createConnector(id)}/execute`, {
          method: 'GET',
          path: '/',
        });
        expect(execute.status, execute.text).toBe(502);
        expect(execute.body.error.code).toBe('token_fetch_failed');
        expect(execute.text).not.toContain('SECRETPART');

        const one = await g.api('GET', `/api/authentications/${id}`);
        expect(one.status).toBe(200);
        expect(one.body.token).toBeNull();
        expect(one.body.lastError.code).toBe('token_fetch_failed');
        expect(one.text).not.toContain('SECRETPART');
      });
    }
  });

  describe('a token_type, scope or token longer than Grantry keeps is refused, never stored', () => {
    for (const [route, field] of [
      ['long-token-type', 'token_type'],
      ['long-scope', 'scope'],
      ['long-access-token', 'access_token'],
      ['long-refresh-token', 'refresh_token'],
    ] as const) {
      it(`${field} from ${route}`, async () => {
        const id = await createAuth(route);
        const test = await g.api('POST', `/api/authentications/${id}/test`);
        expect(test.status, test.text).toBe(200);
        expect(test.body.ok, test.text).toBe(false);
        expect(test.body.error.code).toBe('token_fetch_failed');
        expect(test.body.error.message).toMatch(
          new RegExp(
            `^The token endpoint answered HTTP 200 with a ${field} of \\d+ characters; Grantry accepts at most \\d+`,
          ),
        );
        expect(test.text).not.toContain('SECRETPART');

        const one = await g.api('GET', `/api/authentications/${id}`);
        expect(one.body.token).toBeNull();
        expect(one.body.lastError.code).toBe('token_fetch_failed');
        expect(one.text).not.toContain('SECRETPART');
        expect(await g.app.store.tokens.get(id)).toBeNull();
      });
    }
  });

  describe('an error endpoint that echoes the request gets no secret or password out, in any form', () => {
    const forms = forbiddenForms();

    for (const route of Object.keys(echoes)) {
      it(`${route} (${ECHO_METHOD[route]})`, async () => {
        const id = await createAuth(route, {
          grantType: 'password',
          clientId: CLIENT_ID,
          clientSecret: CLIENT_SECRET,
          clientAuthMethod: ECHO_METHOD[route],
          username: 'alice',
          password: PASSWORD,
        });
        const test = await g.api('POST', `/api/authentications/${id}/test`);
        expect(test.status, test.text).toBe(200);
        expect(test.body.ok).toBe(false);
        // The echo did come back, with the secrets cut out.
        expect(test.text).toContain('[redacted]');
        const one = await g.api('GET', `/api/authentications/${id}`);
        expect(one.body.lastError, one.text).not.toBeNull();
        const list = await g.api('GET', '/api/authentications');
        const execute = await g.api('POST', `/api/connectors/${await createConnector(id)}/execute`, {
          method: 'GET',
          path: '/',
        });
        expect(execute.status, execute.text).toBe(502);
        const events = await g.api('GET', `/api/authentications/${id}/events`);
        expect(events.body.items.some((e: { type: string }) => e.type === 'token_failed')).toBe(true);

        const places: Array<[string, string]> = [
          ['the test answer', test.text],
          ['the execute answer', execute.text],
          ['GET of the authentication', one.text],
          ['the list', list.text],
          ['the events', events.text],
          ['the log file', readFileSync(g.logFile, 'utf8')],
        ];
        for (const [where, text] of places) {
          for (const form of forms) expect(text.includes(form), `"${form}" found in ${where}`).toBe(false);
        }
      });
    }
  });

  it('a token stored with CR/LF by an older version is fetched anew, never sent', async () => {
    const id = await createAuth('normal');
    const test = await g.api('POST', `/api/authentications/${id}/test`);
    expect(test.body.ok, test.text).toBe(true);
    const row = await g.app.store.tokens.get(id);
    expect(row).not.toBeNull();
    await g.app.store.tokens.compareAndSwap(id, row?.version ?? null, {
      accessToken: g.app.keyRing.seal('stored-SECRETPART\r\nX-Injected: 1', sealContext.accessToken(id)),
      tokenType: 'Bearer',
      scope: null,
      obtainedAt: Date.now(),
      expiresAt: Date.now() + 3_600_000,
      refreshToken: null,
      generation: row?.generation ?? 1,
    });
    g.app.tokens.forget(id);
    const before = hits.get('normal') ?? 0;
    const execute = await g.api('POST', `/api/connectors/${await createConnector(id)}/execute`, {
      method: 'GET',
      path: '/',
    });
    expect(execute.status, execute.text).toBe(200);
    expect(execute.body.status).toBe(200);
    expect(hits.get('normal')).toBe(before + 1);
    expect((await g.app.tokens.get(id)).authorization).toBe('Bearer tok-normal');
  });

  it('an absurd expires_at already stored by an older version is read without a 500 after a restart', async () => {
    const first = await startGrantry();
    let ids: string[] = [];
    try {
      const create = async (name: string) => {
        const auth = await first.api('POST', '/api/authentications', {
          name,
          type: 'oauth2',
          grantType: 'client_credentials',
          tokenUrl: `${base}/normal/token`,
          clientId: 'c',
          clientSecret: 'plain-secret',
        });
        expect(auth.status, auth.text).toBe(201);
        const test = await first.api('POST', `/api/authentications/${auth.body.id}/test`);
        expect(test.body.ok, test.text).toBe(true);
        return auth.body.id as string;
      };
      ids = [await create('stored-huge'), await create('stored-e20')];
    } finally {
      await first.stop();
    }

    // What the code before the clamp wrote for 8640000000000 s and for 1e20 s.
    const db = new Database(join(first.dataDir, 'grantry.db'));
    try {
      const write = db.prepare('UPDATE tokens SET expires_at = ? WHERE auth_id = ?');
      write.run(Date.now() + 8_640_000_000_000 * 1000, ids[0]);
      write.run(1e23, ids[1]);
    } finally {
      db.close();
    }

    const second = await startGrantry({
      dataDir: first.dataDir,
      masterKey: first.env.GRANTRY_MASTER_KEY as string,
      apiKey: first.apiKey,
    });
    try {
      const list = await second.api('GET', '/api/authentications');
      expect(list.status, list.text).toBe(200);
      for (const id of ids) {
        const one = await second.api('GET', `/api/authentications/${id}`);
        expect(one.status, one.text).toBe(200);
        const lifetime = Date.parse(one.body.token.expiresAt) - Date.parse(one.body.token.obtainedAt);
        expect(lifetime).toBeLessThanOrEqual(ONE_YEAR_MS);
        const test = await second.api('POST', `/api/authentications/${id}/test`);
        expect(test.status, test.text).toBe(200);
        expect(test.body, test.text).toMatchObject({
          ok: true,
          token: { expiresAt: one.body.token.expiresAt },
        });
        const connector = await second.api('POST', '/api/connectors', {
          name: `stored-${id}`,
          baseUrl: `${base}/api`,
          authenticationId: id,
        });
        const connectorTest = await second.api('POST', `/api/connectors/${connector.body.id}/test`, {});
        expect(connectorTest.status, connectorTest.text).toBe(200);
        expect(connectorTest.body, connectorTest.text).toMatchObject({
          ok: true,
          token: { expiresAt: one.body.token.expiresAt },
        });
      }
    } finally {
      await second.stop();
    }
  });
});
