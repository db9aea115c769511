/**
 * Several Grantry processes on one PostgreSQL database, as behind a load balancer, and a TCP relay
 * that can hold a request on its way to the provider (to kill its sender "mid-refresh" before the
 * provider has seen it).
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { freePort, type SpawnedGrantry, spawnGrantry } from './grantry.js';

export interface ClusterOptions {
  size: number;
  /** `postgres://…`, usually a test schema (`createPostgresTestSchema`). */
  databaseUrl: string;
  env?: Record<string, string>;
}

export interface Cluster {
  readonly instances: readonly SpawnedGrantry[];
  /** Shared by every instance: they read each other's encrypted rows. */
  readonly masterKey: string;
  readonly apiKey: string;
  /** The one public URL of all instances (the load balancer's): the redirect URI is built from it. */
  readonly publicUrl: string;
  /** The instance that gets the `n`-th call: round robin over the instances still running. */
  pick(n: number): SpawnedGrantry;
  /** Instances that have not exited. */
  running(): SpawnedGrantry[];
  stop(): Promise<void>;
}

function isRunning(instance: SpawnedGrantry): boolean {
  return instance.child.exitCode === null && instance.child.signalCode === null;
}

/**
 * Starts `size` instances at the same time (so their migrations race for the advisory lock, as
 * instances started together by an orchestrator do), with one master key, one API key and one
 * public URL.
 */
export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const masterKey = randomBytes(32).toString('base64');
  const apiKey = `grk_test_${randomBytes(16).toString('hex')}`;
  const ports: number[] = [];
  for (let i = 0; i < options.size; i++) ports.push(await freePort());
  const publicUrl = `http://localhost:${ports[0]}`;
  const started = await Promise.allSettled(
    ports.map((port) =>
      spawnGrantry({
        port,
        masterKey,
        apiKey,
        env: { GRANTRY_DATABASE_URL: options.databaseUrl, GRANTRY_PUBLIC_URL: publicUrl, ...options.env },
      }),
    ),
  );
  const instances = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed !== undefined) {
    await Promise.all(instances.map((i) => i.stop()));
    throw failed.reason;
  }
  const running = () => instances.filter(isRunning);
  return {
    instances,
    masterKey,
    apiKey,
    publicUrl,
    running,
    pick(n) {
      const alive = running();
      const instance = alive[n % alive.length];
      if (instance === undefined) throw new Error('no Grantry instance is running');
      return instance;
    },
    async stop() {
      await Promise.all(instances.map((i) => i.stop()));
      // Each data directory holds only that instance's log: the data is in PostgreSQL.
      for (const instance of instances) rmSync(instance.dataDir, { recursive: true, force: true });
    },
  };
}

export type RelayDirection = 'requests' | 'answers';

export interface HoldingRelay {
  /** Listens on 127.0.0.1. */
  readonly port: number;
  /** Bytes kept back since `hold()`. */
  readonly heldBytes: number;
  /** Open connections with bytes kept back. */
  readonly heldConnections: number;
  /**
   * From now on, bytes in one direction are kept back instead of forwarded: `requests` (client to
   * server: the server never sees them) or `answers` (server to client: the server has acted).
   */
  hold(direction?: RelayDirection): void;
  /** Forwards what was kept back (on connections still open) and everything after. */
  release(): void;
  close(): Promise<void>;
}

interface RelayedConnection {
  client: Socket;
  upstream: Socket;
  held: Buffer[];
}

/**
 * A byte-level relay to `127.0.0.1:<targetPort>`: TLS passes through untouched, so the client talks
 * to the real server and checks its real certificate. Bytes kept back on a connection that closes
 * are dropped: a client killed while its request is held never reaches the server, and one killed
 * while its answer is held never learns it.
 */
export async function startHoldingRelay(targetPort: number): Promise<HoldingRelay> {
  let holding: RelayDirection | null = null;
  let heldBytes = 0;
  const connections = new Set<RelayedConnection>();
  const server = createServer((client) => {
    const upstream = netConnect(targetPort, '127.0.0.1');
    const connection: RelayedConnection = { client, upstream, held: [] };
    connections.add(connection);
    const relay = (direction: RelayDirection, to: Socket) => (chunk: Buffer) => {
      if (holding === direction) {
        connection.held.push(chunk);
        heldBytes += chunk.length;
      } else to.write(chunk);
    };
    client.on('data', relay('requests', upstream));
    upstream.on('data', relay('answers', client));
    const end = () => {
      connections.delete(connection);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    port,
    get heldBytes() {
      return heldBytes;
    },
    get heldConnections() {
      let count = 0;
      for (const connection of connections) if (connection.held.length > 0) count++;
      return count;
    },
    hold(direction = 'requests') {
      holding = direction;
      heldBytes = 0;
    },
    release() {
      const direction = holding;
      holding = null;
      for (const connection of connections) {
        const to = direction === 'answers' ? connection.client : connection.upstream;
        for (const chunk of connection.held) to.write(chunk);
        connection.held = [];
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const connection of connections) {
          connection.client.destroy();
          connection.upstream.destroy();
        }
        server.close(() => resolve());
      }),
  };
}
