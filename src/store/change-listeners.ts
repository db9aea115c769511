import type { ChangeEvent } from './contract.js';

export type ChangeListener = (event: ChangeEvent) => void;

/**
 * The listeners of one store instance. Delivery is asynchronous (a microtask per listener) so that
 * `publish` never runs listener code inside the publisher's stack, and a listener that throws cannot
 * stop the others nor the publisher: its error becomes a process warning.
 */
export class ChangeListeners {
  readonly #listeners = new Set<ChangeListener>();

  add(listener: ChangeListener): () => void {
    // A wrapper per subscription, so the same function subscribed twice is two subscriptions.
    const subscription: ChangeListener = (event) => listener(event);
    this.#listeners.add(subscription);
    return () => {
      this.#listeners.delete(subscription);
    };
  }

  deliver(event: ChangeEvent): void {
    for (const listener of this.#listeners) {
      queueMicrotask(() => {
        // Unsubscribed between publish and delivery: it asked not to hear any more.
        if (!this.#listeners.has(listener)) return;
        try {
          listener(event);
        } catch (error) {
          process.emitWarning(
            error instanceof Error ? error : new Error(String(error)),
            'GrantryChangeListener',
          );
        }
      });
    }
  }

  get size(): number {
    return this.#listeners.size;
  }
}

const changeKinds = new Set<string>([
  'authentication_changed',
  'authentication_deleted',
  'tokens_changed',
  'connector_changed',
  'connector_deleted',
]);

/** Checks the shape of a change that arrived from another process; null when it is not one. */
export function parseChangeEvent(value: unknown): ChangeEvent | null {
  if (typeof value !== 'object' || value === null) return null;
  const record = value as Record<string, unknown>;
  const kind = record.kind;
  if (typeof kind !== 'string' || !changeKinds.has(kind)) return null;
  if (kind === 'connector_changed' || kind === 'connector_deleted') {
    return typeof record.connectorId === 'string'
      ? ({ kind, connectorId: record.connectorId } as ChangeEvent)
      : null;
  }
  if (typeof record.authId !== 'string') return null;
  if (kind === 'tokens_changed' && typeof record.version === 'number') {
    return { kind, authId: record.authId, version: record.version };
  }
  return { kind, authId: record.authId } as ChangeEvent;
}
