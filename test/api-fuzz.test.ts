import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GrantryHandle, startGrantry } from './support/grantry.js';

/**
 * Property: no request body a user can send makes Grantry answer 500, and every refusal is the
 * documented error shape listing its problems. Bodies mix valid fields, wrong types, hostile
 * strings (CR/LF, NUL, unicode) and unknown keys.
 */
const hostile = fc.oneof(
  fc.string(),
  fc.constantFrom(
    '',
    ' ',
    '\r\n',
    '\u0000',
    'https://x.test/t',
    'http://127.0.0.1:1/t',
    'javascript:alert(1)',
    '%2e%2e',
    '💥',
    // Lone surrogates: JSON.stringify escapes them ("\ud800"); they must be refused, not stored.
    '\ud800',
    'a\udfffb',
  ),
  fc.string({ unit: 'binary' }),
);
const anyValue = fc.oneof(
  hostile,
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.array(hostile),
  fc.dictionary(hostile, hostile),
);

const authBody = fc.record(
  {
    name: fc.oneof(hostile, fc.integer()),
    type: fc.oneof(fc.constant('oauth2'), hostile),
    grantType: fc.oneof(fc.constantFrom('client_credentials', 'password', 'authorization_code'), hostile),
    authorizationUrl: fc.oneof(fc.constant('https://login.example.test/auth'), hostile),
    tokenUrl: fc.oneof(fc.constant('https://login.example.test/token'), hostile),
    clientId: fc.oneof(fc.constant('client'), hostile),
    clientSecret: fc.oneof(fc.constant('secret'), hostile),
    headerPrefix: hostile,
    audience: hostile,
    audienceParam: fc.oneof(fc.constantFrom('audience', 'resource'), hostile),
    scope: hostile,
    username: hostile,
    password: hostile,
    clientAuthMethod: fc.oneof(fc.constantFrom('client_secret_basic', 'client_secret_post'), hostile),
    extraTokenParams: fc.oneof(fc.dictionary(hostile, hostile), anyValue),
    extraAuthorizationParams: fc.oneof(fc.dictionary(hostile, hostile), anyValue),
    pkce: fc.oneof(fc.boolean(), anyValue),
    revocationUrl: hostile,
    [`x${Math.random().toString(36).slice(2, 5)}`]: anyValue,
  },
  { requiredKeys: [] },
);
const connectorBody = fc.record(
  {
    name: fc.oneof(hostile, fc.integer()),
    baseUrl: fc.oneof(fc.constant('https://api.example.test/v1'), hostile),
    authenticationId: fc.oneof(fc.constant(null), hostile),
    headers: fc.oneof(fc.dictionary(hostile, hostile), anyValue),
    query: fc.oneof(fc.dictionary(hostile, hostile), anyValue),
    timeoutMs: fc.oneof(fc.integer(), fc.double(), anyValue),
  },
  { requiredKeys: [] },
);

describe('request bodies (property-based)', () => {
  let g: GrantryHandle;
  let authId = '';
  let connectorId = '';
  beforeAll(async () => {
    g = await startGrantry();
    authId = (
      await g.api('POST', '/api/authentications', {
        name: 'fuzz-base',
        type: 'oauth2',
        grantType: 'client_credentials',
        tokenUrl: 'https://login.example.test/token',
        clientId: 'c',
        clientSecret: 's',
      })
    ).body.id;
    connectorId = (
      await g.api('POST', '/api/connectors', { name: 'fuzz-base', baseUrl: 'https://api.example.test' })
    ).body.id;
  });
  afterAll(async () => {
    await g.stop();
  });

  function expectWellFormed(answer: { status: number; body: any; text: string }, allowed: number[]): void {
    expect(allowed, answer.text).toContain(answer.status);
    if (answer.status >= 400) {
      expect(typeof answer.body.error.code).toBe('string');
      expect(typeof answer.body.error.message).toBe('string');
      if (answer.body.error.code === 'validation_failed' || answer.body.error.code === 'insecure_url') {
        expect(answer.body.error.errors.length).toBeGreaterThan(0);
        for (const e of answer.body.error.errors) expect(e.path === '' || e.path.startsWith('/')).toBe(true);
      }
    }
  }

  it('POST and PATCH /api/authentications never answer 500', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(authBody, anyValue), async (body) => {
        expectWellFormed(
          await g.api('POST', '/api/authentications', JSON.stringify(body), {
            'content-type': 'application/json',
          }),
          [201, 400, 409],
        );
        expectWellFormed(
          await g.api('PATCH', `/api/authentications/${authId}`, JSON.stringify(body), {
            'content-type': 'application/json',
          }),
          [200, 400, 409],
        );
      }),
      { numRuns: 150 },
    );
  });

  it('POST and PATCH /api/connectors never answer 500', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(connectorBody, anyValue), async (body) => {
        expectWellFormed(
          await g.api('POST', '/api/connectors', JSON.stringify(body), {
            'content-type': 'application/json',
          }),
          [201, 400, 409],
        );
        expectWellFormed(
          await g.api('PATCH', `/api/connectors/${connectorId}`, JSON.stringify(body), {
            'content-type': 'application/json',
          }),
          [200, 400, 409],
        );
      }),
      { numRuns: 150 },
    );
  });

  it('arbitrary bytes as a JSON body are a 400, not a 500', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'binary' }), async (text) => {
        const answer = await g.api('POST', '/api/authentications', text, {
          'content-type': 'application/json',
        });
        expectWellFormed(answer, [201, 400, 409]);
      }),
      { numRuns: 100 },
    );
  });
});
