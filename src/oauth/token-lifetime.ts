/**
 * The longest lifetime Grantry believes of an access token: one year.
 *
 * Real providers issue access tokens for minutes to hours, a few for 60 or 90 days (Facebook and
 * LinkedIn long-lived tokens); none for more than a year. A larger `expires_in` is a bug or an
 * attack, and left alone it breaks things far from the provider: 8640000000000 s is past the end of
 * JavaScript dates (±8.64e15 ms), so every view of the token threw `RangeError: Invalid time value`,
 * and 1e20 s does not even fit a PostgreSQL bigint. One year keeps every expiry a valid date and a
 * safe integer, and a token that really lives longer is simply refreshed after a year (or on a 401).
 */
export const MAX_TOKEN_LIFETIME_SECONDS = 365 * 24 * 60 * 60;

const MAX_TOKEN_LIFETIME_MS = MAX_TOKEN_LIFETIME_SECONDS * 1000;

/** A JSON number, or a string holding a decimal number (Azure AD v1), exponent included (`1e20`). */
const NUMERIC_STRING = /^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$/;

/**
 * The lifetime an `expires_in` (RFC 6749 §5.1) stands for, in whole seconds within
 * [0, {@link MAX_TOKEN_LIFETIME_SECONDS}], or null when the provider said nothing usable.
 *
 * Zero or a negative value means "expires now" (0), never "never": a provider that says its token is
 * already expired must not get it cached for ever. Anything above the maximum (infinity included:
 * JSON's `1e400` parses to it) is the maximum. A value that is not a number at all (`"soon"`) is
 * unknown, like an absent one: the token is used until the API refuses it.
 */
export function tokenLifetimeSeconds(value: unknown): number | null {
  const number = typeof value === 'string' && NUMERIC_STRING.test(value) ? Number(value) : value;
  if (typeof number !== 'number' || Number.isNaN(number)) return null;
  if (number <= 0) return 0;
  if (number >= MAX_TOKEN_LIFETIME_SECONDS) return MAX_TOKEN_LIFETIME_SECONDS;
  return Math.floor(number);
}

/**
 * A stored expiry, read within the same bounds as a new one is written: between the moment the
 * token was obtained and one year later. Rows written before the clamp existed may hold expiries
 * past the end of JavaScript dates (or not finite at all, from SQLite's REAL): they read as one year
 * after they were obtained, so no view, cache entry or schedule is built from an invalid time.
 */
export function boundedExpiresAt(obtainedAt: number, expiresAt: number | null): number | null {
  if (expiresAt === null) return null;
  const latest = obtainedAt + MAX_TOKEN_LIFETIME_MS;
  if (Number.isNaN(expiresAt) || expiresAt > latest) return latest;
  return Math.max(obtainedAt, expiresAt);
}

/** When a token obtained at `obtainedAt` with this lifetime expires (null: unknown). */
export function expiresAtFor(obtainedAt: number, lifetimeSeconds: number | null): number | null {
  return lifetimeSeconds === null ? null : boundedExpiresAt(obtainedAt, obtainedAt + lifetimeSeconds * 1000);
}
