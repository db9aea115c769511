import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { ConnectorEngine } from '../connectors/execute.js';
import type { Egress } from '../egress/egress.js';
import type { Metrics } from '../observability/metrics.js';
import type { KeyRing } from '../secrets/key-ring.js';
import type { AuthenticationRecord, Store } from '../store/contract.js';
import type { TokenManager } from '../tokens/token-manager.js';
import type { UsageCounters } from '../tokens/usage-counters.js';
import type { AccessControl } from './access.js';

/** What the route plugins are given by the composition root (src/app.ts). */
export interface ApiContext {
  config: Config;
  store: Store;
  keyRing: KeyRing;
  /** Every outbound request goes through it (policy, no redirects for OAuth, pools). */
  egress: Egress;
  tokens: TokenManager;
  usage: UsageCounters;
  access: AccessControl;
  logger: Logger;
  /** Connectors at work: the compiled connectors and the call pipeline of execute, test and the proxy. */
  engine: ConnectorEngine;
  /** This instance's Prometheus metrics (GET /metrics); the connector engine counts upstream calls here. */
  metrics: Metrics;
  /** The exact redirect URI to register at providers: `<GRANTRY_PUBLIC_URL>/oauth/redirect`. */
  redirectUri: string;
  /** Revokes an authentication's tokens at the provider before it is deleted (RFC 7009). */
  revokeOnDelete?: (record: AuthenticationRecord) => Promise<void>;
}
