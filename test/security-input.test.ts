import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresTestSchema } from '../src/store/postgres-test-schema.js';
import { type ApiFixture, startApiServer } from './support/api-server.js';
import { type GrantryHandle, startGrantry } from './support/grantry.js';
import { type RawResponse, rawRequest } from './support/raw-http.js';

/**
 * Regressions for the input-validation review: every route validates its input and answers
 * `validation_failed` with every problem listed, never a 500 and never a stored ill-formed value.
 * Requests whose bytes matter go over a raw socket, so nothing between the test and the server
 * re-encodes them.
 */
type Started = GrantryHandle & { app: Awaited<ReturnType<typeof startGrantry>>['app'] };

interface Problem {
  code: string;
  message: string;
  errors?: { path: string; message: string }[];
}

describe('request input is validated, never a 500', () => {
  let g: Started;
  let api: ApiFixture;
  let port: number;
  let authId: string;

  beforeAll(async () => {
    g = await startGrantry();
    port = Number(new URL(g.url).port);
    api = await startApiServer({ verify: async () => true, http: true });
    const auth = await g.api('POST', '/api/authentications', { name: 'static', type: 'bearer', token: 't' });
    expect(auth.status, auth.text).toBe(201);
    authId = auth.body.id;
  });

  afterAll(async () => {
    await g?.stop();
    await api?.close();
  });

  function send(
    method: string,
    target: string,
    body?: string,
    contentType: string | null = 'application/json',
  ): Promise<RawResponse> {
    const lines = [
      `${method} ${target} HTTP/1.1`,
      `Host: 127.0.0.1:${port}`,
      'Connection: close',
      `Authorization: Bearer ${g.apiKey}`,
    ];
    if (body !== undefined) {
      if (contentType !== null) lines.push(`Content-Type: ${contentType}`);
      lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
    }
    return rawRequest(port, `${lines.join('\r\n')}\r\n\r\n${body ?? ''}`);
  }

  function problemOf(answer: RawResponse): Problem {
    return (JSON.parse(answer.body) as { error: Problem }).error;
  }

  describe('lone surrogates', () => {
    it('refuses a lone surrogate escape in a JSON body, naming the field, and stores nothing', async () => {
      const answer = await send(
        'POST',
        '/api/authentications',
        '{"name":"bad\\ud800","type":"bearer","token":"t","headerPrefix":"\\udc00x"}',
      );
      expect(answer.status, answer.body).toBe(400);
      const problem = problemOf(answer);
      expect(problem.code).toBe('validation_failed');
      expect(problem.errors?.map((e) => e.path).sort()).toEqual(['/headerPrefix', '/name']);
      const list = await g.api('GET', '/api/authentications?q=bad');
      expect(list.body.items).toEqual([]);
    });

    it('points at a lone surrogate in a nested value or a key, escaping the key (RFC 6901)', async () => {
      const answer = await send(
        'POST',
        '/api/connectors',
        '{"name":"c","baseUrl":"https://api.example.test","headers":{"a/b~c":"\\ud800","\\udfff":"x"}}',
      );
      expect(answer.status, answer.body).toBe(400);
      const paths = problemOf(answer).errors?.map((e) => e.path) ?? [];
      expect(paths).toContain('/headers/a~1b~0c');
      expect(paths.some((p) => p.startsWith('/headers/'))).toBe(true);
      expect(paths).toHaveLength(2);
    });

    it('accepts a well-formed surrogate pair (an emoji) escaped in JSON', async () => {
      const answer = await send(
        'POST',
        '/api/authentications',
        '{"name":"smile \\ud83d\\ude00","type":"bearer","token":"t"}',
      );
      expect(answer.status, answer.body).toBe(201);
      expect(JSON.parse(Buffer.from(answer.body, 'latin1').toString('utf8')).name).toBe('smile 😀');
    });

    it('answers validation_failed for a path parameter that is not percent-encoded UTF-8', async () => {
      for (const target of ['/api/authentications/%ED%A0%80', '/api/connectors/%E0', '/api/webhooks/%C3']) {
        const answer = await send('GET', target);
        expect(answer.status, target).toBe(400);
        const problem = problemOf(answer);
        expect(problem.code).toBe('validation_failed');
        expect(problem.errors?.[0]?.path).toBe('/params');
      }
    });

    it('still asks for a key first on a protected path that does not decode; public ones answer 400', async () => {
      for (const target of [
        '/api/authentications/%E0',
        '/api/connectors/%ED%A0%80/execute',
        '/proxy/%E0/x',
      ]) {
        const refused = await rawRequest(
          port,
          `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
        );
        expect(refused.status, target).toBe(401);
        expect(problemOf(refused).code).toBe('unauthorized');
        expect(refused.headers.get('www-authenticate')).toEqual(['Bearer realm="grantry"']);
      }
      const open = await rawRequest(
        port,
        `GET /oauth/connect/%E0 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
      );
      expect(open.status).toBe(400);
      expect(problemOf(open).code).toBe('validation_failed');
    });

    it('never answers 500 for query values that are not percent-encoded UTF-8', async () => {
      for (const target of [
        '/api/authentications?q=%ED%A0%80',
        '/api/connectors?q=%E0%A4',
        '/api/webhooks?cursor=%ED%A0%80',
        `/api/authentications/${authId}/events?limit=%E0`,
      ]) {
        const answer = await send('GET', target);
        expect(answer.status, target).toBeLessThan(500);
      }
    });
  });

  describe('a POST that takes no body', () => {
    it('accepts an empty body whatever its Content-Type', async () => {
      const connector = await g.api('POST', '/api/connectors', {
        name: 'bodiless',
        baseUrl: api.url,
        authenticationId: authId,
      });
      for (const contentType of [
        'application/xml',
        'application/x-www-form-urlencoded',
        'text/plain',
        null,
      ]) {
        const tested = await send('POST', `/api/authentications/${authId}/test`, '', contentType);
        expect(tested.status, `${contentType}: ${tested.body}`).toBe(200);
        const invalidated = await send('POST', `/api/authentications/${authId}/invalidate`, '', contentType);
        expect(invalidated.status, `${contentType}: ${invalidated.body}`).toBe(204);
        const connectorTest = await send(
          'POST',
          `/api/connectors/${connector.body.id}/test`,
          '',
          contentType,
        );
        expect(connectorTest.status, `${contentType}: ${connectorTest.body}`).toBe(200);
      }
    });

    it('reads an empty body of any type as no body on every bodiless POST (authorize, key rotation, webhook test)', async () => {
      const webhook = await g.api('POST', '/api/webhooks', {
        url: 'https://hooks.example.test/in',
        events: ['authentication.connected'],
      });
      expect(webhook.status, webhook.text).toBe(201);
      const targets = [
        `/api/authentications/${authId}/authorize`,
        `/api/authentications/${authId}/rotate-key`,
        `/api/authentications/${authId}/rotate-key/activate`,
        `/api/authentications/${authId}/rotate-key/finish`,
        `/api/webhooks/${webhook.body.id}/test`,
      ];
      for (const target of targets) {
        for (const contentType of ['application/octet-stream', 'application/x-www-form-urlencoded']) {
          const answer = await send('POST', target, '', contentType);
          expect(answer.status, `${target} ${contentType}: ${answer.body}`).toBeLessThan(500);
          // Whatever the route thinks of the request, it is not refused for its (absent) body.
          expect(answer.body, target).not.toContain('must be JSON');
          expect(answer.body, target).not.toContain('send Content-Type');
        }
      }
    });

    it('still refuses a body with content in a type Grantry does not read, saying so', async () => {
      const answer = await send('POST', `/api/authentications/${authId}/test`, '<a/>', 'application/xml');
      expect(answer.status).toBe(400);
      expect(problemOf(answer)).toMatchObject({
        code: 'validation_failed',
        message: 'The request body must be JSON.',
        errors: [{ path: '', message: 'send Content-Type: application/json' }],
      });
    });
  });

  describe('problems are listed once per field, at one spelling', () => {
    it('a wrong type for a nullable field is one problem, not three', async () => {
      const answer = await send('PATCH', `/api/authentications/${authId}`, '{"headerPrefix":5}');
      expect(answer.status).toBe(400);
      expect(problemOf(answer).errors).toEqual([
        { path: '/headerPrefix', message: 'must be string or null' },
      ]);
    });

    it('query-string problems point at /query/<name> on every route (docs/api.md)', async () => {
      const targets = [
        '/api/authentications?limit=abc',
        '/api/connectors?limit=abc',
        '/api/webhooks?limit=abc',
        `/api/authentications/${authId}/events?limit=abc`,
      ];
      for (const target of targets) {
        const answer = await send('GET', target);
        expect(answer.status, target).toBe(400);
        const errors = problemOf(answer).errors ?? [];
        expect(
          errors.map((e) => e.path),
          target,
        ).toEqual(['/query/limit']);
      }
      const force = await send('DELETE', `/api/authentications/${authId}?force=maybe`);
      expect(problemOf(force).errors?.map((e) => e.path)).toEqual(['/query/force']);
    });
  });

  describe('names and credentials a person can use', () => {
    it('refuses names with no visible character on authentications and connectors, on create and PATCH', async () => {
      for (const name of ['   ', '\u00a0\u3000', '\u200b\ufeff']) {
        const auth = await g.api('POST', '/api/authentications', { name, type: 'bearer', token: 't' });
        expect(auth.status, JSON.stringify(name)).toBe(400);
        expect(auth.body.error.errors).toContainEqual({
          path: '/name',
          message: 'must contain a visible character, not only spaces',
        });
        const connector = await g.api('POST', '/api/connectors', {
          name,
          baseUrl: 'https://api.example.test',
        });
        expect(connector.status, JSON.stringify(name)).toBe(400);
        expect(connector.body.error.errors.map((e: { path: string }) => e.path)).toEqual(['/name']);
      }
      const patched = await g.api('PATCH', `/api/authentications/${authId}`, { name: ' \t ' });
      expect(patched.status).toBe(400);
      expect(patched.body.error.errors.map((e: { path: string }) => e.path)).toContain('/name');
      expect((await g.api('GET', `/api/authentications/${authId}`)).body.name).toBe('static');
    });

    it('refuses a webhook description of spaces only (null clears it)', async () => {
      const answer = await g.api('POST', '/api/webhooks', {
        url: 'https://hooks.example.test/in',
        events: ['authentication.connected'],
        description: '   ',
      });
      expect(answer.status).toBe(400);
      expect(answer.body.error.errors).toEqual([
        {
          path: '/description',
          message: 'must contain a visible character, not only spaces (null clears it)',
        },
      ]);
    });

    it('refuses a Basic username with a colon (RFC 7617), on create and PATCH', async () => {
      const answer = await g.api('POST', '/api/authentications', {
        name: 'basic colon',
        type: 'basic',
        username: 'ann:admin',
        password: 'p',
      });
      expect(answer.status).toBe(400);
      expect(answer.body.error.errors).toEqual([
        {
          path: '/username',
          message: expect.stringContaining('must not contain ":" (RFC 7617'),
        },
      ]);
      const good = await g.api('POST', '/api/authentications', {
        name: 'basic ok',
        type: 'basic',
        username: 'ann',
        password: 'p:with:colons',
      });
      expect(good.status, good.text).toBe(201);
      const patched = await g.api('PATCH', `/api/authentications/${good.body.id}`, { username: 'a:b' });
      expect(patched.status).toBe(400);
      expect(patched.body.error.errors.map((e: { path: string }) => e.path)).toEqual(['/username']);
    });

    it('refuses providerParams without provider', async () => {
      const answer = await g.api('POST', '/api/authentications', {
        name: 'orphan params',
        type: 'bearer',
        token: 't',
        providerParams: { tenant: 'contoso' },
      });
      expect(answer.status).toBe(400);
      expect(answer.body.error.errors).toEqual([
        { path: '/providerParams', message: expect.stringContaining('applies only with provider') },
      ]);
    });

    it('escapes ~ and / in the JSON pointers of problems (RFC 6901)', async () => {
      const preset = await g.api('POST', '/api/authentications', {
        provider: 'microsoft-entra-id',
        providerParams: { 'a/b~c': 'x' },
        clientId: 'id',
        clientSecret: 's',
      });
      expect(preset.status).toBe(400);
      expect(preset.body.error.errors.map((e: { path: string }) => e.path)).toContain(
        '/providerParams/a~1b~0c',
      );
      const unknown = await send(
        'POST',
        '/api/authentications',
        '{"name":"x","type":"bearer","token":"t","a/b~c":1}',
      );
      expect(problemOf(unknown).errors).toEqual([{ path: '/a~1b~0c', message: 'is not a known field' }]);
      const header = await g.api('POST', '/api/connectors', {
        name: 'pointer',
        baseUrl: 'https://api.example.test',
        headers: { 'x/y~z': 'v' },
      });
      expect(header.body.error.errors.map((e: { path: string }) => e.path)).toEqual(['/headers/x~1y~0z']);
      // The schema's own problems (Ajv's instancePath) are escaped the same way.
      const typed = await g.api('POST', '/api/connectors', {
        name: 'pointer',
        baseUrl: 'https://api.example.test',
        query: { 'p/q~r': 5 },
      });
      expect(typed.body.error.errors).toEqual([{ path: '/query/p~1q~0r', message: 'must be string' }]);
    });
  });

  describe('connector headers', () => {
    it('refuses a secret Authorization header on a connector with an authentication, whichever comes first', async () => {
      const both = await g.api('POST', '/api/connectors', {
        name: 'both',
        baseUrl: api.url,
        authenticationId: authId,
        secretHeaders: { Authorization: 'Bearer static' },
      });
      expect(both.status).toBe(400);
      expect(both.body.error.errors).toEqual([
        { path: '/secretHeaders/Authorization', message: expect.stringContaining('attached authentication') },
      ]);
      // A secret Authorization stored first, the authentication attached later: refused too.
      const first = await g.api('POST', '/api/connectors', {
        name: 'secret first',
        baseUrl: api.url,
        secretHeaders: { Authorization: 'Bearer static' },
      });
      expect(first.status, first.text).toBe(201);
      const attach = await g.api('PATCH', `/api/connectors/${first.body.id}`, { authenticationId: authId });
      expect(attach.status).toBe(400);
      expect(attach.body.error.errors).toEqual([
        { path: '/authenticationId', message: expect.stringContaining('secret Authorization header') },
      ]);
      expect((await g.api('GET', `/api/connectors/${first.body.id}`)).body.authenticationId).toBeNull();
      // Removing it in the same request is the way out.
      const swap = await g.api('PATCH', `/api/connectors/${first.body.id}`, {
        authenticationId: authId,
        secretHeaders: { authorization: null },
      });
      expect(swap.status, swap.text).toBe(200);
      expect(swap.body.secretHeaderNames).toEqual([]);
    });

    it('refuses two spellings of one header name, in headers and in secretHeaders', async () => {
      const answer = await g.api('POST', '/api/connectors', {
        name: 'dup',
        baseUrl: api.url,
        headers: { 'X-Tenant': 'a', 'x-tenant': 'b' },
        secretHeaders: { 'X-Api-Key': 'k1', 'X-API-KEY': 'k2' },
      });
      expect(answer.status).toBe(400);
      expect(answer.body.error.errors.map((e: { path: string }) => e.path).sort()).toEqual([
        '/headers/x-tenant',
        '/secretHeaders/X-API-KEY',
      ]);
    });

    it('caps the number of static headers at 50 of each kind', async () => {
      const many = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`X-H${i}`, 'v']));
      const answer = await g.api('POST', '/api/connectors', {
        name: 'many',
        baseUrl: api.url,
        headers: many,
      });
      expect(answer.status).toBe(400);
      expect(answer.body.error.errors).toEqual([
        { path: '/headers', message: 'may have at most 50 headers' },
      ]);
      const secret = await g.api('POST', '/api/connectors', {
        name: 'many',
        baseUrl: api.url,
        secretHeaders: many,
      });
      expect(secret.status).toBe(400);
      expect(secret.body.error.errors.map((e: { path: string }) => e.path)).toEqual(['/secretHeaders']);
      const fifty = Object.fromEntries(Object.entries(many).slice(0, 50));
      const ok = await g.api('POST', '/api/connectors', { name: 'fifty', baseUrl: api.url, headers: fifty });
      expect(ok.status, ok.text).toBe(201);
    });
  });
});

