/**
 * Where a connector call goes: the connector's base URL, the caller's path below it, the connector's
 * static query and the caller's query. The caller controls only the path and query, and the result
 * never leaves the base URL: no other origin, no climbing above the base path.
 *
 * The origin is never re-parsed from caller input: the URL is built as `origin + basePath + path`
 * from the base URL parsed once per connector, so `//host`, `https://host` or `@host` in a path can
 * at worst name a path segment. Even so those shapes are refused, since they are always a mistake
 * or an attack, and the encoded forms that some servers decode a second time (RFC 3986 §2.4 warns
 * against it, proxies and frameworks do it anyway) are refused outright.
 */

export interface BaseTarget {
  /** `https://host[:port]`, from the parsed base URL. */
  readonly origin: string;
  /** The base URL's path without its trailing slash ('' for the root). */
  readonly basePath: string;
  /** The base URL's path exactly as configured: what an empty call path goes to. */
  readonly exactPath: string;
  /** The connector's static query, already encoded, without `?` ('' when none). */
  readonly staticQuery: string;
}

/** Compiles a base URL once (per connector, not per request). */
export function compileBaseTarget(baseUrl: URL, query: Record<string, string>): BaseTarget {
  const exactPath = baseUrl.pathname === '' ? '/' : baseUrl.pathname;
  return {
    origin: baseUrl.origin,
    basePath: exactPath.replace(/\/+$/, ''),
    exactPath,
    staticQuery: new URLSearchParams(query).toString(),
  };
}

export type ResolvedPath = { ok: true; pathAndQuery: string } | { ok: false; message: string };

// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const CONTROL_OR_BACKSLASH = /[\u0000-\u001f\u007f\\]/;
const SCHEME_START = /^\/*[A-Za-z][A-Za-z0-9+.-]*:\/\//;
const BAD_PERCENT = /%(?![0-9A-Fa-f]{2})/;
/** With the `u` flag a surrogate pair is one code point: only an unpaired surrogate matches. */
const LONE_SURROGATE = /\p{Cs}/u;
const NETWORK_PATH = 'must be a path below the base URL, not //host';
/**
 * Encoded `.`, `/`, `\`, NUL, a double-encoded one of those, and the overlong UTF-8 forms of `.` and
 * `/` (%c0%ae, %c0%af) that old decoders accepted.
 */
