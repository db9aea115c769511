import { useCallback, useEffect, useState } from 'react';
import { useAnnounce } from './announcer.js';
import {
  type AuthenticationView,
  type EventView,
  type ProblemView,
  problemOf,
  type TokenTestResult,
} from './api-client.js';
import { useConsoleData } from './console-data.js';
import { formatDateTime, formatExpiry } from './format.js';
import { ProblemMessage } from './problem-message.js';
import { useRevealOnChange } from './reveal.js';

const sourceLabels = {
  cache: 'From cache (a stored token was still valid)',
  fetched: 'Fetched from the token endpoint',
  refreshed: 'Refreshed with the refresh token',
} as const;

/** A token test result in words: what Grantry got, or what went wrong and what to do. */
export function TokenTestView({ result }: { result: TokenTestResult }) {
  if (result.ok && result.token === null) {
    return (
      <div className="result ok">
        <p className="result-title">
          <span className="badge success">Nothing to fetch</span> This credential is sent as it is on every
          call.
        </p>
        <p className="muted">Test it through a connector that uses it: that calls the API with it.</p>
      </div>
    );
  }
  if (!result.ok || !result.token) {
    return (
      <div className="result failed">
        <p className="result-title">
          <span className="badge error">Failed</span> The token request did not succeed.
        </p>
        {result.error && <ProblemMessage problem={result.error} />}
      </div>
    );
  }
  const token = result.token;
  return (
    <div className="result ok">
      <p className="result-title">
        <span className="badge success">Success</span> Grantry has a valid access token.
      </p>
      <dl className="facts">
        <dt>Type</dt>
        <dd>{token.tokenType}</dd>
        <dt>Scope</dt>
        <dd>
          {token.scope ? (
            <code>{token.scope}</code>
          ) : (
            <span className="muted">not stated by the provider</span>
          )}
        </dd>
        <dt>Expiry</dt>
        <dd>
          {token.expiresAt ? (
            <>
              {formatExpiry(token.expiresAt)}{' '}
              <span className="muted">({formatDateTime(token.expiresAt)})</span>
            </>
          ) : (
            'No expiry given'
          )}
        </dd>
        <dt>Source</dt>
        <dd>{sourceLabels[token.source]}</dd>
        <dt>Refresh token</dt>
        <dd>{token.hasRefreshToken ? 'Yes' : 'No'}</dd>
      </dl>
    </div>
  );
}

const eventLabels: Record<string, string> = {
  token_fetched: 'Token fetched',
  token_refreshed: 'Token refreshed',
  token_failed: 'Token request failed',
  token_invalidated: 'Token expired by hand',
  authorized: 'Authorized',
  revoked: 'Revoked',
  configuration_changed: 'Configuration changed',
  authorization_failed: 'Authorization failed',
  needs_authorization: 'Needs authorization',
  revocation_failed: 'Revocation failed',
  client_auth_detected: 'Client authentication detected',
  keep_alive_refreshed: 'Kept alive (refreshed in the background)',
  keep_alive_failed: 'Keep-alive refresh failed',
};

const detailLabels: Record<string, string> = {
  tokenType: 'Token type',
  expiresIn: 'Expires in',
  refreshTokenIssued: 'Refresh token issued',
  providerStatus: 'Provider status',
  tokensDropped: 'Tokens dropped',
};

