import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sealContext } from '../src/tokens/sealed-columns.js';
import { type ApiFixture, startApiServer } from './support/api-server.js';
import { freePort, type GrantryHandle, startGrantry } from './support/grantry.js';
import { authorizeThroughDevInteractions, type OidcFixture, startOidcProvider } from './support/oidc.js';

/**
 * The Authorization Code flow end to end, headless, against a real oidc-provider on HTTPS: the test
 * plays the browser (a cookie jar through the provider's dev login and consent pages, and Grantry's
 * browser-binding cookie), Grantry plays the client.
 */
const SCOPE = 'openid offline_access read';
const CLIENT = { client_id: 'web-app', client_secret: 'web-secret' };

interface Browser {
  /** `name=value` pairs Grantry set on this browser (Path=/oauth). */
  cookies: Map<string, string>;
}

interface RedirectAnswer {
  status: number;
  headers: Headers;
  html: string;
}

describe('authorization code flow against oidc-provider', () => {
  let oidc: OidcFixture;
  let g: GrantryHandle & { app: Awaited<ReturnType<typeof startGrantry>>['app'] };
  let api: ApiFixture;
  let redirectUri: string;
  let google: GoogleLikeTokenEndpoint;

  beforeAll(async () => {
    const port = await freePort();
    // GRANTRY_PUBLIC_URL of the harness: the redirect URI registered at the provider.
    redirectUri = `http://localhost:${port}/oauth/redirect`;
    oidc = await startOidcProvider({
      accessTokenTtl: 2,
      rotateRefreshToken: true,
      resources: { 'https://api.example.test': { scope: 'read' } },
      clients: [
        {
          ...CLIENT,
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          redirect_uris: [redirectUri],
          token_endpoint_auth_method: 'client_secret_basic',
          scope: SCOPE,
        },
      ],
    });
    g = await startGrantry({ port });
    api = await startApiServer({ verify: async (token) => (await oidc.verifyAccessToken(token)).active });
    google = await startGoogleLikeTokenEndpoint();
  });
  afterAll(async () => {
    await g?.stop();
    await oidc?.close();
    await api?.close();
    await google?.close();
  });

  async function createAuth(body: Record<string, unknown> = {}): Promise<string> {
    const answer = await g.api('POST', '/api/authentications', {
      name: `web-${Math.random().toString(36).slice(2)}`,
      type: 'oauth2',
      grantType: 'authorization_code',
      authorizationUrl: oidc.authorizationUrl,
      tokenUrl: oidc.tokenUrl,
      clientId: CLIENT.client_id,
      clientSecret: CLIENT.client_secret,
      scope: SCOPE,
      ...body,
    });
    expect(answer.status, answer.text).toBe(201);
    return answer.body.id;
  }

  /** POST …/authorize as the UI does (fetch from the same origin): the cookie lands in `browser`. */
  async function authorize(id: string, browser: Browser, headers: Record<string, string> = {}): Promise<URL> {
    const answer = await g.api('POST', `/api/authentications/${id}/authorize`, undefined, headers);
    expect(answer.status, answer.text).toBe(200);
    for (const line of answer.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      browser.cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    return new URL(answer.body.authorizationUrl);
  }

  /** The provider's redirect, followed by the browser to Grantry (which listens on 127.0.0.1). */
  async function followRedirect(target: URL, browser: Browser | null): Promise<RedirectAnswer> {
    const cookie = browser === null ? '' : [...browser.cookies].map(([n, v]) => `${n}=${v}`).join('; ');
    const response = await fetch(`${g.url}${target.pathname}${target.search}`, {
      headers: cookie === '' ? {} : { cookie },
      redirect: 'manual',
    });
    return { status: response.status, headers: response.headers, html: await response.text() };
  }

  async function connect(id: string): Promise<RedirectAnswer> {
    const browser: Browser = { cookies: new Map() };
    const url = await authorize(id, browser);
    return followRedirect(await authorizeThroughDevInteractions(url.href), browser);
  }

  async function events(id: string): Promise<{ type: string; detail: Record<string, unknown> }[]> {
    return (await g.api('GET', `/api/authentications/${id}/events`)).body.items;
  }

  async function storedRefreshToken(id: string): Promise<string | null> {
    const row = await g.app.store.tokens.get(id);
    if (row?.refreshToken == null) return null;
    return g.app.keyRing.open(row.refreshToken, sealContext.refreshToken(id));
  }

  async function callApi(authorization: string): Promise<number> {
    const response = await fetch(`${api.url}/echo`, { headers: { authorization } });
    await response.body?.cancel();
    return response.status;
  }

  it('builds the authorization URL from configuration only: state, PKCE S256, audience, extra parameters, and a browser-binding cookie', async () => {
    const id = await createAuth({
      audience: 'https://api.example.test',
      audienceParam: 'resource',
      extraAuthorizationParams: { prompt: 'consent', login_hint: 'alice' },
    });
    const browser: Browser = { cookies: new Map() };
    const answer = await g.api('POST', `/api/authentications/${id}/authorize`, undefined, {
      host: 'evil.example',
      'x-forwarded-host': 'evil.example',
      'x-forwarded-proto': 'https',
    });
    expect(answer.status).toBe(200);
    const url = new URL(answer.body.authorizationUrl);
    expect(url.origin + url.pathname).toBe(oidc.authorizationUrl);
    const q = url.searchParams;
    expect(q.get('response_type')).toBe('code');
    expect(q.get('client_id')).toBe(CLIENT.client_id);
    expect(q.get('redirect_uri')).toBe(redirectUri);
    expect(q.get('scope')).toBe(SCOPE);
    expect(q.get('resource')).toBe('https://api.example.test');
    expect(q.get('prompt')).toBe('consent');
    expect(q.get('login_hint')).toBe('alice');
    expect(q.get('code_challenge_method')).toBe('S256');
    expect(q.get('code_challenge')).toMatch(/^[\w-]{43}$/);
    // At least 128 random bits, base64url.
    expect(q.get('state')).toMatch(/^[\w-]{22,}$/);

    const [cookie] = answer.headers.getSetCookie();
    expect(cookie).toMatch(/^grantry_oauth_[0-9a-f]{16}=[\w-]{43};/);
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Lax');
    expect(cookie).toContain('Path=/oauth');
    expect(cookie).toContain('Max-Age=600');

    // Every flow gets its own state and verifier.
    const again = await authorize(id, browser);
    expect(again.searchParams.get('state')).not.toBe(q.get('state'));
    expect(again.searchParams.get('code_challenge')).not.toBe(q.get('code_challenge'));
  });

  it('connects end to end: consent → redirect → connected → API call → expiry → refresh with rotation → call again', async () => {
    const id = await createAuth();
    expect((await g.api('GET', `/api/authentications/${id}`)).body.status).toBe('needs_authorization');
    oidc.resetCounts();

    const page = await connect(id);
    expect(page.status, page.html).toBe(200);
    expect(page.html).toContain('Connected');
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
    expect(nonce).toBeDefined();
    expect(page.html).toContain(`<script nonce="${nonce}">`);
    expect(page.html).toContain(`"authenticationId":"${id}"`);
    expect(page.html).toContain(`"http://localhost:${new URL(redirectUri).port}"`);
    expect(page.html).not.toMatch(/code=|state=/);
    // The flow's cookie is cleared.
    expect(page.headers.getSetCookie()[0]).toMatch(/Max-Age=0/);
    expect(oidc.tokenRequests.authorization_code).toBe(1);

    const view = (await g.api('GET', `/api/authentications/${id}`)).body;
    expect(view.status).toBe('connected');
    expect(view.token).toMatchObject({ hasRefreshToken: true });
    expect((await events(id))[0]).toMatchObject({ type: 'authorized', detail: { refreshTokenIssued: true } });

    const first = await g.app.tokens.get(id);
    expect(await callApi(first.authorization)).toBe(200);
    const firstRefreshToken = await storedRefreshToken(id);
    expect(firstRefreshToken).not.toBeNull();

    // Let the 2-second access token expire, at the provider and for Grantry.
    while (
      Date.now() < first.hardExpiresAt ||
      !(await oidc.verifyAccessToken(first.authorization.slice('Bearer '.length))).expired
    ) {
      await sleep(200);
    }
    expect(await callApi(first.authorization)).toBe(401);

    const refreshed = await g.app.tokens.acquire(id);
    expect(refreshed.source).toBe('refreshed');
    expect(oidc.tokenRequests.refresh_token).toBe(1);
    expect(refreshed.token.authorization).not.toBe(first.authorization);
    const rotated = await storedRefreshToken(id);
    expect(rotated).not.toBeNull();
    expect(rotated).not.toBe(firstRefreshToken);
    expect(await callApi(refreshed.token.authorization)).toBe(200);
    expect((await events(id))[0]).toMatchObject({ type: 'token_refreshed' });
  });

  it('refuses a replayed callback without asking the token endpoint again', async () => {
    const id = await createAuth();
    const browser: Browser = { cookies: new Map() };
    const callback = await authorizeThroughDevInteractions((await authorize(id, browser)).href);
    oidc.resetCounts();
    expect((await followRedirect(callback, browser)).status).toBe(200);
    expect(oidc.tokenRequests.authorization_code).toBe(1);

    const replay = await followRedirect(callback, browser);
    expect(replay.status).toBe(400);
    expect(replay.html).toContain('already used');
    expect(oidc.tokenRequests.authorization_code).toBe(1);
    expect((await g.api('GET', `/api/authentications/${id}`)).body.status).toBe('connected');
  });

  it('refuses a forged state and a response finished in another browser, without a token request', async () => {
    const id = await createAuth();
    oidc.resetCounts();
    const forged = new URL(redirectUri);
    forged.search = new URLSearchParams({
      code: 'stolen-code',
      state: 'x'.repeat(43),
      iss: oidc.issuer,
    }).toString();
    const forgedPage = await followRedirect(forged, { cookies: new Map() });
    expect(forgedPage.status).toBe(400);
    expect(forgedPage.html).toContain('Not connected');
    expect(forgedPage.html).not.toContain('stolen-code');
    // Nothing to tell an opener about: the response belongs to no authentication.
    expect(forgedPage.html).toContain('var message = null');

    // A real code and state, delivered to a browser that did not start the flow (login CSRF).
    const starter: Browser = { cookies: new Map() };
    const callback = await authorizeThroughDevInteractions((await authorize(id, starter)).href);
    const elsewhere = await followRedirect(callback, { cookies: new Map() });
    expect(elsewhere.status).toBe(400);
    expect(elsewhere.html).toContain('different browser');
    expect(elsewhere.html).not.toContain(callback.searchParams.get('code') ?? '-');
    expect(elsewhere.html).not.toContain(callback.searchParams.get('state') ?? '-');
    expect(oidc.tokenRequests.authorization_code).toBe(0);
    expect((await events(id))[0]).toMatchObject({
      type: 'authorization_failed',
      detail: { code: 'invalid_state' },
    });
    // The state was spent: the right browser cannot finish it afterwards either.
    expect((await followRedirect(callback, starter)).status).toBe(400);
    expect(oidc.tokenRequests.authorization_code).toBe(0);
    expect((await g.api('GET', `/api/authentications/${id}`)).body.status).toBe('needs_authorization');
  });

  it('shows the provider’s access_denied with its description escaped, records it, and connects nothing', async () => {
    const id = await createAuth();
    const browser: Browser = { cookies: new Map() };
    const state = (await authorize(id, browser)).searchParams.get('state') ?? '';
    oidc.resetCounts();
    const denied = new URL(redirectUri);
    denied.search = new URLSearchParams({
      error: 'access_denied',
      error_description: 'End-User aborted <script>alert(1)</script>',
      state,
      iss: oidc.issuer,
    }).toString();
    const page = await followRedirect(denied, browser);
    expect(page.status).toBe(400);
    expect(page.html).toContain('access_denied');
    expect(page.html).toContain('End-User aborted &lt;script&gt;alert(1)&lt;/script&gt;');
    expect(page.html).not.toContain('<script>alert(1)');
    expect(page.html).toContain('"ok":false');
    expect(page.html).toContain('"code":"access_denied"');
    expect(oidc.tokenRequests.total).toBe(0);

    const view = (await g.api('GET', `/api/authentications/${id}`)).body;
    expect(view.status).toBe('needs_authorization');
    expect(view.token).toBeNull();
    expect(view.lastError).toMatchObject({ code: 'access_denied', hint: expect.any(String) });
    expect((await events(id))[0]).toMatchObject({
      type: 'authorization_failed',
      detail: { code: 'access_denied', providerError: 'access_denied' },
    });
  });

  it('refuses a response with a wrong or missing iss (RFC 9207) before the code is exchanged', async () => {
    const id = await createAuth();
    for (const iss of ['https://evil.example', null]) {
      const browser: Browser = { cookies: new Map() };
      const callback = await authorizeThroughDevInteractions((await authorize(id, browser)).href);
      expect(callback.searchParams.get('iss')).toBe(oidc.issuer);
      if (iss === null) callback.searchParams.delete('iss');
      else callback.searchParams.set('iss', iss);
      oidc.resetCounts();
      const page = await followRedirect(callback, browser);
      expect(page.status).toBe(400);
      expect(page.html).toContain('did not come from the expected issuer');
      expect(oidc.tokenRequests.total).toBe(0);
    }
    expect((await events(id))[0]).toMatchObject({
      type: 'authorization_failed',
      detail: { stage: 'provider' },
    });
    expect((await g.api('GET', `/api/authentications/${id}`)).body.status).toBe('needs_authorization');
  });

  it('sends the PKCE verifier, which the provider checks: a code redeemed with another flow’s verifier is refused', async () => {
    const id = await createAuth();
    const browser: Browser = { cookies: new Map() };
    const first = await authorize(id, browser);
    const second = await authorize(id, browser);
    const callback = await authorizeThroughDevInteractions(first.href);
    // The first flow's code, with the second flow's (valid, unspent) state and so its verifier.
    callback.searchParams.set('state', second.searchParams.get('state') ?? '');
    oidc.resetCounts();
    const page = await followRedirect(callback, browser);
    expect(page.status).toBe(502);
    expect(oidc.tokenRequests.authorization_code).toBe(1);
    expect(page.html).toContain('invalid_grant');
    expect((await events(id))[0]).toMatchObject({
      type: 'authorization_failed',
      detail: { stage: 'exchange', code: 'invalid_grant' },
    });
    expect((await g.api('GET', `/api/authentications/${id}`)).body.status).toBe('needs_authorization');

    // The very same code with its own flow's state (and verifier) is accepted: only the verifier differed.
    callback.searchParams.set('state', first.searchParams.get('state') ?? '');
    const control = await followRedirect(callback, browser);
    expect(control.status, control.html).toBe(200);
    expect(oidc.tokenRequests.authorization_code).toBe(2);
    expect((await g.api('GET', `/api/authentications/${id}`)).body.status).toBe('connected');
  });

  it('leaves PKCE out when the authentication turns it off', async () => {
    const id = await createAuth({ pkce: false });
    const browser: Browser = { cookies: new Map() };
    const url = await authorize(id, browser);
    expect(url.searchParams.has('code_challenge')).toBe(false);
    expect(url.searchParams.has('code_challenge_method')).toBe(false);
    const page = await followRedirect(await authorizeThroughDevInteractions(url.href), browser);
    expect(page.status, page.html).toBe(200);
    expect((await g.api('GET', `/api/authentications/${id}`)).body.status).toBe('connected');
  });

  it('turns a refused refresh token into needs_authorization (424), and reconnecting replaces the tokens', async () => {
    const id = await createAuth();
    expect((await connect(id)).status).toBe(200);
    const refreshToken = (await storedRefreshToken(id)) ?? '';
    // The person revokes Grantry's access at the provider.
    const revoked = await fetch(oidc.revocationUrl, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${CLIENT.client_id}:${CLIENT.client_secret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ token: refreshToken, token_type_hint: 'refresh_token' }),
    });
    expect(revoked.status).toBe(200);
    expect((await g.api('POST', `/api/authentications/${id}/invalidate`)).status).toBe(204);

    await expect(g.app.tokens.get(id)).rejects.toMatchObject({ code: 'needs_authorization', status: 424 });
    const connector = await g.api('POST', '/api/connectors', {
      name: `api-${Math.random().toString(36).slice(2)}`,
      baseUrl: api.url,
      authenticationId: id,
    });
    expect(connector.status, connector.text).toBe(201);
    const execute = () =>
      g.api('POST', `/api/connectors/${connector.body.id}/execute`, { method: 'GET', path: '/echo' });
    const refused = await execute();
    expect(refused.status, refused.text).toBe(424);
    expect(refused.body.error.code).toBe('needs_authorization');
    const view = (await g.api('GET', `/api/authentications/${id}`)).body;
    expect(view.status).toBe('needs_authorization');
    expect(view.lastError).toMatchObject({
      code: 'needs_authorization',
      hint: expect.stringMatching(/Connect/),
    });
    expect((await events(id)).map((e) => e.type)).toContain('needs_authorization');

    expect((await connect(id)).status).toBe(200);
    expect((await g.api('GET', `/api/authentications/${id}`)).body.status).toBe('connected');
    const executed = await execute();
    expect(executed.status, executed.text).toBe(200);
    expect(executed.body.status).toBe(200);
    const fresh = await g.app.tokens.get(id);
    expect(await callApi(fresh.authorization)).toBe(200);
    expect(await storedRefreshToken(id)).not.toBe(refreshToken);
  });

  it('revokes the stored tokens at the provider’s discovered revocation endpoint on delete (RFC 7009)', async () => {
    const id = await createAuth();
    expect((await connect(id)).status).toBe(200);
    const token = (await g.app.tokens.get(id)).authorization.slice('Bearer '.length);
    expect((await oidc.verifyAccessToken(token)).active).toBe(true);
    oidc.resetCounts();
    expect((await g.api('DELETE', `/api/authentications/${id}`)).status).toBe(204);
    expect(oidc.revocations).toBe(2);
    expect((await oidc.verifyAccessToken(token)).active).toBe(false);
    expect((await g.api('GET', `/api/authentications/${id}`)).status).toBe(404);
  });

  it('deletes even when revocation fails, and records the failure', async () => {
    const closedPort = await freePort();
    const id = await createAuth({ revocationUrl: `http://127.0.0.1:${closedPort}/revoke` });
    expect((await connect(id)).status).toBe(200);
    const refreshToken = (await storedRefreshToken(id)) ?? '';
    expect(refreshToken).not.toBe('');
    const deleted = await g.api('DELETE', `/api/authentications/${id}?force=true`);
    expect(deleted.status, deleted.text).toBe(204);
    expect((await g.api('GET', `/api/authentications/${id}`)).status).toBe(404);
    // The events went with the authentication; the log keeps the outcome.
    const log = readFileSync(g.logFile, 'utf8');
    const line = log.split('\n').find((l) => l.includes('revocation_failed') && l.includes(id));
    expect(line).toBeDefined();
    expect(line).toContain('"tokenType":"refresh_token"');
    expect(log).not.toContain(refreshToken);
  });

  it('keeps the refresh token when a Google-like provider omits it from refresh responses', async () => {
    const answer = await g.api('POST', '/api/authentications', {
      name: `google-${Math.random().toString(36).slice(2)}`,
      type: 'oauth2',
      grantType: 'authorization_code',
      authorizationUrl: `${google.url}/o/oauth2/v2/auth`,
      tokenUrl: `${google.url}/token`,
      clientId: GOOGLE_CLIENT.id,
      clientSecret: GOOGLE_CLIENT.secret,
      scope: 'https://www.googleapis.com/auth/drive.readonly',
      extraAuthorizationParams: { access_type: 'offline' },
    });
    expect(answer.status, answer.text).toBe(201);
    const id = answer.body.id as string;
    const browser: Browser = { cookies: new Map() };
    const url = await authorize(id, browser);
    expect(url.searchParams.get('access_type')).toBe('offline');
    // Google redirects back without `iss` and publishes no metadata for this token URL.
    const callback = new URL(redirectUri);
    callback.search = new URLSearchParams({
      state: url.searchParams.get('state') ?? '',
      code: GOOGLE_CLIENT.code,
      scope: 'https://www.googleapis.com/auth/drive.readonly',
    }).toString();
    const page = await followRedirect(callback, browser);
    expect(page.status, page.html).toBe(200);
    expect(google.codeVerifiers).toHaveLength(1);
    expect(google.codeVerifiers[0]).toMatch(/^[\w-]{43}$/);

    for (let i = 0; i < 3; i++) {
      expect((await g.api('POST', `/api/authentications/${id}/invalidate`)).status).toBe(204);
      const { source, token } = await g.app.tokens.acquire(id);
      expect(source).toBe('refreshed');
      expect(token.hasRefreshToken).toBe(true);
    }
    expect(google.refreshTokensUsed).toEqual([
      GOOGLE_REFRESH_TOKEN,
      GOOGLE_REFRESH_TOKEN,
      GOOGLE_REFRESH_TOKEN,
    ]);
    expect(await storedRefreshToken(id)).toBe(GOOGLE_REFRESH_TOKEN);
    expect((await g.api('GET', `/api/authentications/${id}`)).body.status).toBe('connected');
  });

  describe('GET /api/discovery', () => {
    it('reads the issuer’s metadata', async () => {
      const answer = await g.api('GET', `/api/discovery?issuer=${encodeURIComponent(oidc.issuer)}`);
      expect(answer.status, answer.text).toBe(200);
      expect(answer.headers.get('cache-control')).toBe('no-store');
      expect(answer.body).toMatchObject({
        issuer: oidc.issuer,
        authorizationUrl: oidc.authorizationUrl,
        tokenUrl: oidc.tokenUrl,
        revocationUrl: oidc.revocationUrl,
        grantTypes: expect.arrayContaining(['authorization_code', 'refresh_token']),
        clientAuthMethods: expect.arrayContaining(['client_secret_basic']),
        scopes: expect.arrayContaining(['openid', 'read']),
      });
      expect(answer.body).not.toHaveProperty('issParameterSupported');
    });

    it('accepts the metadata URL itself', async () => {
      const answer = await g.api('GET', `/api/discovery?issuer=${encodeURIComponent(oidc.discoveryUrl)}`);
      expect(answer.status, answer.text).toBe(200);
      expect(answer.body.issuer).toBe(oidc.issuer);
    });

    it('answers 400 for an invalid issuer, 401 without a key, 502 for a mismatch or an unreachable issuer', async () => {
      const invalid = await g.api('GET', '/api/discovery?issuer=not%20a%20url');
      expect(invalid.status).toBe(400);
      expect(invalid.body.error).toMatchObject({
        code: 'validation_failed',
        errors: [{ path: '/query/issuer' }],
      });
      const missing = await g.api('GET', '/api/discovery');
      expect(missing.status).toBe(400);
      expect(missing.body.error.code).toBe('validation_failed');
      const insecure = await g.api(
        'GET',
        `/api/discovery?issuer=${encodeURIComponent('http://login.example.com')}`,
      );
      expect(insecure.status).toBe(400);

      const anonymous = await fetch(`${g.url}/api/discovery?issuer=${encodeURIComponent(oidc.issuer)}`);
      expect(anonymous.status).toBe(401);

      // The provider's metadata names https://localhost:<port>, not https://127.0.0.1:<port>.
      const mismatch = await g.api(
        'GET',
        `/api/discovery?issuer=${encodeURIComponent(`https://127.0.0.1:${oidc.port}`)}`,
      );
      expect(mismatch.status).toBe(502);
      expect(mismatch.body.error.hint).toContain(oidc.issuer);

      const closedPort = await freePort();
      const unreachable = await g.api(
        'GET',
        `/api/discovery?issuer=${encodeURIComponent(`https://127.0.0.1:${closedPort}`)}`,
      );
      expect(unreachable.status).toBe(502);
      expect(unreachable.body.error.hint).toEqual(expect.any(String));
    });
  });
});

