import { createContext, type ReactNode, useCallback, useContext, useMemo, useState } from 'react';

type Announce = (message: string) => void;

const AnnouncerContext = createContext<Announce>(() => {});

/**
 * One polite live region for short confirmations ("Authentication saved") so that a screen reader
 * hears the outcome of an action without focus being moved away from where the person works.
 */
export function AnnouncerProvider({ children }: { children: ReactNode }) {
  const [message, setMessage] = useState('');
  const announce = useCallback<Announce>((text) => {
    // Clearing first makes a repeated message ("Copied") announced again.
    setMessage('');
    window.setTimeout(() => setMessage(text), 50);
  }, []);
  const value = useMemo(() => announce, [announce]);
  return (
    <AnnouncerContext.Provider value={value}>
      {children}
      <div className="visually-hidden" role="status" aria-live="polite" aria-atomic="true">
        {message}
      </div>
    </AnnouncerContext.Provider>
  );
}

export function useAnnounce(): Announce {
  return useContext(AnnouncerContext);
}
