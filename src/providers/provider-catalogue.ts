import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Value } from '@sinclair/typebox/value';
import type { FieldError } from '../problem.js';
import { keepAliveDaysForIdleExpiry } from '../services/catalogue/index.js';
import { escapePointer } from '../services/field-checks.js';
import {
  PLACEHOLDER_FIELDS,
  type ProviderPreset,
  ProviderPresetSchema,
  placeholdersIn,
} from './provider-preset.js';

/**
 * What a placeholder value may be: host names, ports, tenant ids, realm names. No `/`, `?`, `#`,
 * `@` or `\`, so a value can never move a URL to another host, path or user — the URL that results
 * is then checked like any other (https, egress policy).
 */
const PLACEHOLDER_VALUE = /^[A-Za-z0-9._:-]{1,200}$/;

/** Where the preset files are: beside this module when run from source, under src/ when built. */
function defaultPresetsDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const candidate of [join(here, 'presets'), join(here, '..', '..', 'src', 'providers', 'presets')]) {
    try {
      readdirSync(candidate);
      return candidate;
    } catch {
      // not here; try the next place
    }
  }
  throw new Error('provider presets not found (src/providers/presets)');
}

/**
 * Everything wrong with a set of preset files: a file that does not match the schema (which also
 * requires https URLs and both documentation links), an id that is not its file name or appears
 * twice, a `{placeholder}` used in a URL but not described, or described but never used.
 */
export function presetProblems(entries: readonly { file: string; value: unknown }[]): string[] {
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const { file, value } of entries) {
    if (!Value.Check(ProviderPresetSchema, value)) {
      for (const error of [...Value.Errors(ProviderPresetSchema, value)].slice(0, 3)) {
        problems.push(`${file}: ${error.path || '/'} ${error.message}`);
      }
      continue;
    }
    if (`${value.id}.json` !== file) problems.push(`${file}: id "${value.id}" is not the file name`);
    const other = seen.get(value.id);
    if (other !== undefined) problems.push(`${file}: id "${value.id}" is also the id of ${other}`);
    seen.set(value.id, file);
    const used = placeholdersUsed(value);
    const listed = new Set(value.placeholders.map((p) => p.name));
    for (const name of used)
      if (!listed.has(name)) problems.push(`${file}: {${name}} is used but not described`);
    for (const name of listed)
      if (!used.has(name)) problems.push(`${file}: placeholder ${name} is never used`);
  }
  return problems;
}

/** Reads and checks every preset file; a problem stops start-up (and fails the test that checks them). */
export function readPresetFiles(dir = defaultPresetsDir()): ProviderPreset[] {
  const entries = readdirSync(dir)
    .filter((name) => name.endsWith('.json'))
    .sort()
    .map((file) => ({ file, value: JSON.parse(readFileSync(join(dir, file), 'utf8')) as unknown }));
  const problems = presetProblems(entries);
  if (problems.length > 0) throw new Error(`provider presets are invalid:\n${problems.join('\n')}`);
  return entries.map((entry) => entry.value as ProviderPreset);
}

/**
 * The provider presets (docs/api.md "Provider presets"): listed for the console's picker, and used
 * to fill what a create request leaves out. What the request gives explicitly always wins.
 */
export class ProviderCatalogue {
  readonly #presets: ReadonlyMap<string, ProviderPreset>;

  constructor(presets: readonly ProviderPreset[] = readPresetFiles()) {
    this.#presets = new Map([...presets].sort((a, b) => a.name.localeCompare(b.name)).map((p) => [p.id, p]));
  }

