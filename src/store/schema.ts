/**
 * Row shapes of the database, as Kysely sees them. Column names are snake_case; the repositories
 * (`kysely-store.ts`) map them to the camelCase records of `contract.ts`.
 *
 * Times are epoch milliseconds in BIGINT columns (both engines hand them back as JS numbers: see
 * the int8 parser in `dialect.ts`). JSON documents are TEXT on both engines and parsed by the
 * repositories, so the two engines store byte-identical values.
 */
import type { Generated } from 'kysely';

export interface AuthenticationsTable {
  id: string;
  name: string;
  type: string;
  grant_type: string;
  /** JSON of `AuthenticationSettings`. */
  settings: string;
  client_secret: string;
  password: string | null;
  status: string;
  /** JSON, or null. */
  last_error: string | null;
  generation: number;
  calls: number;
  unauthorized_count: number;
  refresh_count: number;
  created_at: number;
  updated_at: number;
}

export interface ConnectorsTable {
  id: string;
  name: string;
  base_url: string;
  authentication_id: string | null;
  /** JSON object of string values. */
  headers: string;
  /** JSON object of string values. */
  query: string;
  /** JSON array of statuses (401, 403); null for the default. Added by 0004_connector_refresh_on. */
  refresh_on: string | null;
  timeout_ms: number;
  created_at: number;
  updated_at: number;
}

export interface TokensTable {
  auth_id: string;
  access_token: string | null;
  token_type: string | null;
  scope: string | null;
  obtained_at: number;
  expires_at: number | null;
  refresh_token: string | null;
  generation: number;
  version: number;
}

export interface EventsTable {
  /** Insertion order, the tie-breaker for events with the same `at`. */
  id: Generated<number>;
  auth_id: string;
  at: number;
  type: string;
  /** JSON object. */
  detail: string;
}

export interface ApiKeysTable {
  id: string;
  name: string;
  hash: string;
  prefix: string;
  scope: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

export interface OAuthStatesTable {
  state_hash: string;
  auth_id: string;
  browser_hash: string;
  code_verifier: string | null;
  redirect_uri: string;
  generation: number;
  created_at: number;
  expires_at: number;
}

export interface SettingsTable {
  key: string;
  value: string;
}

export interface Database {
  authentications: AuthenticationsTable;
  connectors: ConnectorsTable;
  tokens: TokensTable;
  events: EventsTable;
  api_keys: ApiKeysTable;
  oauth_states: OAuthStatesTable;
  settings: SettingsTable;
}
