import { isIPv4, isIPv6 } from 'node:net';

/**
 * `default` refuses addresses that are never a legitimate API destination and are the classic SSRF
 * targets (link-local, cloud metadata, unspecified, multicast, broadcast). `strict` also refuses
 * loopback and private ranges, for deployments where Grantry must only reach the public internet.
 */
export type EgressMode = 'default' | 'strict';

export type AddressVerdict = { allowed: true } | { allowed: false; reason: string };

interface Rule {
  readonly base: bigint;
  readonly prefix: number;
  readonly reason: string;
  /** Also refused in `default` mode; otherwise only in `strict`. */
  readonly always: boolean;
}

const ALLOWED: AddressVerdict = Object.freeze({ allowed: true });

// Order matters only for the reason shown: specific entries come before the ranges that contain them.
const IPV4_RULES: readonly Rule[] = [
  v4('169.254.169.254/32', 'cloud metadata address (AWS, GCP, Azure, OCI, DigitalOcean)', true),
  v4('169.254.170.2/32', 'cloud metadata address (AWS ECS task credentials)', true),
  v4('100.100.100.200/32', 'cloud metadata address (Alibaba Cloud)', true),
  v4('168.63.129.16/32', 'cloud platform address (Azure WireServer)', true),
  v4('192.0.0.192/32', 'cloud metadata address (Oracle Cloud)', true),
  v4('0.0.0.0/8', 'unspecified address (0.0.0.0/8)', true),
  v4('169.254.0.0/16', 'link-local address (169.254.0.0/16)', true),
  v4('224.0.0.0/4', 'multicast address (224.0.0.0/4)', true),
  v4('255.255.255.255/32', 'broadcast address', true),
  v4('240.0.0.0/4', 'reserved address (240.0.0.0/4)', true),
  v4('127.0.0.0/8', 'loopback address (127.0.0.0/8)', false),
  v4('10.0.0.0/8', 'private address (10.0.0.0/8)', false),
  v4('172.16.0.0/12', 'private address (172.16.0.0/12)', false),
  v4('192.168.0.0/16', 'private address (192.168.0.0/16)', false),
  v4('100.64.0.0/10', 'shared address space (100.64.0.0/10, carrier-grade NAT)', false),
  v4('198.18.0.0/15', 'benchmarking address (198.18.0.0/15)', false),
  v4('192.0.0.0/24', 'IETF protocol assignment (192.0.0.0/24)', false),
  v4('192.0.2.0/24', 'documentation address (192.0.2.0/24)', false),
  v4('198.51.100.0/24', 'documentation address (198.51.100.0/24)', false),
  v4('203.0.113.0/24', 'documentation address (203.0.113.0/24)', false),
];

const IPV6_RULES: readonly Rule[] = [
  v6('fd00:ec2::254/128', 'cloud metadata address (AWS)', true),
  v6('fd20:ce::254/128', 'cloud metadata address (GCP)', true),
  v6('::/128', 'unspecified address (::)', true),
  v6('fe80::/10', 'link-local address (fe80::/10)', true),
  v6('ff00::/8', 'multicast address (ff00::/8)', true),
  v6('::1/128', 'loopback address (::1)', false),
  v6('fc00::/7', 'unique local address (fc00::/7)', false),
  v6('fec0::/10', 'site-local address (fec0::/10)', false),
  v6('64:ff9b:1::/48', 'local-use NAT64 address (64:ff9b:1::/48)', false),
  v6('100::/64', 'discard-only address (100::/64)', false),
  v6('2001:db8::/32', 'documentation address (2001:db8::/32)', false),
];

/**
 * IPv6 forms that carry an IPv4 address the packet may end up at. Each is checked against the IPv4
 * rules, so `::ffff:169.254.169.254` is refused exactly like `169.254.169.254`.
 */
interface EmbeddedForm {
  readonly rule: Rule;
  readonly extract: (address: bigint) => bigint;
}

const LOW_32 = 0xffffffffn;
const EMBEDDED_FORMS: readonly EmbeddedForm[] = [
  { rule: v6('::ffff:0:0/96', 'IPv4-mapped', true), extract: (a) => a & LOW_32 },
  // RFC 2765 "IPv4-translated" addresses (SIIT).
  { rule: v6('::ffff:0:0:0/96', 'IPv4-translated', true), extract: (a) => a & LOW_32 },
  // RFC 6052 §2.1 well-known NAT64 prefix, and the local-use prefix of RFC 8215 (as /96).
  { rule: v6('64:ff9b::/96', 'NAT64', true), extract: (a) => a & LOW_32 },
  { rule: v6('64:ff9b:1::/48', 'NAT64', true), extract: (a) => a & LOW_32 },
  // RFC 3056 6to4: the IPv4 address sits right after the 2002::/16 prefix.
  { rule: v6('2002::/16', '6to4', true), extract: (a) => (a >> 80n) & LOW_32 },
  // RFC 4380 §4 Teredo: the client's IPv4 address is stored inverted in the last 32 bits.
  { rule: v6('2001::/32', 'Teredo', true), extract: (a) => ~a & LOW_32 },
  // RFC 4291 §2.5.5.1 IPv4-compatible (deprecated); `::` and `::1` never reach this (see check()).
  { rule: v6('::/96', 'IPv4-compatible', true), extract: (a) => a & LOW_32 },
];

