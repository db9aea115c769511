/**
 * The lifecycle of webhooks — create (with a secret shown once), change, delete, send a test event —
 * and the events themselves: `authenticationStatusChanged` is what the token manager tells (wired in
 * src/app.ts), turned here into `authentication.*` events for every webhook subscribed to them.
 *
 * Once per cluster: every instance may see the same change (each fails the same refresh), but the
 * attention state is moved by one conditional statement (store `attention`), so exactly one instance
 * is told "opened" or "closed" and enqueues the event; the event's id is derived from the episode,
 * and enqueueing is idempotent by it. Each delivery is then attempted by whichever instance claims it.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { EgressPolicy } from '../egress/address-policy.js';
import { type FieldError, Problem } from '../problem.js';
import type { KeyRing } from '../secrets/key-ring.js';
import { type AllowHttp, throwIfInvalid } from '../services/field-checks.js';
import type {
  Store,
  WebhookDeliveryRecord,
  WebhookDeliveryWithAttempts,
  WebhookEventRecord,
  WebhookRecord,
} from '../store/contract.js';
import { KeyedMutex } from '../store/keyed-mutex.js';
import type { StatusChange } from '../tokens/token-manager.js';
import { attentionReason } from './attention-rules.js';
import { DeliveryWorker, type DeliveryWorkerOptions } from './delivery-worker.js';
import {
  type AttentionReason,
  authenticationEventBody,
  TEST_EVENT_TYPE,
  testEventBody,
  type WebhookEventType,
} from './event-types.js';
import { generateWebhookSecret, webhookSecretContext } from './signing.js';
import { checkWebhookRules } from './webhook-rules.js';

/**
 * The service runs this instance's delivery worker, so it needs what the worker needs; and it
 * checks webhook URLs, which may be http only where GRANTRY_ALLOW_HTTP says (default: never).
 */
export type WebhookServiceOptions = DeliveryWorkerOptions & { allowHttp?: AllowHttp | undefined };

/** A page of webhooks, in creation order (docs/api.md "Webhooks": limit 1–500, default 100). */
export interface WebhookPage {
  items: WebhookRecord[];
  nextCursor: string | null;
}

/** Opaque to clients: the position of the last item of a page (creation time, then id). */
function encodeCursor(record: WebhookRecord): string {
  return Buffer.from(JSON.stringify([record.createdAt, record.id])).toString('base64url');
}

function decodeCursor(cursor: string): [number, string] | null {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(value) && typeof value[0] === 'number' && typeof value[1] === 'string') {
      return [value[0], value[1]];
    }
  } catch {}
  return null;
}

/** `limit` as given (the schema allowed digits only); the range is a rule, listed with the others. */
function limitOf(raw: string | undefined, max: number, fallback: number, errors: FieldError[]): number {
  if (raw === undefined) return fallback;
  // Not digits: the schema has said so already.
  if (errors.some((e) => e.path === '/query/limit')) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > max) {
    errors.push({ path: '/query/limit', message: `must be from 1 to ${max}` });
    return fallback;
  }
  return value;
}

export interface WebhookInput {
  url: string;
  events: string[];
  description: string | null;
  enabled: boolean;
}

/** 96 random bits, url-safe: ids are opaque (docs/api.md), and delivery ids travel as `webhook-id`. */
function randomId(prefix: 'wh' | 'msg' | 'evt'): string {
  return `${prefix}_${randomBytes(12).toString('base64url')}`;
}

/** The same id on every instance for the same episode of the same authentication. */
function episodeEventId(authId: string, episode: number, type: WebhookEventType): string {
  return `evt_${createHash('sha256').update(`${authId}\u0000${episode}\u0000${type}`).digest('base64url').slice(0, 22)}`;
}

export class WebhookService {
  readonly #store: Store;
  readonly #ring: KeyRing;
  readonly #log: Logger;
  readonly #clock: () => number;
  readonly #allowHttp: AllowHttp;
  readonly #egressPolicy: EgressPolicy;
  /**
   * Changes of one authentication are handled one at a time, in the order this instance stored them:
   * a failure's two steps (count, then open) must not straddle the success that follows it.
   */
  readonly #perAuthentication = new KeyedMutex();
  readonly worker: DeliveryWorker;

  constructor(options: WebhookServiceOptions) {
    this.#store = options.store;
    this.#ring = options.keyRing;
    this.#log = options.logger;
    this.#clock = options.clock ?? Date.now;
    this.#allowHttp = options.allowHttp ?? 'off';
    this.#egressPolicy = options.egress.policy;
    this.worker = new DeliveryWorker({
      store: options.store,
      keyRing: options.keyRing,
      egress: options.egress,
      logger: options.logger,
      schedule: options.schedule,
      pollIntervalMs: options.pollIntervalMs,
      clock: this.#clock,
    });
  }

