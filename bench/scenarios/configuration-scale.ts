/**
 * 5. Scale of configuration: 100,000 authentications and 100,000 connectors in the store, against
 * a store of 100 of each: start-up time, get latency and list pages over HTTP (the first page, a
 * page deep into the list, a search), and resident memory as 10,000 tokens are cached.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { KeyRing, parseMasterKey } from '../../src/secrets/key-ring.js';
import { openStore } from '../../src/store/open-store.js';
import { sealContext } from '../../src/tokens/sealed-columns.js';
import { type ChildServer, startChild } from '../child-process.js';
import { grantryEnv } from '../environment.js';
import { compared, type FigureRow, progress, single, writeScenarioOutput } from '../figures.js';
import { authenticationRecord, connectorRecord } from '../seed.js';
import { alternate, linearFit, quantile } from '../statistics.js';

const LARGE = Number(process.env.BENCH_SCALE_ROWS ?? 100_000);
const SMALL = 100;
const CACHED_TOKENS = Math.min(10_000, LARGE);
const ROUNDS = 3;
const GETS = 200;
const PAGE = 100;
/** How many times each page is asked for per round (its p50 is the round's figure). */
const PAGE_REPEATS = 30;
/** Where "deep in the list" is: the page that starts after this many rows. */
const DEEP_ROW = Math.floor(LARGE / 2);
const MB = 1024 * 1024;

interface Seeded {
  dataDir: string;
  env: Record<string, string>;
  authIds: string[];
  connectorIds: string[];
  seconds: number;
}

/** Writes `count` authentications, as many connectors, and a stored token for the first 10,000. */
async function seed(count: number): Promise<Seeded> {
  const started = performance.now();
  const dataDir = mkdtempSync(join(tmpdir(), 'grantry-bench-scale-'));
  const env = grantryEnv(dataDir);
  const store = await openStore(env.GRANTRY_DATABASE_URL as string);
  await store.migrate();
  const keyRing = new KeyRing(parseMasterKey(env.GRANTRY_MASTER_KEY as string, 'GRANTRY_MASTER_KEY'));
  const authIds: string[] = [];
  const connectorIds: string[] = [];
  const now = Date.now();
  const BATCH = 1_000;
  for (let offset = 0; offset < count; offset += BATCH) {
    const size = Math.min(BATCH, count - offset);
    const auths = Array.from({ length: size }, (_, i) =>
      authenticationRecord(keyRing, `authentication ${offset + i}`, 'https://localhost:9/token'),
    );
    await Promise.all(auths.map((record) => store.authentications.insert(record)));
    const connectors = auths.map((auth, i) =>
      connectorRecord(`connector ${offset + i}`, `https://api-${offset + i}.localhost`, auth.id),
    );
    await Promise.all(connectors.map((record) => store.connectors.insert(record)));
    const withTokens = auths.filter((_, i) => offset + i < CACHED_TOKENS);
    await Promise.all(
      withTokens.map((auth) =>
        store.tokens.compareAndSwap(auth.id, null, {
          // A plausible opaque token of 43 characters (oidc-provider's own length).
          accessToken: keyRing.seal(`bench-${auth.id}-${'x'.repeat(12)}`, sealContext.accessToken(auth.id)),
          tokenType: 'Bearer',
          scope: null,
          obtainedAt: now,
          expiresAt: now + 24 * 3_600_000,
          refreshToken: null,
          generation: 1,
        }),
      ),
    );
    authIds.push(...auths.map((a) => a.id));
    connectorIds.push(...connectors.map((c) => c.id));
  }
  await store.close();
  return { dataDir, env, authIds, connectorIds, seconds: (performance.now() - started) / 1000 };
}

interface InstanceInfo {
  url: string;
  startupMs: number;
}

interface Memory {
  rss: number;
  heapUsed: number;
  external: number;
}

async function timed(url: string, apiKey: string, timeoutMs = 10_000): Promise<number> {
  const started = performance.now();
  const response = await request(url, {
    headers: { authorization: `Bearer ${apiKey}` },
    signal: AbortSignal.timeout(timeoutMs),
  });
  await response.body.arrayBuffer();
  if (response.statusCode !== 200) throw new Error(`${url} answered ${response.statusCode}`);
  return performance.now() - started;
}

interface InstanceFigures {
  startupMs: number;
  getAuthenticationP50: number;
  getAuthenticationP99: number;
  getConnectorP50: number;
  getConnectorP99: number;
  authenticationsFirstPageP50: number;
  connectorsFirstPageP50: number;
  connectorsDeepPageP50: number;
  connectorsSearchP50: number;
}

