import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, type GrantryHandle, startGrantry } from './support/grantry.js';
import { authorizeThroughDevInteractions, type OidcFixture, startOidcProvider } from './support/oidc.js';
import { startTokenEndpointSwitch, type TokenEndpointSwitch } from './support/token-endpoint-switch.js';
import { waitFor } from './support/wait-for.js';
import {
  type ReceivedWebhook,
  startWebhookReceiver,
  type WebhookReceiver,
} from './support/webhook-receiver.js';

/**
 * Webhooks end to end (API.md "Webhooks"), against real servers: Grantry in this process, an HTTPS
 * receiver that verifies every request with the Standard Webhooks reference library, a real
 * oidc-provider, and in front of its token endpoint a switch that makes it fail like a provider in
 * trouble (503) — so the events come from real token failures, not from calls made up by the test.
 */
const CC_CLIENT = { client_id: 'hooks-cc', client_secret: 'hooks-cc-secret' };
const WEB_CLIENT = { client_id: 'hooks-web', client_secret: 'hooks-web-secret' };
const MINUTE = 60_000;

/** What the token endpoint answers while "broken": a provider in trouble. */
const UNAVAILABLE = { status: 503, body: '{"error":"temporarily_unavailable"}' };

describe('webhooks', () => {
  let oidc: OidcFixture;
  let front: TokenEndpointSwitch;
  let receiver: WebhookReceiver;
  let g: GrantryHandle & { app: Awaited<ReturnType<typeof startGrantry>>['app'] };
  /** How far the test has moved Grantry's clock (token manager and webhooks) ahead of the real one. */
  let ahead = 0;
  let webhookId: string;
  let secret: string;

  beforeAll(async () => {
    const port = await freePort();
    oidc = await startOidcProvider({
      clients: [
        { ...CC_CLIENT, grant_types: ['client_credentials'] },
        {
          ...WEB_CLIENT,
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          redirect_uris: [`http://localhost:${port}/oauth/redirect`],
          scope: 'openid offline_access read',
        },
      ],
    });
    front = await startTokenEndpointSwitch(oidc.tokenUrl);
    receiver = await startWebhookReceiver();
    g = await startGrantry({
      port,
      clock: () => Date.now() + ahead,
      // Retries a few hundred milliseconds apart instead of half a minute; looks for due ones often.
      env: {
        GRANTRY_WEBHOOK_RETRY_BASE_MS: '100',
        GRANTRY_WEBHOOK_RETRY_MAX_DELAY_MS: '300',
        GRANTRY_WEBHOOK_POLL_MS: '50',
      },
    });
    const created = await g.api('POST', '/api/webhooks', {
      url: receiver.url,
      events: ['authentication.needs_attention', 'authentication.recovered', 'authentication.connected'],
      description: 'on-call pager',
    });
    expect(created.status, created.text).toBe(201);
    webhookId = created.body.id;
    secret = created.body.secret;
    receiver.verifyWith(secret);
  });

  afterAll(async () => {
    await g?.stop();
    await receiver?.close();
    await front?.close();
    await oidc?.close();
  });

  /** Requests that arrived after `since` (an index into `receiver.received`) of one event type. */
  function arrived(type: string, since = 0): ReceivedWebhook[] {
    return receiver.received.slice(since).filter((r) => r.payload?.type === type && r.answered < 300);
  }

  async function deliveries(id = webhookId): Promise<any[]> {
    const answer = await g.api('GET', `/api/webhooks/${id}/deliveries`);
    expect(answer.status, answer.text).toBe(200);
    return answer.body.items;
  }

  async function createClientCredentials(): Promise<{ id: string; name: string }> {
    const name = `billing-${Math.random().toString(36).slice(2)}`;
    const answer = await g.api('POST', '/api/authentications', {
      name,
      type: 'oauth2',
      grantType: 'client_credentials',
      tokenUrl: front.url,
      clientId: CC_CLIENT.client_id,
      clientSecret: CC_CLIENT.client_secret,
    });
    expect(answer.status, answer.text).toBe(201);
    return { id: answer.body.id, name };
  }

  it('answers the secret once, in the Standard Webhooks format, and never again', async () => {
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const answers = [
      await g.api('GET', `/api/webhooks/${webhookId}`),
      await g.api('GET', '/api/webhooks'),
      await g.api('PATCH', `/api/webhooks/${webhookId}`, { description: 'on-call pager (EU)' }),
      await g.api('GET', `/api/webhooks/${webhookId}/deliveries`),
      await g.api('GET', '/openapi.json'),
    ];
    for (const answer of answers) {
      expect(answer.status, answer.text).toBe(200);
      expect(answer.text).not.toContain(secret);
      expect(answer.text).not.toContain(secret.slice('whsec_'.length, 20));
    }
    for (const answer of answers.slice(0, 4)) expect(answer.headers.get('cache-control')).toBe('no-store');
    expect(answers[0]?.body).toEqual({
      id: webhookId,
      url: receiver.url,
      events: ['authentication.needs_attention', 'authentication.recovered', 'authentication.connected'],
      description: 'on-call pager',
      enabled: true,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    expect(answers[1]?.body).toEqual({ items: [answers[0]?.body], nextCursor: null });
    expect(answers[2]?.body.description).toBe('on-call pager (EU)');
    // Stored sealed, bound to its row: the database never holds it in the clear.
    const stored = await g.app.store.webhooks.get(webhookId);
    expect(stored?.secret).toMatch(/^g1\./);
    expect(stored?.secret).not.toContain(secret.slice('whsec_'.length, 20));
  });

  it('refuses an invalid webhook with every problem listed, and an address the egress policy forbids', async () => {
    const bad = await g.api('POST', '/api/webhooks', {
      url: 'http://hooks.example.com/grantry',
      events: ['authentication.connected', 'authentication.exploded', 'authentication.connected'],
      description: 'line\nbreak',
      colour: 'blue',
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('validation_failed');
    const paths = (bad.body.error.errors as { path: string }[]).map((e) => e.path);
    expect(paths).toEqual(
      expect.arrayContaining(['/url', '/events/1', '/events', '/description', '/colour']),
    );
    expect(bad.body.error.errors).toContainEqual({
      path: '/url',
      message: 'must be an https URL (http is allowed only for loopback hosts)',
    });

    for (const url of [
      'https://169.254.169.254/latest/meta-data',
      'https://[fe80::1]/hook',
      'https://0.0.0.0/',
    ]) {
      const refused = await g.api('POST', '/api/webhooks', { url, events: ['authentication.connected'] });
      expect(refused.status, url).toBe(400);
      expect(refused.body.error.errors[0]).toMatchObject({
        path: '/url',
        message: /refused by the egress policy/,
      });
    }
    const empty = await g.api('POST', '/api/webhooks', { url: receiver.url, events: [] });
    expect(empty.status).toBe(400);
    const patch = await g.api('PATCH', `/api/webhooks/${webhookId}`, { url: 'https://169.254.169.254/' });
    expect(patch.status).toBe(400);
    expect((await g.api('GET', `/api/webhooks/${webhookId}`)).body.url).toBe(receiver.url);
    expect((await g.api('GET', '/api/webhooks/wh_missing')).status).toBe(404);
    expect((await g.api('GET', '/api/webhooks?limit=0')).body.error.errors).toContainEqual({
      path: '/query/limit',
      message: 'must be from 1 to 500',
    });
  });

  it('sends a test event that the Standard Webhooks library verifies, and lists the delivery', async () => {
    const since = receiver.received.length;
    const sent = await g.api('POST', `/api/webhooks/${webhookId}/test`);
    expect(sent.status, sent.text).toBe(202);
    expect(sent.body).toMatchObject({ event: 'webhook.test', status: 'pending', attempts: 0 });
    const [request] = await waitFor('the test event', () => {
      const got = arrived('webhook.test', since);
      return got.length > 0 ? got : undefined;
    });
    expect(request?.verified).toBe(true);
    expect(request?.id).toBe(sent.body.id);
    expect(request?.contentType).toBe('application/json');
    expect(request?.signature).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(Math.abs(Number(request?.timestamp) - Date.now() / 1000)).toBeLessThan(30);
    expect(request?.payload).toEqual({
      type: 'webhook.test',
      timestamp: expect.any(String),
      data: { webhookId, message: expect.any(String) },
    });
    const delivery = await waitFor('the delivery to be recorded', async () =>
      (await deliveries()).find((d) => d.id === sent.body.id && d.status === 'delivered'),
    );
    expect(delivery).toMatchObject({
      event: 'webhook.test',
      attempts: 1,
      responseStatus: 204,
      nextAttemptAt: null,
      attemptLog: [{ attempt: 1, responseStatus: 204, error: null, durationMs: expect.any(Number) }],
    });
  });

  it('retries a receiver that fails first, with the same webhook-id, until it accepts', async () => {
    const since = receiver.received.length;
    receiver.answer((n) => (n <= since + 2 ? 500 : 204));
    try {
      const sent = await g.api('POST', `/api/webhooks/${webhookId}/test`);
      const delivery = await waitFor('the retried delivery', async () =>
        (await deliveries()).find((d) => d.id === sent.body.id && d.status === 'delivered'),
      );
      expect(delivery.attempts).toBe(3);
      expect(delivery.attemptLog.map((a: { responseStatus: number }) => a.responseStatus)).toEqual([
        500, 500, 204,
      ]);
      expect(delivery.attemptLog[0].error).toEqual({
        kind: 'http_status',
        message: `localhost:${receiver.port} answered HTTP 500`,
      });
      const attempts = receiver.received.slice(since);
      expect(attempts.map((a) => a.id)).toEqual([sent.body.id, sent.body.id, sent.body.id]);
      expect(attempts.every((a) => a.verified)).toBe(true);
      expect(new Set(attempts.map((a) => a.body)).size).toBe(1);
    } finally {
      receiver.answer(204);
    }
  });

  it('a token endpoint that starts failing: needs_attention once; fixed: recovered', async () => {
    const auth = await createClientCredentials();
    expect((await g.api('POST', `/api/authentications/${auth.id}/test`)).body.ok).toBe(true);
    const since = receiver.received.length;

    front.set(UNAVAILABLE);
    try {
      await g.api('POST', `/api/authentications/${auth.id}/invalidate`);
      for (let n = 0; n < 3; n++) {
        const failed = await g.api('POST', `/api/authentications/${auth.id}/test`);
        expect(failed.body).toMatchObject({ ok: false, error: { code: 'token_fetch_failed' } });
      }
      const [attention, ...more] = await waitFor('needs_attention', () => {
        const got = arrived('authentication.needs_attention', since);
        return got.length > 0 ? got : undefined;
      });
      expect(more).toEqual([]);
      expect(attention?.verified).toBe(true);
      expect(attention?.payload).toEqual({
        type: 'authentication.needs_attention',
        timestamp: expect.any(String),
        data: {
          authenticationId: auth.id,
          name: auth.name,
          status: 'error',
          reason: 'error',
          error: expect.objectContaining({
            code: 'token_fetch_failed',
            provider: expect.objectContaining({ status: 503 }),
          }),
        },
      });
    } finally {
      front.set('forward');
    }

    const fixed = await g.api('POST', `/api/authentications/${auth.id}/test`);
    expect(fixed.body.ok).toBe(true);
    const [recovered] = await waitFor('recovered', () => {
      const got = arrived('authentication.recovered', since);
      return got.length > 0 ? got : undefined;
    });
    expect(recovered?.payload?.data).toEqual({
      authenticationId: auth.id,
      name: auth.name,
      status: 'ready',
      error: null,
    });
    // Three failures made one episode: one needs_attention, one recovered.
    await sleep(300);
    expect(arrived('authentication.needs_attention', since)).toHaveLength(1);
    expect(arrived('authentication.recovered', since)).toHaveLength(1);
  });

  it('a needs_attention that could not be stored (a database blip) is sent on the next failure, not lost', async () => {
    const auth = await createClientCredentials();
    const since = receiver.received.length;
    const deliveries = g.app.store.webhookDeliveries;
    const enqueue = deliveries.enqueue.bind(deliveries);
    let blips = 2; // both rounds of the first event's enqueue
    deliveries.enqueue = async (...args) => {
      if (blips-- > 0) throw new Error('database blip');
      return enqueue(...args);
    };
    front.set(UNAVAILABLE);
    try {
      await g.api('POST', `/api/authentications/${auth.id}/test`);
      await g.app.tokens.settled();
      await sleep(200);
      expect(blips).toBe(0);
      expect(arrived('authentication.needs_attention', since)).toEqual([]);
      // The next failure opens the episode again, and this time its event is stored and sent.
      await g.api('POST', `/api/authentications/${auth.id}/test`);
      const [attention] = await waitFor('needs_attention after the blip', () => {
        const got = arrived('authentication.needs_attention', since);
        return got.length > 0 ? got : undefined;
      });
      expect(attention?.payload?.data).toMatchObject({ authenticationId: auth.id, reason: 'error' });
    } finally {
      deliveries.enqueue = enqueue;
      front.set('forward');
    }
  });

  it('Authorization Code: connected when the flow completes; needs_attention when its refresh keeps failing; recovered', async () => {
    const created = await g.api('POST', '/api/authentications', {
      name: 'calendar',
      type: 'oauth2',
      grantType: 'authorization_code',
      authorizationUrl: oidc.authorizationUrl,
      tokenUrl: front.url,
      clientId: WEB_CLIENT.client_id,
      clientSecret: WEB_CLIENT.client_secret,
      scope: 'openid offline_access read',
    });
    expect(created.status, created.text).toBe(201);
    const id = created.body.id as string;
    const since = receiver.received.length;

    const authorize = await g.api('POST', `/api/authentications/${id}/authorize`);
    const cookie = authorize.headers
      .getSetCookie()
      .map((line) => line.split(';')[0])
      .join('; ');
    const back = await authorizeThroughDevInteractions(authorize.body.authorizationUrl);
    const page = await fetch(`${g.url}${back.pathname}${back.search}`, { headers: { cookie } });
    expect(await page.text()).toContain('Connected');
    const [connected] = await waitFor('connected', () => {
      const got = arrived('authentication.connected', since);
      return got.length > 0 ? got : undefined;
    });
    expect(connected?.payload?.data).toEqual({
      authenticationId: id,
      name: 'calendar',
      status: 'connected',
      error: null,
    });
    // Connecting a new authentication is not a recovery: nothing needed attention before.
    expect(arrived('authentication.recovered', since)).toEqual([]);

    // The provider's token endpoint fails every refresh; the status stays `connected` meanwhile.
    front.set(UNAVAILABLE);
    try {
      const refreshFails = async () => {
        await g.api('POST', `/api/authentications/${id}/invalidate`);
        const answer = await g.api('POST', `/api/authentications/${id}/test`);
        expect(answer.body).toMatchObject({ ok: false, error: { code: 'token_fetch_failed' } });
      };
      await refreshFails();
      await refreshFails();
      expect((await g.api('GET', `/api/authentications/${id}`)).body.status).toBe('connected');
      // Two failures in a row, or three within seconds, are a blip, not a person's business.
      await refreshFails();
      await g.app.tokens.settled();
      await sleep(200);
      expect(arrived('authentication.needs_attention', since)).toEqual([]);
      // Still failing five minutes after the first failure: now it is.
      ahead += 5 * MINUTE + 1_000;
      await refreshFails();
      const [attention] = await waitFor('needs_attention', () => {
        const got = arrived('authentication.needs_attention', since);
        return got.length > 0 ? got : undefined;
      });
      expect(attention?.payload?.data).toMatchObject({
        authenticationId: id,
        status: 'connected',
        reason: 'refresh_failing',
        error: { code: 'token_fetch_failed' },
      });
    } finally {
      front.set('forward');
    }
    const works = await g.api('POST', `/api/authentications/${id}/test`);
    expect(works.body).toMatchObject({ ok: true, token: { source: 'refreshed' } });
    const [recovered] = await waitFor('recovered', () => {
      const got = arrived('authentication.recovered', since);
      return got.length > 0 ? got : undefined;
    });
    expect(recovered?.payload?.data).toEqual({
      authenticationId: id,
      name: 'calendar',
      status: 'connected',
      error: null,
    });

    // Needing attention again, it is fixed by a person connecting it anew: connected, and recovered.
    front.set(UNAVAILABLE);
    try {
      for (let n = 0; n < 3; n++) {
        await g.api('POST', `/api/authentications/${id}/invalidate`);
        await g.api('POST', `/api/authentications/${id}/test`);
        if (n === 0) ahead += 5 * MINUTE + 1_000;
      }
      await waitFor('needs_attention again', () => {
        const got = arrived('authentication.needs_attention', since);
        return got.length === 2 ? got : undefined;
      });
    } finally {
      front.set('forward');
    }
    const reconnectFrom = receiver.received.length;
    const again = await g.api('POST', `/api/authentications/${id}/authorize`);
    const againCookie = again.headers
      .getSetCookie()
      .map((line) => line.split(';')[0])
      .join('; ');
    const backAgain = await authorizeThroughDevInteractions(again.body.authorizationUrl);
    const pageAgain = await fetch(`${g.url}${backAgain.pathname}${backAgain.search}`, {
      headers: { cookie: againCookie },
    });
    expect(await pageAgain.text()).toContain('Connected');
    await waitFor('connected and recovered after the reconnect', () => {
      const types = receiver.received.slice(reconnectFrom).map((r) => r.payload?.type);
      return types.includes('authentication.connected') && types.includes('authentication.recovered')
        ? true
        : undefined;
    });
  });

  it('sends nothing to a disabled webhook, nor events it did not subscribe to', async () => {
    const other = await startWebhookReceiver();
    try {
      const only = await g.api('POST', '/api/webhooks', {
        url: other.url,
        events: ['authentication.connected'],
        enabled: false,
      });
      expect(only.status).toBe(201);
      other.verifyWith(only.body.secret);
      const test = await g.api('POST', `/api/webhooks/${only.body.id}/test`);
      expect(test.status).toBe(409);
      expect(test.body.error.code).toBe('conflict');

      const auth = await createClientCredentials();
      front.set(UNAVAILABLE);
      try {
        await g.api('POST', `/api/authentications/${auth.id}/test`);
      } finally {
        front.set('forward');
      }
      await g.api('POST', `/api/authentications/${auth.id}/test`);
      expect((await g.api('PATCH', `/api/webhooks/${only.body.id}`, { enabled: true })).body.enabled).toBe(
        true,
      );
      const sent = await g.api('POST', `/api/webhooks/${only.body.id}/test`);
      expect(sent.status).toBe(202);
      await waitFor('the test event', () => (other.received.length > 0 ? true : undefined));
      await sleep(300);
      expect(other.received.map((r) => r.payload?.type)).toEqual(['webhook.test']);
      expect((await g.api('DELETE', `/api/webhooks/${only.body.id}`)).status).toBe(204);
      expect((await g.api('GET', `/api/webhooks/${only.body.id}/deliveries`)).status).toBe(404);
    } finally {
      await other.close();
    }
  });
});

describe('webhooks under the strict egress policy', () => {
  it('refuses the delivery before any byte is sent, and gives it up at once', async () => {
    const receiver = await startWebhookReceiver();
    const g = await startGrantry({ env: { GRANTRY_EGRESS: 'strict', GRANTRY_WEBHOOK_POLL_MS: '50' } });
    try {
      // A literal loopback address is refused when the webhook is saved…
      const literal = await g.api('POST', '/api/webhooks', {
        url: `https://127.0.0.1:${receiver.port}/hooks`,
        events: ['authentication.connected'],
      });
      expect(literal.status).toBe(400);
      expect(literal.body.error.errors[0].message).toMatch(/egress policy.*loopback/);
      // …a name is resolved at each attempt, and refused on the address it resolves to.
      const named = await g.api('POST', '/api/webhooks', {
        url: receiver.url,
        events: ['authentication.connected'],
      });
      expect(named.status, named.text).toBe(201);
      const sent = await g.api('POST', `/api/webhooks/${named.body.id}/test`);
      const delivery = await waitFor('the refused delivery', async () => {
        const items = (await g.api('GET', `/api/webhooks/${named.body.id}/deliveries`)).body.items as any[];
        return items.find((d) => d.id === sent.body.id && d.status !== 'pending');
      });
      expect(delivery).toMatchObject({
        status: 'failed',
        attempts: 1,
        responseStatus: null,
        nextAttemptAt: null,
        attemptLog: [
          { error: { kind: 'denied', message: expect.stringMatching(/egress policy refuses localhost/) } },
        ],
      });
      expect(receiver.received).toEqual([]);
    } finally {
      await g.stop();
      await receiver.close();
    }
  });
});
