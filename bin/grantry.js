#!/usr/bin/env node
// The `grantry` command. Runs the build in dist/ (made by `npm ci` through the prepare script).
import { main } from '../dist/cli/main.js';

const code = await main(process.argv.slice(2));
if (code >= 0) process.exitCode = code;