async function pageOf(url: string, apiKey: string): Promise<{ items: unknown[]; nextCursor: string | null }> {
  const response = await request(url, { headers: { authorization: `Bearer ${apiKey}` } });
  if (response.statusCode !== 200) throw new Error(`${url} answered ${response.statusCode}`);
  return (await response.body.json()) as { items: unknown[]; nextCursor: string | null };
}

/** The cursor of the page that starts after `row` rows, found by following the largest pages. */
async function cursorAfter(base: string, apiKey: string, row: number): Promise<string | null> {
  let cursor: string | null = null;
  for (let seen = 0; seen < row; seen += 500) {
    const limit = Math.min(500, row - seen);
    const page = await pageOf(
      `${base}/api/connectors?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`,
      apiKey,
    );
    cursor = page.nextCursor;
    if (cursor === null) return null;
  }
  return cursor;
}

async function medianOf(url: string, apiKey: string): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < PAGE_REPEATS; i++) times.push(await timed(url, apiKey));
  return quantile(times, 0.5);
}

/**
 * Starts an instance on `seeded`, times the gets, then runs `extra` (memory, lists) while it
 * still runs. Lists come last: a huge answer can leave the instance busy for a long time.
 */
async function measureInstance(
  seeded: Seeded,
  extra?: (instance: ChildServer<InstanceInfo>) => Promise<void>,
): Promise<InstanceFigures> {
  const instance = await startChild<InstanceInfo>('servers/grantry-instance.ts', {
    env: seeded.env,
    nodeArgs: ['--expose-gc'],
  });
  try {
    const { url } = instance.info;
    const apiKey = seeded.env.GRANTRY_API_KEY as string;
    const pick = (ids: string[]) =>
      Array.from({ length: GETS }, () => ids[Math.floor(Math.random() * ids.length)] as string);
    const authGets: number[] = [];
    for (const id of pick(seeded.authIds))
      authGets.push(await timed(`${url}/api/authentications/${id}`, apiKey));
    const connectorGets: number[] = [];
    for (const id of pick(seeded.connectorIds))
      connectorGets.push(await timed(`${url}/api/connectors/${id}`, apiKey));
    // Pages: the first of each list; one deep in the list (the baseline has only its first, so
    // the comparison says whether depth costs anything); a search, which scans every name.
    const authenticationsFirstPageP50 = await medianOf(`${url}/api/authentications?limit=${PAGE}`, apiKey);
    const connectorsFirstPageP50 = await medianOf(`${url}/api/connectors?limit=${PAGE}`, apiKey);
    const deepCursor = seeded.connectorIds.length > PAGE ? await cursorAfter(url, apiKey, DEEP_ROW) : null;
    const connectorsDeepPageP50 = await medianOf(
      `${url}/api/connectors?limit=${PAGE}${deepCursor ? `&cursor=${deepCursor}` : ''}`,
      apiKey,
    );
    const connectorsSearchP50 = await medianOf(
      `${url}/api/connectors?limit=${PAGE}&q=${encodeURIComponent('connector 99999')}`,
      apiKey,
    );
    await extra?.(instance);
    return {
      authenticationsFirstPageP50,
      connectorsFirstPageP50,
      connectorsDeepPageP50,
      connectorsSearchP50,
      startupMs: instance.info.startupMs,
      getAuthenticationP50: quantile(authGets, 0.5),
      getAuthenticationP99: quantile(authGets, 0.99),
      getConnectorP50: quantile(connectorGets, 0.5),
      getConnectorP99: quantile(connectorGets, 0.99),
    };
  } finally {
    await instance.stop();
  }
}

progress(`scale: seeding ${LARGE.toLocaleString('en')} authentications and connectors`);
const large = await seed(LARGE);
progress(`scale: seeded in ${large.seconds.toFixed(1)} s; seeding ${SMALL} for the baseline`);
const small = await seed(SMALL);

const memoryCurve: { cached: number; memory: Memory }[] = [];
let smallAtStart: Memory | undefined;
const results = await alternate(
  ROUNDS,
  {
    large: () =>
      measureInstance(large, async (instance) => {
        if (memoryCurve.length > 0) return;
        const step = CACHED_TOKENS / 4;
        memoryCurve.push({ cached: 0, memory: await instance.ask<Memory>('memory') });
        for (let cached = step; cached <= CACHED_TOKENS; cached += step) {
          await instance.ask('cacheTokens', large.authIds.slice(cached - step, cached));
          memoryCurve.push({ cached, memory: await instance.ask<Memory>('memory') });
        }
      }),
    small: () =>
      measureInstance(small, async (instance) => {
        smallAtStart ??= await instance.ask<Memory>('memory');
      }),
  },
  (side, round, value) =>
    progress(
      `scale round ${round + 1} ${side}: start-up ${value.startupMs.toFixed(0)} ms, get p50 ${value.getAuthenticationP50.toFixed(2)} ms, p99 ${value.getAuthenticationP99.toFixed(2)} ms`,
    ),
);

