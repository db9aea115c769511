import { isIP } from 'node:net';
import type { EgressPolicy } from '../egress/address-policy.js';
import type { FieldError } from '../problem.js';
import { BLANK_NAME, checkUrl, hasControlCharacters, hasVisibleCharacter } from '../services/field-checks.js';

/**
 * Rules of a webhook the schema cannot say. The URL is where Grantry will send signed requests on
 * its own initiative, so it meets the rules of every outbound call up front: https (or loopback
 * http when allowed), no credentials in it, and — for an IP literal — an address the egress policy
 * accepts. A host name is checked on every attempt instead, on each address it resolves to.
 */
export function checkWebhookRules(
  draft: { url?: string | undefined; description?: string | null | undefined },
  options: { allowHttp: 'off' | 'loopback'; policy: EgressPolicy },
): FieldError[] {
  const errors: FieldError[] = [];
  if (typeof draft.url === 'string') {
    const result = checkUrl(draft.url, options.allowHttp);
    if (result.rule !== 'ok') errors.push({ path: '/url', message: result.message ?? 'is invalid' });
    else {
      const host = new URL(draft.url).hostname.replace(/^\[(.*)\]$/, '$1');
      const verdict = isIP(host) === 0 ? null : options.policy.check(host);
      if (verdict !== null && !verdict.allowed) {
        errors.push({ path: '/url', message: `is refused by the egress policy: ${verdict.reason}` });
      }
    }
  }
  if (typeof draft.description === 'string' && hasControlCharacters(draft.description)) {
    errors.push({ path: '/description', message: 'must not contain control characters' });
  } else if (
    typeof draft.description === 'string' &&
    draft.description !== '' &&
    !hasVisibleCharacter(draft.description)
  ) {
    errors.push({ path: '/description', message: `${BLANK_NAME} (null clears it)` });
  }
  return errors;
}
