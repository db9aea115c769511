/**
 * A caller waited `timeoutMs` for an authentication's refresh lock and gave up (`Store.withAuthLock`
 * with `timeoutMs`). Nothing ran under the lock; whoever holds it is still at work (or stuck).
 */
export class LockTimeoutError extends Error {
  readonly timeoutMs: number;

  constructor(timeoutMs: number) {
    super(`The refresh lock was not free within ${timeoutMs} ms.`);
    this.name = 'LockTimeoutError';
    this.timeoutMs = timeoutMs;
  }
}
