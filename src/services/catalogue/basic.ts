import type { KindSpec } from './field-spec.js';

/** HTTP Basic (RFC 7617): a username and a password on every call. */
export const basic = {
  type: 'basic',
  label: 'Basic Auth',
  description: 'A username and password sent as "Authorization: Basic …" on every call (RFC 7617).',
  fields: [
    { name: 'username', type: 'text', label: 'Username', minLength: 1, maxLength: 500, required: true },
    { name: 'password', type: 'secret', label: 'Password', minLength: 1, maxLength: 4000, required: true },
  ],
} as const satisfies KindSpec;
