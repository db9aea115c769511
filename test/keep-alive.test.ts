import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maxAttemptsWithin } from '../src/tokens/failure-backoff.js';
import { type ApiFixture, startApiServer } from './support/api-server.js';
import { freePort, type GrantryHandle, startGrantry } from './support/grantry.js';
import { authorizeThroughDevInteractions, type OidcFixture, startOidcProvider } from './support/oidc.js';
import {
  SERVER_ERROR,
  startTokenEndpointSwitch,
  type TokenEndpointSwitch,
} from './support/token-endpoint-switch.js';
import { waitFor } from './support/wait-for.js';
import {
  type ReceivedWebhook,
  startWebhookReceiver,
  type WebhookReceiver,
} from './support/webhook-receiver.js';

/**
 * Keep-alive against a real oidc-provider whose refresh tokens die when left unused: each lives
 * REFRESH_TOKEN_TTL_S seconds from its issue, and rotation replaces a used one with a fresh one (the
 * grant itself lives on). Keep-alive periods are days, so Grantry's clock is moved a day forward at
 * a time while real seconds pass at the provider: the scheduler (polling every 100 ms) must refresh
 * the kept authentication once per "day", and the one without keep-alive must die.
 */
const REFRESH_TOKEN_TTL_S = 6;
const DAY = 24 * 60 * 60 * 1000;
const MINUTE = 60_000;
const WEB = { client_id: 'idle-web', client_secret: 'idle-web-secret' };
const SCOPE = 'openid offline_access read';

