import type { IncomingHttpHeaders } from 'node:http';

/**
 * Hop-by-hop fields (RFC 9110 §7.6.1): they describe one connection, not the message, so a
 * proxy never forwards them. `proxy-connection` and `keep-alive` are the legacy spellings.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * Request fields the caller may not set on an execute call: the transport owns them, and undici
 * refuses `expect` outright.
 */
const TRANSPORT_REQUEST_HEADERS = new Set([...HOP_BY_HOP, 'host', 'content-length', 'expect']);

export function isTransportRequestHeader(lowerName: string): boolean {
  return TRANSPORT_REQUEST_HEADERS.has(lowerName);
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const CONTROL_EXCEPT_TAB = /[\u0000-\u0008\u000a-\u001f\u007f]/;
/** Above obs-text: no octet stands for it, so Node and undici refuse to send it. */
const BEYOND_LATIN1 = /[^\t -\u00ff]/;

/**
 * Why a header value can never be sent, or null when it can. RFC 9110 §5.5: a field value is
 * visible ASCII, SP, HTAB and obs-text (0x80–0xFF, sent as those octets). A line break would split
 * the header; a character above U+00FF (an emoji, `Ā`) has no octet at all, so Node refuses the
 * request and every call would fail as a network error. The value itself is never quoted: caller
 * headers may carry credentials.
 */
export function headerValueProblem(value: string): string | null {
  if (CONTROL_EXCEPT_TAB.test(value)) return 'must not contain control characters (such as line breaks)';
  if (BEYOND_LATIN1.test(value)) {
    return 'must contain only visible ASCII, spaces, tabs and Latin-1 characters (RFC 9110 §5.5): emoji and other characters above U+00FF cannot be sent in a header';
  }
  return null;
}

/** Field names listed in `Connection` (RFC 9110 §7.6.1): hop-by-hop for this message only. */
function connectionListed(value: string | string[] | undefined): Set<string> | null {
  if (value === undefined) return null;
  const names = new Set<string>();
  for (const part of (Array.isArray(value) ? value.join(',') : value).split(',')) {
    const name = part.trim().toLowerCase();
    if (name !== '') names.add(name);
  }
  return names;
}

/**
 * The proxy's outgoing request fields: the connector's static headers, then the caller's (minus
 * hop-by-hop fields, those named in Connection, Host, our own API key in Authorization, and
 * `expect`, which undici does not support), ready for the token to be added.
 */
export function proxyRequestHeaders(
  staticHeaders: Readonly<Record<string, string>>,
  incoming: IncomingHttpHeaders,
  keepContentLength: boolean,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = { ...staticHeaders };
  const listed = connectionListed(incoming.connection);
  for (const name in incoming) {
    const value = incoming[name];
    if (value === undefined) continue;
    if (HOP_BY_HOP.has(name) || name === 'host' || name === 'authorization' || name === 'expect') continue;
    if (name === 'content-length' && !keepContentLength) continue;
    if (listed?.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/**
 * The upstream's response fields as the caller gets them: hop-by-hop fields and those named in
 * Connection removed; `set-cookie` too when `dropCookies` (an execute result is data for an
 * integration step, not a browser session).
 */
export function forwardableResponseHeaders(
  headers: Record<string, string | string[] | undefined>,
  dropCookies: boolean,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const listed = connectionListed(headers.connection);
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (HOP_BY_HOP.has(name) || listed?.has(name)) continue;
    if (dropCookies && name === 'set-cookie') continue;
    out[name] = value;
  }
  return out;
}

/** The first value of a response field (undici gives arrays for repeated fields). */
export function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
