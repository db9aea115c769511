/** The store reports a duplicate name with an error named UniqueViolation (src/store). */
export function isUniqueViolation(error: unknown): boolean {
  return error instanceof Error && error.name === 'UniqueViolation';
}
