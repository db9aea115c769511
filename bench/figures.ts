import { writeFileSync } from 'node:fs';
import { pairedRatios, type Spread, spread } from './statistics.js';

/**
 * What a scenario hands back to the runner: rows of figures, each with the subject (Grantry),
 * the baseline it is judged against, measured in the same rounds, and their ratio.
 */
export interface FigureRow {
  measure: string;
  unit: string;
  subject: Spread | null;
  baseline: Spread | null;
  /** subject / baseline, per round. */
  ratio: Spread | null;
  target?: { text: string; met: boolean };
}

export interface Section {
  id: string;
  title: string;
  /** What was measured, in one line each: the subject, the baseline, the load. */
  subjectName: string;
  baselineName: string;
  method: string;
  rows: FigureRow[];
  notes: string[];
  /** Set when the section could not run (e.g. no PostgreSQL); then `rows` is empty. */
  skipped?: string;
}

export interface ScenarioOutput {
  sections: Section[];
}

/** A row from per-round measurements of both sides. */
export function compared(
  measure: string,
  unit: string,
  subject: readonly number[],
  baseline: readonly number[],
  target?: { text: string; test: (ratio: number, subject: number) => boolean },
): FigureRow {
  const ratio = spread(pairedRatios(subject, baseline));
  const values = spread(subject);
  const row: FigureRow = { measure, unit, subject: values, baseline: spread(baseline), ratio };
  if (target !== undefined) row.target = { text: target.text, met: target.test(ratio.median, values.median) };
  return row;
}

/** A row with no baseline of its own (the figure is judged against an absolute target). */
export function single(
  measure: string,
  unit: string,
  subject: readonly number[],
  target?: { text: string; test: (value: number) => boolean },
): FigureRow {
  const values = spread(subject);
  const row: FigureRow = { measure, unit, subject: values, baseline: null, ratio: null };
  if (target !== undefined) row.target = { text: target.text, met: target.test(values.median) };
  return row;
}

/** Scenarios run as child processes of bench/run.ts and write their output where it says. */
export function writeScenarioOutput(output: ScenarioOutput): void {
  const file = process.env.BENCH_RESULT_FILE;
  if (file === undefined || file === '') {
    process.stdout.write(`${JSON.stringify(output, null, 2)}\n`);
    return;
  }
  writeFileSync(file, JSON.stringify(output));
}

/** Progress lines go to stderr, so a scenario's stdout stays free. */
export function progress(message: string): void {
  process.stderr.write(`  ${message}\n`);
}
