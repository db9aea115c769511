import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/**
 * A cap on the connections one client address may hold open at once. Timeouts bound how long a
 * slow client keeps each connection; this bounds how many it can open, so that one client cannot
 * use up the process's file descriptors (1,100 trickling connections made /healthz unreachable
 * under a 1,024-descriptor limit). Counted per TCP peer: behind a reverse proxy every client is the
 * proxy, so raise the cap (or set 0) there and let the proxy limit its clients.
 */
export function limitConnectionsPerClient(server: Server, maxPerClient: number): void {
  if (maxPerClient <= 0) return;
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '';
    const count = (open.get(address) ?? 0) + 1;
    if (count > maxPerClient) {
      refuse(socket);
      return;
    }
    open.set(address, count);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left <= 0) open.delete(address);
      else open.set(address, left);
    });
  });
}

const REFUSAL_BODY = JSON.stringify({
  error: {
    code: 'rate_limited',
    message: 'Too many open connections from this address.',
    hint: 'Close idle connections or reuse them (keep-alive); the limit is GRANTRY_MAX_CONNECTIONS_PER_CLIENT.',
  },
});

/** Answers before the request is even read (RFC 9110 §15.6.4 503) and closes. */
function refuse(socket: Socket): void {
  socket.end(
    'HTTP/1.1 503 Service Unavailable\r\n' +
      'Content-Type: application/json; charset=utf-8\r\n' +
      'Cache-Control: no-store\r\n' +
      'Retry-After: 1\r\n' +
      'Connection: close\r\n' +
      `Content-Length: ${Buffer.byteLength(REFUSAL_BODY)}\r\n\r\n${REFUSAL_BODY}`,
  );
  socket.destroySoon();
}
