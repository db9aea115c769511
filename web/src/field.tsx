import { type ReactNode, type Ref, useCallback, useEffect, useRef, useState } from 'react';
import type { ProblemView } from './api-client.js';
import { ProblemMessage } from './problem-message.js';

/** Messages from a `validation_failed` problem keyed by JSON pointer (`/tokenUrl`). */
export type FieldErrors = Record<string, string>;

export function fieldErrorsOf(problem: ProblemView | null): FieldErrors {
  const result: FieldErrors = {};
  for (const fieldError of problem?.errors ?? []) {
    const path = fieldError.path || '/';
    result[path] = result[path] ? `${result[path]}; ${fieldError.message}` : fieldError.message;
  }
  return result;
}

function decodePointerToken(token: string): string {
  return token.replaceAll('~1', '/').replaceAll('~0', '~');
}

/** "must be an https URL" about "Token URL" reads "Token URL must be an https URL." */
/** Drops the errors reported on a field (and inside it) once the person changes it. */
export function withoutErrorsOf(problem: ProblemView | null, pointer: string): ProblemView | null {
  if (problem?.errors === undefined) return problem;
  const errors = problem.errors.filter((e) => e.path !== pointer && !e.path.startsWith(`${pointer}/`));
  if (errors.length === problem.errors.length) return problem;
  return errors.length === 0 ? null : { ...problem, errors };
}

export function sentence(subject: string, message: string): string {
  const text = /^[a-z]/.test(message) ? `${subject} ${message}` : message;
  return /[.!?)]$/.test(text) ? text : `${text}.`;
}

/** The error for a field, including errors reported inside it (`/headers/Host` → `/headers`). */
export function errorFor(errors: FieldErrors, pointer: string, label: string): string | undefined {
  const own = errors[pointer];
  const nested = Object.entries(errors)
    .filter(([path]) => path.startsWith(`${pointer}/`))
    .map(([path, message]) => sentence(decodePointerToken(path.slice(pointer.length + 1)), message));
  const all = [own ? sentence(label, own) : undefined, ...nested].filter((text): text is string =>
    Boolean(text),
  );
  return all.length > 0 ? all.join(' ') : undefined;
}

export interface SummaryField {
  pointer: string;
  label: string;
  id: string;
}

interface ErrorSummaryProps {
  problem: ProblemView | null;
  summaryRef: Ref<HTMLDivElement>;
  fields: SummaryField[];
  /** Makes a field visible before focus moves to it (e.g. opens a collapsed section). */
  onReveal?: (pointer: string) => void;
}

function focusField(id: string): void {
  const element = document.getElementById(id);
  if (!element) return;
  const focusable = element.matches('input, select, textarea, button')
    ? element
    : element.querySelector<HTMLElement>('input:checked, input, select, textarea, button');
  focusable?.focus();
}

/**
 * After a failed save: focus goes to the first field in error, in the order the form shows them
 * (the summary above it is a live alert, so it is read all the same); to the summary itself when
 * no shown field is in error (a conflict, a provider's refusal).
 */
export function focusFirstError(form: HTMLElement | null, summary: HTMLElement | null): void {
  // The first marked control, field or error message in document order (no :has(), which older
  // browsers refuse as a whole selector list).
  const first = form?.querySelector<HTMLElement>('[aria-invalid="true"], .has-error, .field-error');
  const field = first?.classList.contains('field-error')
    ? first.closest<HTMLElement>('.field, fieldset')
    : (first ?? null);
  const target =
    field === null || field === undefined
      ? null
      : field.matches('input, select, textarea')
        ? field
        : field.querySelector<HTMLElement>(
            'input:checked, input:not([type="hidden"]), select, textarea, button',
          );
  if (target) {
    target.focus();
    target.scrollIntoView?.({ block: 'center' });
  } else {
    summary?.focus();
  }
}

/**
 * `focusFirstError` once the failed save's errors are on screen: the returned function asks for it,
 * and it happens after React has rendered them (a timer may run before that render).
 */
export function useFocusFirstError(
  form: () => HTMLElement | null,
  summary: { readonly current: HTMLElement | null },
): () => void {
  const [requests, setRequests] = useState(0);
  const formRef = useRef(form);
  formRef.current = form;
  useEffect(() => {
    if (requests > 0) focusFirstError(formRef.current(), summary.current);
  }, [requests, summary]);
  return useCallback(() => setRequests((n) => n + 1), []);
}

/**
 * What failed, at the top of a form: the problem in words, then each field error as a link that
 * moves focus to its field. It takes focus after a failed save so a screen reader reads it.
 */
