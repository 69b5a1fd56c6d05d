// Only frames sent to this director are forwarded (bpf/lib/ingress_mac.h),
// through the real program with BPF_PROG_TEST_RUN: with the ingress NIC's MAC
// set, a packet for a service whose Ethernet destination is another host's
// (a flooded frame, or one a promiscuous NIC saw), broadcast or a group goes
// to the kernel untouched and counted, before anything is counted or
// recorded for its service; with the MAC unset every destination is
// forwarded, as before. The MAC is pinned and adopted like every map.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { CONSTANTS } from '../../src/dataplane/abi.ts';
import { DataPlane } from '../../src/dataplane/dataplane.ts';
import { Metrics } from '../../src/metrics/metrics.ts';
import { emptyApplied } from '../../src/reconcile/state.ts';
import { readStatus, renderStatus } from '../../src/status/status.ts';
import { Fixture, type Verdict } from '../helpers/dataplane-fixture.ts';
import { backendMac, BROADCAST, ethernet, icmp4Error, icmp6Error, ipv4, ipv6, MAC, multicastMac, tcp, udp, withMacs } from '../helpers/packets.ts';

const VIP4 = '10.240.0.201';
const VIP6 = '2001:db8::201';
const PORTLESS = '10.240.0.202'; // a port-less UDP service: the one that takes fragments
const CHANGED = '10.240.0.203'; // a service whose table changed: SYNs on changed slots are recorded
const NO_BACKEND = '10.240.0.204';
const CLIENT4 = '10.240.0.10';
const CLIENT6 = '2001:db8::10';
const STANDBY_MAC = Buffer.from('020000000003', 'hex'); // the other director on the segment
const BACKENDS = [{ n: 1 }, { n: 2 }, { n: 3 }];

/** The director's MAC with one byte changed: every byte of the six must be compared. */
const differingIn = (i: number) => {
  const mac = Buffer.from(MAC.director);
  mac[i]! ^= 0x80; // bit 0 of byte 0 untouched: still a unicast address
  return mac;
};

/** Every destination that is not the director's, by name. */
const NOT_OURS: [string, Buffer][] = [
  ['the standby director (a flooded frame)', STANDBY_MAC],
  ['a backend', backendMac(1)],
  ...[0, 1, 2, 3, 4, 5].map((i): [string, Buffer] => [`the director's MAC with byte ${i} changed`, differingIn(i)]),
  ['broadcast', BROADCAST],
  ['an IPv4 multicast group (01:00:5e:00:00:01)', Buffer.from('01005e000001', 'hex')],
  ['an IPv6 multicast group (33:33:00:00:00:01)', multicastMac('ff02::1')],
];

/** Packets for a service: each forwarded when sent to the director. */
const FOR_A_SERVICE: [string, (dst: Buffer) => Buffer][] = [
  ['TCP SYN to a v4 VIP', (dst) => ethernet(ipv4(CLIENT4, VIP4, tcp(40000, 80, 'syn')), { dst })],
  ['TCP ACK to a v4 VIP', (dst) => ethernet(ipv4(CLIENT4, VIP4, tcp(40001, 80, 'ack', Buffer.from('GET /'))), { dst })],
  ['UDP to a v4 VIP', (dst) => ethernet(ipv4(CLIENT4, VIP4, udp(5353, 53)), { dst })],
  ['TCP SYN to a v6 VIP', (dst) => ethernet(ipv6(CLIENT6, VIP6, tcp(40000, 80, 'syn')), { dst })],
  ['TCP SYN under two VLAN tags', (dst) => ethernet(ipv4(CLIENT4, VIP4, tcp(40002, 80, 'syn')), { dst, vlans: [200, 100] })],
  ['ICMP fragmentation needed for a v4 VIP flow', (dst) => ethernet(ipv4('10.240.0.1', VIP4, icmp4Error(ipv4(VIP4, CLIENT4, tcp(80, 40000, 'ack', Buffer.alloc(1400))))), { dst })],
  ['ICMPv6 packet too big for a v6 VIP flow', (dst) => ethernet(ipv6('2001:db8::1', VIP6, icmp6Error(ipv6(VIP6, CLIENT6, tcp(80, 40000, 'ack', Buffer.alloc(1300))))), { dst })],
  ['first fragment to a port-less service', (dst) => ethernet(ipv4(CLIENT4, PORTLESS, udp(5353, 4789, Buffer.alloc(64)), { moreFragments: true }), { dst })],
  ['later fragment to a port-less service', (dst) => ethernet(ipv4(CLIENT4, PORTLESS, { proto: 17, bytes: Buffer.alloc(64) }, { fragmentOffset: 9 }), { dst })],
];

