/**
 * Sends stored deliveries, on every instance: claim the due ones (the claim, not this loop, is what
 * makes each attempt happen on one instance only), POST each through `Egress` with its Standard
 * Webhooks signature, record the attempt, and schedule the next one or give up (retry-schedule.ts).
 *
 * The loop wakes on a short poll — which also picks up retries as they fall due and deliveries whose
 * claimer died (its lease ran out) — and at once when this instance enqueues something.
 */
import type { Logger } from 'pino';
import type { Egress } from '../egress/egress.js';
import { EgressError } from '../egress/egress-error.js';
import type { KeyRing } from '../secrets/key-ring.js';
import { MasterKeyError } from '../secrets/key-ring.js';
import type { ClaimedDelivery, Store, WebhookDeliveryState } from '../store/contract.js';
import { nextAttemptAt, type RetrySchedule } from './retry-schedule.js';
import { signatureHeaders, webhookSecretContext } from './signing.js';

/** docs/api.md: a delivery fails when no 2xx came back within 10 s. */
export const ATTEMPT_TIMEOUT_MS = 10_000;
/**
 * How long a claim owns its deliveries: the attempt's own deadline with room to record it. An
 * instance that dies mid-attempt leaves the delivery to be claimed again once this has passed.
 */
const LEASE_MS = 3 * ATTEMPT_TIMEOUT_MS;
const BATCH_SIZE = 10;
/** Finished deliveries and their attempts are kept this long, then pruned (about once an hour). */
export const KEEP_FINISHED_MS = 14 * 24 * 60 * 60 * 1000;
const PRUNE_EVERY_MS = 60 * 60 * 1000;
/** What is read of a receiver's answer before it is dropped: nothing of it is kept. */
const DRAIN_LIMIT_BYTES = 16 * 1024;

/**
 * Failures a retry cannot fix: the egress policy refuses the address, or the URL is not allowed
 * (a setting changed since the webhook was saved). The delivery is given up at once, so that a
 * person sees `failed` with the reason instead of a day of identical attempts.
 */
const GIVE_UP_AT_ONCE = new Set(['denied', 'insecure_url']);

export interface DeliveryWorkerOptions {
  store: Store;
  keyRing: KeyRing;
  egress: Egress;
  logger: Logger;
  schedule: RetrySchedule;
  /** How often the worker looks for due deliveries when nothing woke it. */
  pollIntervalMs: number;
  /** Decides when deliveries are due and when attempts happened (tests move it); default Date.now. */
  clock?: () => number;
}

interface AttemptOutcome {
  responseStatus: number | null;
  failure: { kind: string; message: string } | null;
}

export class DeliveryWorker {
  readonly #store: Store;
  readonly #ring: KeyRing;
  readonly #egress: Egress;
  readonly #log: Logger;
  readonly #schedule: RetrySchedule;
  readonly #pollIntervalMs: number;
  readonly #clock: () => number;
  #timer: NodeJS.Timeout | null = null;
  #cycle: Promise<void> | null = null;
  #again = false;
  #started = false;
  #closed = false;
  #lastPrune = Number.NEGATIVE_INFINITY;

