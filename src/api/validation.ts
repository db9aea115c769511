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
  keyword: string;
  message?: string | undefined;
  params: Record<string, unknown>;
}

export function schemaErrorsToFieldErrors(errors: readonly SchemaError[]): FieldError[] {
  const out: FieldError[] = [];
  const seen = new Set<string>();
  for (const error of errors) {
    let path = error.instancePath;
    let message = error.message ?? 'is invalid';
    if (error.keyword === 'required' && typeof error.params.missingProperty === 'string') {
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
