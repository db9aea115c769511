import type { AuthenticationRecord, AuthenticationSettings } from '../store/contract.js';
import {
  type AuthenticationType,
  allFields,
  appliesTo,
  appliesWith,
  COMMON_FIELDS,
  type FieldSpec,
  fieldsOf,
  type GrantType,
  isAuthenticationType,
  isRequired,
  KINDS,
  normaliseScope,
} from './catalogue/index.js';

/**
 * An authentication as it will be stored, built from a create request or from the stored record
 * with a PATCH applied — the one shape the rules check and the settings are taken from.
 */
export interface AuthenticationDraft {
  /** Undefined when the request named no valid type (the schema reports it). */
  type: AuthenticationType | undefined;
  name: string | undefined;
  grantType: GrantType | undefined;
  /** Non-secret values by field name, as given or stored. */
  values: Record<string, unknown>;
  /** Secret values given in this request, in the clear. */
  givenSecrets: Record<string, string>;
  /** Secret fields already stored and kept (not given, not cleared). */
  storedSecrets: ReadonlySet<string>;
  /** Fields this request cleared with `null`, and those it tried to but may not. */
  cleared: ReadonlySet<string>;
  refusedClears: ReadonlySet<string>;
  /** Fields set on create only that this PATCH tried to change (`type`, `provider`…). */
  changedImmutable: string[];
}

/** A request body read field by field: well-typed values only, so rules can run beside schema errors. */
export interface ReadRequest {
  values: Record<string, unknown>;
  nulls: Set<string>;
}

const FIELD_BY_NAME = new Map(allFields().map((field) => [field.name, field]));

/** Common fields kept in the settings document (name and type have columns of their own). */
const KEPT_COMMON_FIELDS = COMMON_FIELDS.filter((field) => field.name !== 'name' && field.name !== 'type');

/** Reads the catalogue's fields from a body; a value of the wrong JS type is left to the schema. */
export function readAuthenticationRequest(body: Record<string, unknown>): ReadRequest {
  const values: Record<string, unknown> = {};
  const nulls = new Set<string>();
  for (const [name, field] of FIELD_BY_NAME) {
    if (!Object.hasOwn(body, name)) continue;
    const value = body[name];
    if (value === null) nulls.add(name);
    else if (hasJsType(field, value)) values[name] = value;
  }
  return { values, nulls };
}

function hasJsType(field: FieldSpec, value: unknown): boolean {
  switch (field.type) {
    case 'boolean':
      return typeof value === 'boolean';
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'parameters':
      return (
        typeof value === 'object' &&
        value !== null &&
        !Array.isArray(value) &&
        Object.values(value).every((item) => typeof item === 'string')
      );
    case 'enum':
      return typeof value === 'string' && (field.options ?? []).some((option) => option.value === value);
    default:
      return typeof value === 'string';
  }
}

/** The draft of a new authentication. */
export function draftForCreate(request: ReadRequest): AuthenticationDraft {
  const { values, nulls } = request;
  const type = isAuthenticationType(values.type) ? values.type : undefined;
  const { settings, secrets } = splitSecrets(type, values);
  return {
    type,
    name: typeof values.name === 'string' ? values.name : undefined,
    grantType: typeof values.grantType === 'string' ? (values.grantType as GrantType) : undefined,
    values: settings,
    givenSecrets: secrets,
    storedSecrets: new Set(),
    cleared: new Set(),
    refusedClears: nulls,
    changedImmutable: [],
  };
}

/**
 * The stored authentication with a PATCH applied. `null` clears an optional field (its default, if
 * it has one, applies again); a required field cannot be cleared. A grant change drops the stored
 * values of fields the new grant does not take, so switching grants never carries a stale
 * Authorization URL or password along.
 */
