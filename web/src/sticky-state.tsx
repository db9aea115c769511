import {
  createContext,
  type Dispatch,
  type ReactNode,
  type SetStateAction,
  useContext,
  useEffect,
  useState,
} from 'react';

const StickyStateContext = createContext<Map<string, unknown> | null>(null);

/** Holds page state across navigation in the console, so that moving between pages loses nothing typed. */
export function StickyStateProvider({ children }: { children: ReactNode }) {
  const [store] = useState(() => new Map<string, unknown>());
  return <StickyStateContext.Provider value={store}>{children}</StickyStateContext.Provider>;
}

/** `useState` whose value outlives the component: it is there again when the page is shown again. */
export function useStickyState<T>(key: string, initial: () => T): [T, Dispatch<SetStateAction<T>>] {
  const store = useContext(StickyStateContext);
  const [value, setValue] = useState<T>(() => (store?.has(key) ? (store.get(key) as T) : initial()));
  useEffect(() => {
    store?.set(key, value);
  }, [store, key, value]);
  return [value, setValue];
}

/** Asks the browser to confirm leaving the page while a form holds unsaved input. */
export function useUnsavedChangesGuard(unsaved: boolean): void {
  useEffect(() => {
    if (!unsaved) return;
    const onBeforeUnload = (event: BeforeUnloadEvent) => {
      event.preventDefault();
    };
    window.addEventListener('beforeunload', onBeforeUnload);
    return () => window.removeEventListener('beforeunload', onBeforeUnload);
  }, [unsaved]);
}
