import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls `probe` every 25 ms until it answers something other than undefined, and answers that;
 * throws naming `what` once `ms` have passed (for what happens in the background: a webhook
 * delivered, a keep-alive refresh made).
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  ms = 20_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}
