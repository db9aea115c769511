import { writeFileSync } from 'node:fs';
import { readPresetFiles } from '../src/providers/provider-catalogue.js';
import { renderProvidersDoc } from '../src/providers/providers-doc.js';

// npm run docs:providers — rewrites docs/providers.md from the preset files.
writeFileSync(new URL('../docs/providers.md', import.meta.url), renderProvidersDoc(readPresetFiles()));
process.stdout.write('docs/providers.md written\n');
