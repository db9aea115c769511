import type { ApiClient, AuthenticationView, ProblemView } from './api-client.js';

/** What Grantry's `/oauth/redirect` page posts to its opener when the flow ends. */
export interface OAuthRedirectMessage {
  type: 'grantry:oauth';
  authenticationId: string;
  ok: boolean;
  error?: { code?: string; message?: string; hint?: string } | string;
}

export function isOAuthRedirectMessage(data: unknown): data is OAuthRedirectMessage {
  if (typeof data !== 'object' || data === null) return false;
  const message = data as Partial<OAuthRedirectMessage>;
  return (
    message.type === 'grantry:oauth' &&
    typeof message.authenticationId === 'string' &&
    typeof message.ok === 'boolean'
  );
}

export type ConnectOutcome =
  | { kind: 'message'; message: OAuthRedirectMessage; authentication: AuthenticationView | null }
  | { kind: 'connected'; authentication: AuthenticationView }
  /** The popup closed without a message, but Grantry recorded why the flow failed meanwhile. */
  | { kind: 'failed'; problem: ProblemView; authentication: AuthenticationView | null }
  | { kind: 'closed'; authentication: AuthenticationView | null }
  | { kind: 'redirected' };

const POLL_MS = 1500;

/**
 * Opens the popup synchronously, inside the click, because browsers only allow popups that a
 * user gesture opens; the authorization URL (with `state` and the PKCE challenge, RFC 7636) is
 * fetched afterwards and loaded into it. When the popup is blocked the whole page goes to the
 * provider instead, and Grantry's redirect page brings the person back.
 */
export function openConnectPopup(authenticationId: string): Window | null {
  const width = 520;
  const height = 700;
  const left = Math.max(0, window.screenX + (window.outerWidth - width) / 2);
  const top = Math.max(0, window.screenY + (window.outerHeight - height) / 2);
  const popup = window.open(
    '',
    `grantry-oauth-${authenticationId}`,
    `popup=yes,width=${width},height=${height},left=${Math.round(left)},top=${Math.round(top)}`,
  );
  if (popup) {
    try {
      popup.document.title = 'Connecting…';
      popup.document.body.textContent = 'Opening the provider’s sign-in page…';
    } catch {
      // A reused popup may already show the provider's page; its title is not ours to set.
    }
  }
  return popup;
}

interface ConnectOptions {
  api: ApiClient;
  authenticationId: string;
  popup: Window | null;
  signal: AbortSignal;
  /** When the stored token was obtained before connecting: a reconnect must not look done at once. */
  obtainedBefore: string | null;
}

/**
 * Runs the authorization-code flow for one authentication and settles when the redirect page
 * reports back (postMessage from our own origin only), when polling sees the authentication
 * connected, or when the person closes the popup.
 */
export async function connect(options: ConnectOptions): Promise<ConnectOutcome> {
  const { api, authenticationId, popup, signal, obtainedBefore } = options;
  const startedAt = new Date().toISOString();
  let authorizationUrl: string;
  try {
    ({ authorizationUrl } = await api.authorize(authenticationId));
  } catch (error) {
    popup?.close();
    throw error;
  }
  if (!popup || popup.closed) {
    window.location.assign(authorizationUrl);
    return { kind: 'redirected' };
  }
  popup.location.href = authorizationUrl;

  return new Promise<ConnectOutcome>((resolve) => {
    let settled = false;
    let timer = 0;
    const finish = (outcome: ConnectOutcome) => {
      if (settled) return;
      settled = true;
      window.clearInterval(timer);
      window.removeEventListener('message', onMessage);
      signal.removeEventListener('abort', onAbort);
      resolve(outcome);
    };
    const onMessage = (event: MessageEvent) => {
      // Only our own redirect page may report an outcome; any other origin is ignored.
      if (event.origin !== window.location.origin) return;
      if (!isOAuthRedirectMessage(event.data) || event.data.authenticationId !== authenticationId) return;
      const message = event.data;
      void api
        .getAuthentication(authenticationId)
        .catch(() => null)
        .then((authentication) => {
          if (message.ok && !popup.closed) popup.close();
          finish({ kind: 'message', message, authentication });
        });
    };
    const onAbort = () => finish({ kind: 'closed', authentication: null });
    window.addEventListener('message', onMessage);
    signal.addEventListener('abort', onAbort);
    let polling = false;
    timer = window.setInterval(() => {
      if (polling) return;
      polling = true;
      const closed = popup.closed;
      api
        .getAuthentication(authenticationId)
        .then((authentication) => {
          const fresh = authentication.token && authentication.token.obtainedAt !== obtainedBefore;
          if (authentication.status === 'connected' && fresh) {
            // The message may still be on its way; give it a moment to carry the details.
            if (closed) finish({ kind: 'connected', authentication });
            else window.setTimeout(() => finish({ kind: 'connected', authentication }), POLL_MS);
          } else if (closed) {
            // No message reached this page (another origin, or the popup was closed early): what
            // Grantry recorded since the start says whether the provider came back, and why it failed.
            void failureSince(api, authenticationId, startedAt).then((problem) =>
              finish(
                problem === null
                  ? { kind: 'closed', authentication }
                  : { kind: 'failed', problem, authentication },
              ),
            );
          }
        })
        .catch(() => {
          if (closed) finish({ kind: 'closed', authentication: null });
        })
        .finally(() => {
          polling = false;
        });
    }, POLL_MS);
  });
}

/** The newest `authorization_failed` event recorded since `since`, as a problem to show; null when none. */
async function failureSince(
  api: ApiClient,
  authenticationId: string,
  since: string,
): Promise<ProblemView | null> {
  try {
    const { items } = await api.listEvents(authenticationId);
    const failed = items.find((event) => event.type === 'authorization_failed' && event.at >= since);
    if (failed === undefined) return null;
    const detail = failed.detail as { code?: unknown; message?: unknown };
    return {
      code: typeof detail.code === 'string' ? detail.code : 'authorization_failed',
      message: typeof detail.message === 'string' ? detail.message : 'The authorization failed.',
    };
  } catch {
    return null;
  }
}
