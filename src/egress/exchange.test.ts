import { createServer as createHttpServer, type Server } from 'node:http';
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Egress } from './egress.js';
import { EgressError } from './egress-error.js';
import { type BodyReceiver, type ExchangeRequest, UpstreamExchange } from './exchange.js';

/** Accepts TCP connections and never says a word: a TLS handshake with it never completes. */
async function silentServer(): Promise<{ port: number; received: () => string; close(): Promise<void> }> {
  const sockets: Socket[] = [];
  let received = '';
  const server = createNetServer((socket) => {
    sockets.push(socket);
    socket.on('data', (data: Buffer) => {
      received += data.toString('latin1');
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    received: () => received,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

async function httpServer(
  handle: Parameters<typeof createHttpServer>[1],
): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createHttpServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function request(origin: string, path = '/'): ExchangeRequest {
  const host = new URL(origin).host;
  return { origin, host, path, method: 'GET', headers: ['x-test', '1'], body: null };
}

/** Reads a body to the end through the receiver interface. */
function collect(exchange: UpstreamExchange): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const receiver: BodyReceiver = {
      chunk: (data) => {
        text += data.toString();
        return true;
      },
      end: (last) => resolve(text + (last?.toString() ?? '')),
      fail: reject,
    };
    exchange.receive(receiver);
  });
}

describe('UpstreamExchange', () => {
  const egress = new Egress({ mode: 'default', allowHttp: 'loopback' });
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const close of cleanup.splice(0)) await close();
  });
  // Destroyed, not closed: a connect still hanging on a silent server is not waited for.
  afterAll(() => egress.dispatcher.destroy());

  it('answers at the deadline while the TLS handshake hangs, and the request is never sent later', async () => {
    const silent = await silentServer();
    cleanup.push(silent.close);
    const started = Date.now();
    const exchange = new UpstreamExchange(
      egress.dispatcher,
      request(`https://localhost:${silent.port}`),
      Date.now() + 300,
    );
    const error = await exchange.head.then(
      () => null,
      (reason: unknown) => reason,
    );
    // A bound on time is the point here: the connect timeout (10 s) used to decide instead.
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(error).toBeInstanceOf(EgressError);
    expect((error as EgressError).kind).toBe('timeout');
    expect((error as EgressError).message).toMatch(/in time/);
    // Only a TLS ClientHello reached the server, never the HTTP request.
    expect(silent.received()).not.toContain('x-test');
  });

  it('delivers status, fields and body; a complete small body comes with its end', async () => {
    const api = await httpServer((req, res) => {
      res.writeHead(201, { 'content-type': 'text/plain', 'x-seen': String(req.headers['x-test']) });
      res.end('made');
    });
    cleanup.push(api.close);
    const exchange = new UpstreamExchange(
      egress.dispatcher,
      request(`http://127.0.0.1:${api.port}`),
      Date.now() + 5_000,
    );
    const head = await exchange.head;
    expect(head.status).toBe(201);
    expect(head.headers['x-seen']).toBe('1');
    expect(await collect(exchange)).toBe('made');
  });

  it('fails the body at the deadline when it stops arriving', async () => {
    const api = await httpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first part, then silence');
    });
    cleanup.push(api.close);
    const exchange = new UpstreamExchange(
      egress.dispatcher,
      request(`http://127.0.0.1:${api.port}`),
      Date.now() + 300,
    );
    expect((await exchange.head).status).toBe(200);
    const error = await collect(exchange).then(
      () => null,
      (reason: unknown) => reason,
    );
    expect((error as EgressError).kind).toBe('timeout');
  });

  it('drops a request abandoned before its connection was ready', async () => {
    const silent = await silentServer();
    cleanup.push(silent.close);
    const exchange = new UpstreamExchange(
      egress.dispatcher,
      request(`https://localhost:${silent.port}`),
      Date.now() + 30_000,
    );
    exchange.abort();
    await expect(exchange.head).rejects.toBeInstanceOf(EgressError);
    expect(silent.received()).not.toContain('x-test');
  });
});
