import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiFixture, startApiServer } from './support/api-server.js';
import { type GrantryHandle, startGrantry } from './support/grantry.js';
import { type OidcFixture, startOidcProvider } from './support/oidc.js';

/**
 * "Read the token when the API refuses it": JWT access tokens issued by a real oidc-provider (RFC
 * 8707 resources with `accessTokenFormat: 'jwt'`), sent by Grantry to a real HTTPS API that checks
 * them the way resource servers do — the audience must be its own, the scope must cover the call —
 * and answers RFC 6750 challenges. The diagnosis must name the mismatch, and never the token nor
 * anything about the person: the tokens carry canaries as `sub`, `email` and `name`.
 */
const ORDERS = 'https://orders.example.test';
const BILLING = 'https://billing.example.test';
const REPORTS = 'https://reports.example.test';
const LEGACY = 'https://legacy.example.test';
const CANARY_SUB = 'canary-sub-7f3a9c';
const CANARY_EMAIL = 'canary-mail-7f3a9c@example.test';
const CANARY_NAME = 'Canary Nameperson';
const CLIENT = { client_id: 'reader', client_secret: 'reader-secret' };

describe('the token read when the API refuses it', () => {
  let oidc: OidcFixture;
  let api: ApiFixture;
  let g: GrantryHandle & { app: Awaited<ReturnType<typeof startGrantry>>['app'] };

  beforeAll(async () => {
    oidc = await startOidcProvider({
      users: { [CANARY_SUB]: 'canary-password' },
      extraAccessTokenClaims: { email: CANARY_EMAIL, name: CANARY_NAME },
      resources: {
        [ORDERS]: { scope: 'read write', accessTokenFormat: 'jwt' },
        [BILLING]: { scope: 'read write', accessTokenFormat: 'jwt' },
        // This API's resource grants `read` only, whatever is asked for.
        [REPORTS]: { scope: 'read', accessTokenFormat: 'jwt' },
        [LEGACY]: { scope: 'read write' },
      },
      clients: [{ ...CLIENT, grant_types: ['password', 'refresh_token'], scope: 'read write' }],
    });
    // The API behind the connector is Orders (or Reports): it accepts tokens issued for it, and needs
    // `write` for every call.
    api = await startApiServer({
      verify: async (token) => {
        const verified = await oidc.verifyAccessToken(token);
        if (!verified.active) return false;
        const audiences = [verified.aud ?? []].flat();
        if (!audiences.includes(ORDERS) && !audiences.includes(REPORTS)) {
          return {
            ok: false,
            wwwAuthenticate:
              'Bearer realm="orders", error="invalid_token", error_description="not for this API"',
          };
        }
        if (!(verified.scope ?? '').split(' ').includes('write')) {
          return {
            ok: false,
            status: 403,
            wwwAuthenticate: 'Bearer realm="orders", error="insufficient_scope", scope="write"',
          };
        }
        return true;
      },
    });
    g = await startGrantry();
  });
  afterAll(async () => {
    await g?.stop();
    await api?.close();
    await oidc?.close();
  });

  /** A Password-grant authentication for the canary user, and a connector to the test API. */
  async function connector(settings: {
    audience: string;
    scope: string;
  }): Promise<{ authId: string; id: string }> {
    const suffix = Math.random().toString(36).slice(2);
    const auth = await g.api('POST', '/api/authentications', {
      name: `reader-${suffix}`,
      type: 'oauth2',
      grantType: 'password',
      tokenUrl: oidc.tokenUrl,
      clientId: CLIENT.client_id,
      clientSecret: CLIENT.client_secret,
      username: CANARY_SUB,
      password: 'canary-password',
      audienceParam: 'resource',
      ...settings,
    });
    expect(auth.status, auth.text).toBe(201);
    const created = await g.api('POST', '/api/connectors', {
      name: `orders-${suffix}`,
      baseUrl: api.url,
      authenticationId: auth.body.id,
    });
    expect(created.status, created.text).toBe(201);
    return { authId: auth.body.id, id: created.body.id };
  }

  /** Nothing personal and no token in what Grantry answered, stored or logged about a refusal. */
  async function expectNothingPersonal(answers: string[], authId: string): Promise<void> {
    const tokens = api.requests.map((request) => request.token ?? '').filter((token) => token !== '');
    expect(tokens.length).toBeGreaterThan(0);
    // They are JWTs, and they do carry the canaries: so the absence below means something.
    const payload = JSON.parse(Buffer.from(tokens.at(-1)?.split('.')[1] ?? '', 'base64url').toString('utf8'));
    expect(payload).toMatchObject({ sub: CANARY_SUB, email: CANARY_EMAIL, name: CANARY_NAME });
    const events = (await g.api('GET', `/api/authentications/${authId}/events`)).text;
    const view = (await g.api('GET', `/api/authentications/${authId}`)).text;
    const log = readFileSync(g.logFile, 'latin1');
    // `sub` is the username here (the password grant's account), which the configuration shows as
    // it was typed: it must stay out of everything said about the refusal.
    for (const text of [...answers, events]) expect(text).not.toContain(CANARY_SUB);
    for (const text of [...answers, events, view, log]) {
      for (const secret of [CANARY_EMAIL, CANARY_NAME, 'Nameperson']) expect(text).not.toContain(secret);
      for (const token of tokens) {
        expect(text).not.toContain(token);
        expect(text).not.toContain(token.split('.')[1]);
      }
    }
  }

  it('a token issued for another audience: the hint names it, as the API refused it (invalid_token)', async () => {
    const { authId, id } = await connector({ audience: BILLING, scope: 'read write' });
    const executed = await g.api('POST', `/api/connectors/${id}/execute`, { method: 'GET', path: '/echo' });
    expect(executed.status, executed.text).toBe(200);
    expect(executed.body).toMatchObject({ status: 401, tokenRefreshed: true });
    expect(executed.body.error.code).toBe('upstream_unauthorized');
    expect(executed.body.error.provider).toMatchObject({ status: 401, error: 'invalid_token' });
    // The fresh token fetched after the first 401 was refused too: forced refreshes pause, and say so.
    expect(executed.body.error.hint).toBe(
      `The token was issued for audience "${BILLING}" (the configured Audience); this API (${api.url}) refused it as invalid_token — set Audience to the API's identifier, if it is not "${BILLING}". Grantry is not fetching new tokens for this authentication until ${executed.body.error.hint.match(/until (\S+) because/)?.[1]} because fresh tokens were refused too; changing the authentication ends this pause.`,
    );

    const tested = await g.api('POST', `/api/connectors/${id}/test`, {});
    expect(tested.body.ok).toBe(false);
    expect(tested.body.error.hint).toMatch(
      new RegExp(`issued for audience "${BILLING.replaceAll('.', '\\.')}"`),
    );
    await expectNothingPersonal([executed.text, tested.text], authId);
  });

  it('a missing scope: the hint compares the token’s scope with the one the API asks for (insufficient_scope)', async () => {
    const { authId, id } = await connector({ audience: ORDERS, scope: 'read' });
    const executed = await g.api('POST', `/api/connectors/${id}/execute`, { method: 'GET', path: '/echo' });
    expect(executed.body).toMatchObject({ status: 403, tokenRefreshed: false });
    expect(executed.body.error.code).toBe('upstream_forbidden');
    expect(executed.body.error.hint).toBe(
      'The token carries scope "read"; the API needs "write" (insufficient_scope): add "write" to the authentication\'s Scope, and make sure the provider grants it to this client.',
    );
    await expectNothingPersonal([executed.text], authId);
  });

  it('a scope asked for but not granted: the hint says the provider left it out', async () => {
    const { authId, id } = await connector({ audience: REPORTS, scope: 'read write' });
    const executed = await g.api('POST', `/api/connectors/${id}/execute`, { method: 'GET', path: '/echo' });
    expect(executed.body).toMatchObject({ status: 403 });
    expect(executed.body.error.hint).toMatch(
      /^The token carries scope "read"; the API needs "write" \(insufficient_scope\)\. Scope already asks for it, so the provider did not grant it/,
    );
    await expectNothingPersonal([executed.text], authId);
  });

  it('an opaque token keeps today’s hint: there is nothing to read', async () => {
    const { id } = await connector({ audience: LEGACY, scope: 'read write' });
    const executed = await g.api('POST', `/api/connectors/${id}/execute`, { method: 'GET', path: '/echo' });
    expect(executed.body).toMatchObject({ status: 401 });
    const sent = api.requests.at(-1)?.token ?? '';
    expect(sent.split('.')).toHaveLength(1);
    // Its fresh token refused too, the pause has begun: the hint no longer claims the token was just issued.
    expect(executed.body.error.hint).toMatch(
      /^The API says the token is invalid: it was issued for another audience or scope, or revoked\./,
    );
    expect(executed.body.error.hint).not.toMatch(/was issued for audience "/);
  });
});
