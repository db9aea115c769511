import type { FastifyInstance } from 'fastify';
import { type FieldError, Problem } from '../problem.js';
import { escapePointer } from '../services/field-checks.js';

/**
 * How deep a JSON request body may nest. Configuration and execute bodies of real APIs stay far
 * below it; past it, parsing, validating and re-serialising recurse deep enough to overflow the
 * stack (an execute body of 5,000 nested arrays answered 500).
 */
export const MAX_JSON_DEPTH = 64;

/** The deepest nesting of arrays and objects in a JSON text, found without parsing (strings skipped). */
export function jsonNestingDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const char = text.charCodeAt(i);
    if (inString) {
      if (char === 0x5c /* \ */) i++;
      else if (char === 0x22 /* " */) inString = false;
    } else if (char === 0x22) {
      inString = true;
    } else if (char === 0x5b /* [ */ || char === 0x7b /* { */) {
      depth++;
      if (depth > deepest) deepest = depth;
    } else if (char === 0x5d /* ] */ || char === 0x7d /* } */) {
      depth--;
    }
  }
  return deepest;
}

/**
 * A JSON text may escape half of a UTF-16 surrogate pair (`"\ud800"`); JSON.parse then yields an
 * ill-formed string, which cannot be encoded as UTF-8: stored, it came back as U+FFFD garbage, and
 * sent on (a header, a form body) it breaks the encoders. Only an escape can make one (the body was
 * decoded from UTF-8, which has no lone surrogates), so texts without `\uD800`–`\uDFFF` skip the walk.
 */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

/** Every string (key or value) of a parsed body that is not well-formed UTF-16, as a JSON pointer. */
export function illFormedStrings(value: unknown, path = '', found: FieldError[] = []): FieldError[] {
  if (found.length >= MAX_REPORTED) return found;
  if (typeof value === 'string') {
    if (!isWellFormed(value)) found.push({ path, message: ILL_FORMED });
  } else if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) illFormedStrings(item, `${path}/${index}`, found);
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      const at = `${path}/${escapePointer(key)}`;
      if (!isWellFormed(key))
        found.push({
          path: at,
          message: 'has a name that is not valid Unicode (a lone surrogate escape such as \\ud800)',
        });
      illFormedStrings(item, at, found);
    }
  }
  return found;
}

const ILL_FORMED = 'must be valid Unicode text: a lone surrogate escape (such as \\ud800) is not a character';
/** A body of a million bad strings gets a list a person can read, not a million lines. */
const MAX_REPORTED = 50;

function isWellFormed(text: string): boolean {
  // String.prototype.isWellFormed: Node 20 (V8 11.3); TypeScript's ES2023 lib does not declare it.
  return (text as string & { isWellFormed(): boolean }).isWellFormed();
}

/**
 * The JSON parser of the management and execute routes: Fastify's own (prototype-poisoning
 * refused), with the nesting checked first, and an empty body read as "no body" so that `POST`
 * routes that take none accept `Content-Type: application/json` with nothing after it (docs/api.md).
 * Strings that are not valid Unicode are refused, each named by its pointer.
 */
export function installBoundedJsonParser(server: FastifyInstance): void {
  const parseJson = server.getDefaultJsonParser('error', 'error');
  server.removeContentTypeParser('application/json');
  server.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string;
    if (isBlank(text)) {
      done(null, undefined);
      return;
    }
    if (jsonNestingDepth(text) > MAX_JSON_DEPTH) {
      done(
        new Problem('validation_failed', 'The request body is nested too deeply.', {
          errors: [
            { path: '', message: `must not nest arrays and objects deeper than ${MAX_JSON_DEPTH} levels` },
          ],
        }),
        undefined,
      );
      return;
    }
    if (!SURROGATE_ESCAPE.test(text)) {
      parseJson(request, text, done);
      return;
    }
    parseJson(request, text, (error, parsed) => {
      if (error !== null) {
        done(error, undefined);
        return;
      }
      const errors = illFormedStrings(parsed);
      if (errors.length > 0) {
        done(
          new Problem('validation_failed', 'The request body is not valid Unicode text.', { errors }),
          undefined,
        );
        return;
      }
      done(null, parsed);
    });
  });
}

/** Only JSON whitespace (RFC 8259 §2), without making a trimmed copy of every body. */
function isBlank(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const char = text.charCodeAt(i);
    if (char !== 0x20 && char !== 0x09 && char !== 0x0a && char !== 0x0d) return false;
  }
  return true;
}

/**
 * Every other media type: an empty body is no body, whatever its `Content-Type` (docs/api.md: "A
 * `POST` route that takes no body accepts an empty body whatever its `Content-Type`" — HTML forms
 * and some HTTP clients label an empty POST `application/x-www-form-urlencoded` or
 * `application/octet-stream`). A body with content in a type Grantry does not read is refused as
 * before. Encapsulated plugins that read bodies themselves (the proxy) replace this parser.
 */
export function installEmptyBodyParser(server: FastifyInstance): void {
  // Fastify's own text/plain parser hands `''` to routes whose schema wants an object or nothing.
  server.removeContentTypeParser('text/plain');
  server.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => {
    if ((body as Buffer).length === 0) {
      done(null, undefined);
      return;
    }
    done(
      new Problem('validation_failed', 'The request body must be JSON.', {
        errors: [{ path: '', message: 'send Content-Type: application/json' }],
      }),
      undefined,
    );
  });
}
