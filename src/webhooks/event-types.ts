/**
 * What Grantry tells other systems (docs/api.md "Webhooks"): the events a webhook can subscribe to, and
 * the one body every event has. The body is built once, stored with the event and sent unchanged
 * on every attempt, so the signature and the `webhook-id` of a retry match the first try.
 */
import type { ProblemBody } from '../problem.js';
import type { AuthStatus } from '../store/contract.js';

export const WEBHOOK_EVENT_TYPES = [
  /** It became `needs_authorization` or `error`, or its refresh keeps failing (attention-rules.ts). */
  'authentication.needs_attention',
  /** It works again after a `needs_attention`. */
  'authentication.recovered',
  /** An Authorization Code flow completed. */
  'authentication.connected',
] as const;

export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** Sent only by `POST /api/webhooks/:id/test`, to that webhook, whatever it subscribed to. */
export const TEST_EVENT_TYPE = 'webhook.test';

export function isWebhookEventType(value: string): value is WebhookEventType {
  return (WEBHOOK_EVENT_TYPES as readonly string[]).includes(value);
}

/** Why an authentication needs a person; `data.reason` of `authentication.needs_attention`. */
export type AttentionReason = 'needs_authorization' | 'error' | 'refresh_failing' | 'keep_alive_failed';

export interface AuthenticationEventData {
  authenticationId: string;
  name: string;
  /** The authentication's status when the event happened. */
  status: AuthStatus;
  /** The problem stored as its lastError then (never a secret: see problem.ts), or null. */
  error: ProblemBody | null;
  reason?: AttentionReason;
}

/** `{"type","timestamp","data"}`, serialised once. */
export function authenticationEventBody(
  type: WebhookEventType,
  at: number,
  data: AuthenticationEventData,
): string {
  return JSON.stringify({ type, timestamp: new Date(at).toISOString(), data });
}

export function testEventBody(at: number, webhookId: string): string {
  return JSON.stringify({
    type: TEST_EVENT_TYPE,
    timestamp: new Date(at).toISOString(),
    data: { webhookId, message: 'A test event sent from Grantry. Its signature verifies like every other.' },
  });
}
