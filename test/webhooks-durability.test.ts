import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, runCli, type SpawnedGrantry, spawnGrantry } from './support/grantry.js';
import { waitFor } from './support/wait-for.js';
import { startWebhookReceiver, type WebhookReceiver } from './support/webhook-receiver.js';

/** Spawned processes (a restart included) take longer than in-process servers: wait up to 30 s. */
const SPAWNED_WAIT_MS = 30_000;

/**
 * Webhook deliveries are stored, so they outlive the process that made them: a Grantry killed while a
 * delivery waits for its retry sends it after a restart, with the same `webhook-id`; and a master key
 * rotation re-encrypts webhook secrets like every other secret. Grantry runs as `grantry serve`
 * processes here, killed for real.
 */
const EVERY_EVENT = [
  'authentication.needs_attention',
  'authentication.recovered',
  'authentication.connected',
];

interface DeliveryView {
  id: string;
  event: string;
  status: string;
  attempts: number;
  attemptLog: { responseStatus: number | null }[];
}

describe('webhook deliveries across restarts', () => {
  const running: SpawnedGrantry[] = [];
  const receivers: WebhookReceiver[] = [];

  afterEach(async () => {
    for (const g of running.splice(0)) await g.stop();
    for (const receiver of receivers.splice(0)) await receiver.close();
  });

  async function spawn(options: Parameters<typeof spawnGrantry>[0]): Promise<SpawnedGrantry> {
    const g = await spawnGrantry(options);
    running.push(g);
    return g;
  }

  async function deliveriesOf(g: SpawnedGrantry, webhookId: string): Promise<DeliveryView[]> {
    const answer = await g.api('GET', `/api/webhooks/${webhookId}/deliveries`);
    expect(answer.status, answer.text).toBe(200);
    return answer.body.items;
  }

  it('a Grantry killed mid-retry loses nothing: the restarted one sends the retries, same webhook-id, each accepted once', async () => {
    const receiver = await startWebhookReceiver();
    receivers.push(receiver);
    receiver.answer(500);
    // Retries 1 to 2 s apart: long enough that the kill below lands between two attempts.
    const env = {
      GRANTRY_WEBHOOK_RETRY_BASE_MS: '2000',
      GRANTRY_WEBHOOK_RETRY_MAX_DELAY_MS: '2000',
      GRANTRY_WEBHOOK_POLL_MS: '50',
    };
    const first = await spawn({ env });
    const hook = await first.api('POST', '/api/webhooks', { url: receiver.url, events: EVERY_EVENT });
    expect(hook.status, hook.text).toBe(201);
    receiver.verifyWith(hook.body.secret);

    // Two deliveries: a test event, and a real needs_attention (a token endpoint nobody listens on).
    await first.api('POST', `/api/webhooks/${hook.body.id}/test`);
    const auth = await first.api('POST', '/api/authentications', {
      name: 'unreachable provider',
      type: 'oauth2',
      grantType: 'client_credentials',
      tokenUrl: `https://localhost:${await freePort()}/token`,
      clientId: 'c',
      clientSecret: 'unreachable-secret',
    });
    expect((await first.api('POST', `/api/authentications/${auth.body.id}/test`)).body.ok).toBe(false);

    const waiting = await waitFor(
      'both deliveries to have failed once',
      async () => {
        const items = await deliveriesOf(first, hook.body.id);
        return items.length === 2 && items.every((d) => d.status === 'pending' && d.attempts >= 1)
          ? items
          : undefined;
      },
      SPAWNED_WAIT_MS,
    );
    first.kill('SIGKILL');
    await new Promise((resolve) => first.child.once('exit', resolve));
    const beforeRestart = receiver.received.length;
    expect(beforeRestart).toBeGreaterThanOrEqual(2);

    receiver.answer(204);
    const second = await spawn({
      env,
      dataDir: first.dataDir,
      masterKey: first.env.GRANTRY_MASTER_KEY as string,
      apiKey: first.apiKey,
    });
    const delivered = await waitFor(
      'both deliveries after the restart',
      async () => {
        const items = await deliveriesOf(second, hook.body.id);
        return items.every((d) => d.status === 'delivered') ? items : undefined;
      },
      SPAWNED_WAIT_MS,
    );

    expect(delivered.map((d) => d.id).sort()).toEqual(waiting.map((d) => d.id).sort());
    expect(delivered.map((d) => d.event).sort()).toEqual(['authentication.needs_attention', 'webhook.test']);
    const accepted = receiver.accepted();
    for (const delivery of delivered) {
      const requests = receiver.received.filter((r) => r.id === delivery.id);
      // Every attempt was recorded (none lost in the kill), the last one accepted, exactly once.
      expect(requests.map((r) => r.answered)).toEqual(delivery.attemptLog.map((a) => a.responseStatus));
      expect(requests.at(-1)?.answered).toBe(204);
      expect(accepted.get(delivery.id)).toHaveLength(1);
      expect(requests.every((r) => r.verified)).toBe(true);
    }
    const attention = receiver.received.find((r) => r.payload?.type === 'authentication.needs_attention');
    expect(attention?.payload?.data).toMatchObject({
      authenticationId: auth.body.id,
      status: 'error',
      error: { code: 'token_fetch_failed' },
    });
  }, 90_000);

  it('grantry keys rotate re-encrypts webhook secrets: after the rotation, deliveries carry the same signatures', async () => {
    const receiver = await startWebhookReceiver();
    receivers.push(receiver);
    const oldKey = randomBytes(32).toString('base64');
    const first = await spawn({ masterKey: oldKey });
    const hook = await first.api('POST', '/api/webhooks', { url: receiver.url, events: EVERY_EVENT });
    expect(hook.status, hook.text).toBe(201);
    receiver.verifyWith(hook.body.secret);
    await first.stop();

    const newKey = randomBytes(32).toString('base64');
    const rotate = await runCli(['keys', 'rotate'], {
      GRANTRY_DATABASE_URL: first.env.GRANTRY_DATABASE_URL as string,
      GRANTRY_MASTER_KEY: newKey,
      GRANTRY_PREVIOUS_MASTER_KEYS: oldKey,
    });
    expect(rotate.code, rotate.stderr).toBe(0);
    expect(rotate.stdout).toMatch(/Re-encrypted 1 value/);

    // The new key alone: the secret must have been re-sealed under it, or it would not open.
    const second = await spawn({ dataDir: first.dataDir, masterKey: newKey, apiKey: first.apiKey });
    const sent = await second.api('POST', `/api/webhooks/${hook.body.id}/test`);
    expect(sent.status, sent.text).toBe(202);
    const delivery = await waitFor(
      'the test delivery',
      async () => (await deliveriesOf(second, hook.body.id)).find((d) => d.status !== 'pending'),
      SPAWNED_WAIT_MS,
    );
    expect(delivery.status).toBe('delivered');
    expect(receiver.received.map((r) => [r.id, r.verified])).toEqual([[sent.body.id, true]]);
  }, 60_000);
});
