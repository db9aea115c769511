import { createHash, createPublicKey, type KeyObject, randomBytes, sign, X509Certificate } from 'node:crypto';
import { keyTypeOf } from './key-material.js';

/**
 * X.509 certificates for mutual TLS (RFC 8705) and for the `x5t` / `x5t#S256` headers some providers
 * want on a client assertion (Microsoft Entra ID): read and checked when a person pastes one, made
 * self-signed when Grantry makes the key (`self_signed_tls_client_auth`, RFC 8705 §2.2).
 *
 * Node reads certificates (`X509Certificate`) but cannot write one, so a self-signed certificate is
 * built here as DER (RFC 5280 §4.1): a short, fixed structure, signed with the key itself.
 */

export type CertificateReading =
  | { ok: true; leaf: X509Certificate; chainPem: string }
  | { ok: false; problem: string };

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Reads a certificate pasted as PEM: the leaf first, then any intermediates (sent along in the TLS
 * handshake). The problem reads after the field's name and never quotes the PEM.
 */
export function readCertificateChain(pem: string, now: number = Date.now()): CertificateReading {
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) {
    if (/PRIVATE KEY-----/.test(pem)) {
      return { ok: false, problem: 'holds a private key: give it in privateKey, and the certificate here' };
    }
    return {
      ok: false,
      problem: 'must be a PEM certificate ("-----BEGIN CERTIFICATE-----" … "-----END CERTIFICATE-----")',
    };
  }
  const certificates: X509Certificate[] = [];
  for (const [index, block] of blocks.entries()) {
    try {
      certificates.push(new X509Certificate(block));
    } catch {
      return {
        ok: false,
        problem:
          index === 0
            ? 'is not a certificate that can be read (the PEM does not parse)'
            : `holds a certificate that cannot be read (number ${index + 1} in the chain)`,
      };
    }
  }
  const leaf = certificates[0] as X509Certificate;
  if (Date.parse(leaf.validTo) <= now) {
    return { ok: false, problem: `expired on ${new Date(Date.parse(leaf.validTo)).toISOString()}` };
  }
  return { ok: true, leaf, chainPem: `${blocks.join('\n')}\n` };
}

/** Whether the certificate was issued for this private key's public half. */
export function certificateMatchesKey(certificate: X509Certificate, privateKey: KeyObject): boolean {
  try {
    return certificate.checkPrivateKey(privateKey);
  } catch {
    return false;
  }
}

/**
 * The certificate thumbprints JOSE headers carry (RFC 7515 §4.1.7, §4.1.8): base64url of the SHA-1
 * and SHA-256 digests of the DER encoding.
 */
export function certificateThumbprints(certificate: X509Certificate): { x5t: string; x5tS256: string } {
  return {
    x5t: createHash('sha1').update(certificate.raw).digest('base64url'),
    x5tS256: createHash('sha256').update(certificate.raw).digest('base64url'),
  };
}

/** Base64 DER of each certificate in a PEM chain, as a JWK's `x5c` (RFC 7517 §4.7). */
export function x5cOf(chainPem: string): string[] {
  return (chainPem.match(PEM_CERTIFICATE) ?? []).map((block) =>
    block
      .replace(/-----(BEGIN|END) CERTIFICATE-----/g, '')
      .replace(/\s+/g, '')
      .trim(),
  );
}

export interface SelfSignedOptions {
  /** The subject and issuer common name; what `tls_client_auth_subject_dn`-style settings show. */
  commonName: string;
  /** Validity in days from now (backdated one hour for clocks a little behind). Default 365. */
  days?: number;
  now?: number;
}

const HOUR_MS = 60 * 60 * 1000;
const DAY_MS = 24 * HOUR_MS;

/**
 * A self-signed X.509 v3 certificate for a key pair (RFC 8705 §2.2: the provider pins the
 * certificate, or its key, rather than trusting a CA), signed with the same key: SHA-256 with RSA,
 * ECDSA with SHA-256, or Ed25519. Extensions: not a CA, digitalSignature, and the TLS client
 * authentication extended key usage (RFC 5280 §4.2.1.12).
 */
