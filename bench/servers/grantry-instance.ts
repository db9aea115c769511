/**
 * A Grantry instance built by the composition root (of the build in dist/, see grantry-build.ts)
 * in a process of its own, started with
 * --expose-gc so its memory can be read after a collection. It reports how long createApp and
 * listen took, and answers `memory` and `cacheTokens` from the configuration-scale scenario.
 */
import { serveParent } from '../child-process.js';
import { loadGrantry } from '../grantry-build.js';

const collect = (globalThis as { gc?: () => void }).gc;
const { createApp, loadConfig } = await loadGrantry();
const started = performance.now();
const app = await createApp(loadConfig(process.env), { printBootstrapKey: false });
const address = await app.listen();
const startupMs = performance.now() - started;

serveParent(
  { url: address.replace('[::1]', 'localhost'), startupMs },
  {
    memory: () => {
      collect?.();
      collect?.();
      const usage = process.memoryUsage();
      return { rss: usage.rss, heapUsed: usage.heapUsed, external: usage.external };
    },
    cacheTokens: async (payload) => {
      const ids = payload as string[];
      for (let i = 0; i < ids.length; i += 100) {
        await Promise.all(ids.slice(i, i + 100).map((id) => app.tokens.get(id)));
      }
      return ids.length;
    },
  },
  () => app.close(),
);