  constructor(options: DeliveryWorkerOptions) {
    this.#store = options.store;
    this.#ring = options.keyRing;
    this.#egress = options.egress;
    this.#log = options.logger;
    this.#schedule = options.schedule;
    this.#pollIntervalMs = options.pollIntervalMs;
    this.#clock = options.clock ?? Date.now;
  }

  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.wake();
  }

  /** Looks for due deliveries now (something was just enqueued), or right after the current round. */
  wake(): void {
    if (!this.#started || this.#closed) return;
    if (this.#cycle !== null) {
      this.#again = true;
      return;
    }
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#cycle = this.#rounds().finally(() => {
      this.#cycle = null;
      this.#scheduleNext();
    });
  }

  /** Stops claiming; resolves when the attempts under way have been recorded. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#cycle;
  }

  #scheduleNext(): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.wake();
    }, this.#pollIntervalMs);
    // The poll must not keep a finished process (a test, a CLI command) alive.
    this.#timer.unref();
  }

  async #rounds(): Promise<void> {
    do {
      this.#again = false;
      const claimed = await this.#deliverDue();
      // A full batch: there may be more due right now.
      if (claimed >= BATCH_SIZE) this.#again = true;
    } while (this.#again && !this.#closed);
  }

  /** One round: claims what is due and attempts it. Returns how many deliveries it claimed. */
  async #deliverDue(): Promise<number> {
    let claims: ClaimedDelivery[];
    try {
      await this.#pruneNow();
      claims = await this.#store.webhookDeliveries.claimDue(this.#clock(), BATCH_SIZE, LEASE_MS);
    } catch (error) {
      // The store is unreachable: the next poll tries again; nothing was claimed, nothing is lost.
      this.#log.warn({ err: errorName(error) }, 'webhook deliveries could not be claimed');
      return 0;
    }
    await Promise.all(claims.map((claim) => this.#deliver(claim)));
    return claims.length;
  }

  async #pruneNow(): Promise<void> {
    const now = this.#clock();
    if (now - this.#lastPrune < PRUNE_EVERY_MS) return;
    this.#lastPrune = now;
    await this.#store.webhookDeliveries.prune(now - KEEP_FINISHED_MS);
  }

  async #deliver(claim: ClaimedDelivery): Promise<void> {
    const { delivery } = claim;
    const attempt = delivery.attempts + 1;
    const at = this.#clock();
    const started = performance.now();
    const outcome = await this.#attempt(claim);
    const durationMs = performance.now() - started;
    const now = this.#clock();
    let next: { state: WebhookDeliveryState; nextAttemptAt: number | null };
    if (outcome.failure === null) next = { state: 'delivered', nextAttemptAt: null };
    else if (GIVE_UP_AT_ONCE.has(outcome.failure.kind)) next = { state: 'failed', nextAttemptAt: null };
    else {
      const retryAt = nextAttemptAt(this.#schedule, attempt, delivery.createdAt, now);
      next =
        retryAt === null
          ? { state: 'failed', nextAttemptAt: null }
          : { state: 'pending', nextAttemptAt: retryAt };
    }
    try {
      const recorded = await this.#store.webhookDeliveries.complete(
        delivery.id,
        claim.claimToken,
        {
          attempt,
          at,
          durationMs,
          responseStatus: outcome.responseStatus,
          errorKind: outcome.failure?.kind ?? null,
          errorMessage: outcome.failure?.message ?? null,
        },
        next,
      );
      if (!recorded) {
        this.#log.warn(
          { deliveryId: delivery.id },
          'webhook delivery was claimed again before its attempt was recorded',
        );
        return;
      }
    } catch (error) {
      // Unrecorded: the lease runs out and the delivery is attempted again (same webhook-id).
      this.#log.warn(
        { deliveryId: delivery.id, err: errorName(error) },
        'webhook attempt could not be recorded',
      );
      return;
    }
    // The URL is left out: a receiver's path may itself be a secret (…/hooks/<token>).
    const facts = {
      deliveryId: delivery.id,
      webhookId: delivery.webhookId,
      event: delivery.eventType,
      attempt,
      status: outcome.responseStatus,
      ms: Math.round(durationMs),
    };
    if (outcome.failure === null) this.#log.info(facts, 'webhook delivered');
    else {
      this.#log.warn(
        { ...facts, kind: outcome.failure.kind, state: next.state, nextAttemptAt: next.nextAttemptAt },
        next.state === 'failed' ? 'webhook delivery given up' : 'webhook delivery failed; will retry',
      );
    }
  }

  async #attempt(claim: ClaimedDelivery): Promise<AttemptOutcome> {
    let host = '';
    try {
      host = new URL(claim.url).host;
      const secret = this.#ring.open(claim.secret, webhookSecretContext(claim.delivery.webhookId));
      const response = await this.#egress.request({
        url: claim.url,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Grantry-Webhooks/1',
          // The wall clock, not the worker's: receivers compare the timestamp with their own time.
          ...signatureHeaders(secret, claim.delivery.id, new Date(), claim.body),
        },
        body: claim.body,
        timeoutMs: ATTEMPT_TIMEOUT_MS,
      });
      // Read (and drop) a little of the answer so the connection can be reused; none of it is kept.
      await response.body.dump({ limit: DRAIN_LIMIT_BYTES }).catch(() => {});
      const ok = response.status >= 200 && response.status < 300;
      return {
        responseStatus: response.status,
        failure: ok
          ? null
          : {
              kind: 'http_status',
              message: `${host} answered HTTP ${response.status}${response.status >= 300 && response.status < 400 ? ' (redirects are not followed)' : ''}`,
            },
      };
    } catch (error) {
      if (error instanceof EgressError)
        return { responseStatus: null, failure: { kind: error.kind, message: error.message } };
      if (error instanceof MasterKeyError) {
        return { responseStatus: null, failure: { kind: 'wrong_master_key', message: error.message } };
      }
      return {
        responseStatus: null,
        failure: {
          kind: 'other',
          message: host === '' ? 'the webhook URL is not valid' : `the request to ${host} failed`,
        },
      };
    }
  }
}

function errorName(error: unknown): string {
  return error instanceof Error
    ? `${error.name}${(error as { code?: unknown }).code ? ` ${String((error as { code?: unknown }).code)}` : ''}`
    : typeof error;
}
