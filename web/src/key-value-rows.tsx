import type { ReactNode } from 'react';

export interface KeyValueRow {
  id: number;
  key: string;
  value: string;
}

let nextRowId = 1;

export function newRow(key = '', value = ''): KeyValueRow {
  nextRowId += 1;
  return { id: nextRowId, key, value };
}

export function rowsFromRecord(record: Record<string, string> | undefined): KeyValueRow[] {
  return Object.entries(record ?? {}).map(([key, value]) => newRow(key, value));
}

/** Rows with an empty name are drafts the person has not finished; they are not sent. */
export function recordFromRows(rows: KeyValueRow[]): Record<string, string> {
  const record: Record<string, string> = {};
  for (const row of rows) {
    const key = row.key.trim();
    if (key) record[key] = row.value;
  }
  return record;
}

interface KeyValueRowsProps {
  idPrefix: string;
  legend: string;
  keyLabel: string;
  valueLabel: string;
  addLabel: string;
  rows: KeyValueRow[];
  onChange: (rows: KeyValueRow[]) => void;
  error?: string | undefined;
  description?: string;
  /** Values are secrets: typed into password inputs, never shown back. */
  secretValues?: boolean;
  /** Extra content under a row (e.g. an offer to move it elsewhere). */
  rowNote?: (row: KeyValueRow) => ReactNode;
}

/** Editable name/value pairs (headers, query parameters, extra OAuth parameters). */
export function KeyValueRows(props: KeyValueRowsProps) {
  const { idPrefix, legend, keyLabel, valueLabel, addLabel, rows, onChange, error, description } = props;
  const valueType = props.secretValues === true ? 'password' : 'text';
  const update = (id: number, change: Partial<KeyValueRow>) =>
    onChange(rows.map((row) => (row.id === id ? { ...row, ...change } : row)));
  const describedBy = [description ? `${idPrefix}-desc` : '', error ? `${idPrefix}-error` : '']
    .filter(Boolean)
    .join(' ');
  return (
    <fieldset className="kv" aria-describedby={describedBy || undefined} id={idPrefix}>
      <legend>{legend}</legend>
      {description && (
        <p className="field-hint" id={`${idPrefix}-desc`}>
          {description}
        </p>
      )}
      {rows.length > 0 && (
        <div className="kv-rows">
          {rows.map((row, index) => (
            <div className="kv-row" key={row.id}>
              <label className="visually-hidden" htmlFor={`${idPrefix}-${row.id}-key`}>
                {keyLabel} {index + 1}
              </label>
              <input
                id={`${idPrefix}-${row.id}-key`}
                type="text"
                placeholder={keyLabel}
                value={row.key}
                autoComplete="off"
                spellCheck={false}
                onChange={(event) => update(row.id, { key: event.target.value })}
              />
              <label className="visually-hidden" htmlFor={`${idPrefix}-${row.id}-value`}>
                {valueLabel} {index + 1}
              </label>
              <input
                id={`${idPrefix}-${row.id}-value`}
                type={valueType}
                placeholder={valueLabel}
                value={row.value}
                autoComplete={props.secretValues === true ? 'new-password' : 'off'}
                spellCheck={false}
                onChange={(event) => update(row.id, { value: event.target.value })}
              />
              <button
                type="button"
                className="button ghost icon"
                aria-label={`Remove ${keyLabel.toLowerCase()} ${row.key || index + 1}`}
                onClick={() => onChange(rows.filter((other) => other.id !== row.id))}
              >
                ×
              </button>
              {props.rowNote?.(row)}
            </div>
          ))}
        </div>
      )}
      <button type="button" className="button ghost small" onClick={() => onChange([...rows, newRow()])}>
        + {addLabel}
      </button>
      {error && (
        <p className="field-error" id={`${idPrefix}-error`}>
          {error}
        </p>
      )}
    </fieldset>
  );
}
