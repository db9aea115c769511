/**
 * The floor of what a Node proxy can cost: an http server that adds one constant header and pipes
 * the request to the upstream through an undici Pool, and the response back. No routing, no
 * authentication of the caller, no token lookup, no error translation.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { serveParent } from '../child-process.js';

const upstream = process.env.FORWARD_TO ?? '';
const authorization = process.env.FORWARD_AUTHORIZATION ?? '';
const pool = new Pool(upstream, { connections: 128 });
// RFC 9110 §7.6.1: connection-specific fields are not forwarded.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'host',
]);

function forwardable(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  }
  return out;
}

const server = createServer((req, res) => {
  const headers = forwardable(req.headers);
  headers.authorization = authorization;
  const hasBody =
    req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  pool
    .request({
      path: req.url ?? '/',
      method: (req.method ?? 'GET') as 'GET',
      headers,
      body: hasBody ? req : null,
    })
    .then((answer) => {
      res.writeHead(answer.statusCode, forwardable(answer.headers as IncomingHttpHeaders));
      // Plain pipe: stream/promises' pipeline costs an AbortSignal and a DOMException per request.
      answer.body.on('error', () => res.destroy());
      answer.body.pipe(res);
    })
    .catch(() => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
});
server.keepAliveTimeout = 60_000;
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address() as AddressInfo;
serveParent({ url: `http://127.0.0.1:${port}` }, {}, async () => {
  server.close();
  server.closeAllConnections();
  await pool.close();
});
