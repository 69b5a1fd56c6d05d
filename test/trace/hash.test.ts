// The TypeScript hash (hashFlow, hashSource, hashToSlot in src/dataplane/abi.ts)
// against the program's: a table whose every slot has a destination of its
// own, with a MAC that names the slot, so the MAC the program writes says
// which slot it chose (BPF_PROG_TEST_RUN).
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { before, describe, test } from 'node:test';
import { addVipBit, CONSTANTS, hashFlow, hashSource, hashToSlot } from '../../src/dataplane/abi.ts';
import { mustParseIp, type IpAddress } from '../../src/model/address.ts';
import { IPPROTO } from '../../src/model/protocol.ts';
import { Fixture, putServiceIndexed, putTable } from '../helpers/dataplane-fixture.ts';
import { ethernet, ipv4, ipv6, MAC, tcp, udp } from '../helpers/packets.ts';

const SIZE = 251; // a prime: one destination per slot, ids 1..251
const VIP4 = mustParseIp('10.240.0.201');
const VIP6 = mustParseIp('2001:db8::201');

let fx: Fixture;

/** A destination MAC that names the slot: 02:00:00:00:HI:LO of slot + 1. */
function slotMac(slot: number): Buffer {
  return Buffer.from([0x02, 0, 0, 0, (slot + 1) >> 8, (slot + 1) & 0xff]);
}

const SERVICES = [
  { id: 1, vip: VIP4, proto: 'tcp', port: 80, seed: 0x5eed, source: false },
  { id: 2, vip: VIP4, proto: 'udp', port: 53, seed: 0xdeadbeef, source: false },
  { id: 3, vip: VIP6, proto: 'tcp', port: 80, seed: 0x80000001, source: false },
  { id: 4, vip: VIP6, proto: 'udp', port: 53, seed: 7, source: false },
  { id: 5, vip: VIP4, proto: 'tcp', port: 443, seed: 0xffffffff, source: true },
  { id: 6, vip: VIP6, proto: 'tcp', port: 443, seed: 0, source: true },
] as const;

before(async () => {
  fx = await Fixture.create(SIZE);
  const filter = new BigUint64Array(CONSTANTS.VIP_FILTER_WORDS);
  for (const s of SERVICES) {
    const dest = new Uint32Array(SIZE);
    for (let slot = 0; slot < SIZE; slot++) {
      const id = s.id * 300 + slot + 1; // below the fixture's 4096 destinations
      dest[slot] = id;
      fx.dp.putDest(id, { ifindex: 0, mac: slotMac(slot), srcMac: MAC.director, state: CONSTANTS.DEST_ACTIVE, service: s.id });
    }
    putTable(fx.dp, s.id, dest, new Uint32Array(SIZE));
    addVipBit(filter, s.vip.bytes, s.vip.family);
    fx.dp.putVip(s.vip);
    putServiceIndexed(fx.dp, { addr: s.vip.bytes, family: s.vip.family, proto: IPPROTO[s.proto], port: s.port }, { id: s.id, seed: s.seed, flags: s.source ? CONSTANTS.SVC_F_SOURCE_HASH : 0 }, s.id);
  }
  fx.dp.writeVipFilter(filter, new BigUint64Array(CONSTANTS.VIP_FILTER_WORDS));
});

function randomClient(family: 4 | 6): IpAddress {
  if (family === 4) return mustParseIp(`${randomInt(1, 224)}.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`);
  const groups = Array.from({ length: 8 }, (_, i) => (i === 0 ? '2001' : randomInt(0x10000).toString(16)));
  return mustParseIp(groups.join(':'));
}

describe('the hash and the slot agree with the program', () => {
  for (const s of SERVICES) {
    test(`${s.proto} IPv${s.vip.family} ${s.source ? 'client-address hash' : '5-tuple hash'}, seed 0x${s.seed.toString(16)}: 300 random flows`, async () => {
      const seen = new Set<number>();
      for (let i = 0; i < 300; i++) {
        const client = randomClient(s.vip.family);
        const sport = randomInt(65536);
        const l4 = s.proto === 'tcp' ? tcp(sport, s.port, 'ack') : udp(sport, s.port);
        const frame = ethernet(s.vip.family === 4 ? ipv4(client.text, s.vip.text, l4) : ipv6(client.text, s.vip.text, l4));
        const r = await fx.run(frame);
        assert.equal(r.verdict, 'TX', `${client.text}:${sport}: the program should forward it`);
        const chosen = r.packet.readUInt16BE(4) - 1;
        const key = { saddr: client.bytes, daddr: s.vip.bytes, sport, dport: s.port, proto: IPPROTO[s.proto], family: s.vip.family };
        const hash = s.source ? hashSource(key, s.seed) : hashFlow(key, s.seed);
        assert.equal(hashToSlot(hash, SIZE), chosen, `${client.text}:${sport} → ${s.vip.text}:${s.port}: TypeScript says slot ${hashToSlot(hash, SIZE)} (hash 0x${hash.toString(16)}), the program chose ${chosen}`);
        seen.add(chosen);
      }
      assert.ok(seen.size > 100, `300 random flows should reach many of the ${SIZE} slots, reached ${seen.size}`);
    });
  }

  test('hashToSlot maps the whole 32-bit range onto [0, size) as (hash * size) >> 32', () => {
    assert.equal(hashToSlot(0, 16381), 0);
    assert.equal(hashToSlot(0xffffffff, 16381), 16380);
    assert.equal(hashToSlot(0x80000000, 16381), 8190);
    assert.equal(hashToSlot(0xffffffff, 1048573), 1048572);
  });
});
