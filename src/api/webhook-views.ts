import type { WebhookDeliveryRecord, WebhookDeliveryWithAttempts, WebhookRecord } from '../store/contract.js';
import type { WebhookDeliveryView, WebhookEventTypeName, WebhookView } from './schemas.js';

/**
 * Webhook records → API views, field by field from an allow-list: the secret is never copied (it
 * is shown once, by the create route, from the value it just made).
 */
const iso = (ms: number) => new Date(ms).toISOString();

export function webhookView(record: WebhookRecord): WebhookView {
  return {
    id: record.id,
    url: record.url,
    // Stored values passed these rules when they were written.
    events: record.events as WebhookEventTypeName[],
    description: record.description,
    enabled: record.enabled,
    createdAt: iso(record.createdAt),
    updatedAt: iso(record.updatedAt),
  };
}

export function webhookDeliveryView(
  record: WebhookDeliveryRecord | WebhookDeliveryWithAttempts,
): WebhookDeliveryView {
  return {
    id: record.id,
    event: record.eventType,
    eventId: record.eventId,
    at: iso(record.createdAt),
    attempts: record.attempts,
    status: record.state,
    responseStatus: record.lastResponseStatus,
    nextAttemptAt: record.nextAttemptAt === null ? null : iso(record.nextAttemptAt),
    attemptLog: ('attemptLog' in record ? record.attemptLog : []).map((attempt) => ({
      attempt: attempt.attempt,
      at: iso(attempt.at),
      durationMs: Math.round(attempt.durationMs),
      responseStatus: attempt.responseStatus,
      error:
        attempt.errorKind === null
          ? null
          : { kind: attempt.errorKind, message: attempt.errorMessage ?? attempt.errorKind },
    })),
  };
}
