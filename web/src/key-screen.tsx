import { type FormEvent, useEffect, useRef, useState } from 'react';
import { type ApiClient, type ProblemView, problemOf } from './api-client.js';
import { ProblemMessage } from './problem-message.js';

interface KeyScreenProps {
  api: ApiClient;
  onAccepted: (key: string) => void;
  /** Shown over the console when a key stops working, so that nothing typed there is lost. */
  expired?: boolean;
  onSignOut?: () => void;
}

/** The first screen: an API key, checked against the API and then kept in this tab only. */
export function KeyScreen({ api, onAccepted, expired = false, onSignOut }: KeyScreenProps) {
  const [key, setKey] = useState('');
  const [checking, setChecking] = useState(false);
  const [problem, setProblem] = useState<ProblemView | null>(null);
  const inputRef = useRef<HTMLInputElement>(null);

  useEffect(() => {
    inputRef.current?.focus();
  }, []);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const candidate = key.trim();
    if (!candidate) {
      setProblem({ code: 'validation_failed', message: 'Enter an API key.' });
      inputRef.current?.focus();
      return;
    }
    setChecking(true);
    try {
      if (await api.checkKey(candidate)) {
        onAccepted(candidate);
        return;
      }
      setProblem({
        code: 'unauthorized',
        message: 'Grantry did not accept this API key.',
        hint: 'Use the key npm start printed when Grantry first started, the one in GRANTRY_API_KEY, or one made with npx grantry api-keys create.',
      });
      inputRef.current?.select();
    } catch (error) {
      setProblem(problemOf(error));
    } finally {
      setChecking(false);
    }
  };

  const errorId = 'api-key-error';
  const card = (
    <main className="key-card">
      <p className="brand">
        <span className="brand-mark" aria-hidden="true">
          G
        </span>
        Grantry
      </p>
      <h1 id="key-title">{expired ? 'Your API key is no longer accepted' : 'Sign in with an API key'}</h1>
      <p className="muted">
        {expired
          ? 'Enter a valid key to continue. Everything you typed is kept.'
          : 'The key is kept in this browser tab only, and is sent to Grantry’s API with each request.'}
      </p>
      {!expired && (
        <p className="muted">
          On its first start, <code>npm start</code> printed one (“Grantry created its first API key”).
          Otherwise use the one in <code>GRANTRY_API_KEY</code>, or make one with{' '}
          <code>npx grantry api-keys create</code>.
        </p>
      )}
      <form onSubmit={(event) => void submit(event)} noValidate>
        <div className={problem ? 'field has-error' : 'field'}>
          <label htmlFor="api-key">API key</label>
          <input
            id="api-key"
            ref={inputRef}
            type="password"
            autoComplete="off"
            spellCheck={false}
            value={key}
            aria-invalid={problem ? true : undefined}
            aria-describedby={problem ? errorId : undefined}
            onChange={(event) => setKey(event.target.value)}
          />
        </div>
        <div id={errorId} role="alert">
          {problem && <ProblemMessage problem={problem} />}
        </div>
        <div className="form-actions">
          <button type="submit" className="button primary" disabled={checking}>
            {checking ? 'Checking…' : 'Continue'}
          </button>
          {expired && onSignOut && (
            <button type="button" className="button ghost" onClick={onSignOut}>
              Sign out
            </button>
          )}
        </div>
      </form>
    </main>
  );
  return expired ? (
    <div className="key-screen overlay" role="dialog" aria-modal="true" aria-labelledby="key-title">
      {card}
    </div>
  ) : (
    <div className="key-screen">{card}</div>
  );
}