/** The counters that move for a packet of FOR_A_SERVICE before the service is known (a fragment is counted as one). */
const seen = (name: string): Record<string, bigint> => (/^(first|later) fragment/.test(name) ? { fragment: 1n } : {});

let fx: Fixture;

before(async () => {
  fx = await Fixture.create();
  fx.setService({ id: 1, vip: VIP4, port: 80, proto: 'tcp', backends: BACKENDS });
  fx.setService({ id: 2, vip: VIP4, port: 53, proto: 'udp', backends: BACKENDS });
  fx.setService({ id: 3, vip: VIP6, port: 80, proto: 'tcp', backends: BACKENDS });
  fx.setService({ id: 4, vip: PORTLESS, port: 0, proto: 'udp', backends: BACKENDS });
  fx.setService({ id: 5, vip: CHANGED, port: 80, proto: 'tcp', backends: [{ n: 1 }, { n: 2 }] });
  fx.setService({ id: 5, vip: CHANGED, port: 80, proto: 'tcp', backends: BACKENDS }); // backend 3 added: its slots changed owner
  fx.setService({ id: 6, vip: NO_BACKEND, port: 80, proto: 'tcp', backends: [] });
});

/** Runs a frame; asserts its verdict, that a passed frame is untouched, and exactly which global counters moved, by how much. */
async function expectRun(f: Fixture, frame: Buffer, verdict: Verdict, moved: Record<string, bigint>, what: string): Promise<Buffer> {
  const before = f.dp.globalStats();
  const r = await f.run(frame);
  assert.equal(r.verdict, verdict, `${what}: expected ${verdict}, got ${r.verdict}`);
  if (verdict === 'PASS') assert.deepEqual(r.packet, frame, `${what}: a passed frame must be untouched`);
  const after = f.dp.globalStats();
  const counted = Object.fromEntries(Object.entries(after).filter(([n, v]) => v !== before[n]).map(([n, v]) => [n, v - before[n]!]));
  assert.deepEqual(counted, moved, `${what}: these counters (and no others) should have moved`);
  return r.packet;
}

/** Asserts XDP_TX with only the two MACs rewritten, to a backend. */
async function expectForwarded(f: Fixture, frame: Buffer, what: string): Promise<void> {
  const r = await f.run(frame);
  assert.equal(r.verdict, 'TX', `${what}: should be forwarded with XDP_TX, got ${r.verdict}`);
  const n = Fixture.backendOf(r.packet);
  assert.deepEqual(r.packet, withMacs(frame, backendMac(n), MAC.director), `${what}: only the MACs may change, to a backend's and the director's`);
}

