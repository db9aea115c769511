/**
 * When an authentication needs a person (the `authentication.needs_attention` event), decided on
 * each failed token attempt from the state every instance shares (store `attention`):
 *
 * - it became `needs_authorization` (an Authorization Code authentication without usable tokens:
 *   someone must connect it) or `error` (a token could not be fetched) — at once, as docs/api.md says;
 * - or its refresh keeps failing while its status stays (a connected Authorization Code
 *   authentication whose provider keeps refusing or failing the refresh, while the access token it
 *   holds still works for a while): at least {@link FAILURES_BEFORE_ATTENTION} failed attempts in a
 *   row, the first at least {@link FAILING_FOR_MS} ago, with no success between. Both conditions:
 *   a provider that blips for a few seconds fails three times quickly (the token manager retries
 *   after 1 s, 2 s, …) and must not wake anyone; one failure an hour after another is no streak.
 *
 * - or a background keep-alive refresh failed (src/tokens/keep-alive.ts): at once. Nobody is
 *   calling that authentication — no call will fail to tell anyone — and its refresh token is in
 *   the last part of its idle lifetime: a person has that margin, and no more, to fix it.
 *
 * Attention stays open until a token attempt works again (`authentication.recovered`), so a person
 * hears once per episode, however many calls fail meanwhile.
 */
import type { AuthStatus } from '../store/contract.js';
import type { AttentionReason } from './event-types.js';

export const FAILURES_BEFORE_ATTENTION = 3;
export const FAILING_FOR_MS = 5 * 60 * 1000;

export function attentionReason(
  to: AuthStatus,
  streak: { failures: number; firstFailureAt: number | null },
  now: number,
  keepAlive = false,
): AttentionReason | null {
  if (to === 'needs_authorization') return 'needs_authorization';
  if (to === 'error') return 'error';
  if (keepAlive) return 'keep_alive_failed';
  if (
    streak.failures >= FAILURES_BEFORE_ATTENTION &&
    streak.firstFailureAt !== null &&
    now - streak.firstFailureAt >= FAILING_FOR_MS
  ) {
    return 'refresh_failing';
  }
  return null;
}
