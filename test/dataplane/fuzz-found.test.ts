// Packet cases the fuzzer (test/fuzz/) found the program and the reference
// model disagreeing on, each reduced to one named frame with the verdict the
// README's data-plane rules give it, through the real program with
// BPF_PROG_TEST_RUN. "Not for a VIP" means an address no service has, even
// when it shares a VIP's bit of the prefilter (a false positive of the
// prefilter, which decides nothing but "maybe"); "malformed" is judged by the
// IP packet's own length, not by the frame's (Ethernet pads short frames, and
// the padding is no part of the packet).
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { validateConfig } from '../../src/config/load.ts';
import { hashFlow, hashToSlot, vipFilterBit } from '../../src/dataplane/abi.ts';
import { DataPlane } from '../../src/dataplane/dataplane.ts';
import { component } from '../../src/log.ts';
import { formatIp, mustParseIp } from '../../src/model/address.ts';
import { observe } from '../../src/reconcile/observe.ts';
import { Reconciler } from '../../src/reconcile/reconciler.ts';
import { Fixture } from '../helpers/dataplane-fixture.ts';
import {
  backendMac,
  ethernet,
  icmp4Error,
  icmp6Error,
  ipv4,
  ipv6,
  MAC,
  multicastMac,
  neighbourSolicitation,
  solicitedNode,
  tcp,
  udp,
  withMacs,
  type L4,
} from '../helpers/packets.ts';

const VIP4 = '10.240.0.201';
const VIP6 = '2001:db8::201';
const PORTLESS6 = '2001:db8::202'; // a port-less UDP service: it takes IPv6 fragments
const OTHER_VIP = '10.240.0.203'; // a VIP with a service of its own
const CHANGED = '10.240.0.205'; // a service whose table changed: backend 3 left, its slots remember it
const CLIENT4 = '10.240.0.10';
const CLIENT6 = '2001:db8::10';
const ROUTER4 = '10.240.0.1';
const ROUTER6 = '2001:db8::1';
const SEED = 0x5eed; // the fixture's per-service seed
const MAGLEV = 16381;

/** An IPv4 address that is no VIP but has VIP4's bit in the prefilter. */
function prefilterTwin4(vip: string): string {
  const bytes = Buffer.alloc(16);
  mustParseIp(vip).bytes.copy(bytes, 0, 0, 4);
  const bit = vipFilterBit(bytes, 4);
  let inv = 0x9e3779b1; // the filter's multiplier, inverted modulo 2^32 (Newton)
  for (let i = 0; i < 5; i++) inv = Math.imul(inv, 2 - Math.imul(0x9e3779b1, inv));
  const twin = Buffer.alloc(16);
  twin.writeUInt32LE(Math.imul(((bit << 16) | 0x1234) >>> 0, inv) >>> 0, 0);
  assert.equal(vipFilterBit(twin, 4), bit);
  return formatIp(twin.subarray(0, 4), 4);
}
const TWIN4 = prefilterTwin4(VIP4);
/** The prefilter looks at an IPv6 address's last 32 bits: another subnet's host ::201 shares VIP6's bit. */
const TWIN6 = '2001:db8:1::201';

let fx: Fixture;
before(async () => {
  fx = await Fixture.create();
  const three = [{ n: 1 }, { n: 2 }, { n: 3 }];
  fx.setService({ id: 1, vip: VIP4, port: 80, proto: 'tcp', backends: three });
  fx.setService({ id: 3, vip: VIP6, port: 80, proto: 'tcp', backends: three });
  fx.setService({ id: 4, vip: VIP6, port: 53, proto: 'udp', backends: three });
  fx.setService({ id: 6, vip: PORTLESS6, port: 0, proto: 'udp', backends: three });
  fx.setService({ id: 7, vip: OTHER_VIP, port: 80, proto: 'tcp', backends: [{ n: 7 }] });
  fx.setService({ id: 8, vip: CHANGED, port: 80, proto: 'tcp', backends: three });
  fx.setService({ id: 8, vip: CHANGED, port: 80, proto: 'tcp', backends: [{ n: 1 }, { n: 2 }, { n: 3, state: 'gone' }] });
  fx.dp.setOwnedVips([mustParseIp(VIP6)]);
  fx.dp.setOwnerDeadline(0); // a standby: the gate drops the VIP's solicitations
});

