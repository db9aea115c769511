import type { CachedToken } from './token-manager.js';

export interface RefusedTokenBackoffOptions {
  clock: () => number;
  /** The first pause; each pause that follows another doubles it. Default one minute. */
  firstPauseMs?: number;
  /** The longest pause. Default ten minutes. */
  maxPauseMs?: number;
}

interface RefusalState {
  /** The configuration the state is about: a new generation starts from nothing. */
  generation: number;
  /** The version of the token the last 401-forced refresh handed out, and when; null once judged. */
  freshVersion: number | null;
  freshSince: number;
  /** End of the current (or last) pause, ms since the epoch; 0 before the first. */
  until: number;
  /** Pauses in a row: the next one lasts firstPauseMs · 2^pauses. */
  pauses: number;
}

const DEFAULT_FIRST_PAUSE_MS = 60_000;
const DEFAULT_MAX_PAUSE_MS = 10 * 60_000;
/**
 * A token a 401 forced counts as fresh this long. Its refusal within that time says the new token
 * is no better than the old one; a refusal later says nothing about that refresh, and is answered
 * with a refresh like any first 401.
 */
const FRESH_FOR_MS = 60_000;

/**
 * Pauses the "401 → force a fresh token → retry" step for an authentication whose fresh tokens are
 * refused too. Without it, an API that always answers 401 (wrong audience, revoked client) cost one
 * token request per call: 50 calls, 50 refreshes. Once a token that a 401 forced is itself refused,
 * no further token is forced for that authentication until the pause ends (one minute, doubling
 * for each pause that follows the last one within ten minutes, up to ten minutes); calls still go
 * to the API with the token in hand, and their 401 diagnosis says until when Grantry is not
 * fetching. A later 401 after the pause may force one fresh token again. Any change to the
 * authentication (`TokenManager.forget`: PATCH, invalidate, reconnect) ends the pause.
 *
 * Kept in this process's memory for now, as the token cache is: the rule only decides whether this
 * process asks for a token, and a restart that forgets a pause costs one more refresh. In a
 * cluster each instance therefore pauses on its own (one forced token per instance per pause);
 * moving failure state to the store so the whole cluster backs off together, as Nango does, is a
 * later change.
 */
export class RefusedTokenBackoff {
  readonly #clock: () => number;
  readonly #firstPauseMs: number;
  readonly #maxPauseMs: number;
  readonly #states = new Map<string, RefusalState>();

  constructor(options: RefusedTokenBackoffOptions) {
    this.#clock = options.clock;
    this.#firstPauseMs = options.firstPauseMs ?? DEFAULT_FIRST_PAUSE_MS;
    this.#maxPauseMs = options.maxPauseMs ?? DEFAULT_MAX_PAUSE_MS;
  }

  /** When the pause for this token's authentication ends (ms since the epoch), or null when none holds. */
  pausedUntil(token: CachedToken): number | null {
    const state = this.#current(token);
    return state !== undefined && this.#clock() < state.until ? state.until : null;
  }

  /**
   * The API answered 401 to `token`. When that token came from a refresh a 401 forced — in this
   * very call (`forcedForThisCall`), or shortly before — its refusal starts a pause. Returns the
   * end of the pause in force, or null when a fresh token may be forced.
   */
  refused(token: CachedToken, forcedForThisCall: boolean): number | null {
    const state = this.#current(token);
    const now = this.#clock();
    if (state !== undefined && now < state.until) return state.until;
    const fresh =
      forcedForThisCall ||
      (state !== undefined && state.freshVersion === token.version && now - state.freshSince < FRESH_FOR_MS);
    if (!fresh) return null;
    const current = state ?? this.#start(token);
    // A pause long after the last one is a new incident: it starts short again.
    if (current.until !== 0 && now - current.until > this.#maxPauseMs) current.pauses = 0;
    current.until = now + Math.min(this.#maxPauseMs, this.#firstPauseMs * 2 ** current.pauses);
    current.pauses++;
    current.freshVersion = null;
    return current.until;
  }

  /** A refresh forced by a 401 handed out `token`: its refusal, soon, starts a pause. */
  replaced(token: CachedToken): void {
    const state = this.#current(token) ?? this.#start(token);
    state.freshVersion = token.version;
    state.freshSince = this.#clock();
  }

  /** Ends any pause and forgets the history (the configuration changed; a person asked for tokens). */
  forget(authId: string): void {
    this.#states.delete(authId);
  }

  clear(): void {
    this.#states.clear();
  }

  #start(token: CachedToken): RefusalState {
    const state: RefusalState = {
      generation: token.generation,
      freshVersion: null,
      freshSince: 0,
      until: 0,
      pauses: 0,
    };
    this.#states.set(token.authId, state);
    return state;
  }

  #current(token: CachedToken): RefusalState | undefined {
    const state = this.#states.get(token.authId);
    // A token of another configuration: what was refused before says nothing about this one.
    if (state !== undefined && state.generation !== token.generation) {
      this.#states.delete(token.authId);
      return undefined;
    }
    return state;
  }
}