const ENCODED_DANGER = /%(2e|2f|5c|00)|%25(2e|2f|5c|00)|%c[01]/i;
/** RFC 3986 §3.3 pchar plus `%` (pre-encoded octets pass through as they are). */
const PATH_UNSAFE = /[^A-Za-z0-9\-._~!$&'()*+,;=:@%]/gu;
/** RFC 3986 §3.4 query characters plus `%`. */
const QUERY_UNSAFE = /[^A-Za-z0-9\-._~!$&'()*+,;=:@%/?]/gu;

/**
 * Resolves a caller's `path[?query]` below the base path. Dot segments are resolved (RFC 3986
 * §5.2.4); one that would climb above the base path is refused, as is every encoded variant.
 * Characters that may not appear raw in a path are percent-encoded; existing `%XX` stay.
 *
 * Most paths are plain — `/items/42?page=2` — and need none of that: they are recognised in one
 * pass and used as they are (`plainResolution`); every other path takes the full rules.
 */
export function resolveCallPath(base: BaseTarget, raw: string, extraQuery = ''): ResolvedPath {
  return plainResolution(base, raw, extraQuery) ?? resolveCallPathInFull(base, raw, extraQuery);
}

/**
 * The resolution of a path that only the full rules can change in nothing: it starts with one
 * `/`, its path holds only unreserved characters and sub-delims, `@` and `/` (no `%`, no `:`, no
 * segment starting with `.`, nothing outside ASCII), and its query only characters a query may
 * carry raw (no `%`, no `#`). Null for every other path. A test holds it equal to the full rules.
 */
function plainResolution(base: BaseTarget, raw: string, extraQuery: string): ResolvedPath | null {
  const length = raw.length;
  if (length < 2 || raw.charCodeAt(0) !== 0x2f || raw.charCodeAt(1) === 0x2f) return null;
  // A base path of `//…` would make the result read as `//host`: the full rules refuse it.
  if (base.basePath.charCodeAt(1) === 0x2f) return null;
  let index = 1;
  let segmentStart = true;
  for (; index < length; index++) {
    const code = raw.charCodeAt(index);
    if (code === 0x3f /* ? */) break;
    if (code === 0x2f /* / */) {
      segmentStart = true;
      continue;
    }
    if (segmentStart && code === 0x2e /* . */) return null;
    segmentStart = false;
    if (!(code < 128 && PLAIN_PATH[code] === 1)) return null;
  }
  const queryAt = index;
  for (index++; index < length; index++) {
    const code = raw.charCodeAt(index);
    if (!(code < 128 && PLAIN_QUERY[code] === 1)) return null;
  }
  const path = queryAt === length ? raw : raw.slice(0, queryAt);
  const query = queryAt >= length - 1 ? '' : raw.slice(queryAt + 1);
  let fullQuery = base.staticQuery;
  if (query !== '') fullQuery = fullQuery === '' ? query : `${fullQuery}&${query}`;
  if (extraQuery !== '') fullQuery = fullQuery === '' ? extraQuery : `${fullQuery}&${extraQuery}`;
  const resolved = base.basePath + path;
  return { ok: true, pathAndQuery: fullQuery === '' ? resolved : `${resolved}?${fullQuery}` };
}

/** ASCII lookup tables: 1 for the characters a plain path (or query) may hold as they are. */
const PLAIN_PATH = asciiTable("A-Za-z0-9-._~!$&'()*+,;=@");
const PLAIN_QUERY = asciiTable("A-Za-z0-9-._~!$&'()*+,;=:@/?");

function asciiTable(ranges: string): Uint8Array {
  const table = new Uint8Array(128);
  for (let index = 0; index < ranges.length; index++) {
    if (ranges[index + 1] === '-' && index + 2 < ranges.length) {
      for (let code = ranges.charCodeAt(index); code <= ranges.charCodeAt(index + 2); code++) table[code] = 1;
      index += 2;
    } else {
      table[ranges.charCodeAt(index)] = 1;
    }
  }
  return table;
}

/** `resolveCallPath` by the full rules, for every path (exported for the test of `plainResolution`). */
export function resolveCallPathInFull(base: BaseTarget, raw: string, extraQuery = ''): ResolvedPath {
  if (CONTROL_OR_BACKSLASH.test(raw)) {
    return { ok: false, message: 'must not contain control characters or backslashes' };
  }
  // A lone UTF-16 surrogate (JSON allows `"\ud800"`) has no UTF-8 form to percent-encode.
  if (LONE_SURROGATE.test(raw)) {
    return { ok: false, message: 'must be valid Unicode (it holds a lone surrogate)' };
  }
  if (raw.includes('#')) return { ok: false, message: 'must not contain a fragment (#)' };
  const queryAt = raw.indexOf('?');
  const path = queryAt === -1 ? raw : raw.slice(0, queryAt);
  const query = queryAt === -1 ? '' : raw.slice(queryAt + 1);
  if (path.startsWith('//')) {
    return { ok: false, message: NETWORK_PATH };
  }
  if (SCHEME_START.test(path)) {
    return { ok: false, message: 'must be a path below the base URL, not an absolute URL' };
  }
  if (BAD_PERCENT.test(raw)) return { ok: false, message: 'contains a malformed percent-encoding' };
  if (ENCODED_DANGER.test(path)) {
    return {
      ok: false,
      message: 'must not contain encoded dots, slashes, backslashes or NUL (%2e, %2f, %5c, %00)',
    };
  }

  let resolved: string;
  if (path === '' || path === '/') {
    resolved = path === '' ? base.exactPath : `${base.basePath}/`;
  } else {
    const segments = path.split('/');
    if (segments[0] === '') segments.shift();
    const kept: string[] = [];
    const last = segments.length - 1;
    for (let index = 0; index <= last; index++) {
      const segment = segments[index] as string;
      if (segment === '.' || segment === '..') {
        if (segment === '..') {
          if (kept.length === 0) return { ok: false, message: 'must not climb above the base URL (..)' };
          kept.pop();
        }
        // A trailing dot segment leaves a directory path (RFC 3986 §5.2.4).
        if (index === last) kept.push('');
        continue;
      }
      // `..;x` is `..` to servlet containers (path parameters), `．．` to servers that apply NFKC.
      if (isDisguisedDotSegment(segment)) {
        return { ok: false, message: 'must not contain disguised dot segments (..;, fullwidth dots)' };
      }
      kept.push(segment.replace(PATH_UNSAFE, encodeURIComponent));
    }
    resolved = `${base.basePath}/${kept.join('/')}`;
  }
  // `/x/..//evil.example/y` below a root base path resolves to `//evil.example/y`: sent as it is
  // the request stays on the base origin, but a relative Location in the answer resolves against
  // it to another host (RFC 3986 §5.2.2, a network-path reference), credentials and all.
  if (resolved.startsWith('//')) {
    return { ok: false, message: NETWORK_PATH };
  }

  let fullQuery = base.staticQuery;
  if (query !== '') {
    const encoded = query.replace(QUERY_UNSAFE, encodeURIComponent);
    fullQuery = fullQuery === '' ? encoded : `${fullQuery}&${encoded}`;
  }
  if (extraQuery !== '') fullQuery = fullQuery === '' ? extraQuery : `${fullQuery}&${extraQuery}`;
  return { ok: true, pathAndQuery: fullQuery === '' ? resolved : `${resolved}?${fullQuery}` };
}

/**
 * Whether a URL (a redirect's target) is one a call path could have reached: the base URL's origin,
 * and a path below the base path that `resolveCallPath` accepts as it is. Credentials configured for
 * a connector are sent there only (RFC 9110 §15.4: a redirect does not widen what they are for).
 *
 * The URL parser has already removed dot segments, `%2e` forms included (RFC 3986 §5.2.4 as WHATWG
 * URL applies it), so the prefix test sees the path the server is asked for; what is left goes
 * through the very rules a caller's path does, so `..%2f`, `%252e`, `..;` and the like that a server
 * might still turn into a climb count as outside.
 */
export function isBelowBase(base: BaseTarget, url: URL): boolean {
  if (url.origin !== base.origin) return false;
  const path = url.pathname;
  const below = path === base.basePath || path.startsWith(`${base.basePath}/`);
  return below && resolveCallPath(base, path.slice(base.basePath.length)).ok;
}

function isDisguisedDotSegment(segment: string): boolean {
  // Percent-encoded forms (%EF%BC%8E is a fullwidth dot, %3B a `;`) are one decoding away from the raw ones.
  const forms = segment.includes('%') ? [segment, decodedOrSame(segment)] : [segment];
  for (const form of forms) {
    const beforeParams = form.includes(';') ? form.slice(0, form.indexOf(';')) : form;
    if (beforeParams === '.' || beforeParams === '..') return true;
    if (!/[^ -~]/.test(form)) continue; // printable ASCII only: nothing to normalise
    const normalized = form.normalize('NFKC');
    if (normalized === '.' || normalized === '..' || normalized.includes('/')) return true;
  }
  return false;
}

function decodedOrSame(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment; // not UTF-8 once decoded: no Unicode form to normalise either
  }
}

/**
 * The query parameter name of a `name[=value]` pair as a server reads it (form-decoded: `+` is a
 * space, RFC 3986 §2.1 escapes decoded); the pair as it is when it does not decode.
 */
function parameterName(pair: string): string {
  const at = pair.indexOf('=');
  const name = at === -1 ? pair : pair.slice(0, at);
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '));
  } catch {
    return name;
  }
}

