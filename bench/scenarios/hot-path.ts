/**
 * 1. The hot path in process: TokenManager.get + Egress.request against the upstream, vs. a bare
 * undici request with a constant Authorization header, same upstream, same connection limit.
 */
import { Agent, request } from 'undici';
import { authenticationBody, startInProcessGrantry, startOidc, startUpstream } from '../environment.js';
import { compared, progress, writeScenarioOutput } from '../figures.js';
import { closedLoop } from '../load.js';
import { alternate } from '../statistics.js';

const ROUNDS = 8;
const ROUND_MS = 2_000;
const CONCURRENCY = 32;

const upstream = await startUpstream('https');
const oidc = await startOidc();
const grantry = await startInProcessGrantry();
const bare = new Agent({ connections: 128 });
try {
  const auth = await grantry.api<{ id: string }>(
    'POST',
    '/api/authentications',
    authenticationBody(oidc.info.tokenUrl, 'hot path'),
  );
  const { app } = grantry;
  const target = `${upstream.info.url}/text`;
  const constantAuthorization = (await app.tokens.get(auth.id)).authorization;

  const throughGrantry = async (): Promise<void> => {
    const token = await app.tokens.get(auth.id);
    const response = await app.egress.request({
      url: target,
      method: 'GET',
      headers: { authorization: token.authorization },
    });
    await response.body.text();
  };
  const bareUndici = async (): Promise<void> => {
    const response = await request(target, {
      method: 'GET',
      headers: { authorization: constantAuthorization },
      dispatcher: bare,
    });
    await response.body.text();
  };

  progress('hot path: warming up both sides');
  await closedLoop(throughGrantry, { concurrency: CONCURRENCY, durationMs: 1_000 });
  await closedLoop(bareUndici, { concurrency: CONCURRENCY, durationMs: 1_000 });
  const tokenRequestsBefore = await oidc.tokenRequests();

  const results = await alternate(
    ROUNDS,
    {
      grantry: () => closedLoop(throughGrantry, { concurrency: CONCURRENCY, durationMs: ROUND_MS }),
      bare: () => closedLoop(bareUndici, { concurrency: CONCURRENCY, durationMs: ROUND_MS }),
    },
    (side, round, value) =>
      progress(
        `hot path round ${round + 1} ${side}: ${value.callsPerSecond.toFixed(0)} calls/s, ${value.cpuMicrosPerCall.toFixed(0)} µs CPU/call`,
      ),
  );
  const tokenRequestsDuring = (await oidc.tokenRequests()) - tokenRequestsBefore;

  writeScenarioOutput({
    sections: [
      {
        id: 'hot-path',
        title: '1. Hot path in process',
        subjectName: 'TokenManager.get + Egress.request (undici Agent, address policy)',
        baselineName: 'bare undici request() with a constant Authorization header',
        method: `${CONCURRENCY} concurrent callers in one process, ${ROUNDS} alternating rounds of ${ROUND_MS / 1000} s per side, GET /text on the HTTPS upstream (own process, keep-alive)`,
        rows: [
          compared(
            'throughput',
            'calls/s',
            results.grantry.map((r) => r.callsPerSecond),
            results.bare.map((r) => r.callsPerSecond),
            { text: '≥ 0.90×', test: (ratio) => ratio >= 0.9 },
          ),
          compared(
            'CPU time of this process per call',
            'µs',
            results.grantry.map((r) => r.cpuMicrosPerCall),
            results.bare.map((r) => r.cpuMicrosPerCall),
          ),
        ],
        notes: [
          `Token requests during the measured rounds: ${tokenRequestsDuring} (the token stays cached).`,
        ],
      },
    ],
  });
} finally {
  await grantry.close();
  await bare.close();
  await oidc.stop();
  await upstream.stop();
}
