import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { AnnouncerProvider } from './announcer.js';
import { ApiClient, apiKeyStore } from './api-client.js';
import { AuthorizationPage } from './authorization-page.js';
import { ConnectorsPage } from './connectors-page.js';
import { ConsoleDataProvider, useConsoleData } from './console-data.js';
import { KeyScreen } from './key-screen.js';
import { openedElsewhere, publicUrl } from './public-url.js';
import { StickyStateProvider } from './sticky-state.js';
import { WebhooksPage } from './webhooks-page.js';

type Route = 'authorization' | 'connectors' | 'webhooks';

const routePaths: Record<Route, string> = {
  authorization: '/security/authorization',
  connectors: '/integrations/connectors',
  webhooks: '/settings/webhooks',
};

/** The browser tab's title per page: a person with several tabs open tells them apart. */
const routeTitles: Record<Route, string> = {
  authorization: 'Authorization · Security',
  connectors: 'REST API connectors · Integrations',
  webhooks: 'Webhooks · Settings',
};

function routeOf(pathname: string): Route {
  if (pathname.startsWith(routePaths.connectors)) return 'connectors';
  if (pathname.startsWith(routePaths.webhooks)) return 'webhooks';
  return 'authorization';
}

export function App() {
  const [key, setKey] = useState<string | null>(() => apiKeyStore.read());
  const [keyRejected, setKeyRejected] = useState(false);
  const keyRef = useRef(key);
  keyRef.current = key;
  const api = useMemo(
    () =>
      new ApiClient(
        () => keyRef.current,
        () => setKeyRejected(true),
      ),
    [],
  );

  const accept = (next: string) => {
    apiKeyStore.write(next);
    keyRef.current = next;
    setKey(next);
    setKeyRejected(false);
  };
  const signOut = () => {
    apiKeyStore.clear();
    keyRef.current = null;
    setKey(null);
    setKeyRejected(false);
  };

  return (
    <AnnouncerProvider>
      {key ? (
        <ConsoleDataProvider api={api}>
          <StickyStateProvider>
            <Console onSignOut={signOut} inert={keyRejected} />
          </StickyStateProvider>
          {keyRejected && <KeyScreen api={api} expired onAccepted={accept} onSignOut={signOut} />}
          <ReloadAfterNewKey keyRejected={keyRejected} />
        </ConsoleDataProvider>
      ) : (
        <KeyScreen api={api} onAccepted={accept} />
      )}
    </AnnouncerProvider>
  );
}

/** After a rejected key is replaced, the lists are read again with the new key. */
function ReloadAfterNewKey({ keyRejected }: { keyRejected: boolean }) {
  const { reload } = useConsoleData();
  const wasRejected = useRef(false);
  useEffect(() => {
    if (wasRejected.current && !keyRejected) void reload();
    wasRejected.current = keyRejected;
  }, [keyRejected, reload]);
  return null;
}

function Console({ onSignOut, inert }: { onSignOut: () => void; inert: boolean }) {
  const [route, setRoute] = useState<Route>(() => routeOf(window.location.pathname));
  const mainRef = useRef<HTMLElement>(null);

  // biome-ignore lint/correctness/useExhaustiveDependencies: only the first route is normalised; later ones come from navigate().
  useEffect(() => {
    if (window.location.pathname !== routePaths[route]) {
      window.history.replaceState(null, '', routePaths[route]);
    }
    const onPop = () => setRoute(routeOf(window.location.pathname));
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);

  useEffect(() => {
    document.title = `${routeTitles[route]} — Grantry`;
  }, [route]);

  const navigate = useCallback((next: Route) => {
    window.history.pushState(null, '', routePaths[next]);
    setRoute(next);
    // The new page's heading takes focus so that a screen reader announces where the person is.
    window.setTimeout(() => mainRef.current?.querySelector<HTMLElement>('h1')?.focus(), 0);
  }, []);

  const link = (target: Route, label: string) => (
    <a
      href={routePaths[target]}
      className={route === target ? 'nav-link active' : 'nav-link'}
      aria-current={route === target ? 'page' : undefined}
      onClick={(event) => {
        if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
        event.preventDefault();
        navigate(target);
      }}
    >
      {label}
    </a>
  );

  return (
    <div className="console" inert={inert}>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <aside className="sidebar-nav">
        <p className="brand">
          <span className="brand-mark" aria-hidden="true">
            G
          </span>
          Grantry
        </p>
        <nav aria-label="Main">
          <p className="nav-section" id="nav-security">
            Security
          </p>
          <ul aria-labelledby="nav-security">
            <li>{link('authorization', 'Authorization')}</li>
          </ul>
          <p className="nav-section" id="nav-integrations">
            Integrations
          </p>
          <ul aria-labelledby="nav-integrations">
            <li>{link('connectors', 'REST API connectors')}</li>
          </ul>
          <p className="nav-section" id="nav-settings">
            Settings
          </p>
          <ul aria-labelledby="nav-settings">
            <li>{link('webhooks', 'Webhooks')}</li>
          </ul>
        </nav>
        <div className="nav-footer">
          <button type="button" className="button ghost small" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </aside>
      <main id="main" ref={mainRef} className="content" tabIndex={-1}>
        <OpenedElsewhere />
        {route === 'authorization' ? (
          <AuthorizationPage />
        ) : route === 'connectors' ? (
          <ConnectorsPage />
        ) : (
          <WebhooksPage />
        )}
      </main>
    </div>
  );
}

/** Connect only works from the public URL (its redirect and cookie live there): say so, with a link. */
function OpenedElsewhere() {
  if (!openedElsewhere()) return null;
  const target = `${publicUrl() ?? ''}${window.location.pathname}`;
  return (
    <div className="note warning origin-note" role="note">
      <p>
        You opened Grantry at <strong>{window.location.origin}</strong>, but its public URL
        (GRANTRY_PUBLIC_URL) is <strong>{publicUrl()}</strong>. Connecting Authorization Code authentications
        only works from there, because the provider sends the browser back to that address.{' '}
        <a href={target}>Open Grantry at {publicUrl()}</a>
      </p>
    </div>
  );
}
