import type { KindSpec } from './field-spec.js';

/** A static API key, in a header or a query parameter (docs/api.md "Static credentials"). */
export const apiKey = {
  type: 'api_key',
  label: 'API Key',
  description: 'A key the API issued, sent in a header or a query parameter on every call.',
  fields: [
    {
      name: 'apiKey',
      type: 'secret',
      label: 'API Key',
      minLength: 1,
      maxLength: 4000,
      required: true,
      headerValue: true,
    },
    {
      name: 'apiKeyIn',
      type: 'enum',
      label: 'Send in',
      options: [
        { value: 'header', label: 'Header' },
        { value: 'query', label: 'Query parameter' },
      ],
      default: 'header',
    },
    {
      name: 'apiKeyName',
      type: 'headerName',
      label: 'Header or parameter name',
      help: 'For example X-API-Key, Authorization, or api_key for a query parameter.',
      placeholder: 'X-API-Key',
      minLength: 1,
      maxLength: 200,
      required: true,
    },
    {
      name: 'apiKeyPrefix',
      type: 'headerPrefix',
      label: 'Value prefix',
      help: 'Put before the key with a space, such as Token or Bearer; empty sends the key alone.',
      maxLength: 100,
      default: '',
    },
  ],
} as const satisfies KindSpec;