  /** Starts this instance's delivery worker. */
  start(): void {
    this.worker.start();
  }

  async close(): Promise<void> {
    await this.worker.close();
  }

  async get(id: string): Promise<WebhookRecord> {
    const record = await this.#store.webhooks.get(id);
    if (record === null) throw new Problem('not_found', 'No webhook with this id.');
    return record;
  }

  /**
   * A page of webhooks in creation order. `schemaErrors` are the query's (pointing at
   * `/query/<name>`), listed with the range and cursor problems found here.
   */
  async list(
    query: { limit?: string | undefined; cursor?: string | undefined },
    schemaErrors: FieldError[] = [],
  ): Promise<WebhookPage> {
    const problems = [...schemaErrors];
    const limit = limitOf(query.limit, 500, 100, problems);
    const after = typeof query.cursor === 'string' ? decodeCursor(query.cursor) : undefined;
    if (after === null)
      problems.push({ path: '/query/cursor', message: 'is not a cursor this API gave out' });
    throwIfInvalid(problems, []);
    // Few webhooks exist: one query, paged here, in creation order.
    const all = await this.#store.webhooks.list();
    const rest =
      after === undefined || after === null
        ? all
        : all.filter((w) => w.createdAt > after[0] || (w.createdAt === after[0] && w.id > after[1]));
    const page = rest.slice(0, limit);
    const last = page.at(-1);
    return { items: page, nextCursor: rest.length > limit && last !== undefined ? encodeCursor(last) : null };
  }

  /** The deliveries of a webhook, newest first; `limit` 1–200, default 50. */
  async deliveries(
    id: string,
    query: { limit?: string | undefined },
    schemaErrors: FieldError[] = [],
  ): Promise<WebhookDeliveryWithAttempts[]> {
    const record = await this.get(id);
    const problems = [...schemaErrors];
    const limit = limitOf(query.limit, 200, 50, problems);
    throwIfInvalid(problems, []);
    return this.#store.webhookDeliveries.listByWebhook(record.id, limit);
  }

  /** Deletes a webhook; its pending deliveries go with it. */
  async delete(id: string): Promise<void> {
    const record = await this.get(id);
    await this.#store.webhooks.delete(record.id);
  }

  /**
   * Creates a webhook from a request body; `schemaErrors` are what the transport's schema check
   * found, listed with the rules' problems in one `validation_failed`.
   */
  async createFrom(
    body: Record<string, unknown>,
    schemaErrors: FieldError[] = [],
  ): Promise<{ webhook: WebhookRecord; secret: string }> {
    this.#validate(body, schemaErrors);
    return this.create({
      url: body.url as string,
      events: body.events as string[],
      description: typeof body.description === 'string' ? body.description : null,
      enabled: body.enabled !== false,
    });
  }

  /** Applies a PATCH: omitted fields keep their value; `null` clears the description. */
  async updateFrom(
    id: string,
    body: Record<string, unknown>,
    schemaErrors: FieldError[] = [],
  ): Promise<WebhookRecord> {
    const record = await this.get(id);
    this.#validate(body, schemaErrors);
    return this.update(record, {
      url: typeof body.url === 'string' ? body.url : record.url,
      events: Array.isArray(body.events) ? (body.events as string[]) : record.events,
      description:
        body.description === null
          ? null
          : typeof body.description === 'string'
            ? body.description
            : record.description,
      enabled: typeof body.enabled === 'boolean' ? body.enabled : record.enabled,
    });
  }

  /** Sends a test event to an enabled webhook (409 when disabled: nothing is sent to it). */
  async sendTestTo(id: string): Promise<WebhookDeliveryRecord> {
    const record = await this.get(id);
    if (!record.enabled) {
      throw new Problem('conflict', 'This webhook is disabled: nothing is sent to it.', {
        hint: 'Enable it (PATCH {"enabled":true}) to send a test event.',
      });
    }
    return this.sendTest(record);
  }

  #validate(body: Record<string, unknown>, schemaErrors: FieldError[]): void {
    const ruleErrors = checkWebhookRules(
      {
        url: typeof body.url === 'string' ? body.url : undefined,
        description: typeof body.description === 'string' ? body.description : undefined,
      },
      { allowHttp: this.#allowHttp, policy: this.#egressPolicy },
    );
    throwIfInvalid(schemaErrors, ruleErrors);
  }

