/**
 * The description of one authentication field: everything the rest of Grantry derives from it —
 * the request and response schemas, the PATCH merge, the validation messages, the OpenAPI document
 * and the console's form. Adding a field is adding one of these to its kind (and, where the field
 * has behaviour, one place that acts on it).
 *
 * Pure data with no imports from Node or from other rooms: the console bundles this module.
 */

export const AUTHENTICATION_TYPES = ['oauth2', 'api_key', 'basic', 'bearer'] as const;
export type AuthenticationType = (typeof AUTHENTICATION_TYPES)[number];

export const GRANT_TYPES = ['client_credentials', 'password', 'authorization_code', 'jwt_bearer'] as const;
export type GrantType = (typeof GRANT_TYPES)[number];

/**
 * What kind of value a field holds; each has its schema and its own checks:
 * - `text`: one line, no control characters;
 * - `url`: an absolute https URL (http to loopback with GRANTRY_ALLOW_HTTP=loopback);
 * - `secret`: write-only, encrypted at rest, answered as `<name>Set` (one line, unless `multiline`);
 * - `enum`: one of `options`;
 * - `boolean`;
 * - `integer`: a whole number from `minimum` to `maximum`;
 * - `scope`: space-separated RFC 6749 §3.3 scope tokens, normalised to single spaces;
 * - `parameters`: an object of string values sent as request parameters;
 * - `headerPrefix`: one word of visible ASCII, or empty for the bare value;
 * - `headerName`: an RFC 9110 field name (or, for a query parameter, any non-empty name);
 * - `pem`: PEM text over several lines (a certificate chain), shown as it is.
 */
export type FieldType =
  | 'text'
  | 'url'
  | 'secret'
  | 'enum'
  | 'boolean'
  | 'integer'
  | 'scope'
  | 'parameters'
  | 'headerPrefix'
  | 'headerName'
  | 'pem';

export interface FieldOption {
  value: string;
  label: string;
}

/** "Another field has one of these values" (its default standing in when it has none). */
export interface FieldCondition {
  readonly field: string;
  readonly values: readonly (string | boolean)[];
}

export interface FieldSpec {
  readonly name: string;
  readonly type: FieldType;
  /** As the console labels it (and the product page names it). */
  readonly label: string;
  /** One sentence under the field in the console, and its OpenAPI description. */
  readonly help?: string;
  readonly placeholder?: string;
  readonly options?: readonly FieldOption[];
  /** What an omitted value means, stored and answered as such. */
  readonly default?: string | boolean;
  /**
   * What the console's form starts a new authentication with, when that differs from `default`
   * (the API keeps `default` for requests that leave the field out, so existing scripts behave as
   * they always did).
   */
  readonly formDefault?: string;
  /** `integer` fields: the smallest and largest value. */
  readonly minimum?: number;
  readonly maximum?: number;
  /** For OAuth 2.0 fields that belong to some grants only: refused with any other grant. */
  readonly grants?: readonly GrantType[];
  /**
   * The field applies only when one of these holds (e.g. the client secret only with a client
   * authentication method that sends it). Like `grants`: given otherwise, it is refused; stored, it
   * is dropped when a change makes none hold.
   */
  readonly when?: readonly FieldCondition[];
  /** A secret that may span lines (a PEM key, a key file). */
  readonly multiline?: boolean;
  /**
   * Key material: taken into the authentication's key set (sealed with its secrets) rather than
   * stored as a setting, and answered through `keys` (the public parts only).
   */
  readonly keyMaterial?: boolean;
  /** Read once by the service (expanded into other fields), never stored nor answered. */
  readonly inputOnly?: boolean;
  /**
   * Required always (`true`) or only with these grants. A required secret is needed on create and
   * kept on PATCH when omitted; a required field cannot be cleared with `null`.
   */
  readonly required?: boolean | readonly GrantType[];
  /** With `required: true`: the grants it is optional with (the Client ID with the JWT Bearer grant). */
  readonly optionalFor?: readonly GrantType[];
  /** A change alters the token request: cached and stored tokens are dropped. */
  readonly shapesToken?: boolean;
  /** Shown under "Advanced" in the console. */
  readonly advanced?: boolean;
  readonly minLength?: number;
  readonly maxLength?: number;
  /** Set on create only; a PATCH may not change it. */
  readonly immutable?: boolean;
  /**
   * Sent in an HTTP header as it is: only characters a header value may hold (RFC 9110 §5.5),
   * refused at save time rather than failing every call later.
   */
  readonly headerValue?: boolean;
}

export interface KindSpec {
  readonly type: AuthenticationType;
  /** As the console's "+ New Authentication" menu names it. */
  readonly label: string;
  readonly description: string;
  /** The kind's own fields, in the order the console shows them (name and type are common). */
  readonly fields: readonly FieldSpec[];
}

/** True when `field` is required for `grant` (or for every grant). */
export function isRequired(field: FieldSpec, grant: GrantType | undefined): boolean {
  if (field.required === true) return grant === undefined || field.optionalFor?.includes(grant) !== true;
  if (field.required === undefined || field.required === false) return false;
  return grant !== undefined && field.required.includes(grant);
}

/** True when `field` may be given with `grant` (fields without `grants` go with every grant). */
export function appliesTo(field: FieldSpec, grant: GrantType | undefined): boolean {
  return field.grants === undefined || grant === undefined || field.grants.includes(grant);
}

/**
 * True when `field` applies to an authentication with these values: its grant, and its `when`
 * conditions read off `values` (a field's `default` standing in for a missing value; `fields`
 * names them). Without `when`, the same as {@link appliesTo}.
 */
export function appliesWith(
  field: FieldSpec,
  grant: GrantType | undefined,
  values: Readonly<Record<string, unknown>>,
  fields: readonly FieldSpec[],
): boolean {
  if (!appliesTo(field, grant)) return false;
  if (field.when === undefined) return true;
  return field.when.some((condition) => {
    const value =
      condition.field === 'grantType'
        ? grant
        : (values[condition.field] ?? fields.find((f) => f.name === condition.field)?.default);
    return value !== undefined && condition.values.includes(value as string | boolean);
  });
}

/** "with clientAuthMethod private_key_jwt or tls_client_auth, or the JWT Bearer grant", for messages. */
export function describeConditions(field: FieldSpec): string {
  return (field.when ?? [])
    .map((condition) =>
      condition.field === 'grantType'
        ? `the ${condition.values.join(' or ')} grant`
        : `${condition.field} ${condition.values.join(', ')}`,
    )
    .join('; or ');
}

/** The response flag that says a secret is stored: `clientSecret` → `clientSecretSet`. */
export function secretFlag(name: string): string {
  return `${name}Set`;
}

/**
 * A scope as it is stored and sent (RFC 6749 §3.3): tokens separated by single spaces. The server
 * and the console both normalise with this, so what a person typed and what is saved never differ.
 */
export function normaliseScope(value: string): string {
  return value.trim().replace(/ +/g, ' ');
}