const IPV6_LOOPBACK = 1n;

/** Decides whether Grantry may open a connection to a literal IP address. */
export class EgressPolicy {
  readonly mode: EgressMode;

  constructor(mode: EgressMode) {
    if (mode !== 'default' && mode !== 'strict') throw new TypeError(`unknown egress mode: ${String(mode)}`);
    this.mode = mode;
  }

  /** `address` is a literal IPv4 or IPv6 address (brackets and an IPv6 zone id are tolerated). */
  check(address: string): AddressVerdict {
    const strict = this.mode === 'strict';
    const ipv4 = parseIPv4(address);
    if (ipv4 !== null) return verdict(matchRule(IPV4_RULES, ipv4, 32, strict));

    const ipv6 = parseIPv6(address);
    if (ipv6 === null) return { allowed: false, reason: 'not an IP address' };

    const direct = matchRule(IPV6_RULES, ipv6, 128, strict);
    if (direct !== null) return { allowed: false, reason: direct };
    if (ipv6 === IPV6_LOOPBACK) return ALLOWED;

    for (const form of EMBEDDED_FORMS) {
      if (!inRule(form.rule, ipv6, 128)) continue;
      const embedded = form.extract(ipv6);
      const reason = matchRule(IPV4_RULES, embedded, 32, strict);
      if (reason !== null) {
        return { allowed: false, reason: `${form.rule.reason} form of ${formatIPv4(embedded)}: ${reason}` };
      }
    }
    return ALLOWED;
  }
}

/** True for 127.0.0.0/8, ::1 and their IPv4-mapped form: the only hosts plain http may reach. */
export function isLoopbackAddress(address: string): boolean {
  const ipv4 = parseIPv4(address);
  if (ipv4 !== null) return ipv4 >> 24n === 127n;
  const ipv6 = parseIPv6(address);
  if (ipv6 === null) return false;
  if (ipv6 === IPV6_LOOPBACK) return true;
  return ipv6 >> 32n === 0xffffn && (ipv6 & LOW_32) >> 24n === 127n;
}

function verdict(reason: string | null): AddressVerdict {
  return reason === null ? ALLOWED : { allowed: false, reason };
}

function matchRule(rules: readonly Rule[], address: bigint, bits: number, strict: boolean): string | null {
  for (const rule of rules) {
    if ((rule.always || strict) && inRule(rule, address, bits)) return rule.reason;
  }
  return null;
}

function inRule(rule: Rule, address: bigint, bits: number): boolean {
  const shift = BigInt(bits - rule.prefix);
  return address >> shift === rule.base >> shift;
}

function v4(cidr: string, reason: string, always: boolean): Rule {
  const [text, prefix] = splitCidr(cidr);
  const base = parseIPv4(text);
  if (base === null || prefix > 32) throw new Error(`bad IPv4 rule ${cidr}`);
  return { base, prefix, reason, always };
}

function v6(cidr: string, reason: string, always: boolean): Rule {
  const [text, prefix] = splitCidr(cidr);
  const base = parseIPv6(text);
  if (base === null || prefix > 128) throw new Error(`bad IPv6 rule ${cidr}`);
  return { base, prefix, reason, always };
}

function splitCidr(cidr: string): [string, number] {
  const slash = cidr.indexOf('/');
  return [cidr.slice(0, slash), Number(cidr.slice(slash + 1))];
}

/** Dotted-quad only (what `net.isIPv4` accepts); resolvers and sockets only ever report that form. */
function parseIPv4(text: string): bigint | null {
  if (!isIPv4(text)) return null;
  let value = 0n;
  for (const octet of text.split('.')) value = (value << 8n) | BigInt(Number(octet));
  return value;
}

function parseIPv6(input: string): bigint | null {
  let text = input;
  if (text.startsWith('[') && text.endsWith(']')) text = text.slice(1, -1);
  const zone = text.indexOf('%');
  if (zone !== -1) text = text.slice(0, zone);
  if (!isIPv6(text)) return null;

  const gap = text.indexOf('::');
  const head = hextets(gap === -1 ? text : text.slice(0, gap));
  const tail = gap === -1 ? [] : hextets(text.slice(gap + 2));
  if (head === null || tail === null) return null;
  const missing = 8 - head.length - tail.length;
  if (missing < 0 || (gap === -1 && missing !== 0)) return null;

  let value = 0n;
  for (const group of head) value = (value << 16n) | BigInt(group);
  value <<= BigInt(16 * missing);
  for (const group of tail) value = (value << 16n) | BigInt(group);
  return value;
}

function hextets(part: string): number[] | null {
  if (part === '') return [];
  const groups: number[] = [];
  for (const piece of part.split(':')) {
    if (piece.includes('.')) {
      const embedded = parseIPv4(piece);
      if (embedded === null) return null;
      groups.push(Number(embedded >> 16n), Number(embedded & 0xffffn));
    } else {
      groups.push(Number.parseInt(piece, 16));
    }
  }
  return groups;
}

function formatIPv4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
}
