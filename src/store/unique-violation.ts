/** The names that must be unique, as the API reports them (409 conflict). */
export type UniqueConstraint = 'authentication_name' | 'connector_name';

/** Thrown by the store when an insert or update would give two rows the same unique name. */
export class UniqueViolation extends Error {
  readonly constraint: UniqueConstraint;

  constructor(constraint: UniqueConstraint, options?: ErrorOptions) {
    super(`unique constraint violated: ${constraint}`, options);
    this.name = 'UniqueViolation';
    this.constraint = constraint;
  }
}
