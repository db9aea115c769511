import { readFileSync } from 'node:fs';

/**
 * The few statistics the suite reports. Every comparison is measured in rounds that alternate the
 * two sides (A B A B …), so a slow moment of a shared machine lands on both; a round's ratio pairs
 * the two sides measured next to each other, and the report gives medians with min–max.
 */

export interface Spread {
  median: number;
  min: number;
  max: number;
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** Linear-interpolated quantile (q in 0..1) of unsorted values. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const position = (sorted.length - 1) * q;
  const lower = Math.floor(position);
  const upper = Math.ceil(position);
  const low = sorted[lower] ?? Number.NaN;
  const high = sorted[upper] ?? Number.NaN;
  return low + (high - low) * (position - lower);
}

export function spread(values: readonly number[]): Spread {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) };
}

/** Per-round ratios a[i] / b[i] of two sides measured next to each other. */
export function pairedRatios(a: readonly number[], b: readonly number[]): number[] {
  return a.map((value, i) => value / (b[i] ?? Number.NaN));
}

/**
 * Runs `rounds` rounds, each measuring every side once in turn (A B A B …, or A B C A B C …), and
 * returns each side's measurements in round order.
 */
export async function alternate<S extends Record<string, () => Promise<unknown>>>(
  rounds: number,
  sides: S,
  onMeasured?: (side: keyof S & string, round: number, value: Awaited<ReturnType<S[keyof S]>>) => void,
): Promise<{ [K in keyof S]: Awaited<ReturnType<S[K]>>[] }> {
  const names = Object.keys(sides) as (keyof S & string)[];
  const results = Object.fromEntries(names.map((name) => [name, [] as unknown[]])) as {
    [K in keyof S]: Awaited<ReturnType<S[K]>>[];
  };
  for (let round = 0; round < rounds; round++) {
    for (const name of names) {
      const value = (await (sides[name] as S[keyof S])()) as Awaited<ReturnType<S[keyof S]>>;
      results[name].push(value);
      onMeasured?.(name, round, value);
    }
  }
  return results;
}

/** Least-squares line through (x, y) points and how well it fits (R², 1 = a straight line). */
export function linearFit(points: readonly { x: number; y: number }[]): {
  slope: number;
  intercept: number;
  r2: number;
} {
  const n = points.length;
  const meanX = points.reduce((sum, p) => sum + p.x, 0) / n;
  const meanY = points.reduce((sum, p) => sum + p.y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (const p of points) {
    sxy += (p.x - meanX) * (p.y - meanY);
    sxx += (p.x - meanX) ** 2;
    syy += (p.y - meanY) ** 2;
  }
  const slope = sxy / sxx;
  const intercept = meanY - slope * meanX;
  const r2 = syy === 0 ? 1 : (sxy * sxy) / (sxx * syy);
  return { slope, intercept, r2 };
}

/**
 * User + system CPU time a process has used so far, in microseconds, from /proc (Linux); NaN
 * elsewhere. Fields 14 and 15 of /proc/<pid>/stat count clock ticks, 100 per second on Linux.
 */
export function processCpuMicros(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the command name, field 3 (state) is index 0: utime is field 14, stime field 15.
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1_000_000) / 100;
  } catch {
    return Number.NaN;
  }
}
