// The ownership gate (bpf/lib/owner.h), through the real program with
// BPF_PROG_TEST_RUN: ARP requests and neighbour solicitations for an owned
// VIP reach the kernel only while the owner deadline lies ahead; every other
// ARP/NDP frame, and all data traffic, goes on as before. The deadline is on
// Node's process.hrtime clock. The owned set and the deadline are pinned.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { CONSTANTS } from '../../src/dataplane/abi.ts';
import { DataPlane, type OwnerDeadline } from '../../src/dataplane/dataplane.ts';
import { XdplbError } from '../../src/errors.ts';
import { Metrics } from '../../src/metrics/metrics.ts';
import { emptyApplied } from '../../src/reconcile/state.ts';
import { mustParseIp } from '../../src/model/address.ts';
import { Fixture, type Verdict } from '../helpers/dataplane-fixture.ts';
import {
  arp,
  BROADCAST,
  ETH_P_ARP,
  ethernet,
  icmp4Echo,
  ipv4,
  ipv6,
  MAC,
  multicastMac,
  neighbourSolicitation,
  solicitedNode,
  tcp,
  udp,
} from '../helpers/packets.ts';

const VIP4 = '10.240.0.201';
const VIP6 = '2001:db8::201';
const SERVED_NOT_OWNED = '10.240.0.202'; // a service's VIP, left out of the owned set
const SELF4 = '10.240.0.2'; // the director's own addresses
const SELF6 = '2001:db8::2';
const CLIENT4 = '10.240.0.10';
const CLIENT6 = '2001:db8::10';
const STANDBY_MAC = Buffer.from('020000000003', 'hex');
const MS = 1_000_000n;

let fx: Fixture;

before(async () => {
  fx = await Fixture.create();
  fx.setService({ id: 1, vip: VIP4, port: 80, proto: 'tcp', backends: [{ n: 1 }] });
  fx.setService({ id: 2, vip: VIP6, port: 80, proto: 'tcp', backends: [{ n: 1 }] });
  fx.setService({ id: 3, vip: SERVED_NOT_OWNED, port: 80, proto: 'tcp', backends: [{ n: 1 }] });
  fx.dp.setOwnedVips([mustParseIp(VIP4), mustParseIp(VIP6)]);
});

const arpFrame = (body: Buffer, vlans: number[] = []) => ethernet(body, { dst: BROADCAST, src: MAC.client, type: ETH_P_ARP, vlans });
/** A solicitation for target, sent to its solicited-node group (or to `to`). */
const nsFrame = (target: string, o: { to?: string; from?: string; hopLimit?: number; ext?: Parameters<typeof ipv6>[3]; vlans?: number[]; l4?: ReturnType<typeof neighbourSolicitation> } = {}) => {
  const to = o.to ?? solicitedNode(target);
  const l4 = o.l4 ?? neighbourSolicitation(target, o.from === '::' ? { sourceMac: null } : {});
  return ethernet(ipv6(o.from ?? CLIENT6, to, l4, o.ext ?? [], { hopLimit: o.hopLimit ?? 255 }), {
    dst: to.startsWith('ff') ? multicastMac(to) : MAC.director,
    src: MAC.client,
    vlans: o.vlans ?? [],
  });
};

