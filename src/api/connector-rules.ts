import { headerValueProblem } from '../connectors/http-headers.js';
import type { FieldError } from '../problem.js';
import type { ConnectorCreate } from './schemas.js';
import { checkUrl, escapePointer, HEADER_NAME, hasControlCharacters } from './validation.js';

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

export function checkConnectorRules(
  draft: Partial<ConnectorCreate>,
  allowHttp: 'off' | 'loopback',
): { errors: FieldError[]; onlyInsecureUrls: boolean } {
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
  for (const [name, value] of Object.entries(draft.headers ?? {})) {
    const at = `/headers/${escapePointer(name)}`;
    if (!HEADER_NAME.test(name)) errors.push({ path: at, message: 'is not a valid header name' });
    else if (TRANSPORT_HEADERS.has(name.toLowerCase())) {
      errors.push({ path: at, message: 'is set by the HTTP transport and cannot be configured' });
    } else if (name.toLowerCase() === 'authorization' && draft.authenticationId) {
      errors.push({ path: at, message: 'is set from the attached authentication; remove this header' });
    }
    const valueProblem = typeof value === 'string' ? headerValueProblem(value) : null;
    if (valueProblem !== null) errors.push({ path: at, message: valueProblem });
  }
  for (const [name] of Object.entries(draft.query ?? {})) {
    if (name === '') errors.push({ path: '/query/', message: 'parameter names must not be empty' });
  }
  return { errors, onlyInsecureUrls: errors.length > 0 && insecure === errors.length };
}