/** Whether the query of `pathAndQuery` has a parameter of one of these names (in any spelling). */
export function hasQueryParameter(pathAndQuery: string, names: ReadonlySet<string>): boolean {
  const at = pathAndQuery.indexOf('?');
  if (at === -1) return false;
  for (const pair of pathAndQuery.slice(at + 1).split('&')) if (names.has(parameterName(pair))) return true;
  return false;
}

/** `pathAndQuery` without the query parameters of these names (in any spelling). */
export function withoutQueryParameters(pathAndQuery: string, names: ReadonlySet<string>): string {
  const at = pathAndQuery.indexOf('?');
  if (at === -1) return pathAndQuery;
  const kept = pathAndQuery
    .slice(at + 1)
    .split('&')
    .filter((pair) => !names.has(parameterName(pair)));
  return kept.length === 0 ? pathAndQuery.slice(0, at) : `${pathAndQuery.slice(0, at)}?${kept.join('&')}`;
}

/** What a redacted credential reads as where Grantry shows a URL that carried it. */
export const REDACTED = 'REDACTED';

/** A query parameter inside a field value: `?` or `&`, its name, `=`, its value — up to a delimiter. */
const QUERY_PAIR = /([?&])([^=&#\s<>;,"]*)=([^&#\s<>;,"]*)/g;

/**
 * Text that holds URLs (a Location, or a Link field's several `<url>; rel=…`) with the values of
 * the query parameters of these names replaced by REDACTED; the text as it is when it has none. For
 * an API key sent in the query that an upstream echoes: the caller of execute or the proxy never
 * holds the key.
 */
export function redactQueryParameters(text: string, names: ReadonlySet<string>): string {
  if (!text.includes('=')) return text;
  return text.replace(QUERY_PAIR, (pair, separator: string, name: string) =>
    names.has(parameterName(name)) ? `${separator}${name}=${REDACTED}` : pair,
  );
}

/** The response fields that carry URLs an upstream may build from the request it was sent. */
const URL_FIELDS = ['location', 'content-location', 'link', 'refresh'] as const;

/**
 * Response fields with the credential's query parameters redacted wherever a field carries a URL
 * (RFC 9110 Location and Content-Location, RFC 8288 Link, the Refresh field browsers follow).
 * The fields as they are when nothing was sent in the query.
 */
export function withoutEchoedCredential<T extends Record<string, string | string[] | undefined>>(
  fields: T,
  names: ReadonlySet<string> | undefined,
): T {
  if (names === undefined || names.size === 0) return fields;
  let redacted: T | null = null;
  for (const field of URL_FIELDS) {
    const value = fields[field];
    if (value === undefined) continue;
    redacted ??= { ...fields };
    (redacted as Record<string, string | string[]>)[field] = Array.isArray(value)
      ? value.map((one) => redactQueryParameters(one, names))
      : redactQueryParameters(value, names);
  }
  return redacted ?? fields;
}
