/**
 * The shared engine: several Grantry instances on one PostgreSQL database. Cross-instance locks are
 * session-level advisory locks, each held on a dedicated pooled connection, so a crashed process
 * releases them with its session. Changes travel with NOTIFY on one channel and arrive through one
 * LISTEN connection per instance.
 */
import { createHash, randomUUID } from 'node:crypto';
import { Kysely, sql } from 'kysely';
import pg from 'pg';
import { ChangeListeners, parseChangeEvent } from './change-listeners.js';
import type { ChangeEvent } from './contract.js';
import type { Engine } from './dialect.js';
import { createPostgresDialect, createPostgresPool } from './dialect.js';
import { KeyedMutex, settlesWithin } from './keyed-mutex.js';
import { LockTimeoutError } from './lock-timeout.js';
import type { Database } from './schema.js';

export const CHANGE_CHANNEL = 'grantry_changes';

/** Queries of the repositories. */
const QUERY_POOL_SIZE = 10;
/**
 * Connections that hold advisory locks. A separate pool so that a lock holder's own queries (in
 * `fn`) can never be starved by other lock holders occupying every connection.
 */
const LOCK_POOL_SIZE = 10;

const RECONNECT_FIRST_DELAY_MS = 100;
const RECONNECT_MAX_DELAY_MS = 5_000;

/** A signed 64-bit advisory lock key (as a decimal string for pg) derived from a name. */
export function advisoryLockKey(name: string): string {
  return createHash('sha256').update(name).digest().readBigInt64BE(0).toString();
}

const MIGRATION_LOCK_KEY = advisoryLockKey('grantry:migrations');

function authLockKey(authId: string): string {
  return advisoryLockKey(`grantry:auth:${authId}`);
}

/** What travels in a NOTIFY payload: the change and the instance that made it. */
interface ChangeMessage {
  origin: string;
  event: ChangeEvent;
}

/**
 * The LISTEN connection. If it drops, it reconnects with exponential backoff; changes published while
 * it was down are not replayed (NOTIFY is not durable), so holders of caches should keep them short-
 * lived or re-read under the refresh lock, as the token manager does.
 */
class ChangeSubscription {
  readonly #connectionString: string;
  readonly #onPayload: (payload: string) => void;
  readonly #onReconnect: () => void;
  #connected: pg.Client | null = null;
  #reconnectTimer: NodeJS.Timeout | null = null;
  #reconnectDelayMs = RECONNECT_FIRST_DELAY_MS;
  #closed = false;

  constructor(connectionString: string, onPayload: (payload: string) => void, onReconnect: () => void) {
    this.#connectionString = connectionString;
    this.#onPayload = onPayload;
    this.#onReconnect = onReconnect;
  }

  /** Connects and LISTENs; rejects if the first attempt fails. */
  async start(): Promise<void> {
    await this.#connect();
  }