  list(): ProviderPreset[] {
    return [...this.#presets.values()];
  }

  get(id: string): ProviderPreset | undefined {
    return this.#presets.get(id);
  }

  /**
   * The create request with the preset's values filled in where the request left them out, its
   * placeholders replaced by `providerParams`. Problems (an unknown preset, a missing or malformed
   * placeholder value, a type the preset is not) come back as field errors, listed with the others.
   */
  fill(body: Record<string, unknown>): { body: Record<string, unknown>; errors: FieldError[] } {
    const id = body.provider;
    if (typeof id !== 'string') {
      // Placeholder values without a preset would be stored and used by nothing.
      const orphan = body.providerParams !== undefined && body.providerParams !== null && id === undefined;
      return {
        body,
        errors: orphan
          ? [
              {
                path: '/providerParams',
                message:
                  'applies only with provider (a preset of GET /api/providers); remove it or name the preset',
              },
            ]
          : [],
      };
    }
    const preset = this.#presets.get(id);
    if (preset === undefined) {
      return {
        body,
        errors: [
          { path: '/provider', message: `is not a known provider preset; GET /api/providers lists them` },
        ],
      };
    }
    const errors: FieldError[] = [];
    const params = readParams(body.providerParams, preset, errors);
    const filled: Record<string, unknown> = { ...body };
    const fillIn = (name: string, value: unknown) => {
      if (value === null || value === undefined) return;
      if (filled[name] !== undefined) return;
      if (typeof value === 'object' && Object.keys(value).length === 0) return;
      filled[name] = value;
    };

    if (body.type !== undefined && body.type !== preset.type) {
      errors.push({ path: '/type', message: `the ${preset.name} preset is a ${preset.type} authentication` });
    }
    fillIn('type', preset.type);
    fillIn('name', preset.name);
    if (preset.type === 'oauth2') {
      fillIn(
        'grantType',
        preset.grantTypes.find((grant) => grant !== 'jwt_bearer'),
      );
      const url = (value: string | null) => (value === null ? null : substitute(value, params));
      if (filled.grantType === 'authorization_code') {
        fillIn('authorizationUrl', url(preset.authorizationUrl));
        fillIn('extraAuthorizationParams', preset.extraAuthorizationParams);
      }
      fillIn('tokenUrl', url(preset.tokenUrl));
      fillIn('revocationUrl', url(preset.revocationUrl));
      fillIn('audienceParam', preset.audienceParam);
      fillIn('clientAuthMethod', preset.clientAuthMethod);
      fillIn('scope', preset.defaultScope);
      fillIn('extraTokenParams', preset.extraTokenParams);
      // Grants with refresh tokens are kept alive before the provider's documented idle expiry.
      if (filled.grantType === 'authorization_code' || filled.grantType === 'password') {
        fillIn('keepAliveDays', keepAliveDaysForIdleExpiry(preset.refreshTokenIdleExpiryDays));
      }
    } else if (preset.type === 'api_key' && preset.apiKey !== null) {
      fillIn('apiKeyIn', preset.apiKey.in);
      fillIn('apiKeyName', preset.apiKey.name);
      if (preset.apiKey.in === 'header' && preset.apiKey.prefix !== '')
        fillIn('apiKeyPrefix', preset.apiKey.prefix);
    }
    return { body: filled, errors };
  }
}

function readParams(given: unknown, preset: ProviderPreset, errors: FieldError[]): Record<string, string> {
  const params: Record<string, string> = {};
  const values =
    typeof given === 'object' && given !== null && !Array.isArray(given)
      ? (given as Record<string, unknown>)
      : {};
  const known = new Set(preset.placeholders.map((p) => p.name));
  for (const name of Object.keys(values)) {
    if (!known.has(name)) {
      errors.push({
        path: `/providerParams/${escapePointer(name)}`,
        message: `is not a placeholder of the ${preset.name} preset${known.size === 0 ? ' (it has none)' : ` (it has ${[...known].join(', ')})`}`,
      });
    }
  }
  for (const placeholder of preset.placeholders) {
    const value = values[placeholder.name];
    if (typeof value !== 'string' || value === '') {
      errors.push({
        path: `/providerParams/${escapePointer(placeholder.name)}`,
        message: `is required by the ${preset.name} preset: ${placeholder.label} (for example ${placeholder.example})`,
      });
    } else if (!PLACEHOLDER_VALUE.test(value)) {
      errors.push({
        path: `/providerParams/${escapePointer(placeholder.name)}`,
        message:
          'must be a name such as a tenant, host or realm: letters, digits, ".", "-", "_" and ":" only',
      });
    } else {
      params[placeholder.name] = value;
    }
  }
  return params;
}

/** The text with each `{name}` replaced; a placeholder without a value stays (its error is listed). */
function substitute(text: string, params: Readonly<Record<string, string>>): string {
  return text.replace(/\{([a-zA-Z][a-zA-Z0-9]*)\}/g, (whole, name: string) => params[name] ?? whole);
}

/** Every placeholder a preset uses in its URLs (for the schema test). */
export function placeholdersUsed(preset: ProviderPreset): Set<string> {
  const used = new Set<string>();
  for (const field of PLACEHOLDER_FIELDS) {
    const value = preset[field];
    if (typeof value === 'string') for (const name of placeholdersIn(value)) used.add(name);
  }
  return used;
}
