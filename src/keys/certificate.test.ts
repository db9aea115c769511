import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createServer as createTlsServer, connect as tlsConnect } from 'node:tls';
import { describe, expect, it } from 'vitest';
import {
  certificateMatchesKey,
  certificateThumbprints,
  readCertificateChain,
  selfSignedCertificate,
  x5cOf,
} from './certificate.js';
import { generatePrivateKey, privateKeyPem, SIGNING_ALGS } from './key-material.js';

describe('certificates', () => {
  it.each(SIGNING_ALGS)('makes a self-signed certificate for a %s key that verifies with itself', (alg) => {
    const key = generatePrivateKey(alg);
    const pem = selfSignedCertificate(key, { commonName: 'grantry auth_1', days: 30 });
    const certificate = new X509Certificate(pem);
    expect(certificate.subject).toBe('CN=grantry auth_1');
    expect(certificate.issuer).toBe('CN=grantry auth_1');
    expect(certificate.ca).toBe(false);
    expect(certificate.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(certificate.verify(certificate.publicKey)).toBe(true);
    expect(certificateMatchesKey(certificate, key)).toBe(true);
    expect(certificateMatchesKey(certificate, generatePrivateKey(alg))).toBe(false);
    const reading = readCertificateChain(pem);
    expect(reading.ok).toBe(true);
  });

  it('the thumbprints are of the DER encoding; x5c is the base64 DER', () => {
    const key = generatePrivateKey('ES256');
    const pem = selfSignedCertificate(key, { commonName: 'x' });
    const certificate = new X509Certificate(pem);
    const { x5t, x5tS256 } = certificateThumbprints(certificate);
    expect(Buffer.from(x5t, 'base64url').toString('hex').toUpperCase()).toBe(
      certificate.fingerprint.replaceAll(':', ''),
    );
    expect(Buffer.from(x5tS256, 'base64url').toString('hex').toUpperCase()).toBe(
      certificate.fingerprint256.replaceAll(':', ''),
    );
    expect(x5cOf(pem)).toEqual([certificate.raw.toString('base64')]);
  });

  it('refuses what is not a certificate, and an expired one', () => {
    expect(readCertificateChain('nope')).toMatchObject({
      ok: false,
      problem: expect.stringContaining('PEM'),
    });
    expect(readCertificateChain(privateKeyPem(generatePrivateKey('ES256')))).toMatchObject({
      ok: false,
      problem: expect.stringContaining('private key'),
    });
    expect(
      readCertificateChain('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----'),
    ).toMatchObject({ ok: false, problem: expect.stringContaining('does not parse') });
    const old = selfSignedCertificate(generatePrivateKey('ES256'), {
      commonName: 'x',
      days: 1,
      now: Date.now() - 10 * 24 * 3600 * 1000,
    });
    expect(readCertificateChain(old)).toMatchObject({
      ok: false,
      problem: expect.stringContaining('expired'),
    });
  });

  it.each(SIGNING_ALGS)('a %s self-signed certificate authenticates a TLS client', async (alg) => {
    const serverKey = generatePrivateKey('ES256');
    const serverCert = selfSignedCertificate(serverKey, { commonName: 'localhost' });
    const clientKey = generatePrivateKey(alg);
    const clientCert = selfSignedCertificate(clientKey, { commonName: 'client' });
    const server = createTlsServer({
      key: privateKeyPem(serverKey),
      cert: serverCert,
      requestCert: true,
      rejectUnauthorized: false,
    });
    const seen = new Promise<string>((resolve) => {
      server.on('secureConnection', (socket) => {
        resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? 'none');
        socket.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: (server.address() as AddressInfo).port,
      key: privateKeyPem(clientKey),
      cert: clientCert,
      rejectUnauthorized: false,
    });
    socket.on('error', () => {});
    try {
      expect(await seen).toBe(new X509Certificate(clientCert).fingerprint256);
    } finally {
      socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
