import type { FigureRow, Section } from './figures.js';
import type { Spread } from './statistics.js';

export interface RunInfo {
  command: string;
  startedAt: Date;
  durationSeconds: number;
  machine: string[];
}

export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return '–';
  const magnitude = Math.abs(value);
  if (magnitude > 0 && magnitude < 0.01) return value.toPrecision(2);
  const digits = magnitude >= 100 ? 0 : magnitude >= 10 ? 1 : 2;
  return value.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function withRange(values: Spread | null, suffix = ''): string {
  if (values === null) return '–';
  if (values.min === values.max) return `${formatNumber(values.median)}${suffix}`;
  return `${formatNumber(values.median)}${suffix} (${formatNumber(values.min)}–${formatNumber(values.max)})`;
}

function verdict(row: FigureRow): string {
  if (row.target === undefined) return '';
  return `${row.target.text} ${row.target.met ? 'met' : 'MISSED'}`;
}

function cells(row: FigureRow): string[] {
  return [
    `${row.measure} [${row.unit}]`,
    withRange(row.subject),
    withRange(row.baseline),
    withRange(row.ratio, '×'),
    verdict(row),
  ];
}

const HEADER = ['measure', 'Grantry: median (min–max)', 'baseline: median (min–max)', 'ratio', 'target'];

/** The table printed to the terminal: every figure of every section. */
export function consoleTable(sections: Section[]): string {
  const lines: string[][] = [HEADER];
  // Titles by the index of the row they precede; a skipped section has no rows of its own.
  const titles = new Map<number, string[]>();
  for (const section of sections) {
    const title =
      section.skipped === undefined ? section.title : `${section.title} — skipped: ${section.skipped}`;
    titles.set(lines.length, [...(titles.get(lines.length) ?? []), title]);
    for (const row of section.rows) lines.push(cells(row));
  }
  const widths = HEADER.map((_, column) => Math.max(...lines.map((line) => (line[column] ?? '').length)));
  const render = (line: string[]) =>
    line
      .map((cell, column) => cell.padEnd(widths[column] ?? 0))
      .join('  ')
      .trimEnd();
  const out: string[] = [];
  lines.forEach((line, index) => {
    for (const title of titles.get(index) ?? []) out.push('', title);
    out.push(render(line));
    if (index === 0) out.push(widths.map((w) => '-'.repeat(w)).join('  '));
  });
  for (const title of titles.get(lines.length) ?? []) out.push('', title);
  return out.join('\n');
}

function markdownRow(values: string[]): string {
  return `| ${values.map((v) => v.replaceAll('|', '\\|')).join(' | ')} |`;
}

/** The generated part of docs/performance.md. */
export function markdownResults(sections: Section[], run: RunInfo): string {
  const out: string[] = [
    '## Latest run',
    '',
    `- Command: \`${run.command}\``,
    `- Started: ${run.startedAt.toISOString()}; the whole suite took ${run.durationSeconds.toFixed(0)} s`,
    ...run.machine.map((line) => `- ${line}`),
    '',
    'Every comparison alternates the two sides (A B A B …) over several rounds on the same machine in',
    'the same run. Figures are medians with the min–max over rounds in parentheses; a ratio is taken per',
    'round between the two sides measured next to each other (Grantry ÷ baseline), then summarised the same way.',
    '',
  ];
  for (const section of sections) {
    out.push(`### ${section.title}`, '');
    if (section.skipped !== undefined) {
      out.push(`Skipped: ${section.skipped}.`, '');
      continue;
    }
    out.push(
      `- Grantry: ${section.subjectName}`,
      `- Baseline: ${section.baselineName}`,
      `- Method: ${section.method}`,
      '',
      markdownRow(HEADER),
      markdownRow(HEADER.map(() => '---')),
      ...section.rows.map((row) => markdownRow(cells(row))),
      '',
    );
    for (const note of section.notes) out.push(`- ${note}`);
    if (section.notes.length > 0) out.push('');
  }
  out.push(
    '### The table as `npm run bench` printed it',
    '',
    '```text',
    consoleTable(sections).trim(),
    '```',
    '',
  );
  return out.join('\n');
}
