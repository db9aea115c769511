/**
 * Vitest globalSetup: runs once in the main process before the worker processes fork.
 *
 * It makes the test CA and exports NODE_EXTRA_CA_CERTS, which Node reads only at startup: every
 * forked worker (and every child process a test spawns, e.g. `grantry serve`) then trusts the
 * loopback servers' certificates with no per-request TLS options.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CA_CERT_FILE, CA_KEY_FILE, createCertificateAuthority } from './tls.js';

function reusableCaDirectory(): string | undefined {
  const dir = process.env.GRANTRY_TEST_CA_DIR;
  if (dir && existsSync(join(dir, CA_CERT_FILE)) && existsSync(join(dir, CA_KEY_FILE))) return dir;
  return undefined;
}

export default function setup(): () => void {
  const existing = reusableCaDirectory();
  if (existing) {
    process.env.NODE_EXTRA_CA_CERTS = join(existing, CA_CERT_FILE);
    return () => {};
  }

  const dir = mkdtempSync(join(tmpdir(), 'grantry-test-ca-'));
  const ca = createCertificateAuthority();
  writeFileSync(join(dir, CA_CERT_FILE), ca.cert);
  // The CA key only signs throwaway loopback certificates, but keep it private to this user.
  writeFileSync(join(dir, CA_KEY_FILE), ca.key, { mode: 0o600 });
  process.env.GRANTRY_TEST_CA_DIR = dir;
  process.env.NODE_EXTRA_CA_CERTS = join(dir, CA_CERT_FILE);

  return () => {
    rmSync(dir, { recursive: true, force: true });
  };
}
