import type { Store } from '../store/contract.js';

/** Event types of an authentication's timeline (docs/api.md `GET …/events`). */
export type AuthEventType =
  | 'token_fetched'
  | 'token_refreshed'
  | 'token_failed'
  | 'token_invalidated'
  | 'authorized'
  | 'authorization_failed'
  | 'needs_authorization'
  | 'revoked'
  | 'revocation_failed'
  | 'configuration_changed'
  /** `clientAuthMethod: auto` found how the provider accepts the client secret (or a new way). */
  | 'client_auth_detected'
  /** The keep-alive refreshed a refresh token nobody had used for `keepAliveDays`. */
  | 'keep_alive_refreshed'
  | 'keep_alive_failed'
  /** A key rotation (docs/keys.md): the next key added, switched to (and checked), the old one dropped. */
  | 'key_rotation_started'
  | 'key_activated'
  | 'key_activation_failed'
  | 'key_rotation_finished';

/** How many events one authentication keeps; older ones are trimmed on append. */
export const EVENTS_KEPT = 200;

/**
 * Appends one event. `detail` must hold facts only (grant, scope, status, error code): never a
 * token, code, secret or password — the timeline is shown to people and returned by the API.
 */
export async function recordEvent(
  store: Store,
  authId: string,
  type: AuthEventType,
  detail: Record<string, unknown> = {},
  at: number = Date.now(),
): Promise<void> {
  await store.events.append(authId, { at, type, detail }, EVENTS_KEPT);
}
