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

/** Told the bytes held so far (at most `maxBytes`) before each chunk is kept; throws to stop reading. */
export type ReserveBytes = (heldBytes: number) => void;

/**
 * Reads an upstream body for an execute result, at most `maxBytes`. A truncated JSON body is
 * returned as text: a cut document cannot be parsed, and pretending otherwise would hide the cut.
 * With `reserve`, each chunk is accounted for before it is kept (the execute buffer budget).
 */
export async function readResponseBody(
  stream: Readable | AsyncIterable<Uint8Array>,
  contentType: string | undefined,
  maxBytes: number,
  reserve?: ReserveBytes,
): Promise<ResponseBody> {
  const source = reserve === undefined ? stream : reserved(stream, maxBytes, reserve);
  const { bytes, truncated } = await readBodyCapped(source, maxBytes);
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

async function* reserved(
  stream: Readable | AsyncIterable<Uint8Array>,
  maxBytes: number,
  reserve: ReserveBytes,
): AsyncGenerator<Uint8Array> {
  let received = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Uint8Array>) {
      received += chunk.byteLength;
      reserve(Math.min(received, maxBytes));
      yield chunk;
    }
  } finally {
    // Stopped early (cut at maxBytes, or refused): the connection must not wait for the rest.
    if ('destroy' in stream && !stream.destroyed) stream.destroy();
  }
}