/** A TCP or UDP header (L4) whose IP packet ends `cut` bytes into it; the frame still carries it all, then padding. */
function cutByLength(ip: Buffer, l4Offset: number, cut: number, v6: boolean): Buffer {
  const out = Buffer.from(ip);
  if (v6) out.writeUInt16BE(l4Offset - 40 + cut, 4);
  else {
    out.writeUInt16BE(l4Offset + cut, 2);
    out.writeUInt16BE(0, 10);
  }
  return Buffer.concat([out, Buffer.alloc(8)]);
}

/** An ICMPv6-typed message carried in IPv4 (protocol 58): "packet too big" quoting an IPv4 reply of a VIP flow. */
function icmp6InIpv4(quoted: Buffer): L4 {
  return { proto: 58, bytes: icmp6Error(quoted).bytes };
}

/** A later IPv6 fragment whose fragment header names destination options (what followed it in the first fragment). */
function laterFragmentNamingOptions(): Buffer {
  // payload bytes that would read as a destination-options header naming UDP, then a UDP header
  const payload = Buffer.concat([Buffer.from([17, 0, 1, 4, 0, 0, 0, 0]), udp(5353, 4789, Buffer.alloc(32)).bytes]);
  const frag = Buffer.alloc(8);
  frag[0] = 60;
  frag.writeUInt16BE((100 << 3) | 0, 2); // offset 800 bytes, last fragment
  frag.writeUInt32BE(0xabcd, 4);
  const body = Buffer.concat([frag, payload]);
  const hdr = Buffer.alloc(40);
  hdr.writeUInt32BE(0x60000000, 0);
  hdr.writeUInt16BE(body.length, 4);
  hdr[6] = 44;
  hdr[7] = 64;
  mustParseIp(CLIENT6).bytes.copy(hdr, 8);
  mustParseIp(PORTLESS6).bytes.copy(hdr, 24);
  return Buffer.concat([hdr, body]);
}

async function expectPassed(frame: Buffer, why: string): Promise<void> {
  const r = await fx.run(frame);
  assert.equal(r.verdict, 'PASS', `${why}: must go to the kernel (XDP_PASS), got XDP_${r.verdict}`);
  assert.deepEqual(r.packet, frame, `${why}: must leave untouched`);
}

async function expectDropped(frame: Buffer, why: string): Promise<void> {
  const r = await fx.run(frame);
  assert.equal(r.verdict, 'DROP', `${why}: must be dropped (drop_malformed / drop_fragment), got XDP_${r.verdict}`);
}

/** Defects the fuzzer found in the program (bpf/), A-H, each fixed; the cases below guard them. */

describe('not for a VIP: passed untouched, even when the prefilter says "maybe"', () => {
  const cases: [string, Buffer][] = [
    [`an IPv4 fragment to ${TWIN4} (no VIP; VIP ${VIP4}'s prefilter bit)`, ethernet(ipv4(CLIENT4, TWIN4, udp(5353, 53, Buffer.alloc(64)), { moreFragments: true }))],
    [`a later IPv4 fragment to ${TWIN4}`, ethernet(ipv4(CLIENT4, TWIN4, { proto: 17, bytes: Buffer.alloc(64) }, { fragmentOffset: 9 }))],
    [`an IPv6 fragment to ${TWIN6} (the interface ID of VIP ${VIP6}, another subnet)`, ethernet(ipv6(CLIENT6, TWIN6, udp(5353, 53), [{ type: 44, moreFragments: true }]))],
    [`a TCP segment cut short to ${TWIN4}`, ethernet(ipv4(CLIENT4, TWIN4, tcp(40000, 22))).subarray(0, 14 + 20 + 10)],
    [`GRE to ${TWIN4} (counted as not for a VIP, not "unsupported")`, ethernet(ipv4(CLIENT4, TWIN4, { proto: 47, bytes: Buffer.alloc(24) }))],
    [`an ICMP error to ${TWIN4} quoting a reply from ${VIP4}:80`, ethernet(ipv4(ROUTER4, TWIN4, icmp4Error(ipv4(VIP4, CLIENT4, tcp(80, 40000)))))],
    [`an ICMPv6 error to ${TWIN6} quoting a reply from [${VIP6}]:80`, ethernet(ipv6(ROUTER6, TWIN6, icmp6Error(ipv6(VIP6, CLIENT6, tcp(80, 40000)))))],
    [`an ICMP error to VIP ${OTHER_VIP} quoting a reply from another VIP, ${VIP4}:80 (errors go to the packet's source)`, ethernet(ipv4(ROUTER4, OTHER_VIP, icmp4Error(ipv4(VIP4, CLIENT4, tcp(80, 40000)))))],
  ];
  for (const [name, frame] of cases) test(name, () => expectPassed(frame, name));

  test('the counters say so: pass_not_vip, nothing dropped or counted as a fragment', async () => {
    const before = fx.dp.globalStats();
    for (const [, frame] of cases) await fx.run(frame);
    const after = fx.dp.globalStats();
    const delta = (n: string) => after[n]! - before[n]!;
    assert.deepEqual(
      { pass_not_vip: delta('pass_not_vip'), drop_fragment: delta('drop_fragment'), drop_malformed: delta('drop_malformed'), fragment: delta('fragment'), pass_unsupported: delta('pass_unsupported'), xdp_tx: delta('xdp_tx') },
      { pass_not_vip: BigInt(cases.length), drop_fragment: 0n, drop_malformed: 0n, fragment: 0n, pass_unsupported: 0n, xdp_tx: 0n },
    );
  });
});

