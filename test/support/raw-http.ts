import { connect } from 'node:net';

/** A response read off the wire: nothing between the socket and the test normalises it. */
export interface RawResponse {
  status: number;
  /** Header lines exactly as sent (name case kept, repeats kept). */
  headerLines: string[];
  /** Lower-cased name → every value sent under it. */
  headers: Map<string, string[]>;
  body: string;
  /** The whole response as received. */
  raw: string;
}

/**
 * Sends bytes exactly as given on a fresh TCP connection and reads one response. The request must
 * carry `Connection: close` (or the server must close) for the read to end; a timeout ends it too.
 */
export function rawRequest(port: number, request: string, timeoutMs = 5_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks).toString('latin1');
      try {
        resolve(parseRawResponse(raw));
      } catch (error) {
        reject(error);
      }
    });
    socket.write(request, 'latin1');
  });
}

export function parseRawResponse(raw: string): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  const head = end === -1 ? raw : raw.slice(0, end);
  const [statusLine = '', ...headerLines] = head.split('\r\n');
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  if (match === null) throw new Error(`not an HTTP response: ${JSON.stringify(raw.slice(0, 200))}`);
  const headers = new Map<string, string[]>();
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const values = headers.get(name) ?? [];
    values.push(line.slice(colon + 1).trim());
    headers.set(name, values);
  }
  let body = end === -1 ? '' : raw.slice(end + 4);
  if (headers.get('transfer-encoding')?.some((v) => /chunked/i.test(v))) body = dechunk(body);
  return { status: Number(match[1]), headerLines, headers, body, raw };
}

function dechunk(body: string): string {
  let out = '';
  let rest = body;
  for (;;) {
    const lineEnd = rest.indexOf('\r\n');
    if (lineEnd === -1) return out;
    const size = Number.parseInt(rest.slice(0, lineEnd), 16);
    if (!Number.isFinite(size) || size === 0) return out;
    out += rest.slice(lineEnd + 2, lineEnd + 2 + size);
    rest = rest.slice(lineEnd + 2 + size + 2);
  }
}
