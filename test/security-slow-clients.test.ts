import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GrantryHandle, startGrantry } from './support/grantry.js';
import { parseRawResponse, rawRequest } from './support/raw-http.js';

/**
 * Slow and heavy clients, over raw sockets: a client trickling its headers or body is cut off, an
 * idle keep-alive connection is closed, one address cannot hold more than its share of
 * connections, and a JSON body nested thousands deep is a 400, not a stack overflow.
 */
const CAP = 8;

interface Trickle {
  socket: Socket;
  received: () => string;
  closed: Promise<void>;
  stop(): void;
}

describe('slow and heavy clients', () => {
  let g: GrantryHandle;
  let port: number;

  beforeAll(async () => {
    g = await startGrantry({
      env: {
        GRANTRY_HEADERS_TIMEOUT_MS: '800',
        GRANTRY_REQUEST_TIMEOUT_MS: '1500',
        GRANTRY_IDLE_TIMEOUT_MS: '500',
        GRANTRY_MAX_CONNECTIONS_PER_CLIENT: String(CAP),
      },
    });
    port = Number(new URL(g.url).port);
  });
  afterAll(async () => {
    await g?.stop();
  });

  /** Opens a connection that sends `head`, then one more byte of `drip` every 200 ms until closed. */
  function trickle(head: string, drip: string): Trickle {
    const socket = connect({ host: '127.0.0.1', port });
    let data = '';
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1');
    });
    socket.on('error', () => {});
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(head);
    let index = 0;
    const timer = setInterval(() => {
      if (socket.destroyed) return;
      socket.write(drip[index % drip.length] ?? 'x');
      index++;
    }, 200);
    void closed.then(() => clearInterval(timer));
    return { socket, received: () => data, closed, stop: () => socket.destroy() };
  }

  it('cuts off a client that trickles its body, with 408', async () => {
    const slow = trickle(
      `POST /api/authentications HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${g.apiKey}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{`,
      ' ',
    );
    await slow.closed;
    expect(parseRawResponse(slow.received()).status).toBe(408);
  });

  it('cuts off a client that trickles its headers', async () => {
    const slow = trickle('GET /healthz HTTP/1.1\r\nHost: x\r\n', 'X-Slow: a\r\n');
    await slow.closed;
    expect(slow.received()).toMatch(/^HTTP\/1\.1 408/);
  });

  it('closes an idle keep-alive connection', async () => {
    const socket = connect({ host: '127.0.0.1', port });
    let data = '';
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1');
    });
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await closed;
    expect(parseRawResponse(data).status).toBe(200);
  });

  it('refuses connections past the per-address cap with 503, and serves again once they are gone', async () => {
    const held = Array.from({ length: CAP }, () =>
      trickle(
        `POST /api/connectors HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${g.apiKey}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n`,
        ' ',
      ),
    );
    // Let every held connection be accepted before the next one knocks.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const refused = await rawRequest(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toEqual(['1']);
    expect(JSON.parse(refused.body).error.code).toBe('rate_limited');

    // The server cuts the trickling ones off itself (request timeout), which frees the address.
    await Promise.all(held.map((h) => h.closed));
    for (const h of held) expect(h.received()).toMatch(/^HTTP\/1\.1 408/);
    const served = await rawRequest(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(served.status).toBe(200);
  });

  it('answers 400 validation_failed, not 500, to a JSON body nested thousands deep', async () => {
    const connector = await g.api('POST', '/api/connectors', {
      name: 'deep',
      baseUrl: 'https://api.example.test',
    });
    expect(connector.status).toBe(201);
    for (const depth of [65, 5_000, 100_000]) {
      const nested = `${'['.repeat(depth)}${']'.repeat(depth)}`;
      const execute = await g.api(
        'POST',
        `/api/connectors/${connector.body.id}/execute`,
        `{"method":"POST","path":"/x","body":${nested}}`,
      );
      expect(execute.status).toBe(400);
      expect(execute.body.error).toMatchObject({
        code: 'validation_failed',
        errors: [{ path: '', message: expect.stringContaining('64 levels') }],
      });
      const create = await g.api('POST', '/api/authentications', `{"name":${nested}}`);
      expect(create.status).toBe(400);
      expect(create.body.error.code).toBe('validation_failed');
    }
    // Strings that look like brackets do not count.
    const execute = await g.api(
      'POST',
      `/api/connectors/${connector.body.id}/execute`,
      JSON.stringify({ method: 'POST', path: '/x', body: { text: '['.repeat(10_000) } }),
    );
    expect(execute.status).not.toBe(400);
  });

  it('accepts an empty JSON body on POST routes that take none', async () => {
    const created = await g.api('POST', '/api/authentications', {
      name: 'empty-body',
      type: 'oauth2',
      grantType: 'client_credentials',
      tokenUrl: 'https://login.example.test/token',
      clientId: 'id',
      clientSecret: 'secret',
    });
    const answer = await g.api('POST', `/api/authentications/${created.body.id}/invalidate`, '', {
      'content-type': 'application/json',
    });
    expect(answer.status).toBe(204);
  });
});
