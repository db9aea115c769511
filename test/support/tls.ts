/**
 * Certificates for the loopback servers the integration tests start.
 *
 * The CA is made once per test run by `global-setup.ts` and trusted by every worker through
 * NODE_EXTRA_CA_CERTS, so tests use plain `fetch`/undici with no `rejectUnauthorized` hacks.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { pki } from 'node-forge';

// node-forge is CommonJS with a dynamically built export object, so ESM named imports do not see it.
const forge = createRequire(import.meta.url)('node-forge') as typeof import('node-forge');

export interface PemKeyPair {
  cert: string;
  key: string;
}

export const CA_CERT_FILE = 'ca.pem';
export const CA_KEY_FILE = 'ca-key.pem';
export const CA_COMMON_NAME = 'Grantry Test CA';

const DAY_MS = 24 * 60 * 60 * 1000;

/** node-forge's own RSA generation is pure JS and slow; node:crypto does it natively. */
function generateRsaKeyPair(): pki.rsa.KeyPair {
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const forgePrivate = forge.pki.privateKeyFromPem(privateKey) as pki.rsa.PrivateKey;
  const forgePublic = forge.pki.setRsaPublicKey(forgePrivate.n, forgePrivate.e);
  return { privateKey: forgePrivate, publicKey: forgePublic };
}

function randomSerialNumber(): string {
  // A positive serial (leading bit clear) of 16 bytes, as RFC 5280 §4.1.2.2 allows up to 20.
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return bytes.toString('hex');
}

function validity(cert: pki.Certificate): void {
  const now = Date.now();
  // Backdated so a worker whose clock is a little behind still accepts it.
  cert.validity.notBefore = new Date(now - DAY_MS);
  cert.validity.notAfter = new Date(now + 30 * DAY_MS);
}

/** Makes a fresh self-signed CA (used by global-setup; exported for tests of CA handling). */
export function createCertificateAuthority(): PemKeyPair {
  const keys = generateRsaKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = randomSerialNumber();
  validity(cert);
  const subject = [
    { name: 'commonName', value: CA_COMMON_NAME },
    { name: 'organizationName', value: 'Grantry tests' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: forge.pki.privateKeyToPem(keys.privateKey) };
}

function caDirectory(): string {
  const dir = process.env.GRANTRY_TEST_CA_DIR;
  if (!dir || !existsSync(join(dir, CA_CERT_FILE))) {
    throw new Error(
      'GRANTRY_TEST_CA_DIR is not set or holds no ca.pem: run the tests with test/support/global-setup.ts as globalSetup',
    );
  }
  return dir;
}

let caCache: { dir: string; pem: string; cert: pki.Certificate; key: pki.rsa.PrivateKey } | undefined;

function loadCa(): NonNullable<typeof caCache> {
  const dir = caDirectory();
  if (caCache?.dir === dir) return caCache;
  const pem = readFileSync(join(dir, CA_CERT_FILE), 'utf8');
  const keyPem = readFileSync(join(dir, CA_KEY_FILE), 'utf8');
  caCache = {
    dir,
    pem,
    cert: forge.pki.certificateFromPem(pem),
    key: forge.pki.privateKeyFromPem(keyPem) as pki.rsa.PrivateKey,
  };
  return caCache;
}

/** The PEM of the test CA every worker trusts. */
export function testCaPem(): string {
  return loadCa().pem;
}

let leafKeys: pki.rsa.KeyPair | undefined;
const issued = new Map<string, PemKeyPair>();

/**
 * A server certificate signed by the test CA, with the given names as subjectAltName entries
 * (IP literals become iPAddress entries, RFC 5280 §4.2.1.6) and the serverAuth EKU.
 * One key pair per process: key generation is the slow part.
 */
export function issueServerCertificate(hostnames: string[] = ['localhost', '127.0.0.1']): PemKeyPair {
  const ca = loadCa();
  const cacheKey = `${ca.dir}\n${hostnames.join('\n')}`;
  const cached = issued.get(cacheKey);
  if (cached) return cached;

  leafKeys ??= generateRsaKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = leafKeys.publicKey;
  cert.serialNumber = randomSerialNumber();
  validity(cert);
  cert.setSubject([{ name: 'commonName', value: hostnames[0] ?? 'localhost' }]);
  cert.setIssuer(ca.cert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: hostnames.map((name) => (isIP(name) ? { type: 7, ip: name } : { type: 2, value: name })),
    },
  ]);
  cert.sign(ca.key, forge.md.sha256.create());
  const pair = {
    cert: forge.pki.certificateToPem(cert),
    key: forge.pki.privateKeyToPem(leafKeys.privateKey),
  };
  issued.set(cacheKey, pair);
  return pair;
}

let selfSigned: PemKeyPair | undefined;

/**
 * A certificate for localhost/127.0.0.1 that is NOT signed by the test CA, for tests that expect
 * a TLS verification failure ("untrusted certificate").
 */
export function selfSignedCertificate(): PemKeyPair {
  if (selfSigned) return selfSigned;
  const keys = generateRsaKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = randomSerialNumber();
  validity(cert);
  const subject = [{ name: 'commonName', value: 'localhost' }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        { type: 2, value: 'localhost' },
        { type: 7, ip: '127.0.0.1' },
      ],
    },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  selfSigned = { cert: forge.pki.certificateToPem(cert), key: forge.pki.privateKeyToPem(keys.privateKey) };
  return selfSigned;
}

/**
 * A client certificate signed by the test CA for an RSA public key (PEM, SPKI), with the TLS client
 * authentication EKU: what a CA issues for `tls_client_auth` (RFC 8705 §2.1). Its subject DN reads
 * `CN=<commonName>` as Node's X509Certificate prints it.
 */
export function issueClientCertificate(publicKeyPem: string, commonName: string): string {
  const ca = loadCa();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  cert.serialNumber = randomSerialNumber();
  validity(cert);
  cert.setSubject([{ name: 'commonName', value: commonName }]);
  cert.setIssuer(ca.cert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, critical: true },
    { name: 'extKeyUsage', clientAuth: true },
  ]);
  cert.sign(ca.key, forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}
