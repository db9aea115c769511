/**
 * `npm run bench`: the performance suite of issue #8 (not part of `npm test`).
 *
 * Makes the test CA, then runs each scenario in a child process started with NODE_EXTRA_CA_CERTS
 * (Node reads it only at start-up), so every HTTPS server of the suite is trusted without
 * per-request TLS options. Prints one table and writes docs/performance.md between its markers,
 * keeping the hand-written analysis around them.
 *
 * Options: `--only=hot-path,http-data-plane,refresh-storm,configuration-scale,token-fetch`,
 * `--no-write` (print only), `--cpu-prof` (profiles the Grantry process of the HTTP scenarios
 * into bench/profiles/; see bench/profile-summary.ts).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import setupTestCa from '../test/support/global-setup.js';
import { benchScript } from './child-process.js';
import type { ScenarioOutput, Section } from './figures.js';
import { measuresBuild } from './grantry-build.js';
import { consoleTable, markdownResults } from './report.js';

const SCENARIOS = [
  'hot-path',
  'http-data-plane',
  'refresh-storm',
  'configuration-scale',
  'token-fetch',
] as const;
const SCENARIO_TIMEOUT_MS = 240_000;
const BEGIN = '<!-- bench:results:begin -->';
const END = '<!-- bench:results:end -->';

const args = process.argv.slice(2);
const only = args
  .find((a) => a.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',');
const write = !args.includes('--no-write');
const profile = args.includes('--cpu-prof');
const selected = SCENARIOS.filter((name) => only === undefined || only.includes(name));

function runScenario(name: string, extraEnv: Record<string, string>): Promise<ScenarioOutput> {
  const resultFile = join(mkdtempSync(join(tmpdir(), 'grantry-bench-result-')), `${name}.json`);
  const child = spawn(process.execPath, ['--import', 'tsx', benchScript(`scenarios/${name}.ts`)], {
    env: { ...process.env, ...extraEnv, BENCH_RESULT_FILE: resultFile },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} took longer than ${SCENARIO_TIMEOUT_MS / 1000} s`));
    }, SCENARIO_TIMEOUT_MS);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0 || !existsSync(resultFile)) {
        reject(new Error(`${name} exited with ${signal ?? code}`));
        return;
      }
      const output = JSON.parse(readFileSync(resultFile, 'utf8')) as ScenarioOutput;
      rmSync(dirname(resultFile), { recursive: true, force: true });
      resolve(output);
    });
  });
}

function machine(): string[] {
  const cores = cpus();
  return [
    `Machine: ${cores.length} cores (${cores[0]?.model.trim() ?? 'unknown CPU'}), ${(totalmem() / 1024 ** 3).toFixed(1)} GiB memory, ${process.platform} ${release()}`,
    `Node ${process.version}; loopback only; the machine was shared with other work during the run`,
  ];
}

if (measuresBuild()) {
  // The suite measures the build (bench/grantry-build.ts): make it from the sources as they are.
  process.stderr.write('Building dist/ (tsc -p tsconfig.build.json)…\n');
  const built = spawnSync(
    process.execPath,
    [
      fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url)),
      '-p',
      'tsconfig.build.json',
    ],
    {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      stdio: 'inherit',
    },
  );
  if (built.status !== 0) {
    process.stderr.write('The build failed; nothing was measured.\n');
    process.exit(1);
  }
}
const removeCa = setupTestCa();
const startedAt = new Date();
const started = performance.now();
const sections: Section[] = [];
let failed = false;
const profileDir = fileURLToPath(new URL('profiles/', import.meta.url));
try {
  for (const name of selected) {
    process.stderr.write(`\n▶ ${name}\n`);
    const extraEnv: Record<string, string> = {};
    if (profile) {
      mkdirSync(profileDir, { recursive: true });
      extraEnv.BENCH_CPU_PROF_DIR = profileDir;
    }
    try {
      const output = await runScenario(name, extraEnv);
      sections.push(...output.sections);
    } catch (error) {
      failed = true;
      process.stderr.write(`✖ ${(error as Error).message}\n`);
      sections.push({
        id: name,
        title: name,
        subjectName: '',
        baselineName: '',
        method: '',
        rows: [],
        notes: [],
        skipped: `the scenario failed: ${(error as Error).message}`,
      });
    }
  }
} finally {
  removeCa();
}
const durationSeconds = (performance.now() - started) / 1000;

process.stdout.write(`\n${consoleTable(sections)}\n\n`);
for (const section of sections) {
  for (const note of section.notes) process.stdout.write(`${section.title}: ${note}\n`);
}
process.stdout.write(`\nSuite took ${durationSeconds.toFixed(0)} s.\n`);

if (write && only === undefined) {
  const withPostgres =
    (process.env.GRANTRY_BENCH_DATABASE_URL ?? '') !== ''
      ? 'GRANTRY_BENCH_DATABASE_URL=postgres://… '
      : (process.env.GRANTRY_TEST_DATABASE_URL ?? '') !== ''
        ? 'GRANTRY_TEST_DATABASE_URL=postgres://… '
        : '';
  const command = `${withPostgres}npm run bench${profile ? ' -- --cpu-prof' : ''}`;
  const generated = `${BEGIN}\n${markdownResults(sections, { command, startedAt, durationSeconds, machine: machine() })}\n${END}`;
  const file = fileURLToPath(new URL('../docs/performance.md', import.meta.url));
  const existing = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const begin = existing.indexOf(BEGIN);
  const end = existing.indexOf(END);
  const document =
    begin >= 0 && end > begin
      ? existing.slice(0, begin) + generated + existing.slice(end + END.length)
      : `# Performance\n\nMeasured by \`npm run bench\` (bench/run.ts). The section between the markers is rewritten by every full run; the analysis below it is written by hand.\n\n${generated}\n`;
  writeFileSync(file, document);
  process.stdout.write(`Wrote ${file}\n`);
} else if (write) {
  process.stdout.write('docs/performance.md is written only by a full run (without --only).\n');
}
if (profile) process.stdout.write(`CPU profiles: ${profileDir}\n`);
process.exitCode = failed ? 1 : 0;
