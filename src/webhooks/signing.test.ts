import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { generateWebhookSecret, signatureHeaders } from './signing.js';

describe('Standard Webhooks signatures', () => {
  it('makes whsec_ secrets of 32 random bytes', () => {
    const secret = generateWebhookSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(secret.slice('whsec_'.length), 'base64')).toHaveLength(32);
    expect(generateWebhookSecret()).not.toBe(secret);
  });

  it('signs "<id>.<timestamp>.<body>" so that the reference library verifies it, and nothing altered', () => {
    const secret = generateWebhookSecret();
    const body = JSON.stringify({ type: 'webhook.test', data: { name: 'ü ✓' } });
    const headers = signatureHeaders(secret, 'msg_1', new Date(), body);
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(new Webhook(secret).verify(body, { ...headers })).toEqual(JSON.parse(body));

    const check =
      (payload: string, changed: Record<string, string>, key = secret) =>
      () =>
        new Webhook(key).verify(payload, { ...headers, ...changed });
    expect(check(`${body} `, {})).toThrow(WebhookVerificationError);
    expect(check(body, { 'webhook-id': 'msg_2' })).toThrow(WebhookVerificationError);
    expect(check(body, { 'webhook-timestamp': String(Number(headers['webhook-timestamp']) + 1) })).toThrow(
      WebhookVerificationError,
    );
    expect(check(body, {}, generateWebhookSecret())).toThrow(WebhookVerificationError);
  });

  it('puts the attempt time in webhook-timestamp, which receivers refuse when stale', () => {
    const secret = generateWebhookSecret();
    const old = new Date(Date.now() - 10 * 60 * 1000);
    const headers = signatureHeaders(secret, 'msg_1', old, '{}');
    expect(headers['webhook-timestamp']).toBe(String(Math.floor(old.getTime() / 1000)));
    expect(() => new Webhook(secret).verify('{}', { ...headers })).toThrow(/too old/);
  });
});
