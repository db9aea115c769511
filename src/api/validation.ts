import type { FieldError } from '../problem.js';

/**
 * Request validation shared by the routes: the schema (TypeBox/Ajv) finds type errors, these
 * rules find the semantic ones, and both lists go out together so a person sees every problem at
 * once.
 */

/** An Ajv error, as much of it as we read. */
export interface SchemaError {
  instancePath: string;
  keyword: string;
  message?: string | undefined;
  params: Record<string, unknown>;
}

export function schemaErrorsToFieldErrors(errors: readonly SchemaError[]): FieldError[] {
  const out: FieldError[] = [];
  const seen = new Set<string>();
  for (const error of errors) {
    let path = error.instancePath;
    let message = error.message ?? 'is invalid';
    if (error.keyword === 'required' && typeof error.params.missingProperty === 'string') {
      path = `${path}/${escapePointer(error.params.missingProperty)}`;
      message = 'is required';
    } else if (
      error.keyword === 'additionalProperties' &&
      typeof error.params.additionalProperty === 'string'
    ) {
      path = `${path}/${escapePointer(error.params.additionalProperty)}`;
      message = 'is not a known field';
    } else if (error.keyword === 'anyOf' || error.keyword === 'const') {
      // Unions of literals report each branch; one line saying what is allowed is enough.
      message = 'is not one of the allowed values';
    } else if (error.keyword === 'type') {
      message = `must be ${String(error.params.type)}`;
    }
    const key = `${path}\u0000${message}`;
    if (seen.has(key)) continue;
    // A failed literal branch under anyOf repeats the anyOf error for the same path.
    if (
      error.keyword === 'const' &&
      errors.some((e) => e.keyword === 'anyOf' && e.instancePath === error.instancePath)
    )
      continue;
    seen.add(key);
    out.push({ path, message });
  }
  return out;
}

export function escapePointer(segment: string): string {
  return segment.replaceAll('~', '~0').replaceAll('/', '~1');
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Values that end up in HTTP headers or form bodies must not carry CR/LF or other controls. */
export function hasControlCharacters(value: string): boolean {
  return CONTROL.test(value);
}

/** RFC 9110 §5.1 field-name token. */
export const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export type UrlRule = 'ok' | 'invalid' | 'insecure';

const LOOPBACK_HOSTS = new Set(['localhost', '[::1]', '::1']);

export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname) || /^127(?:\.\d{1,3}){3}$/.test(hostname);
}

/** An OAuth endpoint or authenticated base URL: absolute https, or loopback http when allowed. */
export function checkUrl(value: string, allowHttp: 'off' | 'loopback'): { rule: UrlRule; message?: string } {
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