export function selfSignedCertificate(privateKey: KeyObject, options: SelfSignedOptions): string {
  const now = options.now ?? Date.now();
  const days = options.days ?? 365;
  const signature = signatureAlgorithm(privateKey);
  const name = der.sequence(
    der.set(der.sequence(der.oid(OID.commonName), der.utf8String(options.commonName.slice(0, 64)))),
  );
  const serial = randomBytes(16);
  serial[0] = ((serial[0] ?? 0) & 0x7f) | 0x01; // positive and non-zero (RFC 5280 §4.1.2.2)
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const extensions = der.explicit(
    3,
    der.sequence(
      der.sequence(der.oid(OID.basicConstraints), der.boolean(true), der.octetString(der.sequence())),
      der.sequence(
        der.oid(OID.keyUsage),
        der.boolean(true),
        // digitalSignature only: bit 0 of a one-byte string with 7 unused bits.
        der.octetString(der.bitString(Buffer.from([0x80]), 7)),
      ),
      der.sequence(der.oid(OID.extKeyUsage), der.octetString(der.sequence(der.oid(OID.clientAuth)))),
    ),
  );
  const tbs = der.sequence(
    der.explicit(0, der.integer(Buffer.from([2]))), // v3
    der.integer(serial),
    signature.identifier,
    name,
    der.sequence(der.time(now - HOUR_MS), der.time(now + days * DAY_MS)),
    name,
    spki,
    extensions,
  );
  const signed = signature.sign(tbs);
  const certificate = der.sequence(tbs, signature.identifier, der.bitString(signed, 0));
  const base64 = certificate.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${base64.endsWith('\n') ? base64 : `${base64}\n`}-----END CERTIFICATE-----\n`;
}

function signatureAlgorithm(key: KeyObject): { identifier: Buffer; sign: (tbs: Buffer) => Buffer } {
  switch (keyTypeOf(key)) {
    case 'RSA':
      return {
        identifier: der.sequence(der.oid(OID.sha256WithRSAEncryption), der.null()),
        sign: (tbs) => sign('sha256', tbs, key),
      };
    case 'P-256':
      return {
        identifier: der.sequence(der.oid(OID.ecdsaWithSHA256)),
        sign: (tbs) => sign('sha256', tbs, { key, dsaEncoding: 'der' }),
      };
    case 'Ed25519':
      return {
        identifier: der.sequence(der.oid(OID.ed25519)),
        sign: (tbs) => sign(null, tbs, key),
      };
    default:
      throw new TypeError('a self-signed certificate needs an RSA, P-256 or Ed25519 key');
  }
}

const OID = {
  commonName: '2.5.4.3',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  sha256WithRSAEncryption: '1.2.840.113549.1.1.11',
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
  ed25519: '1.3.101.112',
} as const;

/** The few DER encodings (ITU-T X.690 §8, §10) a certificate needs. */
const der = {
  tlv(tag: number, content: Buffer): Buffer {
    return Buffer.concat([Buffer.from([tag]), length(content.length), content]);
  },
  sequence(...items: Buffer[]): Buffer {
    return der.tlv(0x30, Buffer.concat(items));
  },
  set(...items: Buffer[]): Buffer {
    return der.tlv(0x31, Buffer.concat(items));
  },
  explicit(tag: number, content: Buffer): Buffer {
    return der.tlv(0xa0 + tag, content);
  },
  integer(bytes: Buffer): Buffer {
    // A leading 1 bit would read as negative: prefix a zero byte.
    const content = (bytes[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes;
    return der.tlv(0x02, content);
  },
  boolean(value: boolean): Buffer {
    return der.tlv(0x01, Buffer.from([value ? 0xff : 0x00]));
  },
  null(): Buffer {
    return Buffer.from([0x05, 0x00]);
  },
  octetString(content: Buffer): Buffer {
    return der.tlv(0x04, content);
  },
  bitString(content: Buffer, unusedBits: number): Buffer {
    return der.tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), content]));
  },
  utf8String(value: string): Buffer {
    return der.tlv(0x0c, Buffer.from(value, 'utf8'));
  },
  oid(dotted: string): Buffer {
    const parts = dotted.split('.').map(Number);
    const bytes = [40 * (parts[0] ?? 0) + (parts[1] ?? 0)];
    for (const part of parts.slice(2)) {
      const base128 = [part & 0x7f];
      for (let rest = part >>> 7; rest > 0; rest >>>= 7) base128.unshift((rest & 0x7f) | 0x80);
      bytes.push(...base128);
    }
    return der.tlv(0x06, Buffer.from(bytes));
  },
  /** UTCTime through 2049, GeneralizedTime after (RFC 5280 §4.1.2.5). */
  time(ms: number): Buffer {
    const iso = new Date(ms).toISOString(); // 2025-01-31T12:00:00.000Z
    const digits = iso.replace(/[-:T]/g, '').slice(0, 14); // 20250131120000
    const year = new Date(ms).getUTCFullYear();
    return year < 2050
      ? der.tlv(0x17, Buffer.from(`${digits.slice(2)}Z`, 'ascii'))
      : der.tlv(0x18, Buffer.from(`${digits}Z`, 'ascii'));
  },
};

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let rest = n; rest > 0; rest >>>= 8) bytes.unshift(rest & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
