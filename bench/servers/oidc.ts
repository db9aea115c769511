/**
 * The authorization server of the suite: a real oidc-provider over HTTPS (test/support/oidc.ts), in
 * a process of its own, counting token requests as they arrive.
 */
import { startOidcProvider } from '../../test/support/oidc.js';
import { serveParent } from '../child-process.js';
import { BENCH_CLIENT } from '../environment.js';

const provider = await startOidcProvider({
  clients: [
    { client_id: BENCH_CLIENT.id, client_secret: BENCH_CLIENT.secret, grant_types: ['client_credentials'] },
  ],
  accessTokenTtl: 3600,
});
serveParent(
  { issuer: provider.issuer, tokenUrl: provider.tokenUrl },
  {
    tokenRequests: () => provider.tokenRequests.total,
    resetCounts: () => provider.resetCounts(),
  },
  () => provider.close(),
);
