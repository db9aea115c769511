/**
 * What a person is typing into an authentication form, and the requests made from it — all read
 * off the catalogue (src/services/catalogue), the same description the server validates with, so
 * the form's fields, required marks, defaults and clearing follow every kind without a list here.
 */
import {
  type AuthenticationType,
  appliesWith,
  type FieldSpec,
  fieldsOf,
  flatAssertion,
  type GrantType,
  isRequired,
  KINDS,
  keepAliveDaysForIdleExpiry,
  normaliseScope,
  secretFlag,
} from '../../src/services/catalogue/index.js';
import type {
  AuthenticationCreate,
  AuthenticationPatch,
  AuthenticationView,
  ProblemView,
  ProviderPreset,
} from './api-client.js';
import { type KeyValueRow, recordFromRows, rowsFromRecord } from './key-value-rows.js';

export type DraftValue = string | boolean | KeyValueRow[];

/** Everything the person typed, kept outside the form so that closing a panel loses nothing. */
export interface AuthenticationDraft {
  type: AuthenticationType;
  name: string;
  /** Every field of the kind except name and type, by name. */
  values: Record<string, DraftValue>;
  /** Secrets the person chose to replace (a new authentication replaces all). */
  replacing: Record<string, boolean>;
  issuer: string;
  advancedOpen: boolean;
  /** The provider preset this new authentication starts from ('' for none), and its placeholders. */
  provider: string;
  providerParams: Record<string, string>;
  /** Fields filled from a preset URL with `{placeholders}`, re-rendered as the placeholders are typed. */
  templates: Record<string, string>;
}

/** The kind's fields (without name and type) in the order the console shows them. */
export function formFields(type: AuthenticationType): readonly FieldSpec[] {
  return KINDS[type].fields as readonly FieldSpec[];
}

export function grantOf(draft: Pick<AuthenticationDraft, 'values'>): GrantType | undefined {
  const grant = draft.values.grantType;
  return typeof grant === 'string' && grant !== '' ? (grant as GrantType) : undefined;
}

/**
 * The fields shown for the draft's kind, grant and choices (a client secret only with a method
 * that sends it, key fields only with one that uses a key). A key file is not a field of the form:
 * the Google preset's "Import Google service account" reads it.
 */
export function visibleFields(draft: Pick<AuthenticationDraft, 'type' | 'values'>): FieldSpec[] {
  const grant = grantOf(draft);
  const fields = formFields(draft.type);
  return fields.filter(
    (field) => field.inputOnly !== true && appliesWith(field, grant, draft.values, fields),
  );
}

/** What a new authentication's field starts with: the catalogue's `formDefault`, else its `default`. */
function emptyValue(field: FieldSpec): DraftValue {
  if (field.type === 'boolean') return field.default === true;
  if (field.type === 'parameters') return [];
  const initial = field.formDefault ?? field.default;
  if (field.type === 'enum') return typeof initial === 'string' ? initial : (field.options?.[0]?.value ?? '');
  return typeof initial === 'string' ? initial : '';
}

export function emptyAuthenticationDraft(type: AuthenticationType = 'oauth2'): AuthenticationDraft {
  const values: Record<string, DraftValue> = {};
  const replacing: Record<string, boolean> = {};
  for (const field of formFields(type)) {
    values[field.name] = emptyValue(field);
    if (field.type === 'secret') replacing[field.name] = true;
  }
  return {
    type,
    name: '',
    values,
    replacing,
    issuer: '',
    advancedOpen: false,
    provider: '',
    providerParams: {},
    templates: {},
  };
}

function viewValue(view: AuthenticationView, name: string): unknown {
  return (view as Record<string, unknown>)[name];
}

export function draftFromAuthentication(view: AuthenticationView): AuthenticationDraft {
  const draft = emptyAuthenticationDraft(view.type);
  draft.name = view.name;
  for (const field of formFields(view.type)) {
    const value = viewValue(view, field.name);
    if (field.type === 'secret') {
      draft.values[field.name] = '';
      draft.replacing[field.name] = viewValue(view, secretFlag(field.name)) !== true;
    } else if (field.name === 'assertion') {
      // Answered as {"iss","sub","aud","claims"} (docs/api.md); edited, and sent back, as one list.
      draft.values[field.name] = rowsFromRecord(value === undefined ? undefined : flatAssertion(value));
    } else if (field.type === 'parameters') {
      draft.values[field.name] = rowsFromRecord(value as Record<string, string> | undefined);
    } else if (field.type === 'boolean') {
      draft.values[field.name] = typeof value === 'boolean' ? value : field.default === true;
    } else if (field.type === 'integer') {
      draft.values[field.name] = typeof value === 'number' ? String(value) : '';
    } else if (typeof value === 'string') {
      draft.values[field.name] = value;
    }
  }
  return draft;
}

