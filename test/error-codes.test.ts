import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DIAGNOSIS_CODES } from '../src/oauth/diagnosis.js';
import { PROBLEM_CODES } from '../src/problem.js';

describe('docs/errors.md', () => {
  const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
  const documented = [...doc.matchAll(/^### `([a-z_]+)`$/gm)].map((m) => m[1]);

  it('documents exactly the codes the code can answer with', () => {
    expect([...documented].sort()).toEqual([...PROBLEM_CODES].sort());
  });

  it('documents every diagnosis with a fix', () => {
    for (const code of DIAGNOSIS_CODES) {
      const section = doc.split(`### \`${code}\``)[1]?.split('### ')[0] ?? '';
      expect(section, code).toMatch(/\*\*Fix:\*\*/);
    }
  });
});
