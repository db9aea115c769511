import { DEFAULT_REFRESH_ON } from '../connectors/call-policy.js';
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
  /** The statuses that make Grantry replace the token and retry once; [401] unless set. */
  refreshOn: (401 | 403)[];
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
    refreshOn: [...(record.refreshOn ?? DEFAULT_REFRESH_ON)],
    timeoutMs: record.timeoutMs,
    createdAt: iso(record.createdAt),
    updatedAt: iso(record.updatedAt),
  };
}
