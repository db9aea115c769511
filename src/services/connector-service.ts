import { type FieldError, Problem } from '../problem.js';
import type { KeyRing } from '../secrets/key-ring.js';
import type { ConnectorRecord, Sealed, Store } from '../store/contract.js';
import { sealContext } from '../tokens/sealed-columns.js';
import { type ConnectorDraft, checkConnectorRules } from './connector-rules.js';
import { type ConnectorView, connectorView } from './connector-view.js';
import { bindCredential, bindingProblem, originOf } from './credential-binding.js';
import {
  type AllowHttp,
  escapePointer,
  hasControlCharacters,
  isStringMap,
  throwIfInvalid,
} from './field-checks.js';
import { newId } from './ids.js';
import { DEFAULT_PAGE_SIZE, decodeCursor, type Page, pageOf } from './list-page.js';

export const DEFAULT_CONNECTOR_TIMEOUT_MS = 30_000;

export interface ConnectorServiceOptions {
  store: Store;
  keyRing: KeyRing;
  allowHttp: AllowHttp;
}

/**
 * The lifecycle of connectors: create, change, delete, with their rules — the base URL, headers a
 * connector may set, secret headers sealed at rest and write-only, an authentication that exists.
 * Every change tells every instance, whose connector caches drop the old one.
 */
export class ConnectorService {
  readonly #store: Store;
  readonly #ring: KeyRing;
  readonly #allowHttp: AllowHttp;

  constructor(options: ConnectorServiceOptions) {
    this.#store = options.store;
    this.#ring = options.keyRing;
    this.#allowHttp = options.allowHttp;
  }

  async record(id: string): Promise<ConnectorRecord> {
    const record = await this.#store.connectors.get(id);
    if (record === null) throw new Problem('not_found', 'No connector with this id.');
    return record;
  }

  async get(id: string): Promise<ConnectorView> {
    return connectorView(await this.record(id));
  }

