import { createContext, type ReactNode, useCallback, useContext, useEffect, useMemo, useState } from 'react';
import {
  type ApiClient,
  ApiError,
  type AuthenticationView,
  type ConnectorView,
  type ProblemView,
  problemOf,
} from './api-client.js';

interface ConsoleData {
  api: ApiClient;
  authentications: AuthenticationView[] | null;
  connectors: ConnectorView[] | null;
  loadProblem: ProblemView | null;
  reload: () => Promise<void>;
  upsertAuthentication: (view: AuthenticationView) => void;
  removeAuthentication: (id: string) => void;
  upsertConnector: (view: ConnectorView) => void;
  removeConnector: (id: string) => void;
  /** Re-reads one authentication (status, token expiry) and puts it in the list. */
  refreshAuthentication: (id: string) => Promise<AuthenticationView | null>;
}

const ConsoleDataContext = createContext<ConsoleData | null>(null);

function upsert<T extends { id: string }>(items: T[] | null, item: T): T[] {
  const list = items ?? [];
  return list.some((other) => other.id === item.id)
    ? list.map((other) => (other.id === item.id ? item : other))
    : [...list, item];
}

export function ConsoleDataProvider({ api, children }: { api: ApiClient; children: ReactNode }) {
  const [authentications, setAuthentications] = useState<AuthenticationView[] | null>(null);
  const [connectors, setConnectors] = useState<ConnectorView[] | null>(null);
  const [loadProblem, setLoadProblem] = useState<ProblemView | null>(null);

  const reload = useCallback(async () => {
    try {
      // The first 500 of each: enough for every picker; the list pages page through the rest.
      const [auths, cons] = await Promise.all([
        api.listAuthentications({ limit: 500 }),
        api.listConnectors({ limit: 500 }),
      ]);
      setAuthentications(auths.items);
      setConnectors(cons.items);
      setLoadProblem(null);
    } catch (error) {
      // A rejected key is explained by the key dialog; the lists keep what they showed.
      if (error instanceof ApiError && error.status === 401) return;
      setLoadProblem(problemOf(error));
    }
  }, [api]);

  useEffect(() => {
    void reload();
  }, [reload]);

  const refreshAuthentication = useCallback(
    async (id: string) => {
      try {
        const view = await api.getAuthentication(id);
        setAuthentications((items) => upsert(items, view));
        return view;
      } catch {
        return null;
      }
    },
    [api],
  );

  const value = useMemo<ConsoleData>(
    () => ({
      api,
      authentications,
      connectors,
      loadProblem,
      reload,
      upsertAuthentication: (view) => setAuthentications((items) => upsert(items, view)),
      removeAuthentication: (id) => setAuthentications((items) => (items ?? []).filter((a) => a.id !== id)),
      upsertConnector: (view) => setConnectors((items) => upsert(items, view)),
      removeConnector: (id) => setConnectors((items) => (items ?? []).filter((c) => c.id !== id)),
      refreshAuthentication,
    }),
    [api, authentications, connectors, loadProblem, reload, refreshAuthentication],
  );
  return <ConsoleDataContext.Provider value={value}>{children}</ConsoleDataContext.Provider>;
}

export function useConsoleData(): ConsoleData {
  const data = useContext(ConsoleDataContext);
  if (!data) throw new Error('useConsoleData needs a ConsoleDataProvider');
  return data;
}
