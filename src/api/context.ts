import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { ConnectorEngine } from '../connectors/execute.js';
import type { Egress } from '../egress/egress.js';
import type { Metrics } from '../observability/metrics.js';
import type { ProviderCatalogue } from '../providers/provider-catalogue.js';
import type { AuthenticationService } from '../services/authentication-service.js';
import type { ConnectorService } from '../services/connector-service.js';
import type { Store } from '../store/contract.js';
import type { WebhookService } from '../webhooks/webhook-service.js';
import type { AccessControl } from './access.js';

/**
 * What the route plugins are given by the composition root (src/app.ts): the services they adapt
 * to HTTP, and the few parts of the service itself (access control, metrics, the store's health).
 */
export interface ApiContext {
  config: Config;
  /** For readiness only: everything else goes through the services. */
  store: Store;
  /** Every outbound request goes through it (policy, no redirects for OAuth, pools). */
  egress: Egress;
  access: AccessControl;
  logger: Logger;
  /** This instance's Prometheus metrics (GET /metrics); the connector engine counts upstream calls here. */
  metrics: Metrics;
  authentications: AuthenticationService;
  connectors: ConnectorService;
  /** The one call engine under execute, test and the proxy. */
  engine: ConnectorEngine;
  /** Provider presets (GET /api/providers). */
  providers: ProviderCatalogue;
  /** `<GRANTRY_PUBLIC_URL>/oauth/redirect`: what to register at providers. */
  redirectUri: string;
  /** Webhooks: their configuration, test events and delivery worker. */
  webhooks: WebhookService;
}
