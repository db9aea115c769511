import { headerValueProblem } from '../connectors/http-headers.js';
import type { FieldError } from '../problem.js';
import {
  type AllowHttp,
  BLANK_NAME,
  checkUrl,
  escapePointer,
  HEADER_NAME,
  hasControlCharacters,
  hasVisibleCharacter,
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

/**
 * At most this many static headers of each kind: real APIs need a handful; every one is sent on
 * every call, and a few thousand would make each call's request head larger than servers accept.
 */
export const MAX_CONNECTOR_HEADERS = 50;

export function checkConnectorRules(draft: ConnectorDraft, allowHttp: AllowHttp): RuleResult {
  const errors: FieldError[] = [];
  let insecure = 0;
  if (typeof draft.name === 'string' && hasControlCharacters(draft.name)) {
    errors.push({ path: '/name', message: 'must not contain control characters' });
  } else if (typeof draft.name === 'string' && draft.name !== '' && !hasVisibleCharacter(draft.name)) {
    errors.push({ path: '/name', message: BLANK_NAME });
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
  const plain = Object.entries(draft.headers ?? {});
  if (plain.length > MAX_CONNECTOR_HEADERS) {
    errors.push({ path: '/headers', message: `may have at most ${MAX_CONNECTOR_HEADERS} headers` });
  }
  for (const [name, value] of plain) {
    // HTTP field names are case-insensitive (RFC 9110 §5.1): two spellings are one header sent twice.
    if (plainNames.has(name.toLowerCase())) {
      errors.push({ path: `/headers/${escapePointer(name)}`, message: DUPLICATE_HEADER });
    }
    plainNames.add(name.toLowerCase());
    errors.push(...headerProblems('/headers', name, value, draft));
  }
  const secretNames = new Set<string>();
  const secret = Object.entries(draft.secretHeaders ?? {});
  const keptCount = [...(draft.storedSecretHeaders ?? [])].filter(
    (name) => !secret.some(([given]) => given.toLowerCase() === name),
  ).length;
  if (secret.length + keptCount > MAX_CONNECTOR_HEADERS) {
    errors.push({
      path: '/secretHeaders',
      message: `may have at most ${MAX_CONNECTOR_HEADERS} headers (with the ones already stored)`,
    });
  }
  for (const [name, value] of secret) {
    const problems = headerProblems('/secretHeaders', name, value, draft);
    if (secretNames.has(name.toLowerCase())) {
      problems.push({ path: `/secretHeaders/${escapePointer(name)}`, message: DUPLICATE_HEADER });
    }
    secretNames.add(name.toLowerCase());
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
    // A stored secret Authorization and an attached authentication would both claim the header.
    if (name === 'authorization' && draft.authenticationId) {
      errors.push({
        path: '/authenticationId',
        message:
          'cannot be attached while the connector has a secret Authorization header: remove it in the same request (secretHeaders: {"Authorization": null})',
      });
    }
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

const DUPLICATE_HEADER =
  'is the same header as another one spelled with other letter case (header names ignore case); keep one';

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