describe('keep-alive against oidc-provider', () => {
  let oidc: OidcFixture;
  let front: TokenEndpointSwitch;
  let api: ApiFixture;
  let receiver: WebhookReceiver;
  let g: GrantryHandle & { app: Awaited<ReturnType<typeof startGrantry>>['app'] };
  /** How far the test has moved Grantry's clock ahead of the real one. */
  let ahead = 0;

  beforeAll(async () => {
    const port = await freePort();
    oidc = await startOidcProvider({
      accessTokenTtl: 3600,
      refreshTokenTtl: REFRESH_TOKEN_TTL_S,
      grantTtl: 3600,
      rotateRefreshToken: true,
      clients: [
        {
          ...WEB,
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          redirect_uris: [`http://localhost:${port}/oauth/redirect`],
          scope: SCOPE,
        },
      ],
    });
    front = await startTokenEndpointSwitch(oidc.tokenUrl);
    api = await startApiServer({ verify: async (token) => (await oidc.verifyAccessToken(token)).active });
    receiver = await startWebhookReceiver();
    g = await startGrantry({
      port,
      clock: () => Date.now() + ahead,
      env: {
        GRANTRY_KEEP_ALIVE_POLL_MS: '100',
        GRANTRY_WEBHOOK_POLL_MS: '50',
        GRANTRY_WEBHOOK_RETRY_BASE_MS: '100',
        GRANTRY_WEBHOOK_RETRY_MAX_DELAY_MS: '300',
      },
    });
    const webhook = await g.api('POST', '/api/webhooks', {
      url: receiver.url,
      events: ['authentication.needs_attention', 'authentication.recovered'],
    });
    expect(webhook.status, webhook.text).toBe(201);
    receiver.verifyWith(webhook.body.secret);
  });
  afterAll(async () => {
    await g?.stop();
    await receiver?.close();
    await api?.close();
    await front?.close();
    await oidc?.close();
  });

  /** An Authorization Code authentication, connected through the provider's real consent pages. */
  async function connected(settings: Record<string, unknown> = {}): Promise<string> {
    const created = await g.api('POST', '/api/authentications', {
      name: `idle-${Math.random().toString(36).slice(2)}`,
      type: 'oauth2',
      grantType: 'authorization_code',
      authorizationUrl: oidc.authorizationUrl,
      tokenUrl: oidc.tokenUrl,
      clientId: WEB.client_id,
      clientSecret: WEB.client_secret,
      scope: SCOPE,
      ...settings,
    });
    expect(created.status, created.text).toBe(201);
    const id = created.body.id as string;
    const started = await g.api('POST', `/api/authentications/${id}/authorize`);
    const cookie = started.headers
      .getSetCookie()
      .map((line) => line.split(';')[0])
      .join('; ');
    const back = await authorizeThroughDevInteractions(started.body.authorizationUrl);
    const page = await fetch(`${g.url}${back.pathname}${back.search}`, { headers: { cookie } });
    expect(await page.text()).toContain('Connected');
    return id;
  }

  async function call(authId: string): Promise<{ status: number; body: any }> {
    const connector = await g.api('POST', '/api/connectors', {
      name: `api-${Math.random().toString(36).slice(2)}`,
      baseUrl: api.url,
      authenticationId: authId,
    });
    return g.api('POST', `/api/connectors/${connector.body.id}/execute`, { method: 'GET', path: '/echo' });
  }

  async function eventCount(id: string, type: string): Promise<number> {
    await g.app.tokens.settled();
    const items = (await g.api('GET', `/api/authentications/${id}/events`)).body.items as { type: string }[];
    return items.filter((event) => event.type === type).length;
  }

  function arrived(type: string, authId: string, since: number): ReceivedWebhook[] {
    return receiver.received
      .slice(since)
      .filter(
        (r) => r.payload?.type === type && r.payload.data.authenticationId === authId && r.answered < 300,
      );
  }

  it('keeps an idle connection alive past several refresh-token lifetimes, one refresh per period; one without keep-alive dies', async () => {
    const kept = await connected({ keepAliveDays: 1 });
    const idle = await connected();
    const connectedAt = Date.now();
    oidc.resetCounts();

    const rounds = 3;
    for (let round = 1; round <= rounds; round++) {
      // Half a refresh token's real lifetime passes at the provider, a day (and a minute) at Grantry.
      await sleep((REFRESH_TOKEN_TTL_S * 1000) / 2);
      ahead += DAY + MINUTE;
      await waitFor(`keep-alive ${round}`, async () =>
        (await eventCount(kept, 'keep_alive_refreshed')) === round ? true : undefined,
      );
      // Once per period, although the scheduler looked every 100 ms: the first refresh made it fresh.
      await sleep(300);
      expect(oidc.tokenRequests).toMatchObject({ total: round, refresh_token: round });
    }
    // Both refresh tokens issued by the consent are past their lifetime now; only the kept one was replaced.
    expect(Date.now() - connectedAt).toBeGreaterThan(REFRESH_TOKEN_TTL_S * 1000);

    const keptCall = await call(kept);
    expect(keptCall.status).toBe(200);
    expect(keptCall.body.status).toBe(200);
    const idleCall = await call(idle);
    expect(idleCall.status).toBe(424);
    expect(idleCall.body.error.code).toBe('needs_authorization');

    expect(await eventCount(kept, 'keep_alive_refreshed')).toBe(rounds);
    expect(await eventCount(kept, 'token_failed')).toBe(0);
    const view = await g.api('GET', `/api/authentications/${kept}`);
    expect(view.body).toMatchObject({ status: 'connected', lastError: null, keepAliveDays: 1 });
  }, 60_000);

  it('a keep-alive that fails raises needs_attention at once (keep_alive_failed), backs off, and recovers', async () => {
    const id = await connected({ keepAliveDays: 1, tokenUrl: front.url });
    const since = receiver.received.length;
    front.set(SERVER_ERROR);
    const brokenAt = Date.now();
    const before = front.arrivals.length;
    ahead += DAY + MINUTE;
    const [attention, ...more] = await waitFor('needs_attention', () => {
      const got = arrived('authentication.needs_attention', id, since);
      return got.length > 0 ? got : undefined;
    });
    expect(more).toEqual([]);
    expect(attention?.payload?.data).toMatchObject({
      authenticationId: id,
      status: 'connected',
      reason: 'keep_alive_failed',
      error: { code: 'token_fetch_failed', provider: { status: 500 } },
    });
    const failing = await g.api('GET', `/api/authentications/${id}`);
    expect(failing.body).toMatchObject({ status: 'connected', lastError: { code: 'token_fetch_failed' } });

    // Left failing a while: the keep-alive backs off like every token attempt (failure-backoff.ts),
    // not once per 100 ms poll.
    await sleep(2_500);
    front.set('forward');
    const failedFor = Date.now() - brokenAt;
    const attempts = front.arrivals.length - before;
    expect(attempts).toBeGreaterThanOrEqual(1);
    expect(attempts).toBeLessThanOrEqual(maxAttemptsWithin('token_fetch_failed', failedFor));
    expect(await eventCount(id, 'keep_alive_failed')).toBe(attempts);

    const [recovered] = await waitFor('recovered', () => {
      const got = arrived('authentication.recovered', id, since);
      return got.length > 0 ? got : undefined;
    });
    expect(recovered?.payload?.data).toMatchObject({
      authenticationId: id,
      status: 'connected',
      error: null,
    });
    expect(await eventCount(id, 'keep_alive_refreshed')).toBe(1);
    // One episode: one needs_attention.
    expect(arrived('authentication.needs_attention', id, since)).toHaveLength(1);
  }, 60_000);

  it('keepAliveDays: a whole number of days for grants with refresh tokens; presets fill it from the provider’s idle expiry', async () => {
    const base = {
      type: 'oauth2',
      tokenUrl: oidc.tokenUrl,
      clientId: 'c',
      clientSecret: 's',
    };
    const zero = await g.api('POST', '/api/authentications', {
      ...base,
      name: `zero-${Math.random()}`,
      grantType: 'password',
      username: 'u',
      password: 'p',
      keepAliveDays: 0,
    });
    expect(zero.status).toBe(400);
    expect(zero.body.error.errors).toContainEqual({
      path: '/keepAliveDays',
      message: expect.stringMatching(/>= 1/),
    });
    const machine = await g.api('POST', '/api/authentications', {
      ...base,
      name: `cc-${Math.random()}`,
      grantType: 'client_credentials',
      keepAliveDays: 30,
    });
    expect(machine.status).toBe(400);
    expect(machine.body.error.errors).toContainEqual({
      path: '/keepAliveDays',
      message: 'applies only to the Authorization Code or Password grant; remove it',
    });

    const xero = await g.api('POST', '/api/authentications', {
      provider: 'xero',
      clientId: 'c',
      clientSecret: 's',
    });
    expect(xero.status, xero.text).toBe(201);
    // Xero expires refresh tokens unused for 60 days: kept alive at 45.
    expect(xero.body).toMatchObject({ grantType: 'authorization_code', keepAliveDays: 45 });
    const cleared = await g.api('PATCH', `/api/authentications/${xero.body.id}`, { keepAliveDays: null });
    expect(cleared.body).not.toHaveProperty('keepAliveDays');
    const entra = await g.api('POST', '/api/authentications', {
      provider: 'microsoft-entra-id',
      providerParams: { tenant: 'contoso' },
      grantType: 'client_credentials',
      clientId: 'c',
      clientSecret: 's',
    });
    expect(entra.status, entra.text).toBe(201);
    expect(entra.body).not.toHaveProperty('keepAliveDays');
  });
});
