import { describe, expect, it } from 'vitest';
import { EgressPolicy, isLoopbackAddress } from './address-policy.js';

const defaultPolicy = new EgressPolicy('default');
const strictPolicy = new EgressPolicy('strict');

type Expectation = 'allowed' | 'denied';

// [address, default mode, strict mode, a word the refusal reason must contain]
const TABLE: ReadonlyArray<readonly [string, Expectation, Expectation, string?]> = [
  // public addresses pass in both modes
  ['8.8.8.8', 'allowed', 'allowed'],
  ['1.1.1.1', 'allowed', 'allowed'],
  ['93.184.216.34', 'allowed', 'allowed'],
  ['2606:4700:4700::1111', 'allowed', 'allowed'],
  ['2001:4860:4860::8888', 'allowed', 'allowed'],
  ['::ffff:8.8.8.8', 'allowed', 'allowed'],
  ['64:ff9b::8.8.8.8', 'allowed', 'allowed'],
  ['2002:0808:0808::1', 'allowed', 'allowed'],
  ['169.253.255.255', 'allowed', 'allowed'],
  ['169.255.0.0', 'allowed', 'allowed'],
  ['223.255.255.255', 'allowed', 'allowed'],
  ['100.100.100.199', 'allowed', 'denied', 'carrier-grade NAT'],
  ['100.63.255.255', 'allowed', 'allowed'],
  ['100.128.0.0', 'allowed', 'allowed'],
  ['172.15.255.255', 'allowed', 'allowed'],
  ['172.32.0.0', 'allowed', 'allowed'],
  ['198.17.255.255', 'allowed', 'allowed'],
  ['198.20.0.0', 'allowed', 'allowed'],
  ['1.0.0.0', 'allowed', 'allowed'],
  ['fbff:ffff::1', 'allowed', 'allowed'],
  ['fe7f:ffff::1', 'allowed', 'allowed'],
  ['fec0::1', 'allowed', 'denied', 'site-local'],

  // cloud metadata
  ['169.254.169.254', 'denied', 'denied', 'metadata'],
  ['169.254.170.2', 'denied', 'denied', 'metadata'],
  ['100.100.100.200', 'denied', 'denied', 'Alibaba'],
  ['168.63.129.16', 'denied', 'denied', 'Azure'],
  ['192.0.0.192', 'denied', 'denied', 'Oracle'],
  ['fd00:ec2::254', 'denied', 'denied', 'metadata'],
  ['FD00:EC2:0:0:0:0:0:254', 'denied', 'denied', 'metadata'],
  ['fd20:ce::254', 'denied', 'denied', 'metadata'],

  // link-local
  ['169.254.0.0', 'denied', 'denied', 'link-local'],
  ['169.254.0.1', 'denied', 'denied', 'link-local'],
  ['169.254.255.255', 'denied', 'denied', 'link-local'],
  ['fe80::1', 'denied', 'denied', 'link-local'],
  ['fe80::1%eth0', 'denied', 'denied', 'link-local'],
  ['febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'denied', 'denied', 'link-local'],

  // unspecified
  ['0.0.0.0', 'denied', 'denied', 'unspecified'],
  ['0.255.255.255', 'denied', 'denied', 'unspecified'],
  ['::', 'denied', 'denied', 'unspecified'],
  ['0:0:0:0:0:0:0:0', 'denied', 'denied', 'unspecified'],

  // multicast, broadcast, reserved
  ['224.0.0.1', 'denied', 'denied', 'multicast'],
  ['239.255.255.250', 'denied', 'denied', 'multicast'],
  ['ff02::1', 'denied', 'denied', 'multicast'],
  ['ff05::1:3', 'denied', 'denied', 'multicast'],
  ['255.255.255.255', 'denied', 'denied', 'broadcast'],
  ['240.0.0.1', 'denied', 'denied', 'reserved'],

  // loopback: allowed by default (local providers in development), refused by strict
  ['127.0.0.1', 'allowed', 'denied', 'loopback'],
  ['127.255.255.254', 'allowed', 'denied', 'loopback'],
  ['::1', 'allowed', 'denied', 'loopback'],
  ['0:0:0:0:0:0:0:1', 'allowed', 'denied', 'loopback'],
  ['[::1]', 'allowed', 'denied', 'loopback'],

  // private ranges
  ['10.0.0.1', 'allowed', 'denied', 'private'],
  ['10.255.255.255', 'allowed', 'denied', 'private'],
  ['172.16.0.1', 'allowed', 'denied', 'private'],
  ['172.31.255.255', 'allowed', 'denied', 'private'],
  ['192.168.0.1', 'allowed', 'denied', 'private'],
  ['192.168.255.255', 'allowed', 'denied', 'private'],
  ['fc00::1', 'allowed', 'denied', 'unique local'],
  ['fd12:3456:789a::1', 'allowed', 'denied', 'unique local'],
  ['100.64.0.1', 'allowed', 'denied', 'carrier-grade NAT'],
  ['100.127.255.255', 'allowed', 'denied', 'carrier-grade NAT'],
  ['198.18.0.1', 'allowed', 'denied', 'benchmarking'],
  ['198.19.255.255', 'allowed', 'denied', 'benchmarking'],
  ['192.0.0.8', 'allowed', 'denied', 'IETF'],
  ['192.0.2.1', 'allowed', 'denied', 'documentation'],
  ['198.51.100.7', 'allowed', 'denied', 'documentation'],
  ['203.0.113.9', 'allowed', 'denied', 'documentation'],
  ['2001:db8::1', 'allowed', 'denied', 'documentation'],
  ['100::1', 'allowed', 'denied', 'discard'],
  ['64:ff9b:1::a00:1', 'allowed', 'denied', 'NAT64'],

  // IPv4-mapped (::ffff:0:0/96), dotted and hex spellings
  ['::ffff:169.254.169.254', 'denied', 'denied', 'IPv4-mapped form of 169.254.169.254'],
  ['::ffff:a9fe:a9fe', 'denied', 'denied', 'IPv4-mapped form of 169.254.169.254'],
  ['0:0:0:0:0:ffff:a9fe:a9fe', 'denied', 'denied', 'metadata'],
  ['::FFFF:A9FE:A9FE', 'denied', 'denied', 'metadata'],
  ['::ffff:100.100.100.200', 'denied', 'denied', 'Alibaba'],
  ['::ffff:169.254.1.1', 'denied', 'denied', 'link-local'],
  ['::ffff:0.0.0.0', 'denied', 'denied', 'unspecified'],
  ['::ffff:224.0.0.1', 'denied', 'denied', 'multicast'],
  ['::ffff:255.255.255.255', 'denied', 'denied', 'broadcast'],
  ['::ffff:127.0.0.1', 'allowed', 'denied', 'IPv4-mapped form of 127.0.0.1'],
  ['::ffff:7f00:1', 'allowed', 'denied', 'loopback'],
  ['::ffff:10.1.2.3', 'allowed', 'denied', 'private'],
  ['::ffff:192.168.1.1', 'allowed', 'denied', 'private'],
  ['::ffff:172.16.0.1', 'allowed', 'denied', 'private'],
  ['::ffff:100.64.0.1', 'allowed', 'denied', 'carrier-grade NAT'],
  ['::ffff:198.18.0.1', 'allowed', 'denied', 'benchmarking'],

  // IPv4-translated (::ffff:0:0:0/96, RFC 2765)
  ['::ffff:0:169.254.169.254', 'denied', 'denied', 'IPv4-translated form of 169.254.169.254'],
  ['::ffff:0:127.0.0.1', 'allowed', 'denied', 'loopback'],

  // IPv4-compatible (::/96, deprecated)
  ['::169.254.169.254', 'denied', 'denied', 'IPv4-compatible form of 169.254.169.254'],
  ['::a9fe:a9fe', 'denied', 'denied', 'metadata'],
  ['::100.100.100.200', 'denied', 'denied', 'Alibaba'],
  ['::224.0.0.1', 'denied', 'denied', 'multicast'],
  ['::127.0.0.1', 'allowed', 'denied', 'loopback'],
  ['::10.0.0.1', 'allowed', 'denied', 'private'],
  ['::8.8.8.8', 'allowed', 'allowed'],

  // NAT64 well-known prefix (64:ff9b::/96) and local-use prefix (64:ff9b:1::/48)
  ['64:ff9b::169.254.169.254', 'denied', 'denied', 'NAT64 form of 169.254.169.254'],
  ['64:ff9b::a9fe:a9fe', 'denied', 'denied', 'metadata'],
  ['64:ff9b::100.100.100.200', 'denied', 'denied', 'Alibaba'],
  ['64:ff9b::0.0.0.0', 'denied', 'denied', 'unspecified'],
  ['64:ff9b::127.0.0.1', 'allowed', 'denied', 'loopback'],
  ['64:ff9b::10.0.0.1', 'allowed', 'denied', 'private'],
  ['64:ff9b:1::169.254.169.254', 'denied', 'denied', 'NAT64'],

  // 6to4 (2002::/16) and Teredo (2001::/32, client address inverted)
  ['2002:a9fe:a9fe::1', 'denied', 'denied', '6to4 form of 169.254.169.254'],
  ['2002:7f00:1::1', 'allowed', 'denied', 'loopback'],
  ['2002:c0a8:101::1', 'allowed', 'denied', 'private'],
  ['2001:0:4136:e378:8000:63bf:5601:5601', 'denied', 'denied', 'Teredo form of 169.254.169.254'],
  ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'allowed', 'denied', 'loopback'],
  ['2001:0:4136:e378:8000:63bf:f7f7:f7f7', 'allowed', 'allowed'],

  // not an address at all
  ['localhost', 'denied', 'denied', 'not an IP'],
  ['', 'denied', 'denied', 'not an IP'],
  ['169.254.169.254.nip.io', 'denied', 'denied', 'not an IP'],
  ['0x7f.1', 'denied', 'denied', 'not an IP'],
  ['2130706433', 'denied', 'denied', 'not an IP'],
  ['1.2.3', 'denied', 'denied', 'not an IP'],
  ['::ffff:1.2.3', 'denied', 'denied', 'not an IP'],
  ['1::2::3', 'denied', 'denied', 'not an IP'],
  ['12345::1', 'denied', 'denied', 'not an IP'],
];

