/**
 * Reads a V8 CPU profile (`node --cpu-prof`, or `npm run bench -- --cpu-prof`) and prints where the
 * time went: self time per function and per file or package, and the inclusive time of Grantry's
 * own functions. A flame graph of the same file: open it in Chrome DevTools (Performance) or
 * https://www.speedscope.app.
 *
 *   npx tsx bench/profile-summary.ts bench/profiles/<file>.cpuprofile [top] [function name]
 *   npx tsx bench/profile-summary.ts <file> --areas [µs per request]
 *
 * With a function name, also prints the call stacks that spent the most time in it. With
 * `--areas`, prints only where the busy time went by area (socket writes, Node's HTTP and stream
 * code, undici, Fastify, Grantry's own code, …) as shares of the busy samples; given the CPU time
 * per request measured in the same run, also as microseconds per request. That is the summary
 * docs/performance.md shows before and after a change.
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArgument, focus] = process.argv.slice(2);
if (file === undefined) {
  process.stderr.write(
    'usage: npx tsx bench/profile-summary.ts <file.cpuprofile> [top | --areas [µs per request]]\n',
  );
  process.exit(2);
}
const byArea = topArgument === '--areas';
const top = byArea ? 25 : Number(topArgument ?? 25);
const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;

const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const parent = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

const selfMicros = new Map<number, number>();
profile.samples.forEach((id, index) => {
  selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0));
});
const total = [...selfMicros.values()].reduce((sum, v) => sum + v, 0);

function place(frame: CallFrame): string {
  const url = frame.url.replace(/^file:\/\//, '');
  const inRepo = url.indexOf('/node_modules/');
  if (inRepo >= 0)
    return url
      .slice(inRepo + '/node_modules/'.length)
      .split('/')
      .slice(0, 1)
      .join('/');
  // Grantry's own code: its sources under tsx, or its build (dist/, what the suite measures).
  const src = url.lastIndexOf('/src/');
  if (src >= 0) return url.slice(src + 1);
  const dist = url.lastIndexOf('/dist/');
  if (dist >= 0) return `src/${url.slice(dist + '/dist/'.length).replace(/\.js$/, '.ts')}`;
  return url === '' ? '(native/V8)' : url.startsWith('node:') ? url : url.split('/').slice(-2).join('/');
}

function label(frame: CallFrame): string {
  return `${frame.functionName || '(anonymous)'}  ${place(frame)}:${frame.lineNumber + 1}`;
}

const selfByFunction = new Map<string, number>();
const selfByPlace = new Map<string, number>();
const inclusiveOwn = new Map<string, number>();
const inclusiveAll = new Map<string, number>();
for (const [id, micros] of selfMicros) {
  const node = byId.get(id);
  if (node === undefined) continue;
  selfByFunction.set(label(node.callFrame), (selfByFunction.get(label(node.callFrame)) ?? 0) + micros);
  const where = place(node.callFrame);
  selfByPlace.set(where, (selfByPlace.get(where) ?? 0) + micros);
  // Inclusive time: walk up the stack once per distinct frame.
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const frame = byId.get(at)?.callFrame;
    if (frame === undefined || frame.functionName === '(root)') continue;
    const key = label(frame);
    if (seen.has(key)) continue;
    seen.add(key);
    inclusiveAll.set(key, (inclusiveAll.get(key) ?? 0) + micros);
    if (place(frame).startsWith('src/')) inclusiveOwn.set(key, (inclusiveOwn.get(key) ?? 0) + micros);
  }
}

/** The area a frame's self time belongs to, for `--areas`. */
function area(frame: CallFrame): string {
  const name = frame.functionName;
  if (name === '(idle)') return 'idle';
  if (name === '(garbage collector)') return 'garbage collection';
  if (frame.url === '' && /^write(v|Latin1String|Utf8String|Buffer)$/.test(name)) {
    return 'socket writes (writev and the strings it copies)';
  }
  const where = place(frame);
  if (where.startsWith('src/')) return "Grantry's own code (src/)";
  if (
    [
      'fastify',
      'find-my-way',
      'ajv',
      'fast-json-stringify',
      'secure-json-parse',
      'avvio',
      'toad-cache',
    ].includes(where)
  ) {
    return 'Fastify (router, hooks, body parsing, validation, serialisation)';
  }
  if (where === 'undici' || where.startsWith('wasm')) return 'undici (client, llhttp)';
  if (where === 'prom-client') return 'prom-client';
  if (where === 'kysely' || where === 'better-sqlite3' || where === 'pg') return 'store (kysely, sqlite, pg)';
  if (/^node:internal\/modules|^tsx|^node:internal\/deps\/cjs/.test(where))
    return 'module loading (start-up)';
  if (where.startsWith('node:')) return "Node's HTTP server, streams, events and timers";
  return 'V8 and other native (program, microtasks, …)';
}

function print(title: string, entries: Map<string, number>): void {
  process.stdout.write(`\n${title}\n`);
  for (const [name, micros] of [...entries].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`${((micros / total) * 100).toFixed(1).padStart(5)}%  ${name}\n`);
  }
}

if (byArea) {
  const perRequest = Number(focus);
  const areas = new Map<string, number>();
  for (const [id, micros] of selfMicros) {
    const node = byId.get(id);
    if (node === undefined) continue;
    const name = area(node.callFrame);
    areas.set(name, (areas.get(name) ?? 0) + micros);
  }
  const busy = total - (areas.get('idle') ?? 0);
  areas.delete('idle');
  process.stdout.write(
    `${file}: ${(busy / 1e6).toFixed(1)} s busy of ${(total / 1e6).toFixed(1)} s sampled\n`,
  );
  for (const [name, micros] of [...areas].sort((a, b) => b[1] - a[1])) {
    const share = micros / busy;
    const each = Number.isFinite(perRequest)
      ? `  ${(share * perRequest).toFixed(1).padStart(6)} µs/request`
      : '';
    process.stdout.write(`${(share * 100).toFixed(1).padStart(5)}%${each}  ${name}\n`);
  }
  process.exit(0);
}

process.stdout.write(`${file}: ${(total / 1e6).toFixed(1)} s of samples\n`);
print('Self time by file or package', selfByPlace);
print('Self time by function', selfByFunction);
print("Inclusive time of Grantry's own functions (src/)", inclusiveOwn);
print('Inclusive time of every function (synchronous stacks only)', inclusiveAll);

if (focus !== undefined) {
  const stacks = new Map<string, number>();
  for (const [id, micros] of selfMicros) {
    if (byId.get(id)?.callFrame.functionName !== focus) continue;
    const frames: string[] = [];
    for (let at = parent.get(id); at !== undefined && frames.length < 12; at = parent.get(at)) {
      const frame = byId.get(at)?.callFrame;
      if (frame !== undefined && frame.functionName !== '') frames.push(label(frame));
    }
    const key = frames.join('\n      ← ');
    stacks.set(key, (stacks.get(key) ?? 0) + micros);
  }
  print(`Stacks under ${focus}`, stacks);
}