/** `refreshTokenIssued` reads "Refresh token issued". */
function detailLabel(key: string): string {
  const known = detailLabels[key];
  if (known) return known;
  const words = key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replaceAll('_', ' ')
    .toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function detailText(key: string, value: unknown): string {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'boolean') return value ? 'Yes' : 'No';
  if (key === 'expiresIn' && typeof value === 'number') return `${value} s`;
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function eventLabel(type: string): string {
  return eventLabels[type] ?? detailLabel(type);
}

export function EventTimeline({ items }: { items: EventView[] }) {
  if (items.length === 0)
    return <p className="muted">No events yet. Test the authentication to fetch a token.</p>;
  return (
    <ol className="timeline">
      {items.map((event) => {
        const failed = event.type.endsWith('_failed');
        return (
          <li
            key={`${event.at}-${event.type}-${JSON.stringify(event.detail)}`}
            className={failed ? 'timeline-item failed' : 'timeline-item'}
          >
            <div className="timeline-head">
              <span className="timeline-type">{eventLabel(event.type)}</span>
              <time dateTime={event.at} className="muted">
                {formatDateTime(event.at)}
              </time>
            </div>
            {Object.keys(event.detail).length > 0 && (
              <dl className="facts compact">
                {Object.entries(event.detail).map(([key, value]) => (
                  <div key={key} className="fact">
                    <dt>{detailLabel(key)}</dt>
                    <dd>{detailText(key, value)}</dd>
                  </div>
                ))}
              </dl>
            )}
          </li>
        );
      })}
    </ol>
  );
}

/** Test, Expire now, and the event timeline of a saved authentication. */
export function AuthenticationActions({ authentication }: { authentication: AuthenticationView }) {
  const { api, refreshAuthentication } = useConsoleData();
  const announce = useAnnounce();
  const [busy, setBusy] = useState<'test' | 'invalidate' | null>(null);
  const [result, setResult] = useState<TokenTestResult | null>(null);
  const [problem, setProblem] = useState<ProblemView | null>(null);
  const [note, setNote] = useState('');
  const [events, setEvents] = useState<EventView[] | null>(null);
  const outputRef = useRevealOnChange<HTMLDivElement>(result ?? problem ?? (note || null));

  const loadEvents = useCallback(async () => {
    try {
      setEvents((await api.listEvents(authentication.id)).items);
    } catch {
      setEvents([]);
    }
  }, [api, authentication.id]);

  // Reload the timeline whenever the authentication changes (saved, connected, tested).
  const version = `${authentication.updatedAt}|${authentication.token?.obtainedAt ?? ''}|${authentication.status}`;
  useEffect(() => {
    void version;
    void loadEvents();
  }, [loadEvents, version]);

  const test = async () => {
    setBusy('test');
    setProblem(null);
    setNote('');
    try {
      const outcome = await api.testAuthentication(authentication.id);
      setResult(outcome);
      announce(outcome.ok ? 'Test succeeded' : `Test failed: ${outcome.error?.message ?? ''}`);
    } catch (error) {
      setResult(null);
      setProblem(problemOf(error));
    } finally {
      setBusy(null);
      await refreshAuthentication(authentication.id);
      await loadEvents();
    }
  };

  const invalidate = async () => {
    setBusy('invalidate');
    setProblem(null);
    try {
      await api.invalidateAuthentication(authentication.id);
      setResult(null);
      const text = authentication.token?.hasRefreshToken
        ? 'The access token was dropped. The next test uses the refresh token.'
        : 'The access token was dropped. The next test fetches a new one.';
      setNote(text);
      announce(text);
    } catch (error) {
      setProblem(problemOf(error));
    } finally {
      setBusy(null);
      await refreshAuthentication(authentication.id);
      await loadEvents();
    }
  };

  return (
    <section className="panel-section" aria-labelledby={`actions-${authentication.id}`}>
      <h3 id={`actions-${authentication.id}`}>Test the authentication</h3>
      <p className="muted">
        Fetches a token (or uses the stored one) exactly as a connector call would. Expire now drops the
        access token so that the next test shows the refresh or re-fetch.
      </p>
      <div className="button-row">
        <button type="button" className="button primary" disabled={busy !== null} onClick={() => void test()}>
          {busy === 'test' ? 'Testing…' : 'Test'}
        </button>
        <button
          type="button"
          className="button secondary"
          disabled={busy !== null || !authentication.token}
          onClick={() => void invalidate()}
        >
          {busy === 'invalidate' ? 'Expiring…' : 'Expire now'}
        </button>
      </div>
      <div className="test-output" role="status" aria-live="polite" ref={outputRef}>
        {note && <p className="note info">{note}</p>}
        {result && <TokenTestView result={result} />}
        {problem && <ProblemMessage problem={problem} />}
      </div>
      {!result && !problem && authentication.lastError && (
        <div className="result failed">
          <p className="result-title">
            <span className="badge error">Last error</span> The last token request failed.
          </p>
          <ProblemMessage problem={authentication.lastError} />
        </div>
      )}

      <h3>Event timeline</h3>
      {events === null ? <p className="muted">Loading events…</p> : <EventTimeline items={events} />}
    </section>
  );
}
