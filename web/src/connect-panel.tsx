import { useEffect, useRef, useState } from 'react';
import { useAnnounce } from './announcer.js';
import { type AuthenticationView, type ProblemView, problemOf } from './api-client.js';
import { useConsoleData } from './console-data.js';
import { CopyField } from './copy-field.js';
import { formatDateTime } from './format.js';
import { connect, isOAuthRedirectMessage, openConnectPopup } from './oauth-connect.js';
import { ProblemMessage } from './problem-message.js';

/** The exact redirect URI to register at the provider, with a button that copies it. */
export function RedirectUri({ id, uri }: { id: string; uri: string }) {
  return (
    <CopyField
      id={id}
      label="Redirect URI"
      value={uri}
      className="redirect-uri"
      hint="Register exactly this URI at the provider as an allowed redirect (callback) URI."
    />
  );
}

interface ConnectButtonProps {
  authentication: AuthenticationView;
  /** Unsaved edits would be lost by the full-page fallback and would not be used by the flow. */
  disabledReason?: string | undefined;
}

type ConnectState =
  | { phase: 'idle' }
  | { phase: 'waiting' }
  | { phase: 'done'; ok: boolean; text: string; problem?: ProblemView };

/**
 * Connect (or reconnect) an Authorization Code authentication: the provider's login and consent
 * happen in a popup; the status updates when the popup reports back.
 */
export function ConnectButton({ authentication, disabledReason }: ConnectButtonProps) {
  const { api, upsertAuthentication } = useConsoleData();
  const announce = useAnnounce();
  const [state, setState] = useState<ConnectState>({ phase: 'idle' });
  const abortRef = useRef<AbortController | null>(null);

  useEffect(() => () => abortRef.current?.abort(), []);

  // A redirect page opened by an earlier (full-page or lost) attempt may still report here.
  useEffect(() => {
    const onMessage = (event: MessageEvent) => {
      if (event.origin !== window.location.origin || !isOAuthRedirectMessage(event.data)) return;
      if (event.data.authenticationId !== authentication.id) return;
      void api
        .getAuthentication(authentication.id)
        .then(upsertAuthentication)
        .catch(() => {});
    };
    window.addEventListener('message', onMessage);
    return () => window.removeEventListener('message', onMessage);
  }, [api, authentication.id, upsertAuthentication]);

  const start = () => {
    const popup = openConnectPopup(authentication.id);
    abortRef.current?.abort();
    const controller = new AbortController();
    abortRef.current = controller;
    setState({ phase: 'waiting' });
    announce(popup ? 'Sign in at the provider in the popup window' : 'Going to the provider to sign in');
    connect({
      api,
      authenticationId: authentication.id,
      popup,
      signal: controller.signal,
      obtainedBefore: authentication.token?.obtainedAt ?? null,
    })
      .then((outcome) => {
        if (controller.signal.aborted || outcome.kind === 'redirected') return;
        if (outcome.authentication) upsertAuthentication(outcome.authentication);
        if (outcome.kind === 'failed') {
          setState({
            phase: 'done',
            ok: false,
            text: 'The provider sent the browser back to Grantry, but the connection did not complete.',
            problem: outcome.problem,
          });
          announce('Authorization failed');
          return;
        }
        if (outcome.kind === 'message' && !outcome.message.ok) {
          const error = outcome.message.error;
          const problem: ProblemView =
            typeof error === 'object' && error !== null && error.message
              ? {
                  code: error.code ?? 'authorization_failed',
                  message: error.message,
                  ...(error.hint ? { hint: error.hint } : {}),
                }
              : (outcome.authentication?.lastError ?? {
                  code: typeof error === 'string' ? error : 'authorization_failed',
                  message: 'The provider did not authorize Grantry.',
                });
          setState({ phase: 'done', ok: false, text: 'Not connected.', problem });
          announce('Authorization failed');
          return;
        }
        const connected = outcome.authentication?.status === 'connected';
        if (connected) {
          setState({
            phase: 'done',
            ok: true,
            text: 'Grantry holds a token for this authentication.',
          });
          announce('Connected');
        } else {
          const problem = outcome.authentication?.lastError ?? undefined;
          setState({
            phase: 'done',
            ok: false,
            text: 'The popup was closed before Grantry heard back from the provider: nothing was changed.',
            ...(problem ? { problem } : {}),
          });
          announce('Not connected');
        }
      })
      .catch((error: unknown) => {
        setState({
          phase: 'done',
          ok: false,
          text: 'Could not start the authorization.',
          problem: problemOf(error),
        });
        announce('Could not start the authorization');
      });
  };

  const label = authentication.status === 'connected' ? 'Reconnect' : 'Connect';
  return (
    <div className="connect">
      <div className="button-row">
        <button
          type="button"
          className="button primary"
          onClick={start}
          disabled={Boolean(disabledReason) || state.phase === 'waiting'}
          aria-describedby={disabledReason ? `connect-reason-${authentication.id}` : undefined}
        >
          {state.phase === 'waiting' ? 'Waiting for the provider…' : label}
        </button>
        {state.phase === 'waiting' && (
          <button
            type="button"
            className="button ghost"
            onClick={() => {
              abortRef.current?.abort();
              setState({ phase: 'idle' });
            }}
          >
            Stop waiting
          </button>
        )}
      </div>
      {!disabledReason && <ConnectLink authentication={authentication} />}
      {disabledReason && (
        <p className="field-hint" id={`connect-reason-${authentication.id}`}>
          {disabledReason}
        </p>
      )}
      <div aria-live="polite">
        {state.phase === 'waiting' && (
          <p className="muted">
            Complete the sign-in and consent in the popup window. This page updates by itself.
          </p>
        )}
        {state.phase === 'done' && (
          <div className={state.ok ? 'result ok' : 'result failed'}>
            <p className="result-title">
              {state.ok ? (
                <span className="badge success">Connected</span>
              ) : (
                <span className="badge error">Not connected</span>
              )}{' '}
              {state.text}
            </p>
            {state.problem && <ProblemMessage problem={state.problem} />}
          </div>
        )}
      </div>
    </div>
  );
}

