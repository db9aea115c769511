// Entry for running the CLI from source (tests spawn `node --import tsx src/cli/entry.ts serve`).
import { main } from './main.js';

const code = await main(process.argv.slice(2));
if (code >= 0) process.exitCode = code;