/** Requests the gate decides: the kernel answers them for a VIP on the NIC. */
const GATED: [string, Buffer][] = [
  ['ARP request for an owned VIP (broadcast)', arpFrame(arp('request', CLIENT4, VIP4))],
  ['ARP request under one VLAN tag', arpFrame(arp('request', CLIENT4, VIP4), [100])],
  ['ARP request under two VLAN tags (802.1ad + 802.1Q)', arpFrame(arp('request', CLIENT4, VIP4), [200, 100])],
  ['ARP probe (sender 0.0.0.0: a host checking the address is free)', arpFrame(arp('request', '0.0.0.0', VIP4))],
  ['ARP request with hardware type IEEE 802 (Linux answers it on Ethernet)', arpFrame(arp('request', CLIENT4, VIP4, { htype: 6 }))],
  ['ARP request padded to 60 bytes', Buffer.concat([arpFrame(arp('request', CLIENT4, VIP4)), Buffer.alloc(18)])],
  ['ARP request unicast to the director (a cache refresh)', ethernet(arp('request', CLIENT4, VIP4), { dst: MAC.director, src: MAC.client, type: ETH_P_ARP })],
  ['NS to the solicited-node group of an owned VIP', nsFrame(VIP6)],
  ['NS unicast to the VIP (neighbour unreachability detection)', nsFrame(VIP6, { to: VIP6 })],
  ['NS from :: (duplicate address detection by another host)', nsFrame(VIP6, { from: '::' })],
  ['NS with hop-by-hop and destination options', nsFrame(VIP6, { ext: [{ type: 0 }, { type: 60, body: Buffer.alloc(14) }] })],
  ['NS unicast to the VIP with a hop-by-hop header', nsFrame(VIP6, { to: VIP6, ext: [{ type: 0 }] })],
  ['NS under a VLAN tag', nsFrame(VIP6, { vlans: [100] })],
  ['NS to another address of the director, for an owned VIP', nsFrame(VIP6, { to: SELF6 })],
];

/** Everything else ARP/NDP: passed as before, counted as before (counter named). */
const UNGATED: [string, Buffer, string][] = [
  ['ARP reply to a request of ours', arpFrame(arp('reply', VIP4, CLIENT4)), 'pass_not_vip'],
  ['ARP reply from another host for the VIP', arpFrame(arp('reply', VIP4, VIP4, { senderMac: STANDBY_MAC })), 'pass_not_vip'],
  ['gratuitous ARP request for the VIP from the standby taking it over', arpFrame(arp('request', VIP4, VIP4, { senderMac: STANDBY_MAC })), 'pass_not_vip'],
  ['gratuitous ARP from another host for its own address', arpFrame(arp('request', CLIENT4, CLIENT4)), 'pass_not_vip'],
  ['ARP request for the director\'s own address', arpFrame(arp('request', CLIENT4, SELF4)), 'pass_not_vip'],
  ['ARP request for a served VIP that is not owned', arpFrame(arp('request', CLIENT4, SERVED_NOT_OWNED)), 'pass_not_vip'],
  ['ARP request for an owned VIP, cut short (the kernel discards it)', arpFrame(arp('request', CLIENT4, VIP4)).subarray(0, 14 + 27), 'pass_not_vip'],
  ['ARP of another protocol type', arpFrame(arp('request', CLIENT4, VIP4, { ptype: 0x86dd })), 'pass_not_vip'],
  ['ARP with a hardware address length of 8', arpFrame(arp('request', CLIENT4, VIP4, { hlen: 8 })), 'pass_not_vip'],
  ['RARP request (op 3)', arpFrame(arp(3, CLIENT4, VIP4)), 'pass_not_vip'],
  ['an empty ARP frame', arpFrame(Buffer.alloc(28)), 'pass_not_vip'],
  ['NS for the director\'s own address', nsFrame(SELF6), 'pass_not_vip'],
  ['NS for a not-owned address, unicast', nsFrame('2001:db8::99', { to: '2001:db8::99' }), 'pass_not_vip'],
  ['NS with hop limit 64 (the kernel drops it itself)', nsFrame(VIP6, { hopLimit: 64 }), 'pass_not_vip'],
  ['NS with hop limit 254 unicast to the VIP', nsFrame(VIP6, { to: VIP6, hopLimit: 254 }), 'pass_unsupported'],
  ['NS with code 1', nsFrame(VIP6, { l4: neighbourSolicitation(VIP6, { code: 1 }) }), 'pass_not_vip'],
  ['NS cut inside its target address', nsFrame(VIP6).subarray(0, 14 + 40 + 20), 'pass_not_vip'],
  ['NS in an IPv6 fragment (the kernel drops fragmented ND)', nsFrame(VIP6, { ext: [{ type: 44, moreFragments: true }] }), 'pass_not_vip'],
  ['neighbour advertisement for the VIP (the new owner announcing)', nsFrame(VIP6, { to: 'ff02::1', l4: neighbourSolicitation(VIP6, { type: 136 }) }), 'pass_not_vip'],
  ['router solicitation', nsFrame(VIP6, { to: 'ff02::2', l4: neighbourSolicitation(VIP6, { type: 133 }) }), 'pass_not_vip'],
  ['ICMPv6 echo to the VIP', ethernet(ipv6(CLIENT6, VIP6, neighbourSolicitation(VIP6, { type: 128 }))), 'pass_unsupported'],
];

