/**
 * 4. Refresh storm: 1,000 calls started at the moment the token expires. Grantry should ask the
 * provider once (single-flight per process, the store's lock across instances) while the naive
 * client asks once per call.
 *
 * "The moment of expiry" is made exact with the token manager's clock: every round moves it past
 * the token's hard expiry, so every call of the storm finds the cached token unusable at once —
 * no proactive background refresh gets a head start.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { Egress } from '../../src/egress/egress.js';
import { KeyRing } from '../../src/secrets/key-ring.js';
import type { Store } from '../../src/store/contract.js';
import { openStore } from '../../src/store/open-store.js';
import { createPostgresTestSchema, type PostgresTestSchema } from '../../src/store/postgres-test-schema.js';
import { TokenManager } from '../../src/tokens/token-manager.js';
import { directTokenRequest } from '../direct-client.js';
import { startOidc, startUpstream } from '../environment.js';
import { compared, type FigureRow, progress, type Section, writeScenarioOutput } from '../figures.js';
import { burst } from '../load.js';
import { authenticationRecord } from '../seed.js';
import { alternate, quantile } from '../statistics.js';

const STORM = 1_000;
const ROUNDS = Number(process.env.BENCH_STORM_ROUNDS ?? 3);
/** The naive storm asks the provider 1,000 times: fewer rounds keep the suite short. */
const NAIVE_ROUNDS = Math.min(ROUNDS, 2);
const HOUR_MS = 3_600_000;

interface Instance {
  store: Store;
  egress: Egress;
  tokens: TokenManager;
}

interface StormResult {
  tokenRequests: number;
  /** Calls that failed (the naive client's token requests can overwhelm the provider). */
  failures: number;
  p50: number;
  p99: number;
}

const upstream = await startUpstream('https');
const oidc = await startOidc();
const target = `${upstream.info.url}/text`;
const keyRing = new KeyRing(randomBytes(32));
// Shared by every instance: moving it forward makes the token expire everywhere at once.
let clockOffset = 0;
const clock = () => Date.now() + clockOffset;

async function openInstances(databaseUrl: string, count: number): Promise<Instance[]> {
  const instances: Instance[] = [];
  for (let i = 0; i < count; i++) {
    const store = await openStore(databaseUrl);
    if (i === 0) await store.migrate();
    const egress = new Egress({ mode: 'default', allowHttp: 'loopback' });
    const tokens = new TokenManager({
      store,
      keyRing,
      fetch: egress.fetch,
      tokenTimeoutMs: 15_000,
      redirectUri: 'http://localhost/oauth/redirect',
      clock,
    });
    instances.push({ store, egress, tokens });
  }
  return instances;
}

async function closeInstances(instances: Instance[]): Promise<void> {
  for (const instance of instances) {
    await instance.tokens.close();
    await instance.egress.close();
    await instance.store.close();
  }
}

/** One API call through an instance: its token, then the upstream, body read. */
async function callThrough(instance: Instance, authId: string): Promise<void> {
  const token = await instance.tokens.get(authId);
  const response = await instance.egress.request({
    url: target,
    method: 'GET',
    headers: { authorization: token.authorization },
  });
  await response.body.text();
}

async function storm(call: (index: number) => Promise<void>): Promise<StormResult> {
  const before = await oidc.tokenRequests();
  let failures = 0;
  const latencies = await burst(STORM, (index) =>
    call(index).catch(() => {
      failures++;
    }),
  );
  const tokenRequests = (await oidc.tokenRequests()) - before;
  return { tokenRequests, failures, p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99) };
}

/** Grantry's storms on `instances` sharing one store: at expiry, and with the token cached. */
async function grantryStorms(instances: Instance[], label: string) {
  const first = instances[0] as Instance;
  const record = authenticationRecord(keyRing, `storm ${label}`, oidc.info.tokenUrl);
  await first.store.authentications.insert(record);
  for (const instance of instances) await instance.tokens.get(record.id);
  const call = (index: number) => callThrough(instances[index % instances.length] as Instance, record.id);
  // Warm the connection pools and the JIT on the cached path first.
  await storm(call);
  return {
    atExpiry: async () => {
      clockOffset += 2 * HOUR_MS;
      return storm(call);
    },
    cached: () => storm(call),
  };
}

const report = (side: string, round: number, value: StormResult) =>
  progress(
    `storm round ${round + 1} ${side}: ${value.tokenRequests} token requests, p50 ${value.p50.toFixed(1)} ms, p99 ${value.p99.toFixed(1)} ms${value.failures > 0 ? `, ${value.failures} calls FAILED` : ''}`,
  );
const pick = (runs: StormResult[], key: keyof StormResult) => runs.map((r) => r[key]);
const method = `${STORM} calls (token + GET /text on the HTTPS upstream) started together; ${ROUNDS} alternating rounds`;
const sections: Section[] = [];

const naiveAgent = new Agent({ connections: 128 });
const naiveToken = directTokenRequest(oidc.info.issuer, oidc.info.tokenUrl);
const naiveCall = async (): Promise<void> => {
  const token = await naiveToken();
  const response = await request(target, {
    headers: { authorization: `Bearer ${token}` },
    dispatcher: naiveAgent,
  });
  await response.body.text();
};