describe('with the ingress MAC set', () => {
  before(() => fx.dp.setIngressMac(MAC.director));

  for (const [name, make] of FOR_A_SERVICE) {
    test(`${name}, sent to the director: forwarded`, () => expectForwarded(fx, make(MAC.director), name));
    for (const [to, dst] of NOT_OURS)
      test(`${name}, sent to ${to}: PASS untouched, counted in pass_not_our_mac`, async () => {
        await expectRun(fx, make(dst), 'PASS', { ...seen(name), pass_not_our_mac: 1n }, `${name} to ${to}`);
      });
  }

  test("a flooded frame counts nothing for its service or a backend: the director never saw it as its own", async () => {
    const frame = ethernet(ipv4(CLIENT4, VIP4, tcp(40100, 80, 'syn')), { dst: STANDBY_MAC });
    const service = fx.dp.serviceTraffic(1);
    const dests = BACKENDS.map((b) => fx.dp.destTraffic(100 + b.n));
    await expectRun(fx, frame, 'PASS', { pass_not_our_mac: 1n }, 'SYN to the standby');
    assert.deepEqual(fx.dp.serviceTraffic(1), service, 'service traffic unchanged');
    assert.deepEqual(BACKENDS.map((b) => fx.dp.destTraffic(100 + b.n)), dests, 'backend traffic unchanged');
  });

  test('SYNs on changed slots sent to another host leave no flow behind; sent to the director they do', async () => {
    const syn = (port: number, dst: Buffer) => ethernet(ipv4(CLIENT4, CHANGED, tcp(port, 80, 'syn')), { dst });
    const entries = fx.dp.flowEntries();
    for (let port = 50000; port < 50200; port++) await expectRun(fx, syn(port, STANDBY_MAC), 'PASS', { pass_not_our_mac: 1n }, `SYN from port ${port} to the standby`);
    assert.equal(fx.dp.flowEntries(), entries, 'no flow recorded for frames that were not ours');
    for (let port = 50000; port < 50200; port++) await expectForwarded(fx, syn(port, MAC.director), `SYN from port ${port} to the director`);
    assert.ok(fx.dp.flowEntries() > entries, 'the same SYNs sent to the director are recorded (some of 200 land on changed slots): the check above can fail');
  });

  test('a service without backends: a frame for another host is passed, not dropped as no_backend', async () => {
    const frame = (dst: Buffer) => ethernet(ipv4(CLIENT4, NO_BACKEND, tcp(40000, 80, 'syn')), { dst });
    await expectRun(fx, frame(STANDBY_MAC), 'PASS', { pass_not_our_mac: 1n }, 'to the standby');
    await expectRun(fx, frame(MAC.director), 'DROP', { drop_no_backend: 1n }, 'to the director');
  });

  test('traffic that is not for a service is passed and counted as before: the check is never reached', async () => {
    await expectRun(fx, ethernet(ipv4(CLIENT4, '10.240.0.2', tcp(40000, 22)), { dst: STANDBY_MAC }), 'PASS', { pass_not_vip: 1n }, 'not a VIP, to the standby');
    await expectRun(fx, ethernet(ipv4(CLIENT4, VIP4, tcp(40000, 443)), { dst: STANDBY_MAC }), 'PASS', { pass_not_vip: 1n }, 'a VIP port not served, to the standby');
    await expectRun(fx, ethernet(ipv4(CLIENT4, VIP4, tcp(40000, 80)), { dst: STANDBY_MAC }).subarray(0, 14 + 20 + 10), 'DROP', { drop_malformed: 1n }, 'truncated TCP to a VIP');
  });

  test('unset again (null): every destination is forwarded', async () => {
    fx.dp.setIngressMac(null);
    try {
      for (const [to, dst] of NOT_OURS) await expectRun(fx, ethernet(ipv4(CLIENT4, VIP4, tcp(40000, 80, 'syn')), { dst }), 'TX', { xdp_tx: 1n }, `SYN to ${to}`);
    } finally {
      fx.dp.setIngressMac(MAC.director);
    }
  });
});

describe('with the ingress MAC unset (a data plane no daemon attached: tests, older pins)', () => {
  let plain: Fixture;
  before(async () => {
    plain = await Fixture.create();
    plain.setService({ id: 1, vip: VIP4, port: 80, proto: 'tcp', backends: BACKENDS });
    plain.setService({ id: 2, vip: VIP4, port: 53, proto: 'udp', backends: BACKENDS });
    plain.setService({ id: 3, vip: VIP6, port: 80, proto: 'tcp', backends: BACKENDS });
    plain.setService({ id: 4, vip: PORTLESS, port: 0, proto: 'udp', backends: BACKENDS });
  });

  test('it reads back as unset', () => assert.equal(plain.dp.ingressMac(), null));
  for (const [name, make] of FOR_A_SERVICE)
    test(`${name}: forwarded whatever the destination, as before`, async () => {
      for (const [to, dst] of [['the director', MAC.director] as [string, Buffer], ...NOT_OURS]) {
        const frame = make(dst);
        const r = await plain.run(frame);
        assert.equal(r.verdict, 'TX', `${name} to ${to}: expected TX, got ${r.verdict}`);
        assert.deepEqual(r.packet, withMacs(frame, backendMac(Fixture.backendOf(r.packet)), MAC.director), `${name} to ${to}: only the MACs change`);
      }
      assert.equal(plain.dp.globalStats().pass_not_our_mac, 0n);
    });
});

