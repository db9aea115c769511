import { hashApiKey, sameDigest } from '../services/api-keys.js';
import type { Store } from '../store/contract.js';
import type { KeyScope } from './route-access.js';

export type AccessDecision =
  | { ok: true; keyId: string; scope: KeyScope }
  | { ok: false; code: 'unauthorized' }
  | { ok: false; code: 'rate_limited'; retryAfterSeconds: number };

interface Window {
  startedAt: number;
  count: number;
}

const FAILURE_WINDOW_MS = 60_000;
const KEY_CACHE_MS = 5_000;

/**
 * Who may call `/api` and `/proxy`. A valid key is always let in, whatever failures came before
 * it from the same address; failed attempts are limited per client address so guessing is slow;
 * an optional per-key limit protects the service only when the operator asks for it, because the
 * data plane (execute, proxy) is called at high rates by design.
 */
export class AccessControl {
  readonly #store: Store;
  readonly #bootstrapHash: string | null;
  readonly #perKeyPerMinute: number | null;
  readonly #failuresAllowed: number;
  readonly #failures = new Map<string, Window>();
  readonly #usage = new Map<string, Window>();
  /** Recently verified keys, so the hot path does not query the store on every request. */
  readonly #known = new Map<string, VerifiedKey & { until: number }>();

  constructor(options: {
    store: Store;
    bootstrapKey: string | undefined;
    perKeyPerMinute: number | null;
    failuresPerMinute: number;
  }) {
    this.#failuresAllowed = options.failuresPerMinute;
    this.#store = options.store;
    this.#bootstrapHash = options.bootstrapKey === undefined ? null : hashApiKey(options.bootstrapKey);
    this.#perKeyPerMinute = options.perKeyPerMinute;
  }

  async check(
    authorization: string | undefined,
    clientAddress: string,
    now = Date.now(),
  ): Promise<AccessDecision> {
    const key = bearer(authorization);
    const verified = key === null ? null : await this.#verify(key, now);
    if (verified === null) return this.#failed(clientAddress, now);
    return this.#admit(verified, now);
  }

  /**
   * The decision for a key verified within the last few seconds, without awaiting anything (the
   * data plane's hot path); undefined when the key must be looked up, by `check`. Counts against
   * the per-key limit exactly as `check` does, so a request is decided by one of them, never both.
   */
  checkKnown(authorization: string | undefined, now = Date.now()): AccessDecision | undefined {
    const key = bearer(authorization);
    if (key === null) return undefined;
    const known = this.#known.get(key);
    if (known === undefined || now >= known.until) return undefined;
    return this.#admit(known, now);
  }

  #admit(verified: VerifiedKey, now: number): AccessDecision {
    if (this.#perKeyPerMinute !== null) {
      const window = this.#tick(this.#usage, verified.keyId, now);
      if (window.count > this.#perKeyPerMinute) {
        return { ok: false, code: 'rate_limited', retryAfterSeconds: secondsLeft(window, now) };
      }
    }
    return verified.admitted;
  }

  /** Forget a key at once (revoked in this process). */
  forgetAll(): void {
    this.#known.clear();
  }

  async #verify(key: string, now: number): Promise<VerifiedKey | null> {
    // Keyed by the key itself: a hit costs a map lookup, no hash (the key is in memory anyway).
    const known = this.#known.get(key);
    if (known !== undefined && now < known.until) return known;
    const hash = hashApiKey(key);
    let verified: VerifiedKey | null = null;
    if (this.#bootstrapHash !== null && sameDigest(hash, this.#bootstrapHash)) {
      // The bootstrap key is the operator's own: it can do everything (docs/api.md "Access").
      verified = verifiedKey('bootstrap', 'admin');
    } else {
      const record = await this.#store.apiKeys.findByHash(hash);
      if (record !== null && record.revokedAt === null && sameDigest(hash, record.hash)) {
        verified = verifiedKey(record.id, record.scope);
        void this.#store.apiKeys.touch(record.id, now).catch(() => {});
      }
    }
    if (verified !== null) {
      if (this.#known.size > 10_000) this.#known.clear();
      this.#known.set(key, { ...verified, until: now + KEY_CACHE_MS });
    }
    return verified;
  }

  #failed(clientAddress: string, now: number): AccessDecision {
    const window = this.#tick(this.#failures, clientAddress, now);
    if (window.count > this.#failuresAllowed) {
      return { ok: false, code: 'rate_limited', retryAfterSeconds: secondsLeft(window, now) };
    }
    return { ok: false, code: 'unauthorized' };
  }

  #tick(windows: Map<string, Window>, key: string, now: number): Window {
    let window = windows.get(key);
    if (window === undefined || now - window.startedAt >= FAILURE_WINDOW_MS) {
      if (windows.size > 100_000) windows.clear();
      window = { startedAt: now, count: 0 };
      windows.set(key, window);
    }
    window.count++;
    return window;
  }
}

interface VerifiedKey {
  keyId: string;
  scope: KeyScope;
  /** The decision that lets this key in, made once: the hot path allocates nothing for it. */
  admitted: AccessDecision & { ok: true };
}

function verifiedKey(keyId: string, scope: KeyScope): VerifiedKey {
  return { keyId, scope, admitted: Object.freeze({ ok: true as const, keyId, scope }) };
}

const BEARER = /^Bearer[ ]+(\S+)\s*$/i;

function bearer(header: string | undefined): string | null {
  if (header === undefined) return null;
  return BEARER.exec(header)?.[1] ?? null;
}

function secondsLeft(window: Window, now: number): number {
  return Math.max(1, Math.ceil((window.startedAt + FAILURE_WINDOW_MS - now) / 1000));
}
