import { type RefObject, useEffect, useRef } from 'react';

/**
 * Brings an outcome into view when it arrives: a test result appears below the button that asked
 * for it, often below the fold of the panel, where a person would not know it had come.
 * `outcome` is whatever changes with each new result (the result object itself).
 */
export function useRevealOnChange<T extends HTMLElement>(outcome: unknown): RefObject<T | null> {
  const ref = useRef<T>(null);
  useEffect(() => {
    if (outcome === null || outcome === undefined) return;
    const smooth = window.matchMedia('(prefers-reduced-motion: no-preference)').matches;
    ref.current?.scrollIntoView({ block: 'nearest', behavior: smooth ? 'smooth' : 'auto' });
  }, [outcome]);
  return ref;
}
