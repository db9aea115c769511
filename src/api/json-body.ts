import type { FastifyInstance } from 'fastify';
import { Problem } from '../problem.js';

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
 * The JSON parser of the management and execute routes: Fastify's own (prototype-poisoning
 * refused), with the nesting checked first, and an empty body read as "no body" so that `POST`
 * routes that take none accept `Content-Type: application/json` with nothing after it (docs/api.md).
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
    parseJson(request, text, done);
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