describe('malformed for a VIP: dropped, never forwarded (the IP length bounds the packet)', () => {
  const tcp4 = ipv4(CLIENT4, VIP4, tcp(40000, 80));
  const udp6 = ipv6(CLIENT6, VIP6, udp(5353, 53));
  const cases: [string, Buffer][] = [
    ['a TCP header cut by the IPv4 total length, the rest in Ethernet padding', ethernet(cutByLength(tcp4, 20, 10, false))],
    ['a UDP header cut by the IPv6 payload length, the rest in padding', ethernet(cutByLength(udp6, 40, 4, true))],
    [
      'an ICMP error whose quoted ports lie past the IPv4 total length',
      (() => {
        const err = ipv4(ROUTER4, VIP4, icmp4Error(ipv4(VIP4, CLIENT4, tcp(80, 40000))));
        return ethernet(cutByLength(err, 20, 8 + 20 + 2, false));
      })(),
    ],
    ['an IPv6 header of version 4 (EtherType IPv6) to a VIP, as IPv4 with version 6 is', ethernet(Buffer.concat([Buffer.from([0x40 | (udp6[0]! & 15)]), udp6.subarray(1)]), { type: 0x86dd })],
    ['an ICMPv6 error quoting a packet that is not IPv6', ethernet(ipv6(ROUTER6, VIP6, icmp6Error(Buffer.concat([Buffer.from([0x45]), ipv6(VIP6, CLIENT6, tcp(80, 40000)).subarray(1)]))))],
  ];
  for (const [name, frame] of cases) test(name, () => expectDropped(frame, name));
});

describe('what a VIP does not balance: passed, never steered', () => {
  test('an IPv4 packet of protocol 58 (ICMPv6) shaped as "packet too big" for a VIP flow', async () => {
    const frame = ethernet(ipv4(ROUTER4, VIP4, icmp6InIpv4(ipv4(VIP4, CLIENT4, tcp(80, 40000)))));
    await expectPassed(frame, 'ICMPv6 is not IPv4 ICMP');
  });
  test('a neighbour solicitation cut short by its IPv6 payload length is the kernel’s to discard, not the gate’s', async () => {
    const ns = ipv6('2001:db8::10', solicitedNode(VIP6), neighbourSolicitation(VIP6, { sourceMac: null }), [], { hopLimit: 255 });
    ns.writeUInt16BE(18, 4); // the 24-byte message cut to 18 by the header; the frame carries all of it
    await expectPassed(ethernet(ns, { dst: multicastMac(solicitedNode(VIP6)), src: MAC.client }), 'a truncated solicitation');
  });
});

describe('fragments: a later IPv6 fragment carries payload, not headers', () => {
  test('a later fragment whose fragment header names destination options is dropped as a fragment, not parsed on into its payload', async () => {
    const before = fx.dp.globalStats();
    await expectDropped(ethernet(laterFragmentNamingOptions()), 'a later fragment');
    const after = fx.dp.globalStats();
    assert.equal(after.drop_fragment! - before.drop_fragment!, 1n, 'counted drop_fragment (its upper protocol is not in it)');
  });
});

