/**
 * 2. The proxy over HTTP and 3. the execute API, each under autocannon, against a minimal Node
 * forwarder to the same upstream. Grantry, the forwarder and the upstream each run in a process of
 * their own; autocannon runs here.
 *
 * The upstream speaks plain HTTP on loopback: TLS to the upstream would cost both sides the same
 * and only dilute the difference being measured.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startChild } from '../child-process.js';
import { authenticationBody, grantryEnv, managementApi, startOidc, startUpstream } from '../environment.js';
import { compared, type FigureRow, progress, writeScenarioOutput } from '../figures.js';
import { type HttpLoadOptions, type HttpLoadResult, httpLoad } from '../load.js';
import { alternate, processCpuMicros } from '../statistics.js';

const ROUNDS = Number(process.env.BENCH_HTTP_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 5);
const CONNECTIONS = 32;
/**
 * The fixed load of the second set of rounds: well below what any side serves on this machine,
 * so every side serves exactly it and their CPU time per request is compared at equal load.
 */
const RATE = Number(process.env.BENCH_HTTP_RATE ?? 3_000);
const RATE_SECONDS = Number(process.env.BENCH_HTTP_RATE_SECONDS ?? 5);

interface Measured extends HttpLoadResult {
  /** user + system CPU of the process under test, per answered request (Linux /proc only). */
  cpuMicrosPerRequest: number;
}

/** Runs a load and charges the CPU the serving process used meanwhile to each request. */
async function withCpu(pid: number, run: () => Promise<HttpLoadResult>): Promise<Measured> {
  const before = processCpuMicros(pid);
  const result = await run();
  const used = processCpuMicros(pid) - before;
  return { ...result, cpuMicrosPerRequest: used / result.requests };
}

