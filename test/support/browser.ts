/**
 * A real browser for the console's tests: Debian's Chromium driven by playwright-core, and the
 * console built from the sources the test is about to exercise.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { build } from 'vite';

const CHROMIUM = '/usr/bin/chromium';
const WEB_ROOT = resolve('web');
const DIST_INDEX = join(WEB_ROOT, 'dist', 'index.html');

function newestModification(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestModification(path) : statSync(path).mtimeMs);
  }
  return newest;
}

let building: Promise<void> | null = null;

/** Builds the UI when web/dist is missing or older than its sources: the test must see this code. */
export function ensureWebBuild(): Promise<void> {
  building ??= (async () => {
    const sourcesChanged = Math.max(
      newestModification(join(WEB_ROOT, 'src')),
      statSync(join(WEB_ROOT, 'index.html')).mtimeMs,
    );
    if (existsSync(DIST_INDEX) && statSync(DIST_INDEX).mtimeMs >= sourcesChanged) return;
    await build({ root: WEB_ROOT, configFile: join(WEB_ROOT, 'vite.config.ts'), logLevel: 'warn' });
  })();
  return building;
}

/** Headless Chromium with the flags this machine needs (no sandbox, no GPU, no calls home). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
}
