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
 * Collects an upstream body for an execute result, at most `maxBytes`. The chunks are kept as they
 * arrive and joined once, when the body is decoded; with `reserve`, each chunk is accounted for
 * before it is kept (the execute buffer budget).
 */
export class BodyCollector {
  readonly #maxBytes: number;
  readonly #reserve: ReserveBytes | undefined;
  readonly #chunks: Buffer[] = [];
  #held = 0;
  #truncated = false;

  constructor(maxBytes: number, reserve?: ReserveBytes) {
    this.#maxBytes = maxBytes;
    this.#reserve = reserve;
  }

  /**
   * Keeps a chunk (its first bytes, when it passes the cap). False once the cap is reached: the
   * rest is not wanted. Throws what `reserve` throws, keeping nothing of the chunk.
   */
  add(chunk: Buffer): boolean {
    const room = this.#maxBytes - this.#held;
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.#reserve?.(this.#held + kept.length);
    if (kept.length > 0) this.#chunks.push(kept);
    this.#held += kept.length;
    if (kept === chunk) return true;
    this.#truncated = true;
    return false;
  }

  /**
   * The body as the execute result carries it. A truncated JSON body is returned as text: a cut
   * document cannot be parsed, and pretending otherwise would hide the cut.
   */
  result(contentType: string | undefined): ResponseBody {
    const truncated = this.#truncated;
    if (this.#held === 0) return { body: null, truncated };
    const chunks = this.#chunks;
    const bytes = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, this.#held);
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
}
