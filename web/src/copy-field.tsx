import { type ReactNode, useRef, useState } from 'react';
import { useAnnounce } from './announcer.js';

interface CopyFieldProps {
  id: string;
  label: string;
  value: string;
  /** Shown under the label (what to do with the value); also describes the input. */
  hint?: ReactNode;
  /** Shown under the input. */
  footer?: ReactNode;
  className?: string;
  /** A value over several lines (a PEM, a JWK): shown in a read-only text area. */
  multiline?: boolean;
}

/**
 * A value to take elsewhere (a redirect URI to register, a secret shown once, a link to send): read
 * only, selected on focus, with a Copy button that says it copied.
 */
export function CopyField({ id, label, value, hint, footer, className, multiline }: CopyFieldProps) {
  const announce = useAnnounce();
  const inputRef = useRef<HTMLInputElement & HTMLTextAreaElement>(null);
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
    } catch {
      // Without clipboard permission, select the text so that Ctrl+C copies it.
      inputRef.current?.select();
    }
    setCopied(true);
    announce(`${label} copied`);
    window.setTimeout(() => setCopied(false), 2000);
  };
  return (
    <div className={className ? `field ${className}` : 'field'}>
      <label htmlFor={id}>{label}</label>
      {hint && (
        <p className="field-hint" id={`${id}-hint`}>
          {hint}
        </p>
      )}
      <div className="input-row">
        {multiline ? (
          <textarea
            id={id}
            ref={inputRef}
            readOnly
            value={value}
            className="mono"
            rows={Math.min(12, value.split('\n').length)}
            spellCheck={false}
            aria-describedby={hint ? `${id}-hint` : undefined}
            onFocus={(event) => event.target.select()}
          />
        ) : (
          <input
            id={id}
            ref={inputRef}
            type="text"
            readOnly
            value={value}
            className="mono"
            aria-describedby={hint ? `${id}-hint` : undefined}
            onFocus={(event) => event.target.select()}
          />
        )}
        <button
          type="button"
          className="button secondary"
          // Several Copy buttons share a panel: each names what it copies.
          aria-label={`${copied ? 'Copied' : 'Copy'} ${label}`}
          onClick={() => void copy()}
        >
          {copied ? 'Copied' : 'Copy'}
        </button>
      </div>
      {footer && <p className="field-hint">{footer}</p>}
    </div>
  );
}
