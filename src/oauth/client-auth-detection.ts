import type { ClientAuthMethod } from './client-config.js';
import { OAuthError } from './oauth-error.js';

/** The two ways of sending a client secret (RFC 6749 §2.3.1) that `auto` chooses between. */
export const DETECTABLE_METHODS: readonly ClientAuthMethod[] = ['client_secret_basic', 'client_secret_post'];

/** How the client authenticates as configured: one method, or `auto` (detect it). */
export type ConfiguredClientAuthMethod = ClientAuthMethod | 'auto';

/**
 * What detection may settle on: the two ways of sending the secret it guesses between, and
 * `client_secret_jwt` (RFC 7523 §2.2, the secret signing an assertion) when a provider's metadata
 * lists that one and neither of the others — it is never guessed blindly.
 */
const DETECTED_METHODS: readonly ClientAuthMethod[] = [...DETECTABLE_METHODS, 'client_secret_jwt'];

export function isClientAuthMethod(value: unknown): value is ClientAuthMethod {
  return typeof value === 'string' && (DETECTED_METHODS as readonly string[]).includes(value);
}

/**
 * The methods a token request tries, in order, for the configured method:
 * - a configured method: that one only;
 * - `auto` with a method already detected (the one that obtained the stored tokens): that one
 *   first, then the other — a provider whose client changed is detected again, and a working one
 *   costs one request;
 * - `auto` with nothing detected: what the provider's metadata lists in
 *   `token_endpoint_auth_methods_supported` (RFC 8414 §2) when it names either method, Basic first;
 *   `client_secret_jwt` when that is the only way it lists of using a secret;
 *   without metadata (or a list naming neither), Basic then the body. Basic goes first because
 *   RFC 6749 §2.3.1 makes it the one every server MUST support.
 */
export function clientAuthCandidates(
  configured: ConfiguredClientAuthMethod,
  detected: ClientAuthMethod | null,
  advertised: readonly string[] | null,
): ClientAuthMethod[] {
  if (configured !== 'auto') return [configured];
  if (detected !== null) return [detected, ...DETECTABLE_METHODS.filter((method) => method !== detected)];
  const listed = DETECTABLE_METHODS.filter((method) => advertised?.includes(method) === true);
  if (listed.length > 0) return listed;
  // A provider that takes the secret only inside a signed assertion says so in its metadata.
  if (advertised?.includes('client_secret_jwt') === true) return ['client_secret_jwt'];
  return [...DETECTABLE_METHODS];
}

/**
 * Whether a token endpoint's answer refused the client's authentication — the one failure another
 * method of sending the same credentials can cure: `invalid_client` (RFC 6749 §5.2), or a 401
 * that carries no OAuth error at all (servers that reject the header before reading the body).
 */
export function isClientAuthRefusal(error: unknown): boolean {
  if (!(error instanceof OAuthError)) return false;
  if (error.code === 'invalid_client') return true;
  return (
    error.code === 'token_fetch_failed' &&
    error.provider.status === 401 &&
    (error.facts.reason === 'empty' || error.facts.reason === 'http_status')
  );
}

export interface DetectedRun<T> {
  value: T;
  /** The method that worked. */
  method: ClientAuthMethod;
  /** Every method sent, in order (the last one is `method`). */
  tried: ClientAuthMethod[];
}

/**
 * Runs a token request with the first candidate; when the provider refuses the client's
 * authentication and another candidate is left, once more with the next — never more than two
 * requests, and only for that refusal (any other failure is the answer). When every candidate is
 * refused, the last refusal is thrown with `facts.clientAuthMethods` naming all of them, so the
 * diagnosis says both ways were tried.
 */
export async function withClientAuthDetection<T>(
  candidates: readonly ClientAuthMethod[],
  attempt: (method: ClientAuthMethod) => Promise<T>,
): Promise<DetectedRun<T>> {
  const tried: ClientAuthMethod[] = [];
  for (const method of candidates.slice(0, 2)) {
    tried.push(method);
    try {
      return { value: await attempt(method), method, tried };
    } catch (error) {
      const last = tried.length === Math.min(candidates.length, 2);
      if (!isClientAuthRefusal(error) || last) {
        if (error instanceof OAuthError && isClientAuthRefusal(error)) {
          error.facts.clientAuthMethods = [...tried];
        }
        throw error;
      }
    }
  }
  throw new Error('withClientAuthDetection needs at least one candidate');
}
