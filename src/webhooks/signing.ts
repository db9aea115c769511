/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com/, "Signature scheme"): the secret is
 * `whsec_<base64 key>`; each attempt carries `webhook-id` (the delivery's id, the same on every retry,
 * so receivers can drop duplicates), `webhook-timestamp` (seconds, of this attempt) and
 * `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`. Signed with the
 * specification's own library, so any Standard Webhooks library verifies what Grantry sends.
 */
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

export const SECRET_PREFIX = 'whsec_';

/** The specification asks for 24 to 64 random bytes; 32 is HMAC-SHA256's output length, the least RFC 2104 §3 advises. */
const SECRET_BYTES = 32;

export function generateWebhookSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(SECRET_BYTES).toString('base64')}`;
}

/** Where a webhook's sealed secret lives: it opens in this row and column only (see secrets/key-ring.ts). */
export function webhookSecretContext(webhookId: string): { table: string; id: string; column: string } {
  return { table: 'webhooks', id: webhookId, column: 'secret' };
}

export interface SignatureHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/**
 * The three headers of one attempt. `at` is the wall-clock time of the attempt: receivers refuse a
 * timestamp far from their own clock (five minutes in the reference libraries) to stop replays.
 */
export function signatureHeaders(
  secret: string,
  messageId: string,
  at: Date,
  body: string,
): SignatureHeaders {
  return {
    'webhook-id': messageId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(secret).sign(messageId, at, body),
  };
}
