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
  /** JSON object: sealed column name → ciphertext. */
  secrets: string;
  status: string;
  /** JSON, or null. */
  last_error: string | null;
  generation: number;
  calls: number;
  unauthorized_count: number;
  refresh_count: number;
  created_at: number;
  updated_at: number;
  /** `0008_keep_alive`: `settings.keepAliveDays` in milliseconds, or null (no keep-alive). */
  keep_alive_ms: number | null;
  /** `0009_name_search`: the name case-folded for search (name-search.ts). */
  name_folded: string;
}

export interface ConnectorsTable {
  id: string;
  name: string;
  base_url: string;
  authentication_id: string | null;
  /** JSON object of string values. */
  headers: string;
  /** JSON object: lower-case header name → ciphertext. */
  secret_headers: string;
  /** JSON object of string values. */
  query: string;
  /** JSON array of statuses (401, 403); null for the default. Added by 0004_connector_refresh_on. */
  refresh_on: string | null;
  timeout_ms: number;
  created_at: number;
  updated_at: number;
  /** `0009_name_search`: the name case-folded for search (name-search.ts). */
  name_folded: string;
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
  /** `0007`: the client authentication method that obtained these tokens under `auto`, else null. */
  client_auth_method: string | null;
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

export interface ConnectLinksTable {
  token_hash: string;
  auth_id: string;
  generation: number;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

/** `0005_webhooks`: where Grantry tells other systems that an authentication needs a person. */
export interface WebhooksTable {
  id: string;
  url: string;
  /** JSON array of the event types it is subscribed to. */
  events: string;
  description: string | null;
  /** The sealed signing secret (`whsec_…`). */
  secret: string;
  /** 1 or 0: SQLite has no boolean, and both engines must store the same value. */
  enabled: number;
  created_at: number;
  updated_at: number;
}

export interface WebhookEventsTable {
  id: string;
  type: string;
  /** The exact JSON body every delivery of the event sends. */
  body: string;
  created_at: number;
}

export interface WebhookDeliveriesTable {
  id: string;
  webhook_id: string;
  event_id: string;
  event_type: string;
  state: string;
  attempts: number;
  next_attempt_at: number | null;
  /** Until when the instance that claimed it owns it; null when nobody does. */
  lease_until: number | null;
  claim_token: string | null;
  response_status: number | null;
  created_at: number;
  updated_at: number;
}

export interface WebhookAttemptsTable {
  id: Generated<number>;
  delivery_id: string;
  attempt: number;
  at: number;
  duration_ms: number;
  response_status: number | null;
  error_kind: string | null;
  error_message: string | null;
}

export interface AuthenticationAttentionTable {
  auth_id: string;
  /** 1 while a `needs_attention` event is out and no `recovered` has followed. */
  open: number;
  /** How many times attention was opened: part of the events' ids. */
  episode: number;
  /** Consecutive failed token attempts, counted by every instance. */
  failures: number;
  first_failure_at: number | null;
  updated_at: number;
}

/** `0007_shared_token_failures`: the last failed token attempt, shared by every instance. */
export interface TokenFailuresTable {
  auth_id: string;
  /** The authentication generation the attempt was made with; another generation starts over. */
  generation: number;
  /** JSON of the problem (a `ProblemBody`). */
  problem: string;
  /** Failed attempts in a row for this generation. */
  attempts: number;
  /** No instance asks the provider again before this time. */
  next_attempt_at: number;
  updated_at: number;
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
  connect_links: ConnectLinksTable;
  settings: SettingsTable;
  webhooks: WebhooksTable;
  webhook_events: WebhookEventsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  webhook_attempts: WebhookAttemptsTable;
  authentication_attention: AuthenticationAttentionTable;
  token_failures: TokenFailuresTable;
}
