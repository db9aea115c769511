import type { Readable } from 'node:stream';
import { readBodyCapped } from '../egress/egress.js';

export interface ResponseBody {
  /** Parsed JSON when the upstream said JSON and sent valid JSON; the text otherwise; null when empty. */
  body: unknown;
  /** True when the upstream sent more than the cap: `body` is then the text of the first bytes. */
  truncated: boolean;
}

/** `application/json`, `application/problem+json`, `application/vnd.api+json`, … (RFC 6839 §3.1). */
const JSON_TYPE = /^application\/(?:[\w.+-]*\+)?json\s*(?:;|$)/i;

export function isJsonContentType(contentType: string | undefined): boolean {
  return contentType !== undefined && JSON_TYPE.test(contentType);
}

/**
 * Reads an upstream body for an execute result, at most `maxBytes`. A truncated JSON body is
 * returned as text: a cut document cannot be parsed, and pretending otherwise would hide the cut.
 */
export async function readResponseBody(
  stream: Readable | AsyncIterable<Uint8Array>,
  contentType: string | undefined,
  maxBytes: number,
): Promise<ResponseBody> {
  const { bytes, truncated } = await readBodyCapped(stream, maxBytes);
  if (bytes.length === 0) return { body: null, truncated };
  const text = bytes.toString('utf8');
  if (!truncated && isJsonContentType(contentType)) {
    try {
      return { body: JSON.parse(text) as unknown, truncated };
    } catch {
      // The upstream mislabelled its body: hand it over as text rather than failing the call.
    }
  }
  return { body: text, truncated };
}
