/**
 * Which Grantry the suite measures. By default the build in dist/, which is what `grantry serve`
 * runs (bin/grantry.js); bench/run.ts compiles it before the first scenario, so it is never stale.
 * `BENCH_GRANTRY_SOURCE=1` measures src/ under tsx instead, for a quick look without a build.
 *
 * Why it matters: tsx compiles with esbuild's keepNames, which wraps every named function created
 * at run time in a `__name()` call. A closure made per request then costs a call the production
 * build does not make: about 2.5 % of the proxy's CPU in a profile of src/ under tsx.
 */
import type * as AppModule from '../src/app.js';
import type * as ConfigModule from '../src/config.js';

export interface GrantryModules {
  createApp: typeof AppModule.createApp;
  loadConfig: typeof ConfigModule.loadConfig;
}

export function measuresBuild(): boolean {
  return process.env.BENCH_GRANTRY_SOURCE !== '1';
}

export async function loadGrantry(): Promise<GrantryModules> {
  const root = measuresBuild() ? '../dist/' : '../src/';
  const app = (await import(`${root}app.js`)) as typeof AppModule;
  const config = (await import(`${root}config.js`)) as typeof ConfigModule;
  return { createApp: app.createApp, loadConfig: config.loadConfig };
}
