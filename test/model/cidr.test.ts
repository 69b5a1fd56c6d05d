// CIDRs of the Kubernetes settings: parsing, membership, and the lowest free
// address of a pool.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mustParseIp } from '../../src/model/address.ts';
import { cidrContains, compareAddresses, firstFree, parseCidr, type Cidr } from '../../src/model/cidr.ts';

function cidr(text: string): Cidr {
  const c = parseCidr(text);
  if (typeof c === 'string') throw new Error(c);
  return c;
}

test('parseCidr takes ranges and single addresses, and refuses bits past the prefix, naming the range meant', () => {
  assert.equal(cidr('198.51.100.64/26').prefix, 26);
  assert.equal(cidr('2001:db8:64::/120').family, 6);
  assert.equal(cidr('198.51.100.7').prefix, 32);
  assert.equal(cidr('0.0.0.0/0').prefix, 0);
  assert.match(parseCidr('198.51.100.65/26') as string, /bits set past its \/26: write the range's first address \(198\.51\.100\.64\/26\)/);
  assert.match(parseCidr('198.51.100.0/33') as string, /prefix length from 0 to 32/);
  assert.match(parseCidr('198.51.100.0/2x') as string, /prefix length/);
  assert.match(parseCidr('pool-a') as string, /a CIDR/);
  assert.match(parseCidr('10.0.0.0/8/8') as string, /a CIDR/);
});

test('cidrContains: same family and prefix, at byte and bit boundaries', () => {
  const cases: [string, string, boolean][] = [
    ['198.51.100.64/26', '198.51.100.64', true],
    ['198.51.100.64/26', '198.51.100.127', true],
    ['198.51.100.64/26', '198.51.100.128', false],
    ['198.51.100.64/26', '198.51.100.63', false],
    ['10.0.0.0/8', '10.255.255.255', true],
    ['0.0.0.0/0', '203.0.113.1', true],
    ['0.0.0.0/0', '2001:db8::1', false],
    ['2001:db8:64::/120', '2001:db8:64::ff', true],
    ['2001:db8:64::/120', '2001:db8:64::100', false],
    ['198.51.100.7', '198.51.100.7', true],
    ['198.51.100.7', '198.51.100.8', false],
  ];
  for (const [range, ip, inside] of cases) assert.equal(cidrContains(cidr(range), mustParseIp(ip)), inside, `${ip} in ${range}`);
});

test('firstFree: the lowest usable address not taken, from a starting point; null when none is left', () => {
  const pool = cidr('203.0.113.0/30');
  assert.equal(firstFree(pool, new Set())?.text, '203.0.113.0');
  assert.equal(firstFree(pool, new Set(['203.0.113.0', '203.0.113.2']))?.text, '203.0.113.1');
  assert.equal(firstFree(pool, new Set(['203.0.113.0']), pool.first + 2n)?.text, '203.0.113.2');
  assert.equal(firstFree(pool, new Set(['203.0.113.0', '203.0.113.1', '203.0.113.2', '203.0.113.3'])), null);
  assert.equal(firstFree(cidr('127.0.0.0/30'), new Set()), null, 'loopback addresses are never handed out');
  assert.equal(firstFree(cidr('2001:db8::/64'), new Set(['2001:db8::']))?.text, '2001:db8::1', 'a /64 costs what its taken addresses cost');
  assert.equal(firstFree(cidr('224.0.0.0/4'), new Set()), null, 'a range of unusable addresses is given up on, not walked');
});

test('compareAddresses: IPv4 first, then numerically', () => {
  const sorted = ['fd00::2', '10.0.0.10', 'fd00::10', '10.0.0.9'].map(mustParseIp).sort(compareAddresses).map((ip) => ip.text);
  assert.deepEqual(sorted, ['10.0.0.9', '10.0.0.10', 'fd00::2', 'fd00::10']);
});
