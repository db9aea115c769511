import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Servers of the suite (upstream API, oidc-provider, forwarder) run in child processes, so the
 * load generator, the upstream and the proxy under test never share one event loop. They talk to
 * the scenario over Node's IPC channel: one `ready` message, then request/answer pairs.
 */

interface Envelope {
  id?: number | undefined;
  type: string;
  payload?: unknown;
}

export interface ChildServer<Info> {
  readonly info: Info;
  readonly pid: number;
  ask<T = unknown>(type: string, payload?: unknown): Promise<T>;
  stop(): Promise<void>;
}

export function benchScript(relative: string): string {
  return fileURLToPath(new URL(relative, import.meta.url));
}

/** Starts `bench/<script>` under tsx and waits for its `ready` message. */
export async function startChild<Info>(
  script: string,
  options: { args?: string[]; env?: Record<string, string>; nodeArgs?: string[] } = {},
): Promise<ChildServer<Info>> {
  const argv = [...(options.nodeArgs ?? []), '--import', 'tsx', benchScript(script), ...(options.args ?? [])];
  const child: ChildProcess = spawn(process.execPath, argv, {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const waiting = new Map<number, (payload: unknown) => void>();
  let nextId = 1;
  const info = await new Promise<Info>((resolve, reject) => {
    const onExit = (code: number | null) =>
      reject(new Error(`${script} exited with ${code} before it was ready`));
    child.once('exit', onExit);
    child.on('message', (message: Envelope) => {
      if (message.type === 'ready') {
        child.off('exit', onExit);
        resolve(message.payload as Info);
        return;
      }
      if (message.id !== undefined) {
        waiting.get(message.id)?.(message.payload);
        waiting.delete(message.id);
      }
    });
  });
  return {
    info,
    pid: child.pid ?? 0,
    ask<T>(type: string, payload?: unknown) {
      const id = nextId++;
      return new Promise<T>((resolve) => {
        waiting.set(id, (answer) => resolve(answer as T));
        child.send({ id, type, payload } satisfies Envelope);
      });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      // A server still busy with a huge answer cannot run its SIGTERM handler soon.
      const force = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(force);
    },
  };
}

/**
 * The child's side: says it is ready, answers requests with `handlers`, and exits when the parent
 * goes away (no orphaned servers after a crash of the runner).
 */
export function serveParent(
  info: unknown,
  handlers: Record<string, (payload: unknown) => unknown> = {},
  onStop: () => Promise<void> = async () => {},
): void {
  const send = process.send?.bind(process);
  if (send === undefined) throw new Error('this script runs as a child of a bench scenario (IPC channel)');
  const stop = () => {
    onStop().finally(() => process.exit(0));
  };
  process.on('message', (message: Envelope) => {
    const handler = handlers[message.type];
    Promise.resolve(handler === undefined ? undefined : handler(message.payload)).then((payload) =>
      send({ id: message.id, type: 'answer', payload } satisfies Envelope),
    );
  });
  process.once('disconnect', stop);
  process.once('SIGTERM', stop);
  send({ type: 'ready', payload: info } satisfies Envelope);
}