const deadlines: { name: string; until: () => OwnerDeadline; claims: boolean }[] = [
  { name: 'a live deadline', until: () => process.hrtime.bigint() + 60_000n * MS, claims: true },
  { name: 'an expired deadline', until: () => process.hrtime.bigint() - MS, claims: false },
  { name: "'forever'", until: () => 'forever', claims: true },
  { name: '0 (not owned)', until: () => 0, claims: false },
];

/** Runs a frame; asserts its verdict, that a passed frame is untouched, and that exactly `counter` moved, by 1. */
async function expectGate(frame: Buffer, verdict: Verdict, counter: string, what: string): Promise<void> {
  const before = fx.dp.globalStats();
  const r = await fx.run(frame);
  assert.equal(r.verdict, verdict, `${what}: expected ${verdict}, got ${r.verdict}`);
  if (verdict === 'PASS') assert.deepEqual(r.packet, frame, `${what}: a passed frame must be untouched`);
  const after = fx.dp.globalStats();
  const moved = Object.fromEntries(Object.entries(after).filter(([n, v]) => v !== before[n]).map(([n, v]) => [n, v - before[n]!]));
  assert.deepEqual(moved, { [counter]: 1n }, `${what}: only ${counter} should count it`);
}

for (const d of deadlines)
  describe(`with ${d.name}`, () => {
    before(() => fx.dp.setOwnerDeadline(d.until()));
    for (const [name, frame] of GATED)
      test(`${name}: ${d.claims ? 'PASS (the kernel answers)' : 'DROP (the kernel stays silent)'}`, () =>
        expectGate(frame, d.claims ? 'PASS' : 'DROP', d.claims ? 'pass_neigh_owned' : 'drop_neigh_expired', name));
    for (const [name, frame, counter] of UNGATED) test(`${name}: PASS, as before`, () => expectGate(frame, 'PASS', counter, name));
    test('data to an owned VIP is forwarded whatever the deadline', async () => {
      for (const frame of [ethernet(ipv4(CLIENT4, VIP4, tcp(40000, 80, 'syn'))), ethernet(ipv6(CLIENT6, VIP6, tcp(40000, 80, 'syn')))])
        await expectGate(frame, 'TX', 'xdp_tx', 'TCP SYN to an owned VIP');
      await expectGate(ethernet(ipv4(CLIENT4, VIP4, icmp4Echo())), 'PASS', 'pass_unsupported', 'ICMP echo to an owned VIP');
      await expectGate(ethernet(ipv4(CLIENT4, VIP4, udp(1, 53))), 'PASS', 'pass_not_vip', 'UDP to an owned VIP on a port it does not serve');
    });
  });

