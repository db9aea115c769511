import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, type GrantryHandle, startGrantry } from './support/grantry.js';
import { authorizeThroughDevInteractions, type OidcFixture, startOidcProvider } from './support/oidc.js';

/**
 * Connect links: the person who configures an Authorization Code authentication is often not the
 * account's owner. `authorize` also answers a one-time link; whatever browser opens it gets its own
 * flow (its own cookie), consents, and comes back connected. Every "browser" here is a fresh cookie
 * jar: nothing carries over from the API call that made the link.
 */
const CLIENT = { client_id: 'linked-app', client_secret: 'linked-secret' };

describe('connect links', () => {
  let oidc: OidcFixture;
  let g: GrantryHandle;
  let now = Date.now();
  let publicUrl: string;

  beforeAll(async () => {
    const port = await freePort();
    publicUrl = `http://localhost:${port}`;
    oidc = await startOidcProvider({
      clients: [
        {
          ...CLIENT,
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          redirect_uris: [`${publicUrl}/oauth/redirect`],
          scope: 'openid',
        },
      ],
    });
    g = await startGrantry({ port, clock: () => now });
  });
  afterAll(async () => {
    await g?.stop();
    await oidc?.close();
  });

  async function createAuthentication(): Promise<string> {
    const created = await g.api('POST', '/api/authentications', {
      name: `linked-${Math.random().toString(36).slice(2)}`,
      type: 'oauth2',
      grantType: 'authorization_code',
      authorizationUrl: oidc.authorizationUrl,
      tokenUrl: oidc.tokenUrl,
      clientId: CLIENT.client_id,
      clientSecret: CLIENT.client_secret,
      scope: 'openid',
    });
    expect(created.status, created.text).toBe(201);
    return created.body.id;
  }

  /** A browser of its own: opens the link, consents at the provider, follows the redirect back. */
  async function openInFreshBrowser(connectUrl: string): Promise<{ status: number; html: string }> {
    const opened = await fetch(connectUrl.replace(publicUrl, g.url), { redirect: 'manual' });
    if (opened.status !== 302) return { status: opened.status, html: await opened.text() };
    const cookies = opened.headers.getSetCookie().map((line) => line.split(';')[0] ?? '');
    expect(opened.headers.getSetCookie()[0]).toContain('Path=/oauth');
    const callback = await authorizeThroughDevInteractions(opened.headers.get('location') ?? '');
    const back = await fetch(`${g.url}${callback.pathname}${callback.search}`, {
      headers: { cookie: cookies.join('; ') },
      redirect: 'manual',
    });
    return { status: back.status, html: await back.text() };
  }

  it('is answered by authorize, with its expiry (15 minutes by default)', async () => {
    const id = await createAuthentication();
    const answer = await g.api('POST', `/api/authentications/${id}/authorize`);
    expect(answer.status).toBe(200);
    expect(answer.body.connectUrl).toMatch(new RegExp(`^${publicUrl}/oauth/connect/[A-Za-z0-9_-]{43}$`));
    expect(Date.parse(answer.body.expiresAt) - now).toBe(15 * 60 * 1000);
    const week = await g.api('POST', `/api/authentications/${id}/authorize`, { expiresInSeconds: 604800 });
    expect(Date.parse(week.body.expiresAt) - now).toBe(604800 * 1000);
    const tooLong = await g.api('POST', `/api/authentications/${id}/authorize`, { expiresInSeconds: 604801 });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.error.errors[0].path).toBe('/expiresInSeconds');
  });

  it('connects from a browser that never saw the API call, once; a second use answers 410', async () => {
    const id = await createAuthentication();
    const { connectUrl } = (await g.api('POST', `/api/authentications/${id}/authorize`)).body;
    const first = await openInFreshBrowser(connectUrl);
    expect(first.status, first.html).toBe(200);
    expect(first.html).toContain('is connected');
    expect((await g.api('GET', `/api/authentications/${id}`)).body.status).toBe('connected');

    const again = await openInFreshBrowser(connectUrl);
    expect(again.status).toBe(410);
    expect(again.html).toContain('This link was already used');
    expect(again.html).not.toContain(connectUrl.split('/').at(-1));
  });

  it('answers 410 once expired, 410 when the settings changed since, and 404 when it never existed', async () => {
    const id = await createAuthentication();
    const { connectUrl } = (
      await g.api('POST', `/api/authentications/${id}/authorize`, { expiresInSeconds: 60 })
    ).body;
    now += 61_000;
    const expired = await openInFreshBrowser(connectUrl);
    expect(expired.status).toBe(410);
    expect(expired.html).toContain('This link has expired');

    const { connectUrl: stale } = (await g.api('POST', `/api/authentications/${id}/authorize`)).body;
    await g.api('PATCH', `/api/authentications/${id}`, { scope: 'openid profile' });
    const changed = await openInFreshBrowser(stale);
    expect(changed.status).toBe(410);
    expect(changed.html).toContain('out of date');

    const unknown = await openInFreshBrowser(`${publicUrl}/oauth/connect/${'x'.repeat(43)}`);
    expect(unknown.status).toBe(404);
    expect(unknown.html).toContain('There is no such link');
  });

  it('is not made for an authentication that is not Authorization Code', async () => {
    const created = await g.api('POST', '/api/authentications', {
      name: 'cc no link',
      type: 'oauth2',
      grantType: 'client_credentials',
      tokenUrl: oidc.tokenUrl,
      clientId: 'x',
      clientSecret: 'y',
    });
    const answer = await g.api('POST', `/api/authentications/${created.body.id}/authorize`);
    expect(answer.status).toBe(400);
  });
});