  /** A page of connectors ordered by name, then id (keyset pagination, one query). */
  async list(
    query: {
      limit?: number | undefined;
      cursor?: string | undefined;
      q?: string | undefined;
      authenticationId?: string | undefined;
    } = {},
  ): Promise<Page<ConnectorView>> {
    const limit = query.limit ?? DEFAULT_PAGE_SIZE;
    const rows = await this.#store.connectors.page({
      limit: limit + 1,
      after: decodeCursor(query.cursor),
      nameContains: query.q,
      authenticationId: query.authenticationId,
    });
    return pageOf(rows, limit, (shown) => shown.map(connectorView));
  }

  async create(body: Record<string, unknown>, schemaErrors: FieldError[] = []): Promise<ConnectorView> {
    const given = readConnectorRequest(body);
    const draft: ConnectorDraft = { ...given.values, secretHeaders: given.secretHeaders };
    await this.#validate(draft, schemaErrors, { field: '/authenticationId' });
    const now = Date.now();
    const id = newId('con');
    if (draft.authenticationId)
      await bindCredential(
        this.#store,
        draft.authenticationId,
        originOf(draft.baseUrl as string),
        '/authenticationId',
        id,
      );
    const record: ConnectorRecord = {
      id,
      name: draft.name as string,
      baseUrl: draft.baseUrl as string,
      authenticationId: draft.authenticationId ?? null,
      headers: draft.headers ?? {},
      secretHeaders: this.#sealHeaders(id, given.secretHeaders, {}),
      query: draft.query ?? {},
      refreshOn: given.refreshOn ?? null,
      timeoutMs: draft.timeoutMs ?? DEFAULT_CONNECTOR_TIMEOUT_MS,
      createdAt: now,
      updatedAt: now,
    };
    try {
      await this.#store.connectors.insert(record);
    } catch (error) {
      throw nameTaken(error, record.name);
    }
    return connectorView(record);
  }

  /**
   * Applies a PATCH: omitted fields keep their value; `null` clears an optional one (headers and
   * query become empty, the timeout its default, the authentication detached); in `secretHeaders`,
   * a name with a value sets it, a name with `null` removes it, names not mentioned are kept.
   */
  async update(
    id: string,
    body: Record<string, unknown>,
    schemaErrors: FieldError[] = [],
  ): Promise<ConnectorView> {
    const record = await this.record(id);
    const given = readConnectorRequest(body);
    const cleared = (name: string) => given.nulls.has(name);
    const removed = new Set(given.removedSecretHeaders.map((name) => name.toLowerCase()));
    const kept = new Set(
      cleared('secretHeaders')
        ? []
        : Object.keys(record.secretHeaders).filter(
            (name) =>
              !removed.has(name) && !Object.keys(given.secretHeaders).some((g) => g.toLowerCase() === name),
          ),
    );
    const draft: ConnectorDraft = {
      name: given.values.name ?? record.name,
      baseUrl: given.values.baseUrl ?? record.baseUrl,
      authenticationId:
        given.values.authenticationId !== undefined || cleared('authenticationId')
          ? (given.values.authenticationId ?? null)
          : record.authenticationId,
      headers: cleared('headers') ? {} : (given.values.headers ?? record.headers),
      secretHeaders: given.secretHeaders,
      storedSecretHeaders: kept,
      query: cleared('query') ? {} : (given.values.query ?? record.query),
      timeoutMs: cleared('timeoutMs')
        ? DEFAULT_CONNECTOR_TIMEOUT_MS
        : (given.values.timeoutMs ?? record.timeoutMs),
    };
    const refused = [...given.nulls].filter((name) => name === 'name' || name === 'baseUrl');
    const moved = movesOrigin(record.baseUrl, draft.baseUrl);
    const reattached = draft.authenticationId !== record.authenticationId;
    const sendsCredentialAnew = Boolean(draft.authenticationId) && (reattached || moved);
    const bindingField = reattached ? '/authenticationId' : '/baseUrl';
    await this.#validate(draft, schemaErrors, {
      exceptId: record.id,
      field: sendsCredentialAnew ? bindingField : undefined,
      extra: [
        ...refused.map((name) => ({ path: `/${name}`, message: 'is required; it cannot be cleared' })),
        // A secret header is write-only: it follows the connector to another origin only when the
        // request gives it again (the same rule as an authentication's endpoints, docs/security.md).
        ...(moved
          ? [...kept].map((name) => ({
              path: `/secretHeaders/${escapePointer(name)}`,
              message:
                'is required in the same request when baseUrl moves to another origin: send it again, or remove it (null)',
            }))
          : []),
      ],
    });
    if (sendsCredentialAnew)
      await bindCredential(
        this.#store,
        draft.authenticationId as string,
        originOf(draft.baseUrl as string),
        bindingField,
        record.id,
      );
    const keptSealed = Object.fromEntries(
      Object.entries(record.secretHeaders).filter(([name]) => kept.has(name)),
    );
    const updated: ConnectorRecord = {
      ...record,
      name: draft.name as string,
      baseUrl: draft.baseUrl as string,
      authenticationId: draft.authenticationId ?? null,
      headers: draft.headers ?? {},
      secretHeaders: this.#sealHeaders(record.id, given.secretHeaders, keptSealed),
      query: draft.query ?? {},
      // null restores the default (docs/api.md: in a PATCH, null clears an optional field).
      refreshOn: cleared('refreshOn') ? null : (given.refreshOn ?? record.refreshOn),
      timeoutMs: draft.timeoutMs ?? DEFAULT_CONNECTOR_TIMEOUT_MS,
      updatedAt: Date.now(),
    };
    try {
      await this.#store.connectors.update(updated);
    } catch (error) {
      throw nameTaken(error, updated.name);
    }
    await this.#store.publish({ kind: 'connector_changed', connectorId: record.id });
    return connectorView(updated);
  }

  async delete(id: string): Promise<void> {
    const record = await this.record(id);
    await this.#store.connectors.delete(record.id);
    await this.#store.publish({ kind: 'connector_deleted', connectorId: record.id });
  }

  /**
   * Every problem of the draft at once. `binding` names the field to blame when the attached
   * authentication's credential may not go to the draft's origin (credential-binding.ts); absent
   * when this save does not send it anywhere new.
   */
  async #validate(
    draft: ConnectorDraft,
    schemaErrors: FieldError[],
    options: {
      exceptId?: string | undefined;
      field?: '/authenticationId' | '/baseUrl' | undefined;
      extra?: FieldError[];
    } = {},
  ): Promise<void> {
    const { exceptId, field, extra = [] } = options;
    const rules = checkConnectorRules(draft, this.#allowHttp);
    const errors = [...extra, ...rules.errors];
    // An id with control characters is none of ours (and PostgreSQL refuses NUL in a query).
    if (typeof draft.authenticationId === 'string' && hasControlCharacters(draft.authenticationId)) {
      errors.push({ path: '/authenticationId', message: 'no authentication has this id' });
    } else if (typeof draft.authenticationId === 'string') {
      const authentication = await this.#store.authentications.get(draft.authenticationId);
      if (authentication === null) {
        errors.push({ path: '/authenticationId', message: 'no authentication has this id' });
      } else if (
        field !== undefined &&
        typeof draft.baseUrl === 'string' &&
        URL.canParse(draft.baseUrl) &&
        rules.errors.every((e) => e.path !== '/baseUrl')
      ) {
        const problem = bindingProblem(authentication, originOf(draft.baseUrl as string), field);
        if (problem !== null) errors.push(problem);
      }
    }
    throwIfInvalid(schemaErrors, errors, rules.onlyInsecureUrls && errors.length === rules.errors.length);
    if (typeof draft.name === 'string') {
      const existing = await this.#store.connectors.getByName(draft.name);
      if (existing !== null && existing.id !== exceptId) {
        throw new Problem('conflict', `A connector named "${draft.name}" already exists.`, {
          errors: [{ path: '/name', message: 'is already used by another connector' }],
        });
      }
    }
  }

  #sealHeaders(
    connectorId: string,
    given: Record<string, string>,
    kept: Record<string, Sealed>,
  ): Record<string, Sealed> {
    const sealed: Record<string, Sealed> = { ...kept };
    for (const [name, value] of Object.entries(given)) {
      const lower = name.toLowerCase();
      sealed[lower] = this.#ring.seal(value, sealContext.secretHeader(connectorId, lower));
    }
    return sealed;
  }
}