const of = (key: keyof InstanceFigures) =>
  [results.large.map((r) => r[key]), results.small.map((r) => r[key])] as const;
const rows: FigureRow[] = [
  compared('start-up (createApp + listen)', 'ms', ...of('startupMs')),
  compared('GET /api/authentications/:id p50', 'ms', ...of('getAuthenticationP50')),
  compared('GET /api/authentications/:id p99', 'ms', ...of('getAuthenticationP99')),
  compared('GET /api/connectors/:id p50', 'ms', ...of('getConnectorP50')),
  compared('GET /api/connectors/:id p99', 'ms', ...of('getConnectorP99')),
  compared(
    `GET /api/authentications?limit=${PAGE}, first page, p50`,
    'ms',
    ...of('authenticationsFirstPageP50'),
    {
      text: '< 20 ms',
      test: (_ratio, subject) => subject < 20,
    },
  ),
  compared(`GET /api/connectors?limit=${PAGE}, first page, p50`, 'ms', ...of('connectorsFirstPageP50'), {
    text: '< 20 ms',
    test: (_ratio, subject) => subject < 20,
  }),
  compared(
    `GET /api/connectors?limit=${PAGE} after row ${DEEP_ROW.toLocaleString('en')} (baseline: its only page), p50`,
    'ms',
    ...of('connectorsDeepPageP50'),
    { text: '< 20 ms', test: (_ratio, subject) => subject < 20 },
  ),
  compared(
    `GET /api/connectors?limit=${PAGE}&q=connector 99999 (a search matching one row at most: every name is read), p50`,
    'ms',
    ...of('connectorsSearchP50'),
  ),
];
const notes: string[] = [
  `Seeding ${LARGE.toLocaleString('en')} authentications + connectors + ${CACHED_TOKENS.toLocaleString('en')} stored tokens through the repositories took ${large.seconds.toFixed(1)} s.`,
];
const first = memoryCurve[0];
const last = memoryCurve[memoryCurve.length - 1];
if (first !== undefined && last !== undefined) {
  const rssFit = linearFit(memoryCurve.map((p) => ({ x: p.cached, y: p.memory.rss })));
  const heapFit = linearFit(memoryCurve.map((p) => ({ x: p.cached, y: p.memory.heapUsed })));
  if (smallAtStart !== undefined) {
    rows.push(
      compared(
        'resident memory after start-up and the gets, no token cached',
        'MB',
        [first.memory.rss / MB],
        [smallAtStart.rss / MB],
      ),
    );
  }
  rows.push(
    compared(
      `resident memory with ${CACHED_TOKENS.toLocaleString('en')} tokens cached (vs none cached)`,
      'MB',
      [last.memory.rss / MB],
      [first.memory.rss / MB],
      { text: '< 200 MB', test: (_ratio, subject) => subject < 200 },
    ),
    compared(
      `V8 heap used with ${CACHED_TOKENS.toLocaleString('en')} tokens cached (vs none cached)`,
      'MB',
      [last.memory.heapUsed / MB],
      [first.memory.heapUsed / MB],
    ),
    single('heap per cached token (slope of a least-squares line)', 'bytes', [heapFit.slope], {
      text: 'linear (R² ≥ 0.95)',
      test: () => heapFit.r2 >= 0.95,
    }),
  );
  notes.push(
    `Memory after a full GC at ${memoryCurve.map((p) => `${p.cached.toLocaleString('en')} tokens: RSS ${(p.memory.rss / MB).toFixed(1)} MB, heap ${(p.memory.heapUsed / MB).toFixed(1)} MB`).join('; ')}.`,
    `Linear fit: heap ${heapFit.slope.toFixed(0)} bytes per token (R² ${heapFit.r2.toFixed(3)}), RSS ${rssFit.slope.toFixed(0)} bytes per token (R² ${rssFit.r2.toFixed(3)}).`,
  );
}

for (const seeded of [large, small]) rmSync(seeded.dataDir, { recursive: true, force: true });
writeScenarioOutput({
  sections: [
    {
      id: 'scale',
      title: '5. Scale of configuration',
      subjectName: `Grantry (own process, SQLite) with ${LARGE.toLocaleString('en')} authentications and ${LARGE.toLocaleString('en')} connectors`,
      baselineName: `the same with ${SMALL} of each`,
      method: `${ROUNDS} alternating rounds, a fresh process each; ${GETS} sequential gets of random ids per round; each list page asked for ${PAGE_REPEATS} times per round (the round's figure is their p50); memory read after global.gc() (--expose-gc) in steps of ${(CACHED_TOKENS / 4).toLocaleString('en')} cached tokens`,
      rows,
      notes,
    },
  ],
});
