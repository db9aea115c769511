import type { Store } from '../store/contract.js';
import type { KeepAliveOutcome, TokenManager } from './token-manager.js';

export interface KeepAliveSchedulerOptions {
  store: Store;
  tokens: Pick<TokenManager, 'keepAlive'>;
  /** How often this instance looks for refresh tokens due for a keep-alive. */
  pollIntervalMs: number;
  /** Authentications handled per round, at most. */
  batchSize?: number;
  clock?: () => number;
  log?: { warn(fields: Record<string, unknown>, message: string): void };
}

/** What one round did, by outcome (for tests and the log). */
export interface KeepAliveRound {
  due: number;
  refreshed: number;
  notDue: number;
  busy: number;
  failed: number;
}

const DEFAULT_BATCH_SIZE = 100;

/**
 * Keeps idle connections alive: some providers expire a refresh token that goes unused for weeks
 * (Microsoft Entra ID 90 days, Xero and Box 60, QuickBooks 100), so an Authorization Code
 * authentication nobody called for that long would silently need a person again. Every instance
 * runs this scheduler (an unref'd timer: it never keeps a process alive); each round asks the store
 * which authentications are due (`listDueForKeepAlive`, one query) and keeps each alive through the
 * token manager, which decides again under the refresh lock (`shouldRefresh`) — so however many
 * instances find the same authentication due, it is refreshed once. Each instance works through
 * the due list in its own random order, so instances spread over different authentications rather
 * than queue behind each other's locks.
 */
export class KeepAliveScheduler {
  readonly #store: Store;
  readonly #tokens: KeepAliveSchedulerOptions['tokens'];
  readonly #pollIntervalMs: number;
  readonly #batchSize: number;
  readonly #clock: () => number;
  readonly #log: KeepAliveSchedulerOptions['log'];
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<KeepAliveRound> | null = null;
  #closed = false;

  constructor(options: KeepAliveSchedulerOptions) {
    this.#store = options.store;
    this.#tokens = options.tokens;
    this.#pollIntervalMs = options.pollIntervalMs;
    this.#batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    this.#clock = options.clock ?? Date.now;
    this.#log = options.log;
  }

  start(): void {
    if (this.#closed || this.#timer !== null) return;
    this.#schedule();
  }

  /** One round now (a round already under way is joined, not doubled). */
  runOnce(): Promise<KeepAliveRound> {
    this.#running ??= this.#round().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running?.catch(() => {});
  }

  #schedule(): void {
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.runOnce()
        .catch((error: unknown) => {
          this.#log?.warn(
            { err: error instanceof Error ? error.name : typeof error },
            'keep-alive round failed',
          );
        })
        .finally(() => {
          if (!this.#closed) this.#schedule();
        });
    }, this.#pollIntervalMs);
    this.#timer.unref();
  }

  async #round(): Promise<KeepAliveRound> {
    const due = shuffled(
      await this.#store.authentications.listDueForKeepAlive(this.#clock(), this.#batchSize),
    );
    const round: KeepAliveRound = { due: due.length, refreshed: 0, notDue: 0, busy: 0, failed: 0 };
    for (const authId of due) {
      if (this.#closed) break;
      const result: KeepAliveOutcome = await this.#tokens.keepAlive(authId).catch((error: unknown) => {
        // One authentication the store could not read must not stop the others' keep-alive.
        this.#log?.warn(
          { authId, err: error instanceof Error ? error.name : typeof error },
          'keep-alive failed',
        );
        return { outcome: 'busy' } as const;
      });
      if (result.outcome === 'refreshed') round.refreshed++;
      else if (result.outcome === 'not_due') round.notDue++;
      else if (result.outcome === 'busy') round.busy++;
      else round.failed++;
    }
    return round;
  }
}

function shuffled<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}
