import type { ConnectorRecord } from '../store/contract.js';

/** A connector as the API answers it (docs/api.md "Connectors"): secret header values never, their names only. */
export interface ConnectorView {
  id: string;
  name: string;
  baseUrl: string;
  authenticationId: string | null;
  headers: Record<string, string>;
  /** Lower-case names of the secret headers (their values are write-only). */
  secretHeaderNames: string[];
  query: Record<string, string>;
  timeoutMs: number;
  createdAt: string;
  updatedAt: string;
}

const iso = (ms: number) => new Date(ms).toISOString();

export function connectorView(record: ConnectorRecord): ConnectorView {
  return {
    id: record.id,
    name: record.name,
    baseUrl: record.baseUrl,
    authenticationId: record.authenticationId,
    headers: record.headers,
    secretHeaderNames: Object.keys(record.secretHeaders).sort(),
    query: record.query,
    timeoutMs: record.timeoutMs,
    createdAt: iso(record.createdAt),
    updatedAt: iso(record.updatedAt),
  };
}