export function draftForPatch(record: AuthenticationRecord, request: ReadRequest): AuthenticationDraft {
  const { values: patch, nulls } = request;
  const type = record.type;
  const grantType = (typeof patch.grantType === 'string' ? patch.grantType : record.grantType) as
    | GrantType
    | undefined;
  const kindFields = KINDS[type].fields as readonly FieldSpec[];
  const values: Record<string, unknown> = {};
  const storedSecrets = new Set<string>();
  const stored = record.settings as Record<string, unknown>;
  for (const field of KEPT_COMMON_FIELDS)
    if (stored[field.name] !== undefined) values[field.name] = stored[field.name];
  for (const field of kindFields) {
    if (!appliesTo(field, grantType ?? undefined)) continue;
    if (field.type === 'secret') {
      if (record.secrets[secretColumn(field.name)] !== undefined) storedSecrets.add(field.name);
    } else if (field.name !== 'grantType') {
      const stored = (record.settings as Record<string, unknown>)[field.name];
      if (stored !== undefined) values[field.name] = stored;
    }
  }
  const { settings: given, secrets: givenSecrets } = splitSecrets(type, patch);
  const current: Record<string, unknown> = { ...stored, type: record.type };
  const changedImmutable = COMMON_FIELDS.filter(
    (field) =>
      field.immutable === true &&
      given[field.name] !== undefined &&
      JSON.stringify(given[field.name]) !== JSON.stringify(current[field.name]),
  ).map((field) => field.name);
  for (const field of COMMON_FIELDS) delete given[field.name];
  delete given.grantType;
  Object.assign(values, given);

  const cleared = new Set<string>();
  const refusedClears = new Set<string>();
  const fields = fieldsOf(type);
  for (const name of nulls) {
    const field = fields.find((candidate) => candidate.name === name);
    if (field === undefined || isRequired(field, grantType ?? undefined) || field.immutable === true) {
      refusedClears.add(name);
      continue;
    }
    cleared.add(name);
    delete values[name];
    storedSecrets.delete(name);
  }
  // A change that makes a conditional field no longer apply (another clientAuthMethod) drops its
  // stored value, as a grant change does; a value given in this very request is left for the rules
  // to refuse.
  for (const field of kindFields) {
    if (field.when === undefined || appliesWith(field, grantType ?? undefined, values, kindFields)) continue;
    if (!Object.hasOwn(given, field.name)) delete values[field.name];
    storedSecrets.delete(field.name);
  }
  return {
    type,
    name: typeof patch.name === 'string' ? patch.name : record.name,
    grantType: grantType ?? undefined,
    values,
    givenSecrets,
    storedSecrets,
    cleared,
    refusedClears,
    changedImmutable,
  };
}

/** Separates the secrets (by the kind's catalogue) from the other values. */
function splitSecrets(
  type: AuthenticationType | undefined,
  values: Record<string, unknown>,
): { settings: Record<string, unknown>; secrets: Record<string, string> } {
  const settings: Record<string, unknown> = {};
  const secrets: Record<string, string> = {};
  const secretNames = new Set(
    (type === undefined ? allFields() : fieldsOf(type)).filter((f) => f.type === 'secret').map((f) => f.name),
  );
  for (const [name, value] of Object.entries(values)) {
    if (secretNames.has(name) && typeof value === 'string') secrets[name] = value;
    else settings[name] = value;
  }
  return { settings, secrets };
}

/**
 * The non-secret settings of a valid draft as they are stored: the kind's fields that apply to the
 * grant, defaults filled in, empty optional text dropped, scopes normalised to single spaces.
 */
export function settingsOf(draft: AuthenticationDraft): AuthenticationSettings {
  const settings: Record<string, unknown> = {};
  if (draft.type === undefined) return settings;
  for (const field of KEPT_COMMON_FIELDS) {
    if (draft.values[field.name] !== undefined) settings[field.name] = draft.values[field.name];
  }
  const fields = KINDS[draft.type].fields as readonly FieldSpec[];
  for (const field of fields) {
    if (field.type === 'secret' || field.name === 'grantType') continue;
    if (field.keyMaterial === true || field.inputOnly === true) continue;
    if (!appliesWith(field, draft.grantType, draft.values, fields)) continue;
    let value = draft.values[field.name];
    if (typeof value === 'string' && field.type === 'scope') value = normaliseScope(value);
    if (value === '' && field.default === undefined && !isRequired(field, draft.grantType)) value = undefined;
    if (value === undefined) value = field.default;
    if (value !== undefined) settings[field.name] = value;
  }
  return settings as AuthenticationSettings;
}

/**
 * The secret fields of the draft's kind that apply to it and are stored as they are: not key
 * material (kept in the key set) nor read-once input (a key file).
 */
export function secretFieldsOf(
  draft: Pick<AuthenticationDraft, 'type' | 'grantType' | 'values'>,
): FieldSpec[] {
  if (draft.type === undefined) return [];
  const fields = KINDS[draft.type].fields as readonly FieldSpec[];
  return fields.filter(
    (field) =>
      field.type === 'secret' &&
      field.keyMaterial !== true &&
      field.inputOnly !== true &&
      appliesWith(field, draft.grantType, draft.values, fields),
  );
}

/** The column a secret's ciphertext is bound to (its AAD): `clientSecret` → `client_secret`. */
export function secretColumn(fieldName: string): string {
  return fieldName.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}
