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

/**
 * Response fields that speak for the origin that serves them. Through the proxy that origin is
 * Grantry's, where the console lives, so an upstream may not send them there: cookies (RFC 6265
 * §4.1, and RFC 2965's Set-Cookie2, which old clients still read), Clear-Site-Data (would wipe the
 * console's storage), Strict-Transport-Security (RFC 6797) and Alt-Svc (RFC 7838), which would set
 * policy for Grantry's host.
 */
const ORIGIN_STATE_FIELDS = new Set([
  'set-cookie',
  'set-cookie2',
  'clear-site-data',
  'strict-transport-security',
  'alt-svc',
]);

/**
 * Fields Grantry sets on every proxied answer itself: the upstream's versions are dropped, never
 * merged, so a caller can trust them (`x-grantry-error` is how it tells Grantry's diagnosis from
 * the upstream's answer; `cache-control: no-store` is docs/api.md's rule for /proxy).
 */
const GRANTRY_FIELDS = new Set(['cache-control', 'x-request-id', 'x-grantry-error']);

/**
 * A proxied answer is served from Grantry's origin: `sandbox` (CSP Level 3, sandbox directive)
 * gives an HTML answer an opaque origin with no scripts, forms or plugins, so it cannot act as the
 * console.
 */
export const PROXY_CONTENT_SECURITY_POLICY = 'sandbox';

/**
 * The upstream's response fields as the proxy forwards them: those of `forwardableResponseHeaders`
 * (no hop-by-hop fields), minus the fields above, plus our `sandbox` policy. An upstream policy is
 * kept beside ours, not merged into it: every policy delivered is enforced, each only restricts
 * (CSP Level 3, "Enforcing multiple policies"), so `sandbox` holds whatever the upstream sent.
 *
 * undici hands over names in lower case with repeats joined into an array, so `Set-Cookie` and
 * `set-cookie` arrive as one entry; names are lower-cased (and repeats joined) here again so no
 * spelling of a name slips past the sets above whatever the source.
 */
export function proxyResponseHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string | string[]> {
  const forwardable = forwardableResponseHeaders(headers, true);
  const out: Record<string, string | string[]> = {};
  const policies: string[] = [];
  for (const name in forwardable) {
    const value = forwardable[name] as string | string[];
    const lower = name.toLowerCase();
    if (ORIGIN_STATE_FIELDS.has(lower) || GRANTRY_FIELDS.has(lower)) continue;
    if (lower === 'content-security-policy') {
      policies.push(...valuesOf(value));
      continue;
    }
    const earlier = out[lower];
    out[lower] = earlier === undefined ? value : [...valuesOf(earlier), ...valuesOf(value)];
  }
  policies.push(PROXY_CONTENT_SECURITY_POLICY);
  out['content-security-policy'] = policies.length === 1 ? PROXY_CONTENT_SECURITY_POLICY : policies;
  return out;
}

function valuesOf(value: string | string[]): string[] {
  return Array.isArray(value) ? value : [value];
}

/** The first value of a response field (undici gives arrays for repeated fields). */
export function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
