/**
 * 6. Token fetch overhead: time to a new token through Grantry (TokenManager with `force`: store
 * read, lock, secret opened, grant, tokens sealed and saved, event recorded) vs. a direct
 * oauth4webapi client-credentials call to the same provider. Calls are sequential, so each figure
 * is the latency of one token request, not a throughput.
 *
 * On loopback the provider answers in about a millisecond, so a ratio says little about what a
 * user would notice against a real provider (tens of ms away): the figure judged is the latency
 * Grantry adds, in milliseconds, at the median and at p99 of each round.
 */
import { directTokenRequest } from '../direct-client.js';
import { authenticationBody, startInProcessGrantry, startOidc } from '../environment.js';
import { compared, progress, single, writeScenarioOutput } from '../figures.js';
import { alternate, quantile } from '../statistics.js';

const ROUNDS = Number(process.env.BENCH_TOKEN_ROUNDS ?? 6);
const CALLS = Number(process.env.BENCH_TOKEN_CALLS ?? 100);

interface Latencies {
  p50: number;
  p99: number;
}

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
  /** p50 and p99 (ms) of `CALLS` sequential token requests. */
  const sequential = (call: () => Promise<void>) => async (): Promise<Latencies> => {
    const latencies: number[] = [];
    for (let i = 0; i < CALLS; i++) {
      const started = performance.now();
      await call();
      latencies.push(performance.now() - started);
    }
    // The timeline entries written behind the last fetch land before the other side runs.
    await grantry.app.tokens.settled();
    return { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99) };
  };

  progress('token fetch: warming up');
  await sequential(throughGrantry)();
  await sequential(directCall)();
  const before = await oidc.tokenRequests();
  const results = await alternate(
    ROUNDS,
    { grantry: sequential(throughGrantry), direct: sequential(directCall) },
    (side, round, value) =>
      progress(
        `token fetch round ${round + 1} ${side}: p50 ${value.p50.toFixed(2)} ms, p99 ${value.p99.toFixed(2)} ms`,
      ),
  );
  const requests = (await oidc.tokenRequests()) - before;
  const at = (side: Latencies[], key: keyof Latencies) => side.map((round) => round[key]);
  /** Per round, Grantry's latency minus the direct client's measured beside it. */
  const added = (key: keyof Latencies) =>
    results.grantry.map((round, index) => round[key] - (results.direct[index]?.[key] ?? Number.NaN));

  writeScenarioOutput({
    sections: [
      {
        id: 'token-fetch',
        title: '6. Token fetch overhead',
        subjectName: 'TokenManager.get(id, { force: true }) in process (SQLite file store)',
        baselineName:
          'oauth4webapi clientCredentialsGrantRequest + processClientCredentialsResponse over Node fetch',
        method: `${ROUNDS} alternating rounds of ${CALLS} sequential token requests per side; a round's figures are its p50 and p99; "added" is Grantry's minus the direct client's of the same round`,
        rows: [
          compared('time to a token, p50', 'ms', at(results.grantry, 'p50'), at(results.direct, 'p50')),
          compared('time to a token, p99', 'ms', at(results.grantry, 'p99'), at(results.direct, 'p99')),
          single('added latency over the direct request, p50', 'ms', added('p50'), {
            text: '< 1 ms',
            test: (value) => value < 1,
          }),
          single('added latency over the direct request, p99', 'ms', added('p99')),
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
