import type { FastifyRequest } from 'fastify';
import { type FieldError, Problem } from '../problem.js';
import { type SchemaError, schemaErrorsToFieldErrors } from './validation.js';

/**
 * Routes validate with `attachValidation: true`, so the schema's findings and the semantic
 * rules' findings go out in one `validation_failed` listing every problem.
 */
export function schemaErrorsOf(request: FastifyRequest): FieldError[] {
  const error = request.validationError as (Error & { validation?: SchemaError[] }) | undefined;
  if (error?.validation === undefined) return [];
  return schemaErrorsToFieldErrors(error.validation);
}

/** Throws `validation_failed` with both lists; a rule error on a path the schema already flagged is dropped. */
export function failIfInvalid(
  schemaErrors: FieldError[],
  ruleErrors: FieldError[],
  insecureOnly = false,
): void {
  if (schemaErrors.length === 0 && ruleErrors.length === 0) return;
  const flagged = new Set(schemaErrors.map((e) => e.path));
  const errors = [...schemaErrors, ...ruleErrors.filter((e) => !flagged.has(e.path))];
  if (errors.length === 0) return;
  if (insecureOnly && schemaErrors.length === 0) {
    throw new Problem('insecure_url', 'OAuth endpoints and API base URLs must use https.', {
      errors,
      hint: 'Use the https URL. For a local test server on this machine, set GRANTRY_ALLOW_HTTP=loopback.',
    });
  }
  throw new Problem('validation_failed', 'The request is not valid.', { errors });
}

/** A plain JSON object, or an empty one (the schema has already said what is wrong with it). */
export function objectBody(body: unknown): Record<string, unknown> {
  return typeof body === 'object' && body !== null && !Array.isArray(body)
    ? (body as Record<string, unknown>)
    : {};
}

/** Reads only the fields whose type is right, so rules can run beside schema errors. */
export function typedFields<T>(
  body: Record<string, unknown>,
  types: Record<string, 'string' | 'boolean' | 'object' | 'number'>,
): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const key in types) {
    const type = types[key];
    const value = body[key];
    if (value === undefined) continue;
    if (type === 'object') {
      if (typeof value === 'object' && value !== null && !Array.isArray(value) && allStrings(value)) {
        out[key] = value;
      }
    } else if (typeof value === type) {
      out[key] = value;
    }
  }
  return out as Partial<T>;
}

function allStrings(value: object): boolean {
  for (const field of Object.values(value)) if (typeof field !== 'string') return false;
  return true;
}
