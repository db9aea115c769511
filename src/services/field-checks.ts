import { type FieldError, Problem } from '../problem.js';

/**
 * The checks of single values that every service and route shares: URLs where credentials go,
 * text that ends up in a header or a form body, header names. Each answers a sentence that reads
 * after the field's name ("Token URL must be an https URL").
 */

// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Values that end up in HTTP headers or form bodies must not carry CR/LF or other controls. */
export function hasControlCharacters(value: string): boolean {
  return CONTROL.test(value);
}

/**
 * A name a person can see and tell apart: at least one character that is not white space, a
 * control, or an invisible format character (zero-width space, BOM). `"   "` is no name.
 */
export function hasVisibleCharacter(value: string): boolean {
  return /[^\s\p{Cc}\p{Cf}\p{Z}]/u.test(value);
}

/** The message of a name without a visible character. */
export const BLANK_NAME = 'must contain a visible character, not only spaces';

/** RFC 9110 §5.1 field-name token. */
export const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** RFC 6901: a key as one segment of a JSON pointer. */
export function escapePointer(segment: string): string {
  return segment.replaceAll('~', '~0').replaceAll('/', '~1');
}

export type UrlRule = 'ok' | 'invalid' | 'insecure';
export type AllowHttp = 'off' | 'loopback';

const LOOPBACK_HOSTS = new Set(['localhost', '[::1]', '::1']);

export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname) || /^127(?:\.\d{1,3}){3}$/.test(hostname);
}

/** An OAuth endpoint or authenticated base URL: absolute https, or loopback http when allowed. */
export function checkUrl(value: string, allowHttp: AllowHttp): { rule: UrlRule; message?: string } {
  // The URL parser drops tabs and line breaks and encodes NUL, so the text stored would not be the
  // address used (and PostgreSQL refuses NUL in text).
  if (hasControlCharacters(value)) {
    return { rule: 'invalid', message: 'must not contain control characters (tabs, line breaks, NUL)' };
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { rule: 'invalid', message: 'must be an absolute URL' };
  }
  if (url.username !== '' || url.password !== '') {
    return { rule: 'invalid', message: 'must not contain a user name or password' };
  }
  if (url.hash !== '') return { rule: 'invalid', message: 'must not contain a #fragment' };
  if (url.protocol === 'https:') return { rule: 'ok' };
  if (url.protocol === 'http:') {
    if (allowHttp === 'loopback' && isLoopbackHost(url.hostname)) return { rule: 'ok' };
    return {
      rule: 'insecure',
      message:
        allowHttp === 'loopback'
          ? 'must be an https URL (http is allowed only for loopback hosts)'
          : 'must be an https URL',
    };
  }
  return { rule: 'invalid', message: 'must be an http(s) URL' };
}

/** What the rules of a resource found, with whether every problem was an http URL (answer `insecure_url`). */
export interface RuleResult {
  errors: FieldError[];
  onlyInsecureUrls: boolean;
}

/**
 * Throws one `validation_failed` listing every problem the schema and the rules found (a rule error
 * on a path the schema already flagged is dropped), or `insecure_url` when the only problems are
 * http URLs where https is required.
 */
export function throwIfInvalid(
  schemaErrors: FieldError[],
  ruleErrors: FieldError[],
  insecureOnly = false,
): void {
  const flagged = new Set(schemaErrors.map((e) => e.path));
  const errors = [...schemaErrors, ...ruleErrors.filter((e) => !flagged.has(e.path))];
  if (errors.length === 0) return;
  if (insecureOnly && schemaErrors.length === 0) {
    throw new Problem('insecure_url', 'OAuth endpoints and API base URLs must use https.', {
      errors,
      hint: 'Use the https URL. For a local test server on this machine, set GRANTRY_ALLOW_HTTP=loopback.',
    });
  }
  throw new Problem('validation_failed', 'The request is not valid.', { errors });
}

/** An object whose every value is a string (headers, query parameters as a request gives them). */
export function isStringMap(value: unknown): value is Record<string, string> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((item) => typeof item === 'string')
  );
}