describe('truncated requests are never dropped unless whole and gated', () => {
  before(() => fx.dp.setOwnerDeadline(0));
  const frames: [string, Buffer][] = [
    ['ARP request for an owned VIP', arpFrame(arp('request', CLIENT4, VIP4), [200, 100])],
    ['NS to the solicited-node group of an owned VIP', nsFrame(VIP6, { ext: [{ type: 0 }] })],
  ];
  for (const [name, frame] of frames)
    test(`${name}, cut at every byte: PASS until it holds the target address`, async () => {
      for (let len = 14; len < frame.length; len++) {
        const r = await fx.run(frame.subarray(0, len));
        assert.equal(r.verdict, 'PASS', `${name} cut to ${len} of ${frame.length} bytes: not known to be for an owned VIP, expected PASS, got ${r.verdict}`);
      }
    });
  test('an NS unicast to the VIP cut inside its ICMPv6 header: DROP as malformed, as every truncated packet to a VIP', async () => {
    const frame = nsFrame(VIP6, { to: VIP6 });
    await expectGate(frame.subarray(0, 14 + 40 + 4), 'DROP', 'drop_malformed', 'NS cut to 4 bytes of ICMPv6');
  });
});

describe('the deadline is on the clock of process.hrtime.bigint()', () => {
  const request = arpFrame(arp('request', CLIENT4, VIP4));

  test('a deadline just set to now has passed when the program reads the clock; one 100 ms ahead has not', async () => {
    fx.dp.setOwnerDeadline(process.hrtime.bigint());
    assert.equal((await fx.run(request)).verdict, 'DROP', "bpf_ktime_get_ns() must be at or past Node's process.hrtime.bigint() read before the run");
    const set = process.hrtime.bigint();
    fx.dp.setOwnerDeadline(set + 100n * MS);
    const verdict = (await fx.run(request)).verdict;
    const took = process.hrtime.bigint() - set;
    assert.ok(took < 100n * MS, `the run took ${took / MS} ms, too long to tell the clocks apart within 100 ms`);
    assert.equal(verdict, 'PASS', "bpf_ktime_get_ns() must be within 100 ms of Node's process.hrtime.bigint()");
  });

  test('until = now + 200 ms: PASS now, DROP 300 ms later', async () => {
    fx.dp.setOwnerDeadline(process.hrtime.bigint() + 200n * MS);
    assert.equal((await fx.run(request)).verdict, 'PASS', 'before the deadline the kernel must get the request');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await fx.run(request)).verdict, 'DROP', 'after the deadline the request must be dropped');
  });
});