  async #connect(): Promise<void> {
    // keepAlive: a silently dead network path must still end in an error, and so in a reconnect.
    const client = new pg.Client({ connectionString: this.#connectionString, keepAlive: true });
    client.on('notification', (message) => {
      if (message.channel === CHANGE_CHANNEL && message.payload !== undefined)
        this.#onPayload(message.payload);
    });
    // Always heard (an unheard 'error' would crash the process); acts only once the client is live.
    client.on('error', () => this.#lost(client));
    client.on('end', () => this.#lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGE_CHANNEL}`);
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
    if (this.#closed) {
      await client.end().catch(() => {});
      return;
    }
    this.#connected = client;
    this.#reconnectDelayMs = RECONNECT_FIRST_DELAY_MS;
  }

  #lost(client: pg.Client): void {
    if (this.#connected !== client) return;
    this.#connected = null;
    client.end().catch(() => {});
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#reconnectTimer !== null) return;
    const delay = this.#reconnectDelayMs;
    this.#reconnectDelayMs = Math.min(delay * 2, RECONNECT_MAX_DELAY_MS);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      this.#connect()
        .then(() => this.#onReconnect())
        .catch(() => this.#scheduleReconnect());
    }, delay);
    // A pending reconnect must not keep a finished process alive.
    this.#reconnectTimer.unref();
  }

  get listening(): boolean {
    return this.#connected !== null;
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#reconnectTimer !== null) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    const client = this.#connected;
    this.#connected = null;
    if (client !== null) await client.end().catch(() => {});
  }
}

/** When a lock wait ends (a `performance.now()` time), and the timeout it came from (for the error). */
interface Deadline {
  at: number;
  timeoutMs: number;
}

/** PostgreSQL's `lock_not_available`: `lock_timeout` ran out while waiting for a lock. */
const LOCK_NOT_AVAILABLE = '55P03';

/**
 * Runs `fn` holding the session advisory lock `key` on a connection of `pool`. The connection is
 * destroyed rather than returned to the pool if unlocking fails, so a lock can never stay behind
 * on a pooled session.
 *
 * With `deadline`, waiting for a connection and for the lock both end
 * there with `LockTimeoutError`. The lock wait is bounded by PostgreSQL itself: `SET LOCAL
 * lock_timeout` in the same query string as `pg_advisory_lock` applies to that implicit transaction
 * only, so the session keeps its default and the advisory lock (session-level) outlives it.
 */
async function withAdvisoryLock<T>(
  pool: pg.Pool,
  key: string,
  fn: () => Promise<T>,
  onLocked: () => void = () => {},
  deadline?: Deadline,
): Promise<T> {
  const client = deadline === undefined ? await pool.connect() : await connectBefore(pool, deadline);
  let sessionError: Error | undefined;
  // The session can die while `fn` runs (a restart, a failover): PostgreSQL then drops the lock and
  // another instance may take it. `fn`'s writes are compare-and-swaps, so they cannot overwrite what
  // that instance saves; the connection is destroyed on release, not reused.
  const onSessionError = (error: Error) => {
    sessionError = error;
  };
  client.on('error', onSessionError);
  try {
    try {
      if (deadline === undefined) {
        await client.query('SELECT pg_advisory_lock($1::bigint)', [key]);
      } else {
        const remaining = Math.max(1, Math.ceil(deadline.at - performance.now()));
        // Both values are integers we made (the key is a decimal bigint): nothing to escape.
        await client.query(`SET LOCAL lock_timeout = ${remaining}; SELECT pg_advisory_lock(${BigInt(key)})`);
      }
    } catch (error) {
      if ((error as { code?: unknown }).code === LOCK_NOT_AVAILABLE) {
        // Only this statement was cancelled; the session is healthy and goes back to the pool.
        throw new LockTimeoutError(deadline?.timeoutMs ?? 0);
      }
      sessionError = asError(error);
      throw error;
    }
    onLocked();
    try {
      return await fn();
    } finally {
      try {
        await client.query('SELECT pg_advisory_unlock($1::bigint)', [key]);
      } catch (error) {
        sessionError = asError(error);
      }
    }
  } finally {
    client.off('error', onSessionError);
    client.release(sessionError);
  }
}

/** A pooled connection by `deadline`, or `LockTimeoutError`; one that arrives late goes straight back. */
async function connectBefore(pool: pg.Pool, deadline: Deadline): Promise<pg.PoolClient> {
  const connecting = pool.connect();
  if (await settlesWithin(connecting, deadline.at - performance.now())) return connecting;
  connecting.then(
    (client) => client.release(),
    () => {},
  );
  throw new LockTimeoutError(deadline.timeoutMs);
}

function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

export async function openPostgresEngine(connectionString: string): Promise<Engine> {
  const queryPool = createPostgresPool(connectionString, QUERY_POOL_SIZE);
  const lockPool = createPostgresPool(connectionString, LOCK_POOL_SIZE);
  const db = new Kysely<Database>({ dialect: createPostgresDialect(queryPool) });
  const instanceId = randomUUID();
  const listeners = new ChangeListeners();
  const localAuthLocks = new KeyedMutex();

  const subscription = new ChangeSubscription(
    connectionString,
    (payload) => {
      let message: Partial<ChangeMessage>;
      try {
        message = JSON.parse(payload) as Partial<ChangeMessage>;
      } catch {
        return;
      }
      // NOTIFY also reaches the sender's own LISTEN connection; this instance delivered it already.
      if (message.origin === instanceId) return;
      const event = parseChangeEvent(message.event);
      if (event !== null) listeners.deliver(event);
    },
    () => {
      // Changes published while LISTEN was down are lost (NOTIFY is not durable): caches start over.
      listeners.deliver({ kind: 'resync' });
    },
  );
  try {
    await subscription.start();
  } catch (error) {
    await Promise.allSettled([queryPool.end(), lockPool.end()]);
    throw error;
  }

  return {
    dialect: 'postgres',
    db,
    serialPrimaryKey: {
      type: 'bigint',
      define: (column) => column.primaryKey().generatedAlwaysAsIdentity(),
    },
    // Row locks taken by the claiming UPDATE's subquery; rows another instance is claiming right now
    // are skipped rather than waited for (that instance will own them).
    lockForClaim: (query) => query.forUpdate().skipLocked(),
    withMigrationLock: (fn) => withAdvisoryLock(lockPool, MIGRATION_LOCK_KEY, fn),
    async withAuthLock(authId, fn, timeoutMs) {
      const start = performance.now();
      let waitedMs = 0;
      // One deadline for the whole wait: the in-process queue, a pooled connection, the advisory lock.
      const deadline = timeoutMs === undefined ? undefined : { at: start + timeoutMs, timeoutMs };
      // The in-process mutex first: callers of this process queue here, so the process holds at most
      // one connection per authentication waiting on (or holding) the advisory lock.
      const value = await localAuthLocks.run(
        authId,
        () =>
          withAdvisoryLock(
            lockPool,
            authLockKey(authId),
            fn,
            () => {
              waitedMs = performance.now() - start;
            },
            deadline,
          ),
        timeoutMs,
      );
      return { value, waitedMs };
    },
    async publish(event) {
      // Local listeners first: this instance's view must not depend on the database answering.
      listeners.deliver(event);
      const message: ChangeMessage = { origin: instanceId, event };
      await sql`SELECT pg_notify(${CHANGE_CHANNEL}, ${JSON.stringify(message)})`.execute(db);
    },
    subscribe: (listener) => listeners.add(listener),
    violatedUniqueConstraint(error) {
      if (typeof error !== 'object' || error === null) return null;
      const { code, constraint } = error as { code?: unknown; constraint?: unknown };
      return code === '23505' && typeof constraint === 'string' ? constraint : null;
    },
    async close() {
      await subscription.close();
      await db.destroy();
      // Kysely only ends a pool it has used: a store closed before its first query still holds it.
      await Promise.all([
        queryPool.ended ? undefined : queryPool.end(),
        lockPool.ended ? undefined : lockPool.end(),
      ]);
    },
  };
}
