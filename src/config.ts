/**
 * Configuration from the environment (docs/api.md "Configuration"). Read once, validated once: a bad
 * value stops start-up with a sentence naming the variable, instead of failing later.
 */
export interface Config {
  port: number;
  host: string;
  publicUrl: string;
  databaseUrl: string;
  masterKey: string | undefined;
  previousMasterKeys: string[];
  apiKey: string | undefined;
  allowHttp: 'off' | 'loopback';
  /** Requests per minute per API key on /api and /proxy; null = off. */
  rateLimitPerMinute: number | null;
  /** Failed API-key attempts allowed per client address per minute before 429. */
  authFailuresPerMinute: number;
  egress: 'default' | 'strict';
  production: boolean;
  logLevel: string;
  /** JSON body limit on /api routes, bytes. */
  bodyLimitBytes: number;
  /** How much of an upstream body execute/test return before marking it truncated. */
  executeMaxBodyBytes: number;
  /** Upstream body bytes all execute/test calls together may hold in memory at once. */
  executeBufferLimitBytes: number;
  /** Timeout of one token request. */
  tokenTimeoutMs: number;
  /** How long a client may take to send the request headers. */
  headersTimeoutMs: number;
  /** How long a client may take to send the whole request, body included. */
  requestTimeoutMs: number;
  /** How long an idle keep-alive connection is kept open between requests. */
  idleTimeoutMs: number;
  /** Open connections allowed per client address at once; 0 = no cap. */
  maxConnectionsPerClient: number;
  /** Webhook retries (src/webhooks/retry-schedule.ts): the first delay's ceiling, and the largest. */
  webhookRetryBaseMs: number;
  webhookRetryMaxDelayMs: number;
  /** How often each instance looks for due webhook deliveries when nothing woke it. */
  webhookPollMs: number;
  /** How long a caller waits for an authentication's refresh lock before it re-reads the stored token. */
  refreshLockTimeoutMs: number;
  /** How often each instance looks for refresh tokens due for a keep-alive. */
  keepAlivePollMs: number;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max} (got "${raw}").`);
  }
  return value;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(`${name} must be one of ${allowed.join(', ')} (got "${raw}").`);
  }
  return raw as T;
}

/**
 * Limits on slow clients, with the defaults a reverse proxy would use (nginx: 60 s for headers,
 * 75 s keep-alive): a client that trickles its request one byte at a time is cut off instead of
 * holding a connection forever. Node requires headers ≤ request timeout.
 */
function clientTimeouts(env: Env): Pick<Config, 'headersTimeoutMs' | 'requestTimeoutMs' | 'idleTimeoutMs'> {
  const requestTimeoutMs = integer(env, 'GRANTRY_REQUEST_TIMEOUT_MS', 120_000, 100, 3_600_000);
  const headersTimeoutMs = integer(
    env,
    'GRANTRY_HEADERS_TIMEOUT_MS',
    Math.min(30_000, requestTimeoutMs),
    100,
    600_000,
  );
  if (headersTimeoutMs > requestTimeoutMs) {
    throw new ConfigError(
      `GRANTRY_HEADERS_TIMEOUT_MS (${headersTimeoutMs}) must not be longer than GRANTRY_REQUEST_TIMEOUT_MS (${requestTimeoutMs}).`,
    );
  }
  return {
    headersTimeoutMs,
    requestTimeoutMs,
    idleTimeoutMs: integer(env, 'GRANTRY_IDLE_TIMEOUT_MS', 75_000, 100, 3_600_000),
  };
}

export function loadConfig(env: Env = process.env): Config {
  const port = integer(env, 'GRANTRY_PORT', 3000, 0, 65535);
  const publicUrl = (env.GRANTRY_PUBLIC_URL ?? `http://localhost:${port}`).replace(/\/+$/, '');
  try {
    const parsed = new URL(publicUrl);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('scheme');
  } catch {
    throw new ConfigError(
      `GRANTRY_PUBLIC_URL must be an http(s) origin such as https://grantry.example.com.`,
    );
  }
  const rateLimit = env.GRANTRY_RATE_LIMIT;
  const production = env.NODE_ENV === 'production';
  const masterKey = env.GRANTRY_MASTER_KEY || undefined;
  const executeMaxBodyBytes = integer(
    env,
    'GRANTRY_EXECUTE_MAX_BODY',
    5 * 1024 * 1024,
    1024,
    100 * 1024 * 1024,
  );
  // 256 MiB: 51 answers of the largest size (5 MiB by default) at once, far more of the usual
  // small ones, while the process stays well under a 1 GiB container (what is held is a small
  // multiple of the bytes counted: see ExecuteBufferBudget).
  const executeBufferLimitBytes = integer(
    env,
    'GRANTRY_EXECUTE_BUFFER_LIMIT',
    256 * 1024 * 1024,
    1024,
    64 * 1024 * 1024 * 1024,
  );
  if (executeBufferLimitBytes < executeMaxBodyBytes) {
    // A single answer of the allowed size could then never be read: every such call would be
    // told to retry, forever.
    throw new ConfigError(
      `GRANTRY_EXECUTE_BUFFER_LIMIT (${executeBufferLimitBytes}) must be at least GRANTRY_EXECUTE_MAX_BODY (${executeMaxBodyBytes}).`,
    );
  }
  const webhookRetryBaseMs = integer(env, 'GRANTRY_WEBHOOK_RETRY_BASE_MS', 30_000, 10, 3_600_000);
  const webhookRetryMaxDelayMs = integer(
    env,
    'GRANTRY_WEBHOOK_RETRY_MAX_DELAY_MS',
    Math.max(webhookRetryBaseMs, 2 * 60 * 60 * 1000),
    10,
    24 * 60 * 60 * 1000,
  );
  if (webhookRetryMaxDelayMs < webhookRetryBaseMs) {
    throw new ConfigError(
      `GRANTRY_WEBHOOK_RETRY_MAX_DELAY_MS (${webhookRetryMaxDelayMs}) must not be shorter than GRANTRY_WEBHOOK_RETRY_BASE_MS (${webhookRetryBaseMs}).`,
    );
  }
  if (production && masterKey === undefined) {
    throw new ConfigError('GRANTRY_MASTER_KEY is required when NODE_ENV=production (base64 of 32 bytes).');
  }
  return {
    port,
    host: env.GRANTRY_HOST || '127.0.0.1',
    publicUrl,
    databaseUrl: env.GRANTRY_DATABASE_URL || 'sqlite:./data/grantry.db',
    masterKey,
    previousMasterKeys: (env.GRANTRY_PREVIOUS_MASTER_KEYS ?? '')
      .split(',')
      .map((k) => k.trim())
      .filter((k) => k !== ''),
    apiKey: env.GRANTRY_API_KEY || undefined,
    allowHttp: oneOf(env, 'GRANTRY_ALLOW_HTTP', ['off', 'loopback'] as const, 'off'),
    rateLimitPerMinute:
      rateLimit === undefined || rateLimit === '' || rateLimit === 'off'
        ? null
        : integer(env, 'GRANTRY_RATE_LIMIT', 0, 1, 10_000_000),
    authFailuresPerMinute: integer(env, 'GRANTRY_AUTH_FAILURE_LIMIT', 20, 1, 1_000_000),
    egress: oneOf(env, 'GRANTRY_EGRESS', ['default', 'strict'] as const, 'default'),
    production,
    logLevel: env.GRANTRY_LOG_LEVEL || 'info',
    bodyLimitBytes: integer(env, 'GRANTRY_BODY_LIMIT', 1024 * 1024, 1024, 100 * 1024 * 1024),
    executeMaxBodyBytes,
    executeBufferLimitBytes,
    tokenTimeoutMs: integer(env, 'GRANTRY_TOKEN_TIMEOUT_MS', 15_000, 100, 300_000),
    ...clientTimeouts(env),
    maxConnectionsPerClient: integer(env, 'GRANTRY_MAX_CONNECTIONS_PER_CLIENT', 256, 0, 1_000_000),
    webhookRetryBaseMs,
    webhookRetryMaxDelayMs,
    webhookPollMs: integer(env, 'GRANTRY_WEBHOOK_POLL_MS', 1_000, 10, 60_000),
    refreshLockTimeoutMs: integer(env, 'GRANTRY_REFRESH_LOCK_TIMEOUT_MS', 30_000, 100, 600_000),
    keepAlivePollMs: integer(env, 'GRANTRY_KEEP_ALIVE_POLL_MS', 60_000, 10, 24 * 60 * 60 * 1000),
  };
}