const GOOGLE_CLIENT = {
  id: 'google-client.apps.googleusercontent.com',
  secret: 'GOCSPX-test',
  code: '4/0Atest',
};
const GOOGLE_REFRESH_TOKEN = '1//0gGoogleLikeRefreshToken';

interface GoogleLikeTokenEndpoint {
  url: string;
  /** The refresh tokens Grantry presented, in order. */
  refreshTokensUsed: string[];
  codeVerifiers: string[];
  close(): Promise<void>;
}

/** Reads client_secret_basic as RFC 6749 §2.3.1 says: Base64, then form-urldecoding of each half. */
function sameClient(authorization: string | undefined): boolean {
  if (authorization?.startsWith('Basic ') !== true) return false;
  const decoded = Buffer.from(authorization.slice('Basic '.length), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const formDecode = (text: string) => decodeURIComponent(text.replaceAll('+', ' '));
  return (
    colon > 0 &&
    formDecode(decoded.slice(0, colon)) === GOOGLE_CLIENT.id &&
    formDecode(decoded.slice(colon + 1)) === GOOGLE_CLIENT.secret
  );
}

/**
 * A token endpoint that behaves like Google's (https://oauth2.googleapis.com/token): the code
 * exchange issues a refresh token; a refresh answers a new access token and no refresh_token, so
 * the client must keep the one it has. Plain HTTP on loopback (GRANTRY_ALLOW_HTTP=loopback).
 */
async function startGoogleLikeTokenEndpoint(): Promise<GoogleLikeTokenEndpoint> {
  const refreshTokensUsed: string[] = [];
  const codeVerifiers: string[] = [];
  let issued = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const send = (status: number, body: Record<string, unknown>) => {
        res.writeHead(status, {
          'content-type': 'application/json; charset=utf-8',
          'cache-control': 'no-store',
        });
        res.end(JSON.stringify(body));
      };
      if (req.method !== 'POST' || req.url !== '/token') {
        send(404, { error: 'not_found' });
        return;
      }
      if (!sameClient(req.headers.authorization)) {
        send(401, { error: 'invalid_client', error_description: 'Unauthorized' });
        return;
      }
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      const accessToken = `ya29.google-like-${++issued}`;
      const common = {
        access_token: accessToken,
        expires_in: 3599,
        scope: 'https://www.googleapis.com/auth/drive.readonly',
        token_type: 'Bearer',
      };
      if (form.get('grant_type') === 'authorization_code' && form.get('code') === GOOGLE_CLIENT.code) {
        codeVerifiers.push(form.get('code_verifier') ?? '');
        send(200, { ...common, refresh_token: GOOGLE_REFRESH_TOKEN });
        return;
      }
      if (form.get('grant_type') === 'refresh_token') {
        const presented = form.get('refresh_token') ?? '';
        refreshTokensUsed.push(presented);
        if (presented === GOOGLE_REFRESH_TOKEN) {
          send(200, common);
          return;
        }
      }
      send(400, { error: 'invalid_grant', error_description: 'Bad Request' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    refreshTokensUsed,
    codeVerifiers,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