test('pass_not_our_mac is a Prometheus series: an XDP pass and an event, not a drop', async () => {
  const g = fx.dp.globalStats();
  assert.ok(g.pass_not_our_mac! > 0n, 'the tables above counted it');
  const metrics = new Metrics({ dp: fx.dp, applied: () => emptyApplied(CONSTANTS.VIP_FILTER_WORDS), perBackend: () => true }, 'test');
  const text = (await metrics.exposition()).join('');
  const value = (series: string) => new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\d+)$`, 'm').exec(text)?.[1];
  assert.equal(value('xdplb_datapath_events_total{event="pass_not_our_mac"}'), String(g.pass_not_our_mac));
  const passes = Object.entries(g).filter(([n]) => n.startsWith('pass_')).reduce((a, [, v]) => a + v, 0n);
  assert.equal(value('xdplb_xdp_actions_total{action="pass"}'), String(passes), 'pass_not_our_mac is among the passes');
  assert.doesNotMatch(text, /^xdplb_drops_total\{reason="not_our_mac"\}/m);
});

describe('DataPlane: the ingress MAC', () => {
  const PIN = '/sys/fs/bpf/xdplb-test-ingress-mac';
  const caps = { maglevSize: 101, maxServices: 4, maxDests: 64, maxFlows: 1024 };
  after(() => rmSync(PIN, { recursive: true, force: true }));

  test('a new data plane has it unset; set, it reads back; null unsets it', async () => {
    rmSync(PIN, { recursive: true, force: true });
    const dp = await DataPlane.load({ ...caps, pinDir: PIN });
    assert.equal(dp.ingressMac(), null);
    dp.setIngressMac(Buffer.from('0200000000aa', 'hex'));
    assert.deepEqual(dp.ingressMac(), Buffer.from('0200000000aa', 'hex'));
    dp.setIngressMac(null);
    assert.equal(dp.ingressMac(), null);
  });

  test('refuses what is no NIC\'s MAC: not 6 bytes, a group address, all zero', async () => {
    const dp = await DataPlane.load({ ...caps, pinDir: PIN });
    dp.setIngressMac(MAC.director);
    for (const [what, bad] of [
      ['5 bytes', Buffer.alloc(5, 2)],
      ['7 bytes', Buffer.alloc(7, 2)],
      ['broadcast', BROADCAST],
      ['a multicast group', Buffer.from('01005e000001', 'hex')],
      ['all zero (null unsets)', Buffer.alloc(6)],
    ] as [string, Buffer][])
      assert.throws(() => dp.setIngressMac(bad), RangeError, `refuses ${what}`);
    assert.deepEqual(dp.ingressMac(), MAC.director, 'a refused MAC changes nothing');
  });

  test('a restart adopts it, and status from the pins shows it', async () => {
    const first = await DataPlane.load({ ...caps, pinDir: PIN });
    first.setIngressMac(MAC.director);
    const second = await DataPlane.load({ ...caps, pinDir: PIN });
    assert.equal(second.maps.ingress_mac.info().id, first.maps.ingress_mac.info().id, 'the same map');
    assert.deepEqual(second.ingressMac(), MAC.director);
    const pinned = DataPlane.openPinned(PIN);
    const status = readStatus(pinned, PIN);
    assert.equal(status.ingressMac, '02:00:00:00:00:02');
    assert.match(renderStatus(status, { stats: true, mode: 'totals' }), /^forwards frames sent to 02:00:00:00:00:02$/m);
    pinned.setIngressMac(null);
    assert.match(renderStatus(readStatus(pinned, PIN), { stats: true, mode: 'totals' }), /^forwards frames sent to any MAC \(unset/m);
  });
});
