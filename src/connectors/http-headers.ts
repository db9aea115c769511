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
  // Nearly every message says just one of these; they name no field.
  if (value === undefined || value === 'keep-alive' || value === 'close') return null;
  const names = new Set<string>();
  for (const part of (Array.isArray(value) ? value.join(',') : value).split(',')) {
    const name = part.trim().toLowerCase();
    // `keep-alive` and `close` are the usual values; they name no field the caller sent.
    if (name !== '' && name !== 'keep-alive' && name !== 'close') names.add(name);
  }
  return names.size === 0 ? null : names;
}

/** What the proxy reads from its caller's request head, in one pass over Node's raw field list. */
export interface ProxiedRequestHead {
  /** The caller's fields that may be forwarded, `[name, value, …]`, names lower-cased. */
  readonly fields: string[];
  readonly contentLength: string | undefined;
  /** The body is chunked (Transfer-Encoding): its length is unknown until it ends. */
  readonly chunked: boolean;
}

/**
 * The caller's request fields as the proxy may forward them: minus hop-by-hop fields, those named
 * in Connection, Host, our own API key in Authorization, and `expect`, which undici does not
 * support. Content-Length and Transfer-Encoding are read, not kept: framing is set per attempt.
 * `raw` is Node's `rawHeaders` (names as sent, repeats kept), so no header object is built.
 */
export function readProxiedRequestHead(raw: readonly string[]): ProxiedRequestHead {
  const fields: string[] = [];
  let contentLength: string | undefined;
  let chunked = false;
  const connection: string[] = [];
  for (let index = 0; index < raw.length; index += 2) {
    const name = (raw[index] as string).toLowerCase();
    const value = raw[index + 1] as string;
    if (name === 'content-length') contentLength = value;
    else if (name === 'transfer-encoding') chunked = true;
    else if (name === 'connection') connection.push(value);
    else if (!HOP_BY_HOP.has(name) && name !== 'host' && name !== 'authorization' && name !== 'expect') {
      fields.push(name, value);
    }
  }
  const listed =
    connection.length === 0 ? null : connectionListed(connection.length === 1 ? connection[0] : connection);
  if (listed === null) return { fields, contentLength, chunked };
  const kept: string[] = [];
  for (let index = 0; index < fields.length; index += 2) {
    const name = fields[index] as string;
    if (!listed.has(name)) kept.push(name, fields[index + 1] as string);
  }
  return { fields: kept, contentLength, chunked };
}

/**
 * The proxy's outgoing request fields: the caller's forwardable fields, the connector's static
 * fields the caller did not set itself, and Content-Length when the body is streamed as it came
 * (a buffered body gets its length from undici), ready for the credential to be added.
 */
export function proxyRequestFields(
  head: ProxiedRequestHead,
  staticFields: readonly string[],
  keepContentLength: boolean,
): string[] {
  const out = head.fields;
  const callerCount = out.length;
  for (let index = 0; index < staticFields.length; index += 2) {
    const name = staticFields[index] as string;
    if (!hasField(out, callerCount, name)) out.push(name, staticFields[index + 1] as string);
  }
  if (keepContentLength && head.contentLength !== undefined) out.push('content-length', head.contentLength);
  return out;
}

function hasField(fields: readonly string[], end: number, name: string): boolean {
  for (let index = 0; index < end; index += 2) if (fields[index] === name) return true;
  return false;
}

/**
 * The upstream's response fields as an execute result carries them: hop-by-hop fields and those
 * named in Connection removed, and `set-cookie` (an execute result is data for an integration
 * step, not a browser session).
 */
export function forwardableResponseHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const listed = connectionListed(headers.connection);
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (HOP_BY_HOP.has(name) || listed?.has(name)) continue;
    if (name === 'set-cookie') continue;
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
  const out: Record<string, string | string[]> = {};
  const policies: string[] = [];
  const listed = connectionListed(headers.connection);
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || ORIGIN_STATE_FIELDS.has(lower) || GRANTRY_FIELDS.has(lower)) continue;
    if (listed?.has(lower)) continue;
    if (lower === 'content-security-policy') {
      policies.push(...valuesOf(value));
      continue;
    }
    const earlier = out[lower];
    out[lower] = earlier === undefined ? value : [...valuesOf(earlier), ...valuesOf(value)];
  }
  out['content-security-policy'] =
    policies.length === 0 ? PROXY_CONTENT_SECURITY_POLICY : [...policies, PROXY_CONTENT_SECURITY_POLICY];
  return out;
}

function valuesOf(value: string | string[]): string[] {
  return Array.isArray(value) ? value : [value];
}

/** The first value of a response field (undici gives arrays for repeated fields). */
export function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
