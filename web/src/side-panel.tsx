import { type ReactNode, useEffect, useRef } from 'react';

interface SidePanelProps {
  /** Changes when the panel shows another item, so that focus moves to the new heading. */
  panelKey: string;
  title: string;
  eyebrow?: string;
  headerExtra?: ReactNode;
  onClose: () => void;
  children: ReactNode;
}

/**
 * The configuration sidebar. Focus moves to its heading when it opens (so a screen reader announces
 * it) and returns to what opened it when it closes; Escape closes it. It is not modal: the list
 * beside it stays usable, and whatever was typed in the panel is kept by its owner.
 */
export function SidePanel({ panelKey, title, eyebrow, headerExtra, onClose, children }: SidePanelProps) {
  const headingRef = useRef<HTMLHeadingElement>(null);
  const openerRef = useRef<Element | null>(null);
  const closeRef = useRef(onClose);
  closeRef.current = onClose;

  useEffect(() => {
    void panelKey;
    if (!openerRef.current) openerRef.current = document.activeElement;
    headingRef.current?.focus();
  }, [panelKey]);

  useEffect(() => {
    const onKeyDown = (event: KeyboardEvent) => {
      if (event.key !== 'Escape' || event.defaultPrevented) return;
      const target = event.target as HTMLElement | null;
      // Escape inside a native popup (select) belongs to that control.
      if (target?.tagName === 'SELECT') return;
      closeRef.current();
    };
    document.addEventListener('keydown', onKeyDown);
    return () => {
      document.removeEventListener('keydown', onKeyDown);
      const opener = openerRef.current;
      if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
    };
  }, []);

  return (
    <section className="side-panel" role="dialog" aria-modal="false" aria-labelledby="side-panel-title">
      <header className="side-panel-header">
        <div>
          {eyebrow && <p className="eyebrow">{eyebrow}</p>}
          <h2 id="side-panel-title" ref={headingRef} tabIndex={-1}>
            {title}
          </h2>
          {headerExtra}
        </div>
        <button type="button" className="button ghost icon" aria-label="Close panel" onClick={onClose}>
          ×
        </button>
      </header>
      <div className="side-panel-body">{children}</div>
    </section>
  );
}