const singleDir = mkdtempSync(join(tmpdir(), 'grantry-bench-'));
const single = await openInstances(`sqlite:${join(singleDir, 'grantry.db')}`, 1);
try {
  const grantry = await grantryStorms(single, 'one instance');
  progress('storm: one instance (SQLite)');
  const results = await alternate(ROUNDS, { atExpiry: grantry.atExpiry, cached: grantry.cached }, report);
  // The naive storms run after Grantry's: their 1,000 token requests leave the provider busy and
  // the pooled connections cold, which would tilt the rounds that came next.
  progress('storm: the naive client (one token request per call)');
  const naive = (await alternate(NAIVE_ROUNDS, { naive: () => storm(naiveCall) }, report)).naive;
  const grantryPaired = results.atExpiry.slice(0, NAIVE_ROUNDS);
  const rows: FigureRow[] = [
    compared(
      'token requests per storm (vs naive client)',
      'requests',
      pick(grantryPaired, 'tokenRequests'),
      pick(naive, 'tokenRequests'),
      { text: 'Grantry = 1', test: (_ratio, subject) => subject === 1 },
    ),
    compared(
      'p99, calls that waited for the refresh (vs the storm with a cached token)',
      'ms',
      pick(results.atExpiry, 'p99'),
      pick(results.cached, 'p99'),
    ),
    compared(
      'p50, calls that waited for the refresh (vs the storm with a cached token)',
      'ms',
      pick(results.atExpiry, 'p50'),
      pick(results.cached, 'p50'),
    ),
    compared('p99 of the storm (vs naive client)', 'ms', pick(grantryPaired, 'p99'), pick(naive, 'p99')),
  ];
  const failed = (runs: StormResult[]) => runs.reduce((sum, r) => sum + r.failures, 0);
  const notes = [
    `Failed calls: Grantry ${failed(results.atExpiry) + failed(results.cached)}, naive client ${failed(naive)} of ${NAIVE_ROUNDS * STORM}.`,
  ];
  sections.push({
    id: 'storm-one',
    title: '4a. Refresh storm, one instance',
    subjectName: 'Grantry TokenManager (SQLite store), token expired at the storm',
    baselineName:
      'the same storm with the token cached; and a naive client (oauth4webapi token request per call)',
    method: `${method} (naive client: ${NAIVE_ROUNDS} rounds after Grantry's)`,
    rows,
    notes,
  });
} finally {
  await closeInstances(single);
  rmSync(singleDir, { recursive: true, force: true });
}

const postgresUrl = process.env.GRANTRY_BENCH_DATABASE_URL || process.env.GRANTRY_TEST_DATABASE_URL;
if (postgresUrl === undefined || postgresUrl === '') {
  sections.push({
    id: 'storm-three',
    title: '4b. Refresh storm, three instances',
    subjectName: 'three Grantry instances sharing PostgreSQL',
    baselineName: 'the same storm with the token cached',
    method,
    rows: [],
    notes: [],
    skipped: 'no PostgreSQL: set GRANTRY_BENCH_DATABASE_URL (or GRANTRY_TEST_DATABASE_URL) to run it',
  });
} else {
  let schema: PostgresTestSchema | undefined;
  let three: Instance[] = [];
  try {
    schema = await createPostgresTestSchema(postgresUrl, 'grantry_bench');
    three = await openInstances(schema.url, 3);
    const grantry = await grantryStorms(three, 'three instances');
    progress('storm: three instances (PostgreSQL)');
    const results = await alternate(ROUNDS, { atExpiry: grantry.atExpiry, cached: grantry.cached }, report);
    sections.push({
      id: 'storm-three',
      title: '4b. Refresh storm, three instances',
      subjectName:
        'three Grantry TokenManagers, each with its own PostgreSQL store (connections, advisory lock, LISTEN/NOTIFY)',
      baselineName: 'the same storm with the token cached',
      method: `${method}; calls spread evenly over the three instances`,
      rows: [
        compared(
          'token requests per storm (vs naive client, one instance)',
          'requests',
          pick(results.atExpiry, 'tokenRequests'),
          Array.from({ length: ROUNDS }, () => STORM),
          { text: 'Grantry = 1', test: (_ratio, subject) => subject === 1 },
        ),
        compared(
          'p99, calls that waited for the refresh (vs cached token)',
          'ms',
          pick(results.atExpiry, 'p99'),
          pick(results.cached, 'p99'),
        ),
        compared(
          'p50, calls that waited for the refresh (vs cached token)',
          'ms',
          pick(results.atExpiry, 'p50'),
          pick(results.cached, 'p50'),
        ),
      ],
      notes: [
        'The naive client asks once per call whatever the number of instances, so its baseline here is 1,000.',
      ],
    });
  } finally {
    await closeInstances(three);
    await schema?.drop();
  }
}

await naiveAgent.close();
await oidc.stop();
await upstream.stop();
writeScenarioOutput({ sections });
