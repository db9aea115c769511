import type { FieldError } from '../problem.js';
import { escapePointer } from '../services/field-checks.js';

/**
 * Request validation shared by the routes: the schema (TypeBox/Ajv) finds type errors, these
 * rules find the semantic ones, and both lists go out together so a person sees every problem at
 * once.
 */

/** An Ajv error, as much of it as we read. */
export interface SchemaError {
  instancePath: string;
  /** Where in the schema the failed keyword is (`#/properties/x/anyOf/0/type`). */
  schemaPath?: string | undefined;
  keyword: string;
  message?: string | undefined;
  params: Record<string, unknown>;
}

/**
 * A Nullable field (TypeBox `anyOf [T, null]`) that fails reports three errors: T's, "must be
 * null", and "must match a schema in anyOf". Only T's says what to fix; the null branch and the
 * union are dropped, and a wrong JSON type reads "must be string or null".
 */
function collapseNullable(errors: readonly SchemaError[]): {
  kept: SchemaError[];
  messages: Map<SchemaError, string>;
} {
  const dropped = new Set<SchemaError>();
  const messages = new Map<SchemaError, string>();
  for (const union of errors) {
    if (union.keyword !== 'anyOf') continue;
    const inBranch = (e: SchemaError) =>
      e !== union &&
      (union.schemaPath !== undefined && e.schemaPath !== undefined
        ? e.schemaPath.startsWith(`${union.schemaPath}/`)
        : e.instancePath.startsWith(union.instancePath));
    const branches = errors.filter(inBranch);
    const nullBranch = branches.filter(
      (e) => e.keyword === 'type' && e.params.type === 'null' && e.instancePath === union.instancePath,
    );
    if (nullBranch.length === 0) continue;
    for (const e of nullBranch) dropped.add(e);
    const others = branches.filter((e) => !nullBranch.includes(e));
    // Nothing else failed (cannot happen with a failed anyOf, but then the union says it).
    if (others.length === 0) continue;
    dropped.add(union);
    for (const e of others) {
      if (e.keyword === 'type' && e.instancePath === union.instancePath) {
        messages.set(e, `must be ${String(e.params.type)} or null`);
      }
    }
  }
  return { kept: errors.filter((e) => !dropped.has(e)), messages };
}

export function schemaErrorsToFieldErrors(all: readonly SchemaError[]): FieldError[] {
  const out: FieldError[] = [];
  const seen = new Set<string>();
  const { kept: errors, messages } = collapseNullable(all);
  for (const error of errors) {
    let path = error.instancePath;
    let message = error.message ?? 'is invalid';
    const collapsed = messages.get(error);
    if (collapsed !== undefined) {
      message = collapsed;
    } else if (error.keyword === 'required' && typeof error.params.missingProperty === 'string') {
      path = `${path}/${escapePointer(error.params.missingProperty)}`;
      message = 'is required';
    } else if (
      error.keyword === 'additionalProperties' &&
      typeof error.params.additionalProperty === 'string'
    ) {
      path = `${path}/${escapePointer(error.params.additionalProperty)}`;
      message = 'is not a known field';
    } else if (error.keyword === 'anyOf' || error.keyword === 'const') {
      // Unions of literals report each branch; one line saying what is allowed is enough.
      message = 'is not one of the allowed values';
    } else if (error.keyword === 'type') {
      message = `must be ${String(error.params.type)}`;
    }
    const key = `${path}\u0000${message}`;
    if (seen.has(key)) continue;
    // A failed literal branch under anyOf repeats the anyOf error for the same path.
    if (
      error.keyword === 'const' &&
      errors.some((e) => e.keyword === 'anyOf' && e.instancePath === error.instancePath)
    )
      continue;
    seen.add(key);
    out.push({ path, message });
  }
  return out;
}

export { escapePointer } from '../services/field-checks.js';
