import { headerValueProblem } from '../connectors/http-headers.js';
import type { FieldError } from '../problem.js';
import {
  type AllowHttp,
  checkUrl,
  escapePointer,
  HEADER_NAME,
  hasControlCharacters,
  type RuleResult,
} from './field-checks.js';

/** A connector as it will be stored (for a PATCH: the stored one with the patch applied). */
export interface ConnectorDraft {
  name?: string | undefined;
  baseUrl?: string | undefined;
  authenticationId?: string | null | undefined;
  headers?: Record<string, string> | undefined;
  /** The secret headers given in this request (in the clear), by name as given. */
  secretHeaders?: Record<string, string> | undefined;
  /** Lower-case names of the secret headers kept from the stored connector. */
  storedSecretHeaders?: ReadonlySet<string> | undefined;
  query?: Record<string, string> | undefined;
  timeoutMs?: number | undefined;
}

/**
 * Headers a connector may not set statically: the transport owns them (RFC 9110 §7.6.1
 * hop-by-hop fields, framing), and `Authorization` belongs to the attached authentication.
 */
const TRANSPORT_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'te',
  'trailer',
  'upgrade',
]);

export function checkConnectorRules(draft: ConnectorDraft, allowHttp: AllowHttp): RuleResult {
  const errors: FieldError[] = [];
  let insecure = 0;
  if (typeof draft.name === 'string' && hasControlCharacters(draft.name)) {
    errors.push({ path: '/name', message: 'must not contain control characters' });
  }
  if (typeof draft.baseUrl === 'string') {
    const result = checkUrl(draft.baseUrl, allowHttp);
    if (result.rule === 'insecure') insecure++;
    if (result.rule !== 'ok') errors.push({ path: '/baseUrl', message: result.message ?? 'is invalid' });
    else if (new URL(draft.baseUrl).search !== '') {
      errors.push({
        path: '/baseUrl',
        message: 'must not contain a query string; put parameters in "query"',
      });
    }
  }
  const plainNames = new Set<string>();
  for (const [name, value] of Object.entries(draft.headers ?? {})) {
    plainNames.add(name.toLowerCase());
    errors.push(...headerProblems('/headers', name, value, draft));
  }
  for (const [name, value] of Object.entries(draft.secretHeaders ?? {})) {
    const problems = headerProblems('/secretHeaders', name, value, draft);
    if (value === '')
      problems.push({ path: `/secretHeaders/${escapePointer(name)}`, message: 'must not be empty' });
    if (plainNames.has(name.toLowerCase())) {
      problems.push({
        path: `/secretHeaders/${escapePointer(name)}`,
        message: 'is also a plain header; keep it in one place (remove it from "headers")',
      });
    }
    errors.push(...problems);
  }
  for (const name of draft.storedSecretHeaders ?? []) {
    if (
      plainNames.has(name) &&
      !Object.keys(draft.secretHeaders ?? {}).some((given) => given.toLowerCase() === name)
    ) {
      errors.push({
        path: `/headers/${escapePointer(name)}`,
        message: 'is already a secret header; remove that one first (secretHeaders: {"<name>": null})',
      });
    }
  }
  for (const [name] of Object.entries(draft.query ?? {})) {
    if (name === '') errors.push({ path: '/query/', message: 'parameter names must not be empty' });
  }
  return { errors, onlyInsecureUrls: errors.length > 0 && insecure === errors.length };
}

function headerProblems(field: string, name: string, value: unknown, draft: ConnectorDraft): FieldError[] {
  const at = `${field}/${escapePointer(name)}`;
  const errors: FieldError[] = [];
  if (!HEADER_NAME.test(name)) errors.push({ path: at, message: 'is not a valid header name' });
  else if (TRANSPORT_HEADERS.has(name.toLowerCase())) {
    errors.push({ path: at, message: 'is set by the HTTP transport and cannot be configured' });
  } else if (name.toLowerCase() === 'authorization' && draft.authenticationId) {
    errors.push({ path: at, message: 'is set from the attached authentication; remove this header' });
  }
  const valueProblem = typeof value === 'string' ? headerValueProblem(value) : null;
  if (valueProblem !== null) errors.push({ path: at, message: valueProblem });
  return errors;
}
