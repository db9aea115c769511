import {
  createContext,
  type ReactNode,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
} from 'react';
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
  /**
   * False when the server holds more than the first page read here (500): pickers then search the
   * server, and a name not among them is read by id.
   */
  authenticationsComplete: boolean;
  connectorsComplete: boolean;
  loadProblem: ProblemView | null;
  /**
   * Changes when the lists may have changed (a reload, as after a new API key; a create; a delete),
   * not when an item is only read by id: pages that read lists of their own read them again then.
   */
  listVersion: number;
  reload: () => Promise<void>;
  upsertAuthentication: (view: AuthenticationView) => void;
  removeAuthentication: (id: string) => void;
  upsertConnector: (view: ConnectorView) => void;
  removeConnector: (id: string) => void;
  /** Re-reads one authentication (status, token expiry) and puts it in the list. */
  refreshAuthentication: (id: string) => Promise<AuthenticationView | null>;
  /**
   * Reads an authentication or connector by id when it is not among those loaded (beyond the first
   * page): answers it, or null when it does not exist (or cannot be read now). One request per id.
   */
  ensureAuthentication: (id: string) => Promise<AuthenticationView | null>;
  ensureConnector: (id: string) => Promise<ConnectorView | null>;
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
  const [authenticationsComplete, setAuthenticationsComplete] = useState(true);
  const [connectorsComplete, setConnectorsComplete] = useState(true);
  const [loadProblem, setLoadProblem] = useState<ProblemView | null>(null);
  const [listVersion, setListVersion] = useState(0);
  const bump = useCallback(() => setListVersion((n) => n + 1), []);
  const current = useRef({ authentications, connectors });
  current.current = { authentications, connectors };
  /** Items read by id (beyond the first page): kept across reloads, which only read the first page. */
  const extraAuthentications = useRef(new Map<string, AuthenticationView>());
  const extraConnectors = useRef(new Map<string, ConnectorView>());
  const pending = useRef(new Map<string, Promise<unknown>>());

  const reload = useCallback(async () => {
    try {
      // The first 500 of each, for names and pickers; the list pages page through the rest, and an
      // item beyond them is read by id (ensureAuthentication / ensureConnector).
      const [auths, cons] = await Promise.all([
        api.listAuthentications({ limit: 500 }),
        api.listConnectors({ limit: 500 }),
      ]);
      const withExtras = <T extends { id: string }>(items: T[], extras: Map<string, T>) => {
        const ids = new Set(items.map((item) => item.id));
        return [...items, ...[...extras.values()].filter((item) => !ids.has(item.id))];
      };
      setAuthentications(withExtras(auths.items, extraAuthentications.current));
      setConnectors(withExtras(cons.items, extraConnectors.current));
      setAuthenticationsComplete(auths.nextCursor === null);
      setConnectorsComplete(cons.nextCursor === null);
      setLoadProblem(null);
      bump();
    } catch (error) {
      // A rejected key is explained by the key dialog; the lists keep what they showed.
      if (error instanceof ApiError && error.status === 401) return;
      setLoadProblem(problemOf(error));
    }
  }, [api, bump]);

  useEffect(() => {
    void reload();
  }, [reload]);

  const refreshAuthentication = useCallback(
    async (id: string) => {
      try {
        const view = await api.getAuthentication(id);
        if (extraAuthentications.current.has(view.id)) extraAuthentications.current.set(view.id, view);
        setAuthentications((items) => upsert(items, view));
        return view;
      } catch {
        return null;
      }
    },
    [api],
  );

  /** A failed read is tried again next time (the key was replaced, the server came back); a 404 is not. */
  const forgetUnlessGone = useCallback((key: string, error: unknown): null => {
    if (!(error instanceof ApiError && error.status === 404)) pending.current.delete(key);
    return null;
  }, []);

  /**
   * Reads one item by id, once however many components ask, and keeps it beside the loaded page
   * (an item beyond the first 500, opened from a link or named by another item).
   */
  const ensure = useCallback(
    <T extends { id: string }>(
      key: string,
      read: () => Promise<T>,
      extras: Map<string, T>,
      setItems: (update: (items: T[] | null) => T[]) => void,
    ): Promise<T | null> => {
      const known = pending.current.get(key) as Promise<T | null> | undefined;
      if (known) return known;
      const reading = read().then(
        (view) => {
          extras.set(view.id, view);
          setItems((items) => upsert(items, view));
          return view;
        },
        (error: unknown) => forgetUnlessGone(key, error),
      );
      pending.current.set(key, reading);
      return reading;
    },
    [forgetUnlessGone],
  );

  const ensureAuthentication = useCallback(
    (id: string) =>
      ensure(`auth:${id}`, () => api.getAuthentication(id), extraAuthentications.current, setAuthentications),
    [api, ensure],
  );

  const ensureConnector = useCallback(
    (id: string) => ensure(`con:${id}`, () => api.getConnector(id), extraConnectors.current, setConnectors),
    [api, ensure],
  );

  const value = useMemo<ConsoleData>(
    () => ({
      api,
      authentications,
      connectors,
      authenticationsComplete,
      connectorsComplete,
      loadProblem,
      listVersion,
      reload,
      upsertAuthentication: (view) => {
        if (extraAuthentications.current.has(view.id)) extraAuthentications.current.set(view.id, view);
        if (!current.current.authentications?.some((a) => a.id === view.id)) bump();
        setAuthentications((items) => upsert(items, view));
      },
      removeAuthentication: (id) => {
        extraAuthentications.current.delete(id);
        pending.current.delete(`auth:${id}`);
        bump();
        setAuthentications((items) => (items ?? []).filter((a) => a.id !== id));
      },
      upsertConnector: (view) => {
        if (extraConnectors.current.has(view.id)) extraConnectors.current.set(view.id, view);
        if (!current.current.connectors?.some((c) => c.id === view.id)) bump();
        setConnectors((items) => upsert(items, view));
      },
      removeConnector: (id) => {
        extraConnectors.current.delete(id);
        pending.current.delete(`con:${id}`);
        bump();
        setConnectors((items) => (items ?? []).filter((c) => c.id !== id));
      },
      refreshAuthentication,
      ensureAuthentication,
      ensureConnector,
    }),
    [
      api,
      authentications,
      connectors,
      authenticationsComplete,
      connectorsComplete,
      loadProblem,
      listVersion,
      bump,
      reload,
      refreshAuthentication,
      ensureAuthentication,
      ensureConnector,
    ],
  );
  return <ConsoleDataContext.Provider value={value}>{children}</ConsoleDataContext.Provider>;
}

export function useConsoleData(): ConsoleData {
  const data = useContext(ConsoleDataContext);
  if (!data) throw new Error('useConsoleData needs a ConsoleDataProvider');
  return data;
}

/**
 * Reads by id the authentications and connectors named on screen (a connector's authentication,
 * an authentication's users) that are not among the loaded ones, so names show beyond the first 500.
 */
export function useNamesOf(
  kind: 'authentications' | 'connectors',
  ids: readonly (string | null | undefined)[],
) {
  const data = useConsoleData();
  const loaded = kind === 'authentications' ? data.authentications : data.connectors;
  const ensure = kind === 'authentications' ? data.ensureAuthentication : data.ensureConnector;
  const wanted = [...new Set(ids.filter((id): id is string => typeof id === 'string' && id !== ''))]
    .sort()
    .join(' ');
  useEffect(() => {
    if (loaded === null || wanted === '') return;
    const known = new Set(loaded.map((item) => item.id));
    for (const id of wanted.split(' ')) if (!known.has(id)) void ensure(id);
  }, [loaded, ensure, wanted]);
}
