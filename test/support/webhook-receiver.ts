/**
 * A webhook receiver for integration tests: a real HTTPS server on 127.0.0.1 (certificate from the
 * test CA) that checks every request with the Standard Webhooks reference library — exactly what a
 * customer's endpoint would run — and records what arrived, in order.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { issueServerCertificate } from './tls.js';

export interface ReceivedWebhook {
  /** `webhook-id`: one per delivery, the same on each of its attempts. */
  id: string;
  timestamp: string;
  signature: string;
  contentType: string | undefined;
  body: string;
  /** What `Webhook.verify` said, with the secret given to `verifyWith` (null when none was given). */
  verified: boolean | null;
  /** The parsed body, when it verified. */
  payload: { type: string; timestamp: string; data: Record<string, unknown> } | null;
  /** The status this receiver answered. */
  answered: number;
  receivedAt: number;
}

export interface WebhookReceiver {
  /** `https://localhost:<port>/hooks/grantry` */
  readonly url: string;
  readonly port: number;
  readonly received: ReceivedWebhook[];
  /** Verifies every later request with this secret (`whsec_…`). */
  verifyWith(secret: string): void;
  /** How to answer: a status, or one chosen per request (n counts requests from 1). */
  answer(how: number | ((n: number, request: ReceivedWebhook) => number)): void;
  /** Requests that verified and were answered 2xx, by webhook-id: the deliveries that "arrived". */
  accepted(): Map<string, ReceivedWebhook[]>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  let secret: string | null = null;
  let choose: (n: number, request: ReceivedWebhook) => number = () => 204;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
    const body = Buffer.concat(chunks).toString('utf8');
    const header = (name: string) => {
      const value = req.headers[name];
      return typeof value === 'string' ? value : '';
    };
    const record: ReceivedWebhook = {
      id: header('webhook-id'),
      timestamp: header('webhook-timestamp'),
      signature: header('webhook-signature'),
      contentType: req.headers['content-type'],
      body,
      verified: null,
      payload: null,
      answered: 0,
      receivedAt: Date.now(),
    };
    if (secret !== null) {
      try {
        record.payload = new Webhook(secret).verify(body, {
          'webhook-id': record.id,
          'webhook-timestamp': record.timestamp,
          'webhook-signature': record.signature,
        }) as ReceivedWebhook['payload'];
        record.verified = true;
      } catch {
        record.verified = false;
      }
    }
    received.push(record);
    record.answered = record.verified === false ? 401 : choose(received.length, record);
    res.writeHead(record.answered, { 'content-type': 'text/plain' });
    res.end(record.answered < 300 ? 'ok' : 'not now');
  };

  const { cert, key } = issueServerCertificate(['localhost', '127.0.0.1']);
  const server = createServer({ cert, key }, (req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://localhost:${port}/hooks/grantry`,
    port,
    received,
    verifyWith(next) {
      secret = next;
    },
    answer(how) {
      choose = typeof how === 'number' ? () => how : how;
    },
    accepted() {
      const byId = new Map<string, ReceivedWebhook[]>();
      for (const request of received) {
        if (request.verified !== true || request.answered >= 300) continue;
        byId.set(request.id, [...(byId.get(request.id) ?? []), request]);
      }
      return byId;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