describe('EgressPolicy', () => {
  const cases = TABLE.map(([address, inDefault, inStrict, reasonWord]) => ({
    address,
    inDefault,
    inStrict,
    reasonWord,
  }));
  it.each(cases)(
    '$address: default $inDefault, strict $inStrict',
    ({ address, inDefault, inStrict, reasonWord }) => {
      for (const [policy, expected] of [
        [defaultPolicy, inDefault],
        [strictPolicy, inStrict],
      ] as const) {
        const verdict = policy.check(address);
        expect(verdict.allowed, `${policy.mode} mode`).toBe(expected === 'allowed');
        if (!verdict.allowed && reasonWord !== undefined) expect(verdict.reason).toContain(reasonWord);
      }
    },
  );

  it('refuses every address of 169.254.0.0/16 in both modes', () => {
    for (let third = 0; third < 256; third++) {
      for (const fourth of [0, 1, 128, 254, 255]) {
        const address = `169.254.${third}.${fourth}`;
        expect(defaultPolicy.check(address).allowed).toBe(false);
        expect(strictPolicy.check(`::ffff:${address}`).allowed).toBe(false);
      }
    }
  });

  it('refuses the boundaries of each strict range and allows the addresses just outside', () => {
    const ranges: Array<[string, string, string, string]> = [
      // [just below, first, last, just above]
      ['9.255.255.255', '10.0.0.0', '10.255.255.255', '11.0.0.0'],
      ['172.15.255.255', '172.16.0.0', '172.31.255.255', '172.32.0.0'],
      ['192.167.255.255', '192.168.0.0', '192.168.255.255', '192.169.0.0'],
      ['100.63.255.255', '100.64.0.0', '100.127.255.255', '100.128.0.0'],
      ['198.17.255.255', '198.18.0.0', '198.19.255.255', '198.20.0.0'],
      ['126.255.255.255', '127.0.0.0', '127.255.255.255', '128.0.0.0'],
    ];
    for (const [below, first, last, above] of ranges) {
      expect(strictPolicy.check(below).allowed, below).toBe(true);
      expect(strictPolicy.check(first).allowed, first).toBe(false);
      expect(strictPolicy.check(last).allowed, last).toBe(false);
      expect(strictPolicy.check(above).allowed, above).toBe(true);
    }
  });

  it('keeps the fc00::/7 boundary exact', () => {
    expect(strictPolicy.check('fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff').allowed).toBe(true);
    expect(strictPolicy.check('fc00::').allowed).toBe(false);
    expect(strictPolicy.check('fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff').allowed).toBe(false);
    expect(strictPolicy.check('fe00::').allowed).toBe(true);
  });

  it('rejects an unknown mode', () => {
    expect(() => new EgressPolicy('lenient' as 'default')).toThrow(TypeError);
  });
});

describe('isLoopbackAddress', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['::1', true],
    ['[::1]', true],
    ['::ffff:127.0.0.1', true],
    ['128.0.0.1', false],
    ['::2', false],
    ['10.0.0.1', false],
    ['localhost', false],
    ['::ffff:10.0.0.1', false],
  ] as const)('%s → %s', (address, expected) => {
    expect(isLoopbackAddress(address)).toBe(expected);
  });
});