describe('counters', () => {
  test('an ICMP error steered to the owner of a changed slot is no new flow', async () => {
    // a client port whose flow falls on a slot that backend 3 owned before it left
    const table = fx.dp.readTable(8)!;
    const addr = (a: string) => {
      const b = Buffer.alloc(16);
      mustParseIp(a).bytes.copy(b, 0, 0, 4);
      return b;
    };
    let port = 0;
    for (let p = 20000; p < 60000 && !port; p++) {
      const slot = hashToSlot(hashFlow({ family: 4, saddr: addr(CLIENT4), daddr: addr(CHANGED), sport: p, dport: 80, proto: 6 }, SEED), MAGLEV);
      if (table.prev[slot] === 803) port = p;
    }
    assert.ok(port, 'a flow on a slot backend 3 left');
    const before = fx.dp.destTraffic(table.dest[hashToSlot(hashFlow({ family: 4, saddr: addr(CLIENT4), daddr: addr(CHANGED), sport: port, dport: 80, proto: 6 }, SEED), MAGLEV)]!);
    const err = ethernet(ipv4(ROUTER4, CHANGED, icmp4Error(ipv4(CHANGED, CLIENT4, tcp(80, port)))));
    const r = await fx.run(err);
    assert.equal(r.verdict, 'TX', 'steered to the slot’s owner (its previous owner is gone)');
    assert.deepEqual(r.packet, withMacs(err, backendMac(Fixture.backendOf(r.packet)), MAC.director));
    const after = fx.dp.destTraffic(800 + Fixture.backendOf(r.packet));
    assert.equal(after.packets - before.packets, 1n);
    assert.equal(after.newFlows - before.newFlows, 0n, 'an ICMP error starts no flow (new_flows counts SYNs and flows created in the flow table)');
  });
});

describe('flow stickiness across changes (the Reconciler and the program)', () => {
  const SIZE = 257;
  const config = (weights: Record<string, number>, draining: string[] = []) =>
    validateConfig({
      maglevTableSize: SIZE,
      capacity: { services: 4, backends: 64 },
      services: [{ name: 'web', vip: VIP4, port: 80, backends: Object.entries(weights).map(([address, weight]) => ({ address, weight, state: draining.includes(address) ? 'draining' : 'active' })) }],
    });
  async function director() {
    const dp = await DataPlane.load({ maglevSize: SIZE, maxServices: 4, maxDests: 64, maxFlows: 4096 });
    const r = new Reconciler(observe(dp), {
      writer: dp,
      observe: () => observe(dp),
      context: () => ({ maglevSize: SIZE, maxServices: 4, maxDests: 64, directorMac: MAC.director, tableCache: new Map() }),
      facts: { macOf: (a) => Buffer.from([2, 0, 0, 0, 1, a.bytes[3]!]), healthy: () => true, health: () => 'up' },
      log: component('test').child({}, { level: 'silent' }),
    });
    const send = async (port: number, flags: 'syn' | 'ack') => (await dp.program.testRun(ethernet(ipv4(CLIENT4, VIP4, tcp(port, 80, flags))), 1)).packet[5]!;
    return { r, send };
  }
  const A = '10.240.0.101';
  const B = '10.240.0.102';
  const C = '10.240.0.103';

  test('idle connections on a backend keep it when it is drained and undrained', async () => {
    const { r, send } = await director();
    r.setConfig(config({ [A]: 1, [B]: 1, [C]: 1 }));
    r.flush('start');
    const onA: number[] = [];
    for (let p = 1000; onA.length < 20; p++) if ((await send(p, 'syn')) === 101) onA.push(p);
    r.setConfig(config({ [A]: 1, [B]: 1, [C]: 1 }, [A]));
    r.flush('drain');
    r.setConfig(config({ [A]: 1, [B]: 1, [C]: 1 }));
    r.flush('undrain');
    const moved = [];
    for (const p of onA) if ((await send(p, 'ack')) !== 101) moved.push(p);
    assert.deepEqual(moved, [], `client ports whose connection on ${A} (active throughout) was sent elsewhere after its slot changed twice`);
  });

  test('idle connections keep their backend across two weight changes of others', async () => {
    const { r, send } = await director();
    r.setConfig(config({ [A]: 1, [B]: 1, [C]: 1 }));
    r.flush('start');
    const onB: number[] = [];
    for (let p = 1000; onB.length < 20; p++) if ((await send(p, 'syn')) === 102) onB.push(p);
    r.setConfig(config({ [A]: 2, [B]: 1, [C]: 1 }));
    r.flush('A weighs 2');
    r.setConfig(config({ [A]: 2, [B]: 2, [C]: 1 }));
    r.flush('B weighs 2');
    const moved = [];
    for (const p of onB) if ((await send(p, 'ack')) !== 102) moved.push(p);
    assert.deepEqual(moved, [], `client ports whose connection on ${B} (active throughout) was sent elsewhere`);
  });
});
