// Which addresses can be a VIP or a backend (the one host a flow is sent to),
// and zones, which xdplb cannot keep.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatIp, ipSyntaxError, mustParseIp, parseIp, unusableAddress } from '../../src/model/address.ts';

describe('unusableAddress', () => {
  test('each range that names no single host is refused, with why', () => {
    const refused: [string, RegExp][] = [
      ['0.0.0.0', /0\.0\.0\.0\/8.*never a destination/],
      ['0.1.2.3', /0\.0\.0\.0\/8/],
      ['127.0.0.1', /loopback.*127\.0\.0\.0\/8/],
      ['127.255.255.254', /loopback/],
      ['224.0.0.0', /multicast.*224\.0\.0\.0\/4/],
      ['224.0.0.1', /multicast/],
      ['239.255.255.255', /multicast/],
      ['255.255.255.255', /limited broadcast/],
      ['::', /unspecified/],
      ['::1', /loopback.*::1/],
      ['ff00::', /multicast.*ff00::\/8/],
      ['ff02::1', /multicast/],
      ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', /multicast/],
      ['::ffff:10.0.0.1', /IPv4-mapped.*write the IPv4 address/],
      ['::ffff:0:0', /IPv4-mapped/],
    ];
    for (const [text, why] of refused) {
      const reason = unusableAddress(mustParseIp(text));
      assert.ok(reason !== null, `${text} should be refused`);
      assert.match(reason, why, text);
      assert.ok(reason.startsWith(mustParseIp(text).text), `the reason names the address: ${reason}`);
    }
  });

  test('the addresses next to those ranges are usable', () => {
    const usable = [
      '1.0.0.0',
      '10.0.0.1',
      '126.255.255.255',
      '128.0.0.0',
      '169.254.1.1',
      '223.255.255.255',
      '240.0.0.0',
      '255.255.255.254',
      '::2',
      '::fffe:0:1',
      '::1:0:0:1',
      'fe80::1',
      'feff:ffff::1',
      '2001:db8::1',
      '64:ff9b::10.0.0.1',
    ];
    for (const text of usable) assert.equal(unusableAddress(mustParseIp(text)), null, text);
  });
});

describe('zones', () => {
  test('an address with a zone does not parse (the zone would be dropped), and the message says so', () => {
    for (const text of ['fe80::1%eth0', 'fe80::1%2', 'ff02::1%lo']) {
      assert.equal(parseIp(text), null, text);
      assert.match(ipSyntaxError(text), /zone .*%.* is not supported/, text);
    }
    assert.equal(ipSyntaxError('10.0.0.999'), 'an IPv4 or IPv6 address');
    assert.equal(ipSyntaxError('10.0.0.1%eth0'), 'an IPv4 or IPv6 address');
  });
});

describe('parseIp', () => {
  test('bytes are the address in network order, however many addresses share their memory', () => {
    const many = Array.from({ length: 1000 }, (_, i) => mustParseIp(`10.${i >> 8}.${i & 255}.7`));
    many.forEach((ip, i) => {
      assert.equal(ip.bytes.length, 16);
      assert.deepEqual([...ip.bytes], [10, i >> 8, i & 255, 7, ...Array(12).fill(0)]);
      assert.equal(formatIp(ip.bytes, 4), ip.text);
    });
    const v6 = mustParseIp('2001:DB8::0102:0304');
    assert.equal(v6.text, '2001:db8::102:304');
    assert.equal(v6.bytes.toString('hex'), '20010db8000000000000000001020304');
  });
});
