import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresTestSchema, type PostgresTestSchema } from '../src/store/postgres-test-schema.js';
import { type Cluster, startCluster } from './support/cluster.js';
import { freePort } from './support/grantry.js';
import { startWebhookReceiver, type WebhookReceiver } from './support/webhook-receiver.js';

/**
 * Three `grantry serve` processes on one PostgreSQL, every one of them running a delivery worker
 * that polls every 20 ms: each event must reach the receiver exactly once (the claim, FOR UPDATE SKIP
 * LOCKED, decides who sends it), retries included, and a failure seen by all three instances at once
 * must make one event (the attention state moves for one of them).
 */
const databaseUrl = process.env.GRANTRY_TEST_DATABASE_URL;
const EVENTS = 30;
const AUTHENTICATIONS = 4;

interface DeliveryView {
  id: string;
  event: string;
  status: string;
  attempts: number;
}

describe.skipIf(databaseUrl === undefined)('webhooks on three instances sharing PostgreSQL', () => {
  let schema: PostgresTestSchema;
  let cluster: Cluster;
  let receiver: WebhookReceiver;
  let webhookId: string;

  beforeAll(async () => {
    schema = await createPostgresTestSchema(databaseUrl as string, 'grantry_webhooks');
    cluster = await startCluster({
      size: 3,
      databaseUrl: schema.url,
      env: {
        GRANTRY_WEBHOOK_POLL_MS: '20',
        GRANTRY_WEBHOOK_RETRY_BASE_MS: '200',
        GRANTRY_WEBHOOK_RETRY_MAX_DELAY_MS: '400',
      },
    });
    receiver = await startWebhookReceiver();
    const created = await cluster.pick(0).api('POST', '/api/webhooks', {
      url: receiver.url,
      events: ['authentication.needs_attention', 'authentication.recovered'],
    });
    expect(created.status, created.text).toBe(201);
    webhookId = created.body.id;
    receiver.verifyWith(created.body.secret);
  }, 120_000);

  afterAll(async () => {
    await cluster?.stop();
    await receiver?.close();
    await schema?.drop();
  });

  async function deliveries(): Promise<DeliveryView[]> {
    const answer = await cluster.pick(1).api('GET', `/api/webhooks/${webhookId}/deliveries?limit=200`);
    expect(answer.status, answer.text).toBe(200);
    return answer.body.items;
  }

  async function until(what: string, done: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + 45_000;
    while (!(await done())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(50);
    }
  }

  it(`delivers each of ${EVENTS} events exactly once, its one retry included`, async () => {
    // Every delivery's first attempt is refused (500), so each is also retried once by the cluster.
    const seen = new Set<string>();
    receiver.answer((_, request) => {
      if (seen.has(request.id)) return 204;
      seen.add(request.id);
      return 500;
    });
    const sent = await Promise.all(
      Array.from({ length: EVENTS }, (_, n) =>
        cluster.pick(n).api('POST', `/api/webhooks/${webhookId}/test`),
      ),
    );
    for (const answer of sent) expect(answer.status, answer.text).toBe(202);
    const ids = sent.map((answer) => answer.body.id as string);

    await until('every delivery', async () => {
      const items = await deliveries();
      return ids.every((id) => items.find((d) => d.id === id)?.status === 'delivered');
    });
    // Let the instances poll a while longer: a second sender would show up now.
    await sleep(500);

    const accepted = receiver.accepted();
    expect(accepted.size).toBe(EVENTS);
    for (const id of ids) {
      expect(accepted.get(id), id).toHaveLength(1);
      expect(receiver.received.filter((r) => r.id === id).map((r) => r.answered)).toEqual([500, 204]);
    }
    expect(receiver.received.every((r) => r.verified)).toBe(true);
    const items = await deliveries();
    for (const id of ids) expect(items.find((d) => d.id === id)?.attempts).toBe(2);
  }, 90_000);

  it('a failure every instance sees at the same moment makes one needs_attention per authentication', async () => {
    receiver.answer(204);
    const since = receiver.received.length;
    // A token endpoint nobody listens on: every token request is refused.
    const tokenUrl = `https://localhost:${await freePort()}/token`;
    const authIds: string[] = [];
    for (let n = 0; n < AUTHENTICATIONS; n++) {
      const created = await cluster.pick(n).api('POST', '/api/authentications', {
        name: `down-${n}-${Math.random().toString(36).slice(2)}`,
        type: 'oauth2',
        grantType: 'client_credentials',
        tokenUrl,
        clientId: 'c',
        clientSecret: 'down-secret',
      });
      expect(created.status, created.text).toBe(201);
      authIds.push(created.body.id);
    }
    // Twice over, each authentication tested on all three instances at once.
    for (let round = 0; round < 2; round++) {
      const tests = authIds.flatMap((id) =>
        [0, 1, 2].map((n) => cluster.pick(n).api('POST', `/api/authentications/${id}/test`)),
      );
      for (const answer of await Promise.all(tests)) expect(answer.body.ok).toBe(false);
    }

    const attentionFor = (id: string) =>
      receiver.received
        .slice(since)
        .filter(
          (r) =>
            r.payload?.type === 'authentication.needs_attention' && r.payload.data.authenticationId === id,
        );
    await until('a needs_attention for each authentication', async () =>
      authIds.every((id) => attentionFor(id).length > 0),
    );
    await sleep(1_000);
    for (const id of authIds) {
      const events = attentionFor(id);
      expect(events, id).toHaveLength(1);
      expect(events[0]?.payload?.data).toMatchObject({ status: 'error', reason: 'error' });
    }
    const items = await deliveries();
    expect(items.filter((d) => d.event === 'authentication.needs_attention')).toHaveLength(AUTHENTICATIONS);
  }, 90_000);
});
