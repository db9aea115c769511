/**
 * The one error shape of Grantry (docs/api.md "Errors"). Every layer throws a `Problem` (or a subclass)
 * when it knows what went wrong; the HTTP layer renders it as `{ "error": … }` unchanged.
 *
 * `message` and `hint` are for people and must never contain a secret, token, code or password:
 * build them from fixed text and from values the user configured in the clear (URLs, names).
 */
/** Every error code Grantry answers with; docs/errors.md documents each (a test keeps them in step). */
export const PROBLEM_CODES = [
  'validation_failed',
  'insecure_url',
  'unauthorized',
  'forbidden',
  'not_found',
  'conflict',
  'payload_too_large',
  'rate_limited',
  'invalid_client',
  'invalid_grant',
  'invalid_scope',
  'invalid_redirect_uri',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_request',
  'invalid_target',
  'access_denied',
  'token_fetch_failed',
  'invalid_dpop_proof',
  'needs_authorization',
  'upstream_unauthorized',
  'upstream_forbidden',
  'egress_denied',
  'upstream_failed',
  'server_busy',
  'wrong_master_key',
  'invalid_state',
  'refresh_lock_timeout',
  'not_supported',
  'internal_error',
] as const;

export type ProblemCode = (typeof PROBLEM_CODES)[number];

/** One validation problem: a JSON pointer into the request and what is wrong there. */
export interface FieldError {
  path: string;
  message: string;
}

/** What a provider or upstream API said, safe to show (no tokens, no secrets). */
export interface ProviderAnswer {
  status?: number;
  error?: string;
  errorDescription?: string;
  errorUri?: string;
  wwwAuthenticate?: string;
}

export interface ProblemBody {
  code: ProblemCode;
  message: string;
  hint?: string;
  errors?: FieldError[];
  provider?: ProviderAnswer;
}

export class Problem extends Error {
  readonly code: ProblemCode;
  readonly hint: string | undefined;
  readonly errors: FieldError[] | undefined;
  readonly provider: ProviderAnswer | undefined;
  /** HTTP status when this problem is the answer to a management route. */
  readonly status: number;
  /** Sent as `Retry-After` (RFC 9110 §10.2.3) with the answer, when the problem will pass. */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    code: ProblemCode,
    message: string,
    options: {
      hint?: string | undefined;
      errors?: FieldError[] | undefined;
      provider?: ProviderAnswer | undefined;
      status?: number;
      retryAfterSeconds?: number;
      cause?: unknown;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'Problem';
    this.code = code;
    this.hint = options.hint;
    this.errors = options.errors;
    this.provider = options.provider;
    this.status = options.status ?? defaultStatus(code);
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  /**
   * A problem again from its body, as stored (a shared token failure read by another instance).
   * An unreadable body becomes an `internal_error` rather than a crash on the token path.
   */
  static fromBody(body: unknown): Problem {
    const value = (typeof body === 'object' && body !== null ? body : {}) as Partial<ProblemBody>;
    if (typeof value.code !== 'string' || !(PROBLEM_CODES as readonly string[]).includes(value.code)) {
      return new Problem('internal_error', 'A stored failure could not be read.');
    }
    return new Problem(value.code, typeof value.message === 'string' ? value.message : '', {
      hint: typeof value.hint === 'string' ? value.hint : undefined,
      errors: Array.isArray(value.errors) ? value.errors : undefined,
      provider: typeof value.provider === 'object' && value.provider !== null ? value.provider : undefined,
    });
  }

  toJSON(): ProblemBody {
    const body: ProblemBody = { code: this.code, message: this.message };
    if (this.hint !== undefined) body.hint = this.hint;
    if (this.errors !== undefined) body.errors = this.errors;
    if (this.provider !== undefined) body.provider = this.provider;
    return body;
  }
}

export function defaultStatus(code: ProblemCode): number {
  switch (code) {
    case 'validation_failed':
    case 'insecure_url':
    case 'invalid_state':
      return 400;
    case 'unauthorized':
      return 401;
    case 'forbidden':
      return 403;
    case 'not_found':
      return 404;
    case 'conflict':
      return 409;
    case 'payload_too_large':
      return 413;
    case 'needs_authorization':
      return 424;
    case 'rate_limited':
      return 429;
    case 'not_supported':
      return 400;
    case 'internal_error':
    case 'wrong_master_key':
      return 500;
    case 'server_busy':
    case 'refresh_lock_timeout':
      return 503;
    default:
      // Provider and upstream failures: the gateway could not do its job.
      return 502;
  }
}
