/**
 * 6. Token fetch overhead: time to a new token through Grantry (TokenManager with `force`: store
 * read, lock, secret opened, grant, tokens sealed and saved, event recorded) vs. a direct
 * oauth4webapi client-credentials call to the same provider. Calls are sequential, so each figure
 * is the latency of one token request, not a throughput.
 */
import { directTokenRequest } from '../direct-client.js';
import { authenticationBody, startInProcessGrantry, startOidc } from '../environment.js';
import { compared, progress, writeScenarioOutput } from '../figures.js';
import { alternate, median } from '../statistics.js';

const ROUNDS = Number(process.env.BENCH_TOKEN_ROUNDS ?? 6);
const CALLS = Number(process.env.BENCH_TOKEN_CALLS ?? 40);

const oidc = await startOidc();
const grantry = await startInProcessGrantry();
try {
  const auth = await grantry.api<{ id: string }>(
    'POST',
    '/api/authentications',
    authenticationBody(oidc.info.tokenUrl, 'token fetch'),
  );
  const direct = directTokenRequest(oidc.info.issuer, oidc.info.tokenUrl);
  const throughGrantry = async () => {
    await grantry.app.tokens.get(auth.id, { force: true });
  };
  const directCall = async () => {
    await direct();
  };
  /** Median latency (ms) of `CALLS` sequential token requests. */
  const sequential = (call: () => Promise<void>) => async () => {
    const latencies: number[] = [];
    for (let i = 0; i < CALLS; i++) {
      const started = performance.now();
      await call();
      latencies.push(performance.now() - started);
    }
    return median(latencies);
  };

  progress('token fetch: warming up');
  await sequential(throughGrantry)();
  await sequential(directCall)();
  const before = await oidc.tokenRequests();
  const results = await alternate(
    ROUNDS,
    { grantry: sequential(throughGrantry), direct: sequential(directCall) },
    (side, round, value) => progress(`token fetch round ${round + 1} ${side}: median ${value.toFixed(2)} ms`),
  );
  const requests = (await oidc.tokenRequests()) - before;

  writeScenarioOutput({
    sections: [
      {
        id: 'token-fetch',
        title: '6. Token fetch overhead',
        subjectName: 'TokenManager.get(id, { force: true }) in process (SQLite file store)',
        baselineName:
          'oauth4webapi clientCredentialsGrantRequest + processClientCredentialsResponse over Node fetch',
        method: `${ROUNDS} alternating rounds of ${CALLS} sequential token requests per side; the figure of a round is its median`,
        rows: [
          compared('time to a token (median)', 'ms', results.grantry, results.direct, {
            text: '≤ 1.10×',
            test: (ratio) => ratio <= 1.1,
          }),
        ],
        notes: [
          `Token requests the provider received in the measured rounds: ${requests} (expected ${2 * ROUNDS * CALLS}).`,
        ],
      },
    ],
  });
} finally {
  await grantry.close();
  await oidc.stop();
}
