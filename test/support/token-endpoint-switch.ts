/**
 * A token endpoint for integration tests that can break like a real provider in trouble: a real
 * HTTPS server on 127.0.0.1 (certificate from the test CA) that forwards each token request to a
 * real one (`target`, e.g. oidc-provider's) while it works, and answers a fixed failure — a 500, an
 * `invalid_client`, or no answer at all — while it is broken. It records every request's arrival
 * time, so tests count what reached "the provider".
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { issueServerCertificate } from './tls.js';

/** A failure the endpoint answers with. */
export interface TokenEndpointFailure {
  status: number;
  body: string;
}

export type TokenEndpointMode =
  | 'forward'
  /** Holds each request without answering (until the client gives up, or the switch closes). */
  | 'hang'
  | TokenEndpointFailure;

export const SERVER_ERROR: TokenEndpointFailure = {
  status: 500,
  body: '{"error":"server_error","error_description":"the database is down"}',
};
export const INVALID_CLIENT: TokenEndpointFailure = {
  status: 401,
  body: '{"error":"invalid_client","error_description":"client authentication failed"}',
};

export interface TokenEndpointSwitch {
  /** `https://localhost:<port>/token` */
  readonly url: string;
  /** Arrival time (Date.now()) of every request received, in order. */
  readonly arrivals: number[];
  set(mode: TokenEndpointMode): void;
  close(): Promise<void>;
}

export async function startTokenEndpointSwitch(
  target?: string,
  initial: TokenEndpointMode = target === undefined ? SERVER_ERROR : 'forward',
): Promise<TokenEndpointSwitch> {
  let mode = initial;
  const arrivals: number[] = [];
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    arrivals.push(Date.now());
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
    if (mode === 'hang') return;
    if (mode !== 'forward' || target === undefined) {
      const failure = mode === 'forward' ? SERVER_ERROR : mode;
      res.writeHead(failure.status, { 'content-type': 'application/json' });
      res.end(failure.body);
      return;
    }
    const headers: Record<string, string> = {};
    for (const name of ['authorization', 'content-type', 'accept']) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const answer = await fetch(target, { method: 'POST', headers, body: Buffer.concat(chunks) });
    res.writeHead(answer.status, {
      'content-type': answer.headers.get('content-type') ?? 'application/json',
    });
    res.end(Buffer.from(await answer.arrayBuffer()));
  };
  const { cert, key } = issueServerCertificate(['localhost', '127.0.0.1']);
  const server: Server = createServer({ cert, key }, (req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://localhost:${port}/token`,
    arrivals,
    set(next) {
      mode = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