  /** Creates a webhook; the secret is returned here only, and stored sealed. */
  async create(input: WebhookInput): Promise<{ webhook: WebhookRecord; secret: string }> {
    const id = randomId('wh');
    const secret = generateWebhookSecret();
    const now = this.#clock();
    const webhook: WebhookRecord = {
      id,
      ...input,
      secret: this.#ring.seal(secret, webhookSecretContext(id)),
      createdAt: now,
      updatedAt: now,
    };
    await this.#store.webhooks.insert(webhook);
    return { webhook, secret };
  }

  async update(current: WebhookRecord, input: WebhookInput): Promise<WebhookRecord> {
    const updated: WebhookRecord = { ...current, ...input, updatedAt: this.#clock() };
    await this.#store.webhooks.update(updated);
    return updated;
  }

  /** Sends a `webhook.test` event to this webhook alone, whatever it subscribed to. */
  async sendTest(webhook: WebhookRecord): Promise<WebhookDeliveryRecord> {
    const now = this.#clock();
    const event: WebhookEventRecord = {
      id: randomId('evt'),
      type: TEST_EVENT_TYPE,
      body: testEventBody(now, webhook.id),
      createdAt: now,
    };
    const id = randomId('msg');
    await this.#store.webhookDeliveries.enqueue(event, [{ id, webhookId: webhook.id }]);
    this.worker.wake();
    return {
      id,
      webhookId: webhook.id,
      eventId: event.id,
      eventType: event.type,
      state: 'pending',
      attempts: 0,
      nextAttemptAt: now,
      lastResponseStatus: null,
      createdAt: now,
      updatedAt: now,
    };
  }

  /**
   * The token manager's `onStatusChange`: decides whether the change is news for a person and, on
   * the one instance the store says moved the attention state, enqueues the event. Never throws: a
   * failure here must not touch the token path; it is logged.
   */
  async authenticationStatusChanged(change: StatusChange): Promise<void> {
    await this.#perAuthentication.run(change.authId, () => this.#handle(change));
  }

  async #handle(change: StatusChange): Promise<void> {
    try {
      const now = this.#clock();
      if (change.problem === null) {
        const closed = await this.#store.attention.recordSuccess(change.authId, now);
        if (closed !== null) {
          await this.#emit(
            'authentication.recovered',
            change,
            episodeEventId(change.authId, closed, 'authentication.recovered'),
            now,
          );
        }
        // One flow's redirect reaches one instance: a random id is already unique.
        if (change.authorized) await this.#emit('authentication.connected', change, randomId('evt'), now);
        return;
      }
      const streak = await this.#store.attention.recordFailure(change.authId, now);
      if (streak === null || streak.open) return;
      const reason = attentionReason(change.to, streak, now, change.keepAlive);
      if (reason === null) return;
      const episode = await this.#store.attention.open(change.authId, now);
      if (episode === null) return;
      try {
        await this.#emit(
          'authentication.needs_attention',
          change,
          episodeEventId(change.authId, episode, 'authentication.needs_attention'),
          now,
          reason,
        );
      } catch (error) {
        // Nobody was told: an open episode would keep every later failure silent. Close it again,
        // so the next failure opens a new one and its event is tried again.
        await this.#store.attention.abandon(change.authId, episode, now);
        throw error;
      }
    } catch (error) {
      this.#log.error(
        { authId: change.authId, err: error instanceof Error ? error.name : typeof error },
        'a webhook event could not be stored',
      );
    }
  }

  async #emit(
    type: WebhookEventType,
    change: StatusChange,
    eventId: string,
    now: number,
    reason?: AttentionReason,
  ): Promise<void> {
    const authentication = await this.#store.authentications.get(change.authId);
    if (authentication === null) return;
    const body = authenticationEventBody(type, now, {
      authenticationId: change.authId,
      name: authentication.name,
      status: change.to,
      error: change.problem,
      ...(reason !== undefined ? { reason } : {}),
    });
    const event: WebhookEventRecord = { id: eventId, type, body, createdAt: now };
    // A webhook deleted between the listing and the insert fails the insert: list again, once.
    for (let round = 0; ; round++) {
      const targets = (await this.#store.webhooks.list()).filter((w) => w.enabled && w.events.includes(type));
      try {
        const created = await this.#store.webhookDeliveries.enqueue(
          event,
          targets.map((webhook) => ({ id: randomId('msg'), webhookId: webhook.id })),
        );
        if (created.length > 0) {
          this.#log.info(
            { event: type, authId: change.authId, deliveries: created.length },
            'webhook event enqueued',
          );
          this.worker.wake();
        }
        return;
      } catch (error) {
        if (round >= 1) throw error;
      }
    }
  }
}