export function ErrorSummary({ problem, summaryRef, fields, onReveal }: ErrorSummaryProps) {
  const errors = problem?.errors ?? [];
  return (
    <div ref={summaryRef} tabIndex={-1} className="form-summary" role={problem ? 'alert' : undefined}>
      {problem && (
        <div className="error-summary">
          <ProblemMessage problem={problem} showFieldErrors={false} />
          {errors.length > 0 && (
            <ul className="error-links">
              {errors.map((fieldError) => {
                const target = fields.find(
                  (f) => fieldError.path === f.pointer || fieldError.path.startsWith(`${f.pointer}/`),
                );
                const subject = target
                  ? fieldError.path === target.pointer
                    ? target.label
                    : `${target.label} › ${decodePointerToken(fieldError.path.slice(target.pointer.length + 1))}`
                  : fieldError.path || 'The request';
                const text = sentence(subject, fieldError.message);
                return (
                  <li key={`${fieldError.path}:${fieldError.message}`}>
                    {target ? (
                      <a
                        href={`#${target.id}`}
                        onClick={(event) => {
                          event.preventDefault();
                          onReveal?.(target.pointer);
                          window.setTimeout(() => focusField(target.id), 0);
                        }}
                      >
                        {text}
                      </a>
                    ) : (
                      <span>{text}</span>
                    )}
                  </li>
                );
              })}
            </ul>
          )}
        </div>
      )}
    </div>
  );
}

interface TextFieldProps {
  id: string;
  label: ReactNode;
  value: string;
  onChange: (value: string) => void;
  error?: string | undefined;
  hint?: ReactNode;
  optional?: boolean;
  type?: 'text' | 'url' | 'password' | 'number';
  placeholder?: string | undefined;
  autoComplete?: string;
  inputMode?: 'text' | 'url' | 'numeric' | undefined;
  inputRef?: Ref<HTMLInputElement>;
  trailing?: ReactNode;
  readOnly?: boolean;
}

/**
 * A field's label, hint and error around its control, tied to it for screen readers: the control
 * names `describedBy` as its aria-describedby.
 */
function FieldFrame(props: {
  id: string;
  label: ReactNode;
  hint?: ReactNode;
  error?: string | undefined;
  optional?: boolean | undefined;
  children: (describedBy: string | undefined) => ReactNode;
}) {
  const { id, label, hint, error, optional } = props;
  const describedBy = [hint ? `${id}-hint` : '', error ? `${id}-error` : ''].filter(Boolean).join(' ');
  return (
    <div className={error ? 'field has-error' : 'field'}>
      <label htmlFor={id}>
        {label}
        {optional ? <span className="optional"> (optional)</span> : null}
      </label>
      {hint && (
        <p className="field-hint" id={`${id}-hint`}>
          {hint}
        </p>
      )}
      {props.children(describedBy || undefined)}
      {error && (
        <p className="field-error" id={`${id}-error`}>
          <span aria-hidden="true">⚠ </span>
          {error}
        </p>
      )}
    </div>
  );
}

/** A labelled input whose hint and error are tied to it for screen readers. */
export function TextField(props: TextFieldProps) {
  const { id, value, onChange, error, optional, type = 'text', placeholder } = props;
  return (
    <FieldFrame id={id} label={props.label} hint={props.hint} error={error} optional={optional}>
      {(describedBy) => (
        <div className="input-row">
          <input
            id={id}
            ref={props.inputRef}
            type={type}
            value={value}
            placeholder={placeholder}
            autoComplete={props.autoComplete ?? 'off'}
            inputMode={props.inputMode}
            spellCheck={false}
            readOnly={props.readOnly}
            aria-required={optional ? undefined : true}
            aria-invalid={error ? true : undefined}
            aria-describedby={describedBy}
            onChange={(event) => onChange(event.target.value)}
          />
          {props.trailing}
        </div>
      )}
    </FieldFrame>
  );
}

interface TextAreaFieldProps {
  id: string;
  label: ReactNode;
  value: string;
  onChange: (value: string) => void;
  error?: string | undefined;
  hint?: ReactNode;
  optional?: boolean;
  placeholder?: string | undefined;
  trailing?: ReactNode;
}

/** A labelled text area (a PEM certificate or key, a key file), its hint and error tied to it. */
export function TextAreaField(props: TextAreaFieldProps) {
  const { id, value, onChange, error, optional, placeholder } = props;
  return (
    <FieldFrame id={id} label={props.label} hint={props.hint} error={error} optional={optional}>
      {(describedBy) => (
        <>
          <textarea
            id={id}
            className="mono"
            rows={6}
            value={value}
            placeholder={placeholder}
            spellCheck={false}
            autoComplete="off"
            aria-required={optional ? undefined : true}
            aria-invalid={error ? true : undefined}
            aria-describedby={describedBy}
            onChange={(event) => onChange(event.target.value)}
          />
          {props.trailing}
        </>
      )}
    </FieldFrame>
  );
}
