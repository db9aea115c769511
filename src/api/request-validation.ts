import type { FastifyRequest } from 'fastify';
import type { FieldError } from '../problem.js';
import { type SchemaError, schemaErrorsToFieldErrors } from './validation.js';

/**
 * Routes validate with `attachValidation: true` and hand the schema's findings to the service,
 * whose rules add theirs, so that one `validation_failed` lists every problem at once.
 */
export function schemaErrorsOf(request: FastifyRequest, prefix = ''): FieldError[] {
  const error = request.validationError as (Error & { validation?: SchemaError[] }) | undefined;
  if (error?.validation === undefined) return [];
  return schemaErrorsToFieldErrors(error.validation).map((e) => ({ ...e, path: `${prefix}${e.path}` }));
}

/** A plain JSON object, or an empty one (the schema has already said what is wrong with it). */
export function objectBody(body: unknown): Record<string, unknown> {
  return typeof body === 'object' && body !== null && !Array.isArray(body)
    ? (body as Record<string, unknown>)
    : {};
}