const LINK_LIFETIMES = [
  { seconds: 900, label: '15 minutes' },
  { seconds: 86_400, label: '1 day' },
  { seconds: 604_800, label: '7 days' },
] as const;

/**
 * A one-time link for someone else's browser: the person who can consent at the provider (the
 * account's owner) opens it, and the authentication is connected from their browser.
 */
function ConnectLink({ authentication }: { authentication: AuthenticationView }) {
  const { api } = useConsoleData();
  const announce = useAnnounce();
  const [lifetime, setLifetime] = useState<number>(900);
  const [link, setLink] = useState<{ url: string; expiresAt: string } | null>(null);
  const [problem, setProblem] = useState<ProblemView | null>(null);
  const id = `connect-link-${authentication.id}`;
  const make = async () => {
    try {
      const answer = await api.authorize(authentication.id, lifetime);
      setLink({ url: answer.connectUrl, expiresAt: answer.expiresAt });
      setProblem(null);
      announce('Connect link made');
    } catch (error) {
      setProblem(problemOf(error));
    }
  };
  return (
    <details className="connect-link">
      <summary>Someone else signs in? Send a connect link</summary>
      <p className="field-hint">
        A link for the person who can grant access at the provider. It works once, in whatever browser opens
        it.
      </p>
      <div className="input-row">
        <label className="visually-hidden" htmlFor={`${id}-lifetime`}>
          Link lifetime
        </label>
        <select
          id={`${id}-lifetime`}
          value={lifetime}
          onChange={(event) => setLifetime(Number(event.target.value))}
        >
          {LINK_LIFETIMES.map((option) => (
            <option key={option.seconds} value={option.seconds}>
              Valid for {option.label}
            </option>
          ))}
        </select>
        <button type="button" className="button secondary" onClick={() => void make()}>
          Make connect link
        </button>
      </div>
      {link !== null && (
        <CopyField
          id={id}
          label="Connect link"
          value={link.url}
          footer={`Works once, until ${formatDateTime(link.expiresAt)}.`}
        />
      )}
      {problem && <ProblemMessage problem={problem} />}
    </details>
  );
}