/** The list search, over HTTP, on every engine this run has (PostgreSQL with GRANTRY_TEST_DATABASE_URL). */
const engines: { name: string; databaseUrl(): Promise<{ url?: string; drop(): Promise<void> }> }[] = [
  { name: 'sqlite', databaseUrl: async () => ({ drop: async () => {} }) },
];
const postgresUrl = process.env.GRANTRY_TEST_DATABASE_URL;
if (postgresUrl) {
  engines.push({
    name: 'postgres',
    databaseUrl: async () => createPostgresTestSchema(postgresUrl, 'grantry_search'),
  });
}

describe.each(engines)('list search q on $name', (engine) => {
  let g: Started;
  let drop: () => Promise<void>;

  beforeAll(async () => {
    const database = await engine.databaseUrl();
    drop = database.drop;
    g = await startGrantry(database.url === undefined ? {} : { env: { GRANTRY_DATABASE_URL: database.url } });
  });

  afterAll(async () => {
    await g?.stop();
    await drop?.();
  });

  it('matches names case-insensitively beyond ASCII, for authentications and connectors', async () => {
    for (const name of ['Émile Zoë', 'ΣΊΣΥΦΟΣ', 'plain']) {
      expect((await g.api('POST', '/api/authentications', { name, type: 'bearer', token: 't' })).status).toBe(
        201,
      );
      expect(
        (await g.api('POST', '/api/connectors', { name, baseUrl: 'https://api.example.test' })).status,
      ).toBe(201);
    }
    for (const list of ['/api/authentications', '/api/connectors']) {
      const names = async (q: string) =>
        (await g.api('GET', `${list}?q=${encodeURIComponent(q)}`)).body.items.map(
          (i: { name: string }) => i.name,
        );
      expect(await names('émile')).toEqual(['Émile Zoë']);
      expect(await names('ZOË')).toEqual(['Émile Zoë']);
      expect(await names('σίσυφος')).toEqual(['ΣΊΣΥΦΟΣ']);
      expect(await names('PLAIN')).toEqual(['plain']);
    }
  });

  it('answers validation_failed, not 500, for NUL or another control character in q', async () => {
    for (const list of ['/api/authentications', '/api/connectors']) {
      for (const q of ['%00', 'a%00b', '%1B%5B2J']) {
        const answer = await g.api('GET', `${list}?q=${q}`);
        expect(answer.status, `${list}?q=${q}`).toBe(400);
        expect(answer.body.error.code).toBe('validation_failed');
        expect(answer.body.error.errors).toEqual([
          { path: '/query/q', message: expect.stringMatching(/NUL|control/) },
        ]);
      }
    }
  });

  it('answers validation_failed, not 500, for NUL in an id, a filter or a cursor (PostgreSQL text refuses NUL)', async () => {
    const nulCursor = Buffer.from(JSON.stringify(['a\u0000', 'b'])).toString('base64url');
    const cases: [string, string, string][] = [
      ['GET', '/api/authentications/a%00b', '/params/id'],
      ['GET', '/api/connectors/a%00b', '/params/id'],
      ['GET', '/api/webhooks/a%00', '/params/id'],
      ['GET', '/api/authentications/a%00/events', '/params/id'],
      ['POST', '/api/connectors/a%00/execute', '/params/id'],
      ['GET', '/api/connectors?authenticationId=a%00', '/query/authenticationId'],
      ['GET', `/api/authentications?cursor=${nulCursor}`, '/query/cursor'],
      ['GET', `/api/connectors?cursor=${nulCursor}`, '/query/cursor'],
    ];
    for (const [method, target, path] of cases) {
      const answer = await g.api(
        method,
        target,
        method === 'POST' ? { method: 'GET', path: '/' } : undefined,
      );
      expect(answer.status, `${method} ${target}: ${answer.text}`).toBe(400);
      expect(answer.body.error.code).toBe('validation_failed');
      expect(answer.body.error.errors.map((e: { path: string }) => e.path)).toEqual([path]);
    }
  });

  it('answers validation_failed, not 500, for NUL or another control character in a URL or an id in a body', async () => {
    const cases: [string, string, Record<string, unknown>, string][] = [
      [
        'POST',
        '/api/connectors',
        { name: 'nul url', baseUrl: 'https://api.example.test/a\u0000b' },
        '/baseUrl',
      ],
      ['POST', '/api/connectors', { name: 'tab url', baseUrl: 'https://api.example.test/a\tb' }, '/baseUrl'],
      [
        'POST',
        '/api/connectors',
        { name: 'nul auth', baseUrl: 'https://api.example.test', authenticationId: 'auth_\u0000' },
        '/authenticationId',
      ],
      [
        'POST',
        '/api/webhooks',
        { url: 'https://hooks.example.test/\u0000', events: ['authentication.connected'] },
        '/url',
      ],
      [
        'POST',
        '/api/authentications',
        {
          name: 'nul token url',
          type: 'oauth2',
          grantType: 'client_credentials',
          tokenUrl: 'https://login.example.test/t\u0000',
          clientId: 'c',
          clientSecret: 's',
        },
        '/tokenUrl',
      ],
    ];
    for (const [method, target, body, path] of cases) {
      const answer = await g.api(method, target, body);
      expect(answer.status, `${target} ${JSON.stringify(body)}: ${answer.text}`).toBe(400);
      expect(answer.body.error.errors.map((e: { path: string }) => e.path)).toEqual([path]);
    }
  });
});
