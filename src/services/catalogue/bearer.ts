import type { KindSpec } from './field-spec.js';

/** A static bearer token (a personal access token, a service token) sent on every call. */
export const bearer = {
  type: 'bearer',
  label: 'Bearer Token',
  description: 'A long-lived token the API issued, sent as "Authorization: <prefix> <token>" on every call.',
  fields: [
    {
      name: 'token',
      type: 'secret',
      label: 'Token',
      minLength: 1,
      maxLength: 8000,
      required: true,
      headerValue: true,
    },
    {
      name: 'headerPrefix',
      type: 'headerPrefix',
      label: 'Header Prefix',
      help: 'Sent as "Authorization: <prefix> <token>". Usually Bearer; empty sends the bare token.',
      maxLength: 100,
      default: 'Bearer',
    },
  ],
} as const satisfies KindSpec;