/** A draft's value as the API takes it; undefined when the field is left empty. */
function requestValue(field: FieldSpec, value: DraftValue | undefined): unknown {
  if (value === undefined) return undefined;
  if (field.type === 'boolean') return value === true;
  if (field.type === 'parameters') {
    const record = recordFromRows(value as KeyValueRow[]);
    return Object.keys(record).length > 0 ? record : undefined;
  }
  if (typeof value !== 'string') return undefined;
  if (field.type === 'secret' || field.type === 'enum') return value === '' ? undefined : value;
  // A whole number goes as a number; anything else typed goes as typed, for the server to explain.
  if (field.type === 'integer')
    return value.trim() === '' ? undefined : /^\d+$/.test(value.trim()) ? Number(value) : value.trim();
  if (field.type === 'headerPrefix') return value.trim();
  if (field.type === 'scope') return normaliseScope(value) || undefined;
  return value.trim() === '' ? undefined : value.trim();
}

/** The create request: only the fields the kind and its grant take (docs/api.md "Authentications"). */
export function createRequestOf(draft: AuthenticationDraft): AuthenticationCreate {
  const body: Record<string, unknown> = { name: draft.name.trim(), type: draft.type };
  if (draft.provider !== '') {
    body.provider = draft.provider;
    body.providerParams = draft.providerParams;
  }
  for (const field of visibleFields(draft)) {
    const value = requestValue(field, draft.values[field.name]);
    if (value !== undefined) body[field.name] = value;
  }
  // Audience parameter only means something with an audience.
  if (draft.type === 'oauth2' && body.audience === undefined) delete body.audienceParam;
  return body as AuthenticationCreate;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/**
 * The patch request: changed fields only; an optional field emptied is sent as `null` (cleared);
 * secrets only when the person chose to replace them.
 */
export function patchRequestOf(draft: AuthenticationDraft, view: AuthenticationView): AuthenticationPatch {
  const patch: Record<string, unknown> = {};
  if (draft.name.trim() !== view.name) patch.name = draft.name.trim();
  const grant = grantOf(draft);
  for (const field of visibleFields(draft)) {
    const value = requestValue(field, draft.values[field.name]);
    if (field.type === 'secret') {
      if (draft.replacing[field.name] === true && value !== undefined) patch[field.name] = value;
      continue;
    }
    const stored = viewValue(view, field.name);
    if (same(value, stored)) continue;
    // Not answered (an older server, a field new to this authentication): its default is what is stored.
    if (stored === undefined && field.default !== undefined && same(value, field.default)) continue;
    if (value !== undefined) patch[field.name] = value;
    else if (stored !== undefined && !isRequired(field, grant)) {
      // Emptied: the stored value goes, and the field's default (if any) applies again.
      if (field.default === undefined || !same(field.default, stored)) patch[field.name] = null;
    }
  }
  return patch as AuthenticationPatch;
}

/** Required fields checked before the round trip; the server checks everything again. */
export function missingFields(
  draft: AuthenticationDraft,
  existing: AuthenticationView | null,
): ProblemView | null {
  const errors: { path: string; message: string }[] = [];
  if (!draft.name.trim()) errors.push({ path: '/name', message: 'is required' });
  const grant = grantOf(draft);
  for (const field of visibleFields(draft)) {
    if (!isRequired(field, grant)) continue;
    const value = draft.values[field.name];
    if (field.type === 'secret') {
      // A stored secret is kept when the box is left empty; only a missing one must be typed.
      const stored = existing !== null && viewValue(existing, secretFlag(field.name)) === true;
      if (!stored && !(typeof value === 'string' && value !== '')) {
        errors.push({ path: `/${field.name}`, message: 'is required' });
      }
    } else if (typeof value === 'string' && value.trim() === '') {
      errors.push({ path: `/${field.name}`, message: 'is required' });
    }
  }
  if (errors.length === 0) return null;
  return { code: 'validation_failed', message: 'Some required fields are empty.', errors };
}

export function isDraftDirty(draft: AuthenticationDraft, existing: AuthenticationView | null): boolean {
  if (!existing) return true;
  return Object.keys(patchRequestOf(draft, existing)).length > 0;
}

/** Has the person typed anything into a new authentication? */
export function hasInput(draft: AuthenticationDraft): boolean {
  if (draft.name.trim() !== '') return true;
  const fresh = emptyAuthenticationDraft(draft.type);
  return formFields(draft.type).some((field) => !same(draft.values[field.name], fresh.values[field.name]));
}

/** Field labels by JSON pointer, for the error summary. */
export function fieldLabels(type: AuthenticationType): Record<string, string> {
  return Object.fromEntries(fieldsOf(type).map((field) => [`/${field.name}`, field.label]));
}

/** A template with each `{name}` that has a value replaced by it (the others are left as they are). */
export function renderTemplate(template: string, params: Readonly<Record<string, string>>): string {
  return template.replace(/\{([a-zA-Z][a-zA-Z0-9]*)\}/g, (whole, name: string) => params[name] || whole);
}

/**
 * A new draft started from a provider preset: its kind, and every field the preset knows, the way
 * the server would fill them (src/providers/provider-catalogue.ts) — shown, so the person sees and
 * may change each one before saving.
 */
export function draftFromPreset(preset: ProviderPreset, previous: AuthenticationDraft): AuthenticationDraft {
  const draft = presetValues(preset);
  draft.name = previous.name;
  draft.issuer = previous.issuer;
  draft.advancedOpen = previous.advancedOpen;
  // What the person already typed (a client id, a secret, an audience) stays where the preset is silent.
  const filled = presetValues(preset);
  const untouched = emptyAuthenticationDraft(previous.type);
  for (const field of formFields(preset.type)) {
    const typed = previous.values[field.name];
    if (typed === undefined || same(typed, untouched.values[field.name])) continue;
    if (!same(filled.values[field.name], emptyAuthenticationDraft(preset.type).values[field.name])) continue;
    draft.values[field.name] = typed;
  }
  return draft;
}

/**
 * "Start from scratch" after a preset: the fields the preset filled go back to empty; what the
 * person typed or changed stays.
 */
export function draftWithoutPreset(
  preset: ProviderPreset,
  current: AuthenticationDraft,
): AuthenticationDraft {
  const draft = emptyAuthenticationDraft(current.type);
  draft.name = current.name;
  draft.issuer = current.issuer;
  draft.advancedOpen = current.advancedOpen;
  const filled = presetValues(preset);
  for (const field of formFields(current.type)) {
    const value = current.values[field.name];
    if (value === undefined) continue;
    const fromPreset = filled.values[field.name];
    const template = current.templates?.[field.name];
    if (same(value, fromPreset)) continue;
    if (template !== undefined && value === renderTemplate(template, current.providerParams)) continue;
    // Parameter rows are new objects each time: compare what they say.
    if (
      field.type === 'parameters' &&
      same(recordFromRows(value as KeyValueRow[]), recordFromRows(fromPreset as KeyValueRow[]))
    )
      continue;
    draft.values[field.name] = value;
  }
  return draft;
}

/** The fields a preset fills, on an otherwise empty draft of its kind. */
function presetValues(preset: ProviderPreset): AuthenticationDraft {
  const draft = emptyAuthenticationDraft(preset.type);
  draft.provider = preset.id;
  draft.providerParams = Object.fromEntries(preset.placeholders.map((p) => [p.name, '']));
  const set = (name: string, value: string | null) => {
    if (value === null) return;
    if (value.includes('{')) draft.templates[name] = value;
    draft.values[name] = value;
  };
  if (preset.type === 'oauth2') {
    set('grantType', preset.grantTypes.find((grant) => grant !== 'jwt_bearer') ?? null);
    set('authorizationUrl', preset.authorizationUrl);
    set('tokenUrl', preset.tokenUrl);
    set('revocationUrl', preset.revocationUrl);
    set('audienceParam', preset.audienceParam);
    set('clientAuthMethod', preset.clientAuthMethod);
    set('scope', preset.defaultScope);
    draft.values.extraAuthorizationParams = rowsFromRecord(preset.extraAuthorizationParams);
    draft.values.extraTokenParams = rowsFromRecord(preset.extraTokenParams);
    // As the server fills it (provider-catalogue.ts): kept alive before the documented idle expiry.
    const keepAlive = keepAliveDaysForIdleExpiry(preset.refreshTokenIdleExpiryDays);
    if (keepAlive !== null) draft.values.keepAliveDays = String(keepAlive);
  } else if (preset.type === 'api_key' && preset.apiKey !== null) {
    set('apiKeyIn', preset.apiKey.in);
    set('apiKeyName', preset.apiKey.name);
    set('apiKeyPrefix', preset.apiKey.prefix);
  }
  return draft;
}

/** A placeholder typed: every field still showing its template's rendering follows the new value. */
export function withProviderParam(
  draft: AuthenticationDraft,
  name: string,
  value: string,
): AuthenticationDraft {
  const params = { ...draft.providerParams, [name]: value };
  const values = { ...draft.values };
  for (const [field, template] of Object.entries(draft.templates)) {
    if (values[field] === renderTemplate(template, draft.providerParams))
      values[field] = renderTemplate(template, params);
  }
  return { ...draft, providerParams: params, values };
}
