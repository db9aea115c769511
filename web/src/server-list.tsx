import { useCallback, useEffect, useRef, useState } from 'react';
import type { ListQuery, ProblemView } from './api-client.js';
import { problemOf } from './api-client.js';

export interface ServerList<T> {
  items: T[];
  /** True while a page is on its way. */
  loading: boolean;
  hasMore: boolean;
  problem: ProblemView | null;
  loadMore: () => void;
}

const PAGE_SIZE = 100;

/**
 * A list read page by page from the server, searched there (`q`), so that the console stays quick
 * with 100,000 rows: the search waits for a pause in typing, and a stale answer never overwrites a
 * newer one. `version` changes when the caller knows the list changed (a create or a delete).
 */
export function useServerList<T>(
  fetchPage: (query: ListQuery) => Promise<{ items: T[]; nextCursor: string | null }>,
  q: string,
  version: number,
  /** False: nothing is read (a search that is not needed, or has no text yet). */
  enabled = true,
): ServerList<T> {
  const [items, setItems] = useState<T[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [problem, setProblem] = useState<ProblemView | null>(null);
  const request = useRef(0);

  const load = useCallback(
    async (from: string | null, replace: boolean) => {
      const mine = ++request.current;
      setLoading(true);
      try {
        const page = await fetchPage({ limit: PAGE_SIZE, cursor: from, q: q.trim() });
        if (mine !== request.current) return;
        setItems((previous) => (replace ? page.items : [...previous, ...page.items]));
        setCursor(page.nextCursor);
        setProblem(null);
      } catch (error) {
        if (mine === request.current) setProblem(problemOf(error));
      } finally {
        if (mine === request.current) setLoading(false);
      }
    },
    [fetchPage, q],
  );

  useEffect(() => {
    void version;
    if (!enabled) {
      request.current += 1;
      setItems([]);
      setCursor(null);
      setLoading(false);
      return;
    }
    const timer = window.setTimeout(() => void load(null, true), q === '' ? 0 : 250);
    return () => window.clearTimeout(timer);
  }, [load, q, version, enabled]);

  return {
    items,
    loading,
    hasMore: cursor !== null,
    problem,
    loadMore: () => {
      if (cursor !== null) void load(cursor, false);
    },
  };
}

/** The search box above a server list: the server matches names containing the text. */
export function ListSearch({
  id,
  label,
  value,
  onChange,
}: {
  id: string;
  label: string;
  value: string;
  onChange: (value: string) => void;
}) {
  return (
    <div className="list-search">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        type="search"
        value={value}
        placeholder="Name contains…"
        autoComplete="off"
        onChange={(event) => onChange(event.target.value)}
      />
    </div>
  );
}

/** "Show more" under a server list while the server has more pages. */
export function ShowMore({ list }: { list: Pick<ServerList<unknown>, 'hasMore' | 'loading' | 'loadMore'> }) {
  if (!list.hasMore) return null;
  return (
    <button
      type="button"
      className="button secondary load-more"
      disabled={list.loading}
      onClick={list.loadMore}
    >
      {list.loading ? 'Loading…' : 'Show more'}
    </button>
  );
}