const upstream = await startUpstream('http');
const oidc = await startOidc();
const profileDir = process.env.BENCH_CPU_PROF_DIR;
const dataDir = mkdtempSync(join(tmpdir(), 'grantry-bench-'));
const env = grantryEnv(dataDir);
const grantry = await startChild<{ url: string }>('servers/grantry-instance.ts', {
  env,
  // `npm run bench -- --cpu-prof`: a V8 CPU profile of the Grantry process, written as it exits.
  nodeArgs: profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}/grantry`],
});
const api = managementApi(grantry.info.url, env.GRANTRY_API_KEY as string);
const forwarder = await startChild<{ url: string }>('servers/forwarder.ts', {
  env: { FORWARD_TO: upstream.info.url, FORWARD_AUTHORIZATION: 'Bearer constant-bench-token' },
  nodeArgs: profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}/forwarder`],
});
try {
  const auth = await api<{ id: string }>(
    'POST',
    '/api/authentications',
    authenticationBody(oidc.info.tokenUrl, 'data plane'),
  );
  const connector = await api<{ id: string }>('POST', '/api/connectors', {
    name: 'data plane',
    baseUrl: upstream.info.url,
    authenticationId: auth.id,
  });
  const callerKey = { authorization: `Bearer ${env.GRANTRY_API_KEY}` };
  type Request = Omit<HttpLoadOptions, 'connections' | 'durationSeconds' | 'ratePerSecond'>;
  const requests: Record<'proxy' | 'forwarder' | 'execute', { pid: number; request: Request }> = {
    proxy: {
      pid: grantry.pid,
      request: { url: `${grantry.info.url}/proxy/${connector.id}/text`, headers: callerKey },
    },
    forwarder: { pid: forwarder.pid, request: { url: `${forwarder.info.url}/text` } },
    execute: {
      pid: grantry.pid,
      request: {
        url: `${grantry.info.url}/api/connectors/${connector.id}/execute`,
        method: 'POST',
        headers: { ...callerKey, 'content-type': 'application/json' },
        body: JSON.stringify({ method: 'GET', path: '/text' }),
      },
    },
  };
  /** Each side as fast as it answers (closed loop), or at the fixed RATE. */
  const sidesAt = (rate: number | undefined) => {
    const side = (name: keyof typeof requests) => () =>
      withCpu(requests[name].pid, () =>
        httpLoad({
          ...requests[name].request,
          connections: CONNECTIONS,
          durationSeconds: rate === undefined ? SECONDS : RATE_SECONDS,
          ...(rate === undefined ? {} : { ratePerSecond: rate }),
        }),
      );
    return { proxy: side('proxy'), forwarder: side('forwarder'), execute: side('execute') };
  };
  const sides = sidesAt(undefined);

  // BENCH_HTTP_ONLY=proxy (or forwarder, execute): load one side only, e.g. while profiling it;
  // the other sides are not even warmed up, so the profile holds that side's work alone.
  const onlySide = process.env.BENCH_HTTP_ONLY as keyof typeof sides | undefined;
  progress('data plane: warming up (token fetch, connection pools, JIT)');
  for (const [name, side] of Object.entries(sides)) {
    if (onlySide === undefined || onlySide === name) await side();
  }
  if (onlySide !== undefined) {
    // BENCH_HTTP_ONLY_RATE=3000: at that fixed load, as the CPU rounds measure it.
    const onlyRate = process.env.BENCH_HTTP_ONLY_RATE;
    const only = sidesAt(onlyRate === undefined ? undefined : Number(onlyRate))[onlySide];
    for (let round = 0; round < ROUNDS; round++) {
      const value = await only();
      progress(
        `${onlySide}: ${value.requestsPerSecond.toFixed(0)} req/s, ${value.cpuMicrosPerRequest.toFixed(0)} µs CPU/request`,
      );
    }
    await Promise.all([forwarder.stop(), grantry.stop(), oidc.stop(), upstream.stop()]);
    process.exit(0);
  }
  const tokenRequestsBefore = await oidc.tokenRequests();
  const report = (kind: string) => (side: string, round: number, value: Measured) =>
    progress(
      `data plane ${kind} round ${round + 1} ${side}: ${value.requestsPerSecond.toFixed(0)} req/s, p50 ${value.p50.toFixed(2)} ms, p99 ${value.p99.toFixed(2)} ms, ${value.cpuMicrosPerRequest.toFixed(0)} µs CPU/request${value.failures > 0 ? `, ${value.failures} FAILURES` : ''}`,
    );
  const results = await alternate(ROUNDS, sides, report('full-load'));
  const atRate = await alternate(ROUNDS, sidesAt(RATE), report(`${RATE}/s`));
  const tokenRequestsDuring = (await oidc.tokenRequests()) - tokenRequestsBefore;
  const failures = (runs: Measured[]) => runs.reduce((sum, r) => sum + r.failures, 0);
  const allRounds = (name: keyof typeof requests) => [...results[name], ...atRate[name]];
  const pick = (runs: Measured[], key: 'requestsPerSecond' | 'p50' | 'p99' | 'cpuMicrosPerRequest') =>
    runs.map((r) => r[key]);
  /** The targets of a side (issue "the data plane"), as ratios to the forwarder measured beside it. */
  interface Targets {
    throughput: number;
    p99?: number;
    cpu?: number;
  }
  const ratio = (limit: number | undefined, at: 'most' | 'least') =>
    limit === undefined
      ? undefined
      : {
          text: `${at === 'most' ? '≤' : '≥'} ${limit.toFixed(2)}×`,
          test: (value: number) => (at === 'most' ? value <= limit : value >= limit),
        };
  const hasCpu = (runs: Measured[]) => runs.every((r) => Number.isFinite(r.cpuMicrosPerRequest));
  const versus = (
    name: 'proxy' | 'execute',
    subject: Measured[],
    baseline: Measured[],
    targets: Targets,
  ): FigureRow[] => {
    const fixed = atRate[name];
    const fixedBaseline = atRate.forwarder;
    return [
      compared(
        'throughput',
        'req/s',
        pick(subject, 'requestsPerSecond'),
        pick(baseline, 'requestsPerSecond'),
        ratio(targets.throughput, 'least'),
      ),
      compared('latency p50', 'ms', pick(subject, 'p50'), pick(baseline, 'p50')),
      compared('latency p99', 'ms', pick(subject, 'p99'), pick(baseline, 'p99'), ratio(targets.p99, 'most')),
      ...(hasCpu(subject)
        ? [
            compared(
              'CPU time of the serving process per request, at full load',
              'µs',
              pick(subject, 'cpuMicrosPerRequest'),
              pick(baseline, 'cpuMicrosPerRequest'),
            ),
            compared(
              `CPU time of the serving process per request, both at ${RATE.toLocaleString('en')} req/s`,
              'µs',
              pick(fixed, 'cpuMicrosPerRequest'),
              pick(fixedBaseline, 'cpuMicrosPerRequest'),
              ratio(targets.cpu, 'most'),
            ),
          ]
        : []),
      compared(
        `latency p99, both at ${RATE.toLocaleString('en')} req/s`,
        'ms',
        pick(fixed, 'p99'),
        pick(fixedBaseline, 'p99'),
      ),
    ];
  };
  const method = `autocannon, ${CONNECTIONS} connections, GET /text on the plain-HTTP upstream: ${ROUNDS} alternating rounds of ${SECONDS} s per side (proxy, forwarder, execute) as fast as each answers, then ${ROUNDS} of ${RATE_SECONDS} s at a fixed ${RATE.toLocaleString('en')} req/s (CPU per request compared at equal load)`;
  const failureNote = (name: string, runs: Measured[]) =>
    `${name}: ${failures(runs)} non-2xx responses or errors during the measured rounds.`;

  writeScenarioOutput({
    sections: [
      {
        id: 'proxy',
        title: '2. Proxy over HTTP',
        subjectName:
          'Grantry `GET /proxy/:connectorId/text` (the proxy front: API key check, connector cache, token, call pipeline, undici to upstream, piped back)',
        baselineName: 'minimal Node forwarder: http server + constant header + undici Pool, piped',
        method,
        rows: versus('proxy', results.proxy, results.forwarder, { throughput: 0.9, p99: 1.2, cpu: 1.15 }),
        notes: [
          failureNote('Proxy', allRounds('proxy')),
          failureNote('Forwarder', allRounds('forwarder')),
          `Token requests during the measured rounds: ${tokenRequestsDuring}.`,
        ],
      },
      {
        id: 'execute',
        title: '3. Execute API',
        subjectName:
          'Grantry `POST /api/connectors/:id/execute` `{"method":"GET","path":"/text"}` (JSON in, JSON out)',
        baselineName: 'the same minimal forwarder, same upstream route',
        method,
        rows: versus('execute', results.execute, results.forwarder, { throughput: 0.7 }),
        notes: [failureNote('Execute', allRounds('execute'))],
      },
    ],
  });
} finally {
  await forwarder.stop();
  await grantry.stop();
  rmSync(dataDir, { recursive: true, force: true });
  await oidc.stop();
  await upstream.stop();
}