/** Whether a new base URL sends calls to another origin (scheme, host or port) than the stored one. */
function movesOrigin(stored: string, next: string | undefined): boolean {
  if (next === undefined || !URL.canParse(next)) return false;
  return originOf(next) !== originOf(stored);
}

interface ConnectorRequest {
  values: Omit<ConnectorDraft, 'secretHeaders' | 'storedSecretHeaders'>;
  /** The statuses that replace the token, deduplicated and in order; undefined when absent or malformed. */
  refreshOn: ConnectorRecord['refreshOn'] | undefined;
  secretHeaders: Record<string, string>;
  removedSecretHeaders: string[];
  nulls: Set<string>;
}

const STRING_MAPS = ['headers', 'query'] as const;

/** Reads only well-typed fields, so the rules can run beside the schema's findings. */
function readConnectorRequest(body: Record<string, unknown>): ConnectorRequest {
  const values: ConnectorRequest['values'] = {};
  const nulls = new Set<string>();
  for (const [name, value] of Object.entries(body)) if (value === null) nulls.add(name);
  if (typeof body.name === 'string') values.name = body.name;
  if (typeof body.baseUrl === 'string') values.baseUrl = body.baseUrl;
  if (typeof body.authenticationId === 'string') values.authenticationId = body.authenticationId;
  if (typeof body.timeoutMs === 'number') values.timeoutMs = body.timeoutMs;
  for (const name of STRING_MAPS) {
    const value = body[name];
    if (isStringMap(value)) values[name] = value;
  }
  const secretHeaders: Record<string, string> = {};
  const removedSecretHeaders: string[] = [];
  const secrets = body.secretHeaders;
  if (typeof secrets === 'object' && secrets !== null && !Array.isArray(secrets)) {
    for (const [name, value] of Object.entries(secrets)) {
      if (typeof value === 'string') secretHeaders[name] = value;
      else if (value === null) removedSecretHeaders.push(name);
    }
  }
  return { values, refreshOn: refreshOnOf(body.refreshOn), secretHeaders, removedSecretHeaders, nulls };
}

/** `refreshOn` as sent: the statuses in their order of importance, or undefined (the schema says what is wrong). */
function refreshOnOf(value: unknown): NonNullable<ConnectorRecord['refreshOn']> | undefined {
  if (!Array.isArray(value) || !value.every((status) => status === 401 || status === 403)) return undefined;
  return ([401, 403] as const).filter((status) => value.includes(status));
}

function nameTaken(error: unknown, name: string): unknown {
  if (error instanceof Error && error.name === 'UniqueViolation') {
    return new Problem('conflict', `A connector named "${name}" already exists.`, {
      errors: [{ path: '/name', message: 'is already used by another connector' }],
    });
  }
  return error;
}
