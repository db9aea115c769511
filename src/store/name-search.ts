/**
 * Case-insensitive name search that gives the same answer on every engine. SQL `lower()` does not:
 * SQLite's folds ASCII only ("Émile" is not found by "émile"), and PostgreSQL's depends on the
 * database's LC_CTYPE (ASCII only under the C locale). So names are folded here, once, when they are
 * written (the `name_folded` column, migration `0009_name_search`), the search text is folded the
 * same way, and the engines compare plain strings with LIKE.
 */

/** Unicode default case folding as JavaScript does it (locale-independent), on the NFC form. */
export function foldForSearch(text: string): string {
  return text.normalize('NFC').toLowerCase();
}

/** A LIKE pattern matching `text` anywhere, folded, with LIKE's own wildcards escaped (ESCAPE '\\'). */
export function containsPattern(text: string): string {
  return `%${foldForSearch(text).replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}
