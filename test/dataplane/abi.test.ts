// The TypeScript codecs must agree with what the C compiler made of
// bpf/xdplb_abi.h (the addon compiles the same header and reports it).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeDest, decodeService, decodeServiceKey, encodeDest, encodeService, encodeServiceKey, GLOBAL_STATS, LAYOUT } from '../../src/dataplane/abi.ts';
import { native } from '../../src/dataplane/native.ts';
import { mustParseIp } from '../../src/model/address.ts';

const c = native.abi();

test('every struct has the size and field offsets the C compiler gave it', () => {
  for (const [name, ts] of Object.entries(LAYOUT)) {
    const cl = c.layout[name];
    assert.ok(cl, `C layout has no struct ${name}`);
    if (name !== 'global') assert.equal(ts.size, cl.size, `sizeof(struct xdplb_${name})`);
    assert.deepEqual(ts.offsets, cl.offsets, `field offsets of struct xdplb_${name}`);
  }
  assert.deepEqual(Object.keys(LAYOUT).sort(), Object.keys(c.layout).sort(), 'both sides describe the same structs');
  assert.equal(c.layout.global!.size, GLOBAL_STATS.length * 8, 'one u64 per global counter name');
});

test('global counter names come from the C header, in enum order', () => {
  assert.equal(GLOBAL_STATS[0], 'xdp_tx');
  assert.ok(GLOBAL_STATS.includes('drop_malformed') && GLOBAL_STATS.includes('icmp_error_steered'));
  assert.equal(new Set(GLOBAL_STATS).size, GLOBAL_STATS.length, 'names are unique');
});

test('codecs round-trip', () => {
  const vip = mustParseIp('2001:db8::201');
  const key = { addr: vip.bytes, family: 6 as const, proto: 6, port: 443 };
  assert.deepEqual(decodeServiceKey(encodeServiceKey(key)), key);
  assert.equal(encodeServiceKey(key).readUInt16BE(LAYOUT.service_key.offsets.port), 443, 'port is in network order');
  const svc = { id: 7, flags: 3, seed: 0xdeadbeef };
  assert.deepEqual(decodeService(encodeService(svc)), svc);
  const dest = { ifindex: 9, mac: Buffer.from('020000000101', 'hex'), srcMac: Buffer.from('020000000002', 'hex'), state: 2, service: 7 };
  assert.deepEqual(decodeDest(encodeDest(dest)), dest);
});
