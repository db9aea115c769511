import { dirname, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { AccessControl } from './api/access.js';
import type { ApiContext } from './api/context.js';
import { ProxyFront } from './api/proxy-front.js';
import { apiReferenceRoutes } from './api/routes/api-reference.js';
import { authenticationRoutes } from './api/routes/authentications.js';
import { connectorCallRoutes } from './api/routes/connector-calls.js';
import { connectorRoutes } from './api/routes/connectors.js';
import { jwksRoutes } from './api/routes/jwks.js';
import { metricsRoutes } from './api/routes/metrics.js';
import { oauthFlowRoutes } from './api/routes/oauth-flow.js';
import { providerRoutes } from './api/routes/providers.js';
import { proxyRoutes } from './api/routes/proxy.js';
import { serviceRoutes } from './api/routes/service.js';
import { webUiRoutes } from './api/routes/web-ui.js';
import { webhookRoutes } from './api/routes/webhooks.js';
import { createServer } from './api/server.js';
import type { Config } from './config.js';
import { credentialsForAuthentications } from './connectors/credentials-for.js';
import { ConnectorEngine } from './connectors/execute.js';
import { Egress } from './egress/egress.js';
import { createLogger } from './logger.js';
import { DpopNonces } from './oauth/dpop.js';
import { Metrics } from './observability/metrics.js';
import { ProviderCatalogue } from './providers/provider-catalogue.js';
import { type KeyRing, MasterKeyError } from './secrets/key-ring.js';
import { loadKeyRing } from './secrets/master-key-source.js';
import { createApiKey } from './services/api-keys.js';
import { AuthenticationService } from './services/authentication-service.js';
import { ConnectorService } from './services/connector-service.js';
import { KEY_CHECK_CONTEXT, KEY_CHECK_SETTING } from './services/key-rotation.js';
import type { Store } from './store/contract.js';
import { openStore } from './store/open-store.js';
import { AuthorizationFlows } from './tokens/authorization-flow.js';
import { KeepAliveScheduler } from './tokens/keep-alive.js';
import { ProviderMetadata } from './tokens/provider-metadata.js';
import { revokeOnDelete } from './tokens/revocation-on-delete.js';
import { openSecretHeaders } from './tokens/sealed-columns.js';
import { TokenManager } from './tokens/token-manager.js';
import { UsageCounters } from './tokens/usage-counters.js';
import { DEFAULT_RETRY_SCHEDULE } from './webhooks/retry-schedule.js';
import { WebhookService } from './webhooks/webhook-service.js';

/**
 * The composition root: the one place that knows every part and wires them together. Nothing
 * below it imports it.
 */
export interface App {
  config: Config;
  logger: Logger;
  store: Store;
  keyRing: KeyRing;
  egress: Egress;
  tokens: TokenManager;
  usage: UsageCounters;
  metrics: Metrics;
  webhooks: WebhookService;
  keepAlive: KeepAliveScheduler;
  server: FastifyInstance;
  /** Starts listening; resolves to the address. */
  listen(): Promise<string>;
  close(): Promise<void>;
}

export function keyFilePathFor(databaseUrl: string): string {
  if (databaseUrl.startsWith('sqlite:') && !databaseUrl.includes(':memory:')) {
    return resolve(dirname(resolve(databaseUrl.slice('sqlite:'.length))), 'master.key');
  }
  return resolve('data', 'master.key');
}

/**
 * Proves at start-up that the configured master key is the one the data was written with, so a
 * wrong key is reported as exactly that instead of as a confusing error on first use.
 */
export async function verifyMasterKey(store: Store, keyRing: KeyRing): Promise<void> {
  const check = await store.getSetting(KEY_CHECK_SETTING);
  if (check === null) {
    await store.setSetting(KEY_CHECK_SETTING, keyRing.seal('grantry', KEY_CHECK_CONTEXT));
    return;
  }
  try {
    keyRing.open(check, KEY_CHECK_CONTEXT);
  } catch (error) {
    if (error instanceof MasterKeyError && /encrypted with master key/.test(error.message)) throw error;
    throw new MasterKeyError(
      'The master key does not match the one this database was written with: GRANTRY_MASTER_KEY is wrong.',
    );
  }
}

export async function createApp(
  config: Config,
  options: {
    logger?: Logger;
    printBootstrapKey?: boolean;
    /** The clock of the token lifecycle, the flows and the webhooks (tests move time forward). */
    clock?: () => number;
  } = {},
) {
  const logger = options.logger ?? createLogger(config.logLevel);
  const store = await openStore(config.databaseUrl);
  try {
    await store.migrate();
    const keyRing = loadKeyRing({
      configured: config.masterKey,
      previous: config.previousMasterKeys,
      keyFilePath: keyFilePathFor(config.databaseUrl),
      production: config.production,
      warn: (message) => logger.warn(message),
    });
    await verifyMasterKey(store, keyRing);

    if (config.apiKey === undefined && (await store.apiKeys.countActive()) === 0) {
      const { key } = await createApiKey(store, 'first key');
      if (options.printBootstrapKey !== false) {
        // Printed once, on purpose, outside the log stream: it is the only way to get the first key.
        process.stdout.write(
          `\nGrantry created its first API key (shown only this once):\n\n  ${key}\n\n` +
            'Send it as "Authorization: Bearer <key>". Create more with `grantry api-keys create`.\n\n',
        );
      }
    }

    const redirectUri = `${config.publicUrl}/oauth/redirect`;
    const egress = new Egress({ mode: config.egress, allowHttp: config.allowHttp });
    // Cache hits are read from the token manager only when scraped: its hot path keeps a plain count.
    const metrics: Metrics = new Metrics({ cacheHits: (): number => tokens.cacheHits });
    const webhooks = new WebhookService({
      allowHttp: config.allowHttp,
      store,
      keyRing,
      egress,
      logger,
      schedule: {
        ...DEFAULT_RETRY_SCHEDULE,
        baseDelayMs: config.webhookRetryBaseMs,
        maxDelayMs: config.webhookRetryMaxDelayMs,
      },
      pollIntervalMs: config.webhookPollMs,
      ...(options.clock !== undefined ? { clock: options.clock } : {}),
    });
    const metadata = new ProviderMetadata({ fetch: egress.fetch, timeoutMs: config.tokenTimeoutMs });
    // DPoP nonces (RFC 9449 §8, §9) are per server: one store for token endpoints and APIs.
    const dpopNonces = new DpopNonces();
    const jwksBaseUrl = `${config.publicUrl}/jwks`;
    const tokens = new TokenManager({
      store,
      keyRing,
      fetch: egress.fetch,
      tokenTimeoutMs: config.tokenTimeoutMs,
      redirectUri,
      observe: metrics.observeTokens,
      // The token lifecycle knows nothing of webhooks: it reports status changes, they listen.
      onStatusChange: (change) => webhooks.authenticationStatusChanged(change),
      metadata,
      lockTimeoutMs: config.refreshLockTimeoutMs,
      dpopNonces,
      clientCertificateFetch: (certificate) => egress.clientCertificateFetch(certificate),
      jwksUriOf: (authId) => `${jwksBaseUrl}/${encodeURIComponent(authId)}.json`,
      ...(options.clock !== undefined ? { clock: options.clock } : {}),
    });
    const keepAlive = new KeepAliveScheduler({
      store,
      tokens,
      pollIntervalMs: config.keepAlivePollMs,
      log: logger,
      ...(options.clock !== undefined ? { clock: options.clock } : {}),
    });
    const usage = new UsageCounters(store);
    const access = new AccessControl({
      store,
      bootstrapKey: config.apiKey,
      perKeyPerMinute: config.rateLimitPerMinute,
      failuresPerMinute: config.authFailuresPerMinute,
    });
    const providers = new ProviderCatalogue();
    const authentications = new AuthenticationService({
      store,
      keyRing,
      tokens,
      flows: new AuthorizationFlows({
        store,
        keyRing,
        tokens,
        metadata,
        redirectUri,
        ...(options.clock !== undefined ? { clock: options.clock } : {}),
      }),
      revokeOnDelete: revokeOnDelete({
        store,
        keyRing,
        fetch: egress.fetch,
        timeoutMs: config.tokenTimeoutMs,
        metadata,
        log: logger,
        clientCertificateFetch: (certificate) => egress.clientCertificateFetch(certificate),
      }),
      redirectUri,
      allowHttp: config.allowHttp,
      providers,
      connectBaseUrl: `${config.publicUrl}/oauth/connect`,
      jwksBaseUrl,
    });
    const connectors = new ConnectorService({ store, keyRing, allowHttp: config.allowHttp });
    const engine = new ConnectorEngine({
      store,
      credentialsFor: credentialsForAuthentications({
        store,
        tokens,
        keyRing,
        certificateDispatcher: (certificate) => egress.clientCertificateDispatcher(certificate),
      }),
      openSecretHeaders: (record) => openSecretHeaders(keyRing, record),
      egress,
      tokens,
      usage,
      maxBodyBytes: config.executeMaxBodyBytes,
      bufferLimitBytes: config.executeBufferLimitBytes,
      observer: metrics,
    });
    const context: ApiContext = {
      config,
      store,
      egress,
      access,
      logger,
      metrics,
      authentications,
      connectors,
      engine,
      providers,
      redirectUri,
      webhooks,
    };
    // `/proxy/<id>/…` is served ahead of Fastify (src/api/proxy-front.ts); all else goes through it.
    const front = new ProxyFront({ engine, access, metrics, logger });
    const server = createServer(context, { front });
    await server.register(serviceRoutes, context);
    await server.register(authenticationRoutes, context);
    await server.register(connectorRoutes, context);
    await server.register(webhookRoutes, context);
    // Route plugins of further areas are registered here, one line each.
    await server.register(metricsRoutes, context);
    await server.register(connectorCallRoutes, context);
    await server.register(proxyRoutes, context);
    await server.register(oauthFlowRoutes, context);
    await server.register(providerRoutes, context);
    await server.register(jwksRoutes, context);
    await server.register(apiReferenceRoutes);
    await server.register(webUiRoutes, context);

    // Deliveries stored before a restart (or by another instance) go out from now on.
    webhooks.start();
    // Idle refresh tokens are kept alive from now on (once per cluster: see keep-alive.ts).
    keepAlive.start();
    const app: App = {
      config,
      logger,
      store,
      keyRing,
      egress,
      tokens,
      usage,
      metrics,
      webhooks,
      keepAlive,
      server,
      async listen() {
        return server.listen({ port: config.port, host: config.host });
      },
      async close() {
        await server.close();
        await keepAlive.close();
        engine.close();
        // Status changes still being written may enqueue events; then the attempts under way finish.
        await tokens.close();
        await webhooks.close();
        await usage.close();
        await egress.close();
        await store.close();
      },
    };
    return app;
  } catch (error) {
    await store.close().catch(() => {});
    throw error;
  }
}
