import { type FieldError, Problem } from '../problem.js';
import { hasControlCharacters } from './field-checks.js';

/** The page sizes a list accepts (docs/api.md "Authentications": limit 1–500, default 100). */
export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 500;

export interface Page<T> {
  items: T[];
  /** Give it back as `cursor` for the next page; null on the last one. */
  nextCursor: string | null;
}

/**
 * An opaque cursor: the name and id of the last item of a page (lists are ordered by name, then
 * id). Opaque so that clients do not build one, and the order can change without breaking them.
 */
export function encodeCursor(last: { name: string; id: string }): string {
  return Buffer.from(JSON.stringify([last.name, last.id]), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string | undefined): { name: string; id: string } | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      typeof value[0] === 'string' &&
      typeof value[1] === 'string' &&
      // Not one of ours, and PostgreSQL would refuse it as text (a 500 in the page query).
      !value.some((part) => part.includes('\u0000') || !isWellFormed(part))
    ) {
      return { name: value[0], id: value[1] };
    }
  } catch {
    // not one of ours; said below
  }
  throw new Problem('validation_failed', 'The request is not valid.', {
    errors: [{ path: '/query/cursor', message: 'is not a cursor this list gave; start again without it' }],
  });
}

function isWellFormed(text: string): boolean {
  // String.prototype.isWellFormed: Node 20; TypeScript's ES2023 lib does not declare it.
  return (text as string & { isWellFormed(): boolean }).isWellFormed();
}

/**
 * What is wrong with a list's search text `q`: names never contain control characters, so a search
 * for one finds nothing; NUL in particular cannot even be sent to PostgreSQL (text values refuse it:
 * the query failed with a 500), so it is refused on every engine alike.
 */
export function searchTextProblems(q: unknown): FieldError[] {
  // Not a string (`q=a&q=b`): the schema has said so.
  if (typeof q !== 'string') return [];
  if (hasControlCharacters(q)) {
    return [{ path: '/query/q', message: 'must not contain control characters (names never do)' }];
  }
  if (!isWellFormed(q)) {
    return [{ path: '/query/q', message: 'must be valid Unicode text' }];
  }
  return [];
}

/**
 * A page from `limit + 1` rows: the extra row only says that there is more, and the cursor points
 * at the last row shown.
 */
export function pageOf<R extends { name: string; id: string }, T>(
  rows: R[],
  limit: number,
  view: (rows: R[]) => T[],
): Page<T> {
  const shown = rows.slice(0, limit);
  const last = shown.at(-1);
  return {
    items: view(shown),
    nextCursor: rows.length > limit && last !== undefined ? encodeCursor(last) : null,
  };
}