test("the gate's counters are Prometheus series: an XDP action, a drop reason and an event each", async () => {
  const g = fx.dp.globalStats();
  assert.ok(g.pass_neigh_owned! > 0n && g.drop_neigh_expired! > 0n, 'the tables above moved both');
  const metrics = new Metrics({ dp: fx.dp, applied: () => emptyApplied(CONSTANTS.VIP_FILTER_WORDS), perBackend: () => true }, 'test');
  const text = (await metrics.exposition()).join('');
  const value = (series: string) => new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\d+)$`, 'm').exec(text)?.[1];
  assert.equal(value('xdplb_drops_total{reason="neigh_expired"}'), String(g.drop_neigh_expired));
  assert.equal(value('xdplb_datapath_events_total{event="pass_neigh_owned"}'), String(g.pass_neigh_owned));
  assert.equal(value('xdplb_datapath_events_total{event="drop_neigh_expired"}'), String(g.drop_neigh_expired));
  const passes = Object.entries(g).filter(([n]) => n.startsWith('pass_')).reduce((a, [, v]) => a + v, 0n);
  assert.equal(value('xdplb_xdp_actions_total{action="pass"}'), String(passes), 'pass_neigh_owned is among the passes');
});

describe('DataPlane: the owned set and the deadline', () => {
  const PIN = '/sys/fs/bpf/xdplb-test-owner';
  const caps = { maglevSize: 101, maxServices: 4, maxDests: 64, maxFlows: 1024 };
  const ips = (...texts: string[]) => texts.map(mustParseIp);
  after(() => rmSync(PIN, { recursive: true, force: true }));

  test('a new data plane owns nothing, with deadline 0', async () => {
    rmSync(PIN, { recursive: true, force: true });
    const dp = await DataPlane.load({ ...caps, pinDir: PIN });
    assert.deepEqual(dp.ownerStatus(), { deadline: 0, claiming: false, remainingNs: 0n, vips: [] });
  });

  test('setOwnedVips makes the set exactly the list given: adds the missing, deletes the extra', async () => {
    const dp = await DataPlane.load({ ...caps, pinDir: PIN });
    assert.deepEqual(dp.setOwnedVips(ips('10.0.0.1', '2001:db8::1', '10.0.0.1')), { added: ['10.0.0.1', '2001:db8::1'], removed: [] }, 'a duplicate counts once');
    assert.deepEqual(dp.setOwnedVips(ips('2001:db8::1', '10.0.0.2')), { added: ['10.0.0.2'], removed: ['10.0.0.1'] });
    assert.deepEqual(dp.setOwnedVips(ips('2001:db8::1', '10.0.0.2')), { added: [], removed: [] }, 'the same list writes nothing');
    assert.deepEqual(dp.ownedVips().map((v) => v.text), ['10.0.0.2', '2001:db8::1']);
    assert.deepEqual(dp.ownedVips()[0], mustParseIp('10.0.0.2'), 'read back as parseIp spells it');
    assert.throws(
      () => dp.setOwnedVips(ips('10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5')),
      (e: XdplbError) => e.code === 'CAPACITY' && /5 owned VIPs/.test(e.message),
    );
    assert.deepEqual(dp.ownedVips().map((v) => v.text), ['10.0.0.2', '2001:db8::1'], 'a refused list changes nothing');
  });

  test('setOwnerDeadline takes a bigint, forever or 0, and reads back what it was given', async () => {
    const dp = await DataPlane.load({ ...caps, pinDir: PIN });
    const now = process.hrtime.bigint();
    dp.setOwnerDeadline(now + 5000n * MS);
    assert.equal(dp.ownerDeadline(), now + 5000n * MS);
    const st = dp.ownerStatus(now);
    assert.equal(st.claiming, true);
    assert.equal(st.remainingNs, 5000n * MS);
    assert.deepEqual(dp.ownerStatus(now + 6000n * MS).remainingNs, 0n, 'past it: closed');
    dp.setOwnerDeadline('forever');
    assert.equal(dp.ownerDeadline(), 'forever');
    assert.equal(dp.ownerStatus().remainingNs, null);
    dp.setOwnerDeadline(0n);
    assert.equal(dp.ownerDeadline(), 0, '0n reads back as 0');
    dp.setOwnerDeadline(2n ** 64n - 1n);
    assert.equal(dp.ownerDeadline(), 'forever', 'UINT64_MAX is forever');
    for (const bad of [-1n, 2n ** 64n, 5, 'later'] as unknown as OwnerDeadline[]) assert.throws(() => dp.setOwnerDeadline(bad), RangeError, `refuses ${String(bad)}`);
  });

  test('a restart adopts the set and the deadline as they are; status from the pins reads them', async () => {
    const first = await DataPlane.load({ ...caps, pinDir: PIN });
    first.setOwnedVips(ips('10.240.0.201', '2001:db8::201'));
    const until = process.hrtime.bigint() + 60_000n * MS;
    first.setOwnerDeadline(until);
    const second = await DataPlane.load({ ...caps, pinDir: PIN });
    assert.equal(second.maps.owned_vips.info().id, first.maps.owned_vips.info().id, 'the same map');
    assert.equal(second.maps.vip_owner.info().id, first.maps.vip_owner.info().id, 'the same map');
    assert.equal(second.ownerDeadline(), until);
    assert.deepEqual(second.ownedVips().map((v) => v.text), ['10.240.0.201', '2001:db8::201']);
    const pinned = DataPlane.openPinned(PIN);
    assert.deepEqual({ ...pinned.ownerStatus(), remainingNs: null }, { deadline: until, claiming: true, remainingNs: null, vips: ['10.240.0.201', '2001:db8::201'] });
    const r = await second.program.testRun(arpFrame(arp('request', CLIENT4, VIP4)), 1);
    assert.equal(r.retval, 2, "the adopted deadline holds for the new program: XDP_PASS");
  });
});
