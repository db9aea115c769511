import { apiKey } from './api-key.js';
import { basic } from './basic.js';
import { bearer } from './bearer.js';
import {
  AUTHENTICATION_TYPES,
  type AuthenticationType,
  type FieldSpec,
  type GrantType,
  type KindSpec,
} from './field-spec.js';
import { oauth2 } from './oauth2.js';

export * from './field-spec.js';
export {
  type AssertionClaims,
  assertionOf,
  flatAssertion,
  keepAliveDaysForIdleExpiry,
} from './oauth2.js';

/** Every kind of authentication, by type: the one list the API, the services and the console read. */
export const KINDS = {
  oauth2,
  api_key: apiKey,
  basic,
  bearer,
} as const satisfies Readonly<Record<AuthenticationType, KindSpec>>;

/** How the product page names each grant. */
export const GRANT_LABELS: Readonly<Record<GrantType, string>> = {
  client_credentials: 'Client Credentials',
  password: 'Password',
  authorization_code: 'Authorization Code',
  jwt_bearer: 'JWT Bearer',
};

/** The fields every kind has; `provider` and `providerParams` are kept but set on create only. */
export const COMMON_FIELDS: readonly FieldSpec[] = [
  { name: 'name', type: 'text', label: 'Name', minLength: 1, maxLength: 100, required: true },
  {
    name: 'type',
    type: 'enum',
    label: 'Type',
    options: AUTHENTICATION_TYPES.map((value) => ({ value, label: KINDS[value].label })),
    required: true,
    immutable: true,
  },
  {
    name: 'provider',
    type: 'text',
    label: 'Provider',
    help: 'The provider preset this authentication was created from (GET /api/providers); set on create only.',
    maxLength: 100,
    immutable: true,
  },
  {
    name: 'providerParams',
    type: 'parameters',
    label: 'Provider parameters',
    help: "Values for the preset's placeholders, such as the tenant; set on create only.",
    immutable: true,
  },
];

export function isAuthenticationType(value: unknown): value is AuthenticationType {
  return typeof value === 'string' && (AUTHENTICATION_TYPES as readonly string[]).includes(value);
}

/** The fields of one kind, common ones first. */
export function fieldsOf(type: AuthenticationType): readonly FieldSpec[] {
  return [...COMMON_FIELDS, ...KINDS[type].fields];
}

/**
 * Every field name of every kind with its one description. A name shared by kinds (`username`,
 * `password`, `headerPrefix`) has the same value type in each, so one request schema serves all;
 * the first description found is the one documented.
 */
export function allFields(): readonly FieldSpec[] {
  const byName = new Map<string, FieldSpec>();
  for (const field of COMMON_FIELDS) byName.set(field.name, field);
  for (const type of AUTHENTICATION_TYPES) {
    for (const field of KINDS[type].fields) if (!byName.has(field.name)) byName.set(field.name, field);
  }
  return [...byName.values()];
}

/** The kinds that use a field, for messages such as "applies only to API Key authentications". */
export function kindsWithField(name: string): AuthenticationType[] {
  return AUTHENTICATION_TYPES.filter((type) => KINDS[type].fields.some((field) => field.name === name));
}

type KindsTable = typeof KINDS;
/** Every field of every kind, as the catalogue declares it (literal types kept). */
type AnyField = KindsTable[AuthenticationType]['fields'][number];
type NamedField<Name extends string> = Extract<AnyField, { name: Name }>;

/** The TypeScript type of a field's value, read off its description. */
export type FieldValue<F> = F extends { type: 'boolean' }
  ? boolean
  : F extends { type: 'integer' }
    ? number
    : F extends { type: 'parameters' }
      ? Record<string, string>
      : F extends { type: 'enum'; options: readonly { value: infer V }[] }
        ? V
        : string;

/** Names of the fields that are secrets (write-only) and of the others. */
export type SecretFieldName = Extract<AnyField, { type: 'secret' }>['name'];
export type SettingFieldName = Exclude<AnyField['name'], SecretFieldName | 'grantType'>;

/** What a request may carry, every field of every kind optional: derived from the catalogue. */
export type AuthenticationFieldValues = {
  name?: string;
  type?: AuthenticationType;
  provider?: string;
  providerParams?: Record<string, string>;
} & {
  [Name in AnyField['name']]?: FieldValue<NamedField<Name>>;
};

/** The non-secret values of an authentication, as answered. */
export type AuthenticationSettingValues = {
  provider?: string;
  providerParams?: Record<string, string>;
} & {
  [Name in SettingFieldName]?: FieldValue<NamedField<Name>>;
};

/** `clientSecretSet`, `passwordSet`, `apiKeySet`, `tokenSet`: whether each secret is stored. */
export type SecretFlags = {
  [Name in SecretFieldName as `${Name}Set`]?: boolean;
};
