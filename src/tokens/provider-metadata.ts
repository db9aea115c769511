import type { TokenRequestOptions } from '../oauth/client-config.js';
import { type DiscoveredMetadata, discoverFromTokenUrl } from '../oauth/discovery.js';

/** How long a found document is trusted; providers change endpoints rarely. */
const FOUND_TTL_MS = 60 * 60 * 1000;
/** How long "no metadata" is remembered: long enough not to probe on every flow, short enough to heal. */
const MISSING_TTL_MS = 5 * 60 * 1000;

interface Entry {
  metadata: DiscoveredMetadata | null;
  until: number;
}

export interface ProviderMetadataOptions {
  fetch: TokenRequestOptions['fetch'];
  timeoutMs: number;
  clock?: () => number;
}

/**
 * The authorization server metadata (RFC 8414) behind a configured token URL, cached per token URL.
 * It answers two questions the configuration does not: which issuer must sign the redirect with
 * `iss` (RFC 9207), and where tokens are revoked (RFC 7009) when no revocationUrl was configured.
 * Only a document whose `token_endpoint` is this very token URL is trusted (see
 * `discoverFromTokenUrl`): the issuer that redeems the code is the one the response must name.
 */
export class ProviderMetadata {
  readonly #options: ProviderMetadataOptions;
  readonly #clock: () => number;
  readonly #entries = new Map<string, Entry>();
  readonly #inflight = new Map<string, Promise<DiscoveredMetadata | null>>();

  constructor(options: ProviderMetadataOptions) {
    this.#options = options;
    this.#clock = options.clock ?? Date.now;
  }

  /** The metadata for a token URL, or null when the provider publishes none we can trust. Never throws. */
  async forTokenUrl(tokenUrl: string): Promise<DiscoveredMetadata | null> {
    const entry = this.#entries.get(tokenUrl);
    if (entry !== undefined && this.#clock() < entry.until) return entry.metadata;
    const running = this.#inflight.get(tokenUrl);
    if (running !== undefined) return running;
    const lookup = discoverFromTokenUrl(tokenUrl, {
      fetch: this.#options.fetch,
      timeoutMs: this.#options.timeoutMs,
    })
      .catch(() => null)
      .then((metadata) => {
        const ttl = metadata === null ? MISSING_TTL_MS : FOUND_TTL_MS;
        this.#entries.set(tokenUrl, { metadata, until: this.#clock() + ttl });
        return metadata;
      })
      .finally(() => this.#inflight.delete(tokenUrl));
    this.#inflight.set(tokenUrl, lookup);
    return lookup;
  }
}
