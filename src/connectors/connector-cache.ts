import { EgressError } from '../egress/egress-error.js';
import type { ChangeEvent, ConnectorRecord, Store } from '../store/contract.js';
import { DEFAULT_REFRESH_ON } from './call-policy.js';
import type { CredentialSource } from './credential-source.js';
import { type BaseTarget, compileBaseTarget } from './target-url.js';

/**
 * A connector compiled for the hot path: its base URL parsed and vetted once, its static query
 * encoded once, its header names lower-cased once.
 */
export interface ConnectorTarget extends BaseTarget {
  readonly id: string;
  readonly name: string;
  readonly baseUrl: string;
  /** `host[:port]`, safe to show. */
  readonly host: string;
  readonly authId: string | null;
  /** Static headers, names lower-cased. */
  readonly headers: Readonly<Record<string, string>>;
  /** The same as a field list `[name, value, …]`, the shape requests are sent with. */
  readonly headerList: readonly string[];
  /** Where calls get their credential; null when the connector has no authentication. */
  readonly credentials: CredentialSource | null;
  /** Statuses that make the pipeline replace the credential and retry once (`refreshOn`). */
  readonly refreshOn: ReadonlySet<number>;
  readonly timeoutMs: number;
  /** Why the base URL cannot be used (not https, not parseable), or null. */
  readonly urlProblem: EgressError | null;
}

/** Vets a base URL the way egress will (https, or http to loopback when allowed). */
export type UrlCheck = (url: URL) => void;

/**
 * The credential source of a connector's authentication. May load the authentication to see its
 * kind (an OAuth client, a static key); called once per compiled connector, not per call.
 */
export type CredentialsFor = (
  authenticationId: string,
) => CredentialSource | null | Promise<CredentialSource | null>;

/** Opens a connector's secret headers (lower-case name → value); they are sent like the static ones. */
export type SecretHeaderOpener = (record: ConnectorRecord) => Record<string, string>;

export function compileConnector(
  record: ConnectorRecord,
  checkUrl: UrlCheck,
  credentials: CredentialSource | null = null,
  openSecretHeaders: SecretHeaderOpener = () => ({}),
): ConnectorTarget {
  let parsed: URL;
  let urlProblem: EgressError | null = null;
  try {
    parsed = new URL(record.baseUrl);
    checkUrl(parsed);
  } catch (error) {
    parsed ??= new URL('https://invalid.invalid/');
    urlProblem =
      error instanceof EgressError
        ? error
        : new EgressError('insecure_url', '', "the connector's base URL is not a valid absolute URL");
  }
  // The credential wins: a static field of a name it sets is not sent beside it.
  const setByCredential = credentials?.names;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(record.headers)) headers[name.toLowerCase()] = value;
  // Opened once per compile, not per call: the hot path decrypts nothing.
  Object.assign(headers, openSecretHeaders(record));
  for (const name of setByCredential?.headers ?? []) delete headers[name];
  const query =
    setByCredential === undefined || setByCredential.query.size === 0
      ? record.query
      : Object.fromEntries(Object.entries(record.query).filter(([name]) => !setByCredential.query.has(name)));
  return {
    ...compileBaseTarget(parsed, query),
    id: record.id,
    name: record.name,
    baseUrl: record.baseUrl,
    host: parsed.host,
    authId: record.authenticationId,
    headers,
    headerList: Object.entries(headers).flat(),
    credentials,
    refreshOn: new Set(record.refreshOn ?? DEFAULT_REFRESH_ON),
    timeoutMs: record.timeoutMs,
    urlProblem,
  };
}

/**
 * Connectors in memory, loaded on first use and dropped when any instance changes them (the
 * store's change feed reaches every instance). A load that races an invalidation is not kept:
 * the entry it would fill was deleted, so the next call loads again.
 */
export class ConnectorCache {
  readonly #store: Store;
  readonly #checkUrl: UrlCheck;
  readonly #credentialsFor: CredentialsFor;
  readonly #openSecretHeaders: SecretHeaderOpener;
  readonly #entries = new Map<string, ConnectorTarget | Promise<ConnectorTarget | null>>();
  readonly #unsubscribe: () => void;

  constructor(
    store: Store,
    checkUrl: UrlCheck,
    credentialsFor: CredentialsFor,
    openSecretHeaders: SecretHeaderOpener = () => ({}),
  ) {
    this.#store = store;
    this.#checkUrl = checkUrl;
    this.#credentialsFor = credentialsFor;
    this.#openSecretHeaders = openSecretHeaders;
    this.#unsubscribe = store.subscribe((event) => this.#onChange(event));
  }

  /** The compiled connector, or null when there is no such connector. */
  get(id: string): ConnectorTarget | Promise<ConnectorTarget | null> {
    const entry = this.#entries.get(id);
    if (entry !== undefined) return entry;
    const loading: Promise<ConnectorTarget | null> = this.#load(id).then(
      (target) => {
        // Replace our own promise only: if it was invalidated meanwhile, the record may be stale.
        if (this.#entries.get(id) === loading) {
          if (target === null) this.#entries.delete(id);
          else this.#entries.set(id, target);
        }
        return target;
      },
      (error: unknown) => {
        if (this.#entries.get(id) === loading) this.#entries.delete(id);
        throw error;
      },
    );
    this.#entries.set(id, loading);
    return loading;
  }

  async #load(id: string): Promise<ConnectorTarget | null> {
    const record = await this.#store.connectors.get(id);
    if (record === null) return null;
    const credentials =
      record.authenticationId === null ? null : await this.#credentialsFor(record.authenticationId);
    return compileConnector(record, this.#checkUrl, credentials, this.#openSecretHeaders);
  }

  close(): void {
    this.#unsubscribe();
    this.#entries.clear();
  }

  #onChange(event: ChangeEvent): void {
    switch (event.kind) {
      case 'connector_changed':
      case 'connector_deleted':
        this.#entries.delete(event.connectorId);
        return;
      case 'authentication_changed':
      case 'authentication_deleted':
        // A forced delete detaches connectors; drop every one that used it.
        for (const [id, entry] of this.#entries) {
          if (!isTarget(entry) || entry.authId === event.authId) this.#entries.delete(id);
        }
        return;
      default:
        return;
    }
  }
}

function isTarget(entry: ConnectorTarget | Promise<ConnectorTarget | null>): entry is ConnectorTarget {
  return !(entry instanceof Promise);
}
