/**
 * Shutting down: requests already running finish, a request that arrives meanwhile is answered in
 * the Error shape (not Fastify's own body), and a kept-alive connection does not hold the close
 * for its idle timeout.
 */
import type { ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GrantryHandle, startGrantry } from './support/grantry.js';
import { parseRawResponse } from './support/raw-http.js';
import { issueServerCertificate } from './support/tls.js';

describe('shutting down', () => {
  let tokenEndpoint: Server;
  let tokenUrl: string;
  const held: ServerResponse[] = [];
  let arrived: () => void = () => {};

  beforeAll(async () => {
    // A token endpoint that holds every request until the test answers it.
    tokenEndpoint = createServer(issueServerCertificate(), (_request, response) => {
      held.push(response);
      arrived();
    });
    await new Promise<void>((resolve) => tokenEndpoint.listen(0, '127.0.0.1', resolve));
    const address = tokenEndpoint.address();
    tokenUrl = `https://localhost:${typeof address === 'object' && address ? address.port : 0}/token`;
  });
  afterAll(() => new Promise<void>((resolve) => tokenEndpoint.close(() => resolve())));

  interface Running {
    g: GrantryHandle;
    socket: Socket;
    key: string;
    /** Everything Grantry sent on the connection. */
    received: () => string;
    closed: Promise<void>;
  }

  /**
   * A Grantry whose one connection has a request waiting on the token endpoint (a test of an
   * authentication): the moment to start closing.
   */
  async function withRequestWaiting(): Promise<Running> {
    const g = await startGrantry();
    const created = await g.api('POST', '/api/authentications', {
      name: 'held',
      type: 'oauth2',
      grantType: 'client_credentials',
      tokenUrl,
      clientId: 'client',
      clientSecret: 'secret',
    });
    expect(created.status).toBe(201);
    const socket = connect(Number(new URL(g.url).port), '127.0.0.1');
    let raw = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      raw += chunk;
    });
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    const tokenRequested = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    const key = `Authorization: Bearer ${g.apiKey}\r\n`;
    socket.write(
      `POST /api/authentications/${created.body.id}/test HTTP/1.1\r\nHost: grantry\r\n${key}Content-Length: 0\r\n\r\n`,
    );
    await tokenRequested;
    return { g, socket, key, received: () => raw, closed };
  }

  function answerHeldTokenRequest(): void {
    const response = held.shift() as ServerResponse;
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ access_token: 'held-token', token_type: 'Bearer', expires_in: 3600 }));
  }

  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('finishes the running request, then closes its kept-alive connection, not after its idle timeout', async () => {
    const { g, received, closed } = await withRequestWaiting();
    const stopped = g.stop();
    await pause(50);
    answerHeldTokenRequest();
    // Node closes only the connections idle when the close starts: without Grantry's sweep this
    // waited for the idle timeout (75 s, past this test's own).
    await closed;
    await stopped;
    const answer = parseRawResponse(received());
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body).ok).toBe(true);
  });

  it('answers a request that arrives during the close with a server_busy problem', async () => {
    const { g, socket, key, received, closed } = await withRequestWaiting();
    const stopped = g.stop();
    await pause(50);
    socket.write(`GET /api/authentications HTTP/1.1\r\nHost: grantry\r\n${key}\r\n`);
    await pause(100);
    answerHeldTokenRequest();
    await closed;
    await stopped;

    const raw = received();
    const second = raw.indexOf('HTTP/1.1', 1);
    expect(parseRawResponse(raw.slice(0, second)).status).toBe(200);
    const refused = parseRawResponse(raw.slice(second));
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toEqual(['1']);
    expect(refused.headers.get('connection')).toEqual(['close']);
    expect(JSON.parse(refused.body)).toEqual({
      error: {
        code: 'server_busy',
        message: 'Grantry is shutting down.',
        hint: 'Send the request again: another instance answers it, or this one once it has restarted.',
      },
    });
  });
});
