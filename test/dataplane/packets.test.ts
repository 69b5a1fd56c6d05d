// BPF_PROG_TEST_RUN packet tables: each case names an input frame, the verdict
// it must get and the exact bytes that must leave.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { Fixture } from '../helpers/dataplane-fixture.ts';
import {
  backendMac,
  ethernet,
  icmp4Echo,
  icmp4Error,
  icmp6Error,
  ipv4,
  ipv6,
  MAC,
  tcp,
  udp,
  withMacs,
} from '../helpers/packets.ts';

const VIP4 = '10.240.0.201';
const VIP6 = '2001:db8::201';
const CLIENT4 = '10.240.0.10';
const CLIENT6 = '2001:db8::10';
const BACKENDS = [{ n: 1 }, { n: 2 }, { n: 3 }];

let fx: Fixture;

before(async () => {
  fx = await Fixture.create();
  fx.setService({ id: 1, vip: VIP4, port: 80, proto: 'tcp', backends: BACKENDS });
  fx.setService({ id: 2, vip: VIP4, port: 53, proto: 'udp', backends: BACKENDS });
  fx.setService({ id: 3, vip: VIP6, port: 80, proto: 'tcp', backends: BACKENDS });
  fx.setService({ id: 4, vip: VIP6, port: 53, proto: 'udp', backends: BACKENDS });
  fx.setService({ id: 5, vip: '10.240.0.202', port: 0, proto: 'udp', backends: BACKENDS }); // port-less
});

/** Asserts XDP_TX with only the two MACs changed; returns the backend number. */
async function expectForwarded(frame: Buffer, what: string): Promise<number> {
  const r = await fx.run(frame);
  assert.equal(r.verdict, 'TX', `${what}: should be forwarded with XDP_TX, got ${r.verdict}`);
  const n = Fixture.backendOf(r.packet);
  assert.ok([1, 2, 3].includes(n), `${what}: dst MAC should be a backend's, got ${r.packet.subarray(0, 6).toString('hex')}`);
  assert.deepEqual(r.packet, withMacs(frame, backendMac(n), MAC.director), `${what}: only dst and src MAC may change`);
  return n;
}

async function expectVerdict(frame: Buffer, verdict: string, what: string): Promise<void> {
  const r = await fx.run(frame);
  assert.equal(r.verdict, verdict, `${what}: expected ${verdict}, got ${r.verdict}`);
  if (verdict === 'PASS') assert.deepEqual(r.packet, frame, `${what}: a passed frame must be untouched`);
}

describe('forwarding to a VIP', () => {
  const cases: [string, Buffer][] = [
    ['TCP SYN to v4 VIP', ethernet(ipv4(CLIENT4, VIP4, tcp(40000, 80, 'syn')))],
    ['TCP ACK with payload to v4 VIP', ethernet(ipv4(CLIENT4, VIP4, tcp(40000, 80, 'ack', Buffer.from('GET / HTTP/1.1\r\n\r\n'))))],
    ['UDP to v4 VIP', ethernet(ipv4(CLIENT4, VIP4, udp(5353, 53)))],
    ['TCP to v6 VIP', ethernet(ipv6(CLIENT6, VIP6, tcp(40000, 80, 'syn')))],
    ['UDP to v6 VIP', ethernet(ipv6(CLIENT6, VIP6, udp(5353, 53)))],
    ['one VLAN tag (kept)', ethernet(ipv4(CLIENT4, VIP4, tcp(40001, 80)), { vlans: [100] })],
    ['two VLAN tags 802.1ad+802.1Q (kept)', ethernet(ipv4(CLIENT4, VIP4, tcp(40002, 80)), { vlans: [200, 100] })],
    ['IPv4 with options', ethernet(ipv4(CLIENT4, VIP4, tcp(40003, 80), { options: Buffer.from([0x94, 0x04, 0, 0, 1, 1, 1, 0]) }))],
    ['IPv6 hop-by-hop + destination options', ethernet(ipv6(CLIENT6, VIP6, tcp(40004, 80), [{ type: 0 }, { type: 60, body: Buffer.alloc(14) }]))],
    ['IPv6 routing header', ethernet(ipv6(CLIENT6, VIP6, udp(40005, 53), [{ type: 43 }]))],
    ['UDP to a port-less service, any port', ethernet(ipv4(CLIENT4, '10.240.0.202', udp(1234, 4789)))],
    ['frame with Ethernet padding', Buffer.concat([ethernet(ipv4(CLIENT4, VIP4, tcp(40006, 80))), Buffer.alloc(6)])],
  ];
  for (const [name, frame] of cases) test(name, async () => void (await expectForwarded(frame, name)));

  test('a flow always goes to the same backend', async () => {
    const frame = ethernet(ipv4(CLIENT4, VIP4, tcp(41000, 80, 'ack')));
    const first = await expectForwarded(frame, 'first packet');
    for (let i = 0; i < 5; i++) assert.equal(await expectForwarded(frame, 'repeat'), first, 'same 5-tuple must reach the same backend');
  });
});

describe('passed to the kernel untouched', () => {
  const cases: [string, Buffer][] = [
    ['not a VIP', ethernet(ipv4(CLIENT4, '10.240.0.2', tcp(40000, 22)))],
    ['VIP on a port it does not serve', ethernet(ipv4(CLIENT4, VIP4, tcp(40000, 443)))],
    ['VIP with the other protocol (UDP to a TCP-only port)', ethernet(ipv4(CLIENT4, VIP4, udp(40000, 80)))],
    ['ICMP echo to a VIP (not an error)', ethernet(ipv4(CLIENT4, VIP4, icmp4Echo()))],
    ['ARP', Buffer.concat([Buffer.from('ffffffffffff020000000001', 'hex'), Buffer.from('0806', 'hex'), Buffer.alloc(28)])],
    ['v6 not a VIP', ethernet(ipv6(CLIENT6, '2001:db8::2', tcp(40000, 80)))],
  ];
  for (const [name, frame] of cases) test(name, () => expectVerdict(frame, 'PASS', name));
});

describe('truncated and malformed frames are never forwarded', () => {
  const frames: [string, Buffer][] = [
    ['v4 TCP with two VLAN tags', ethernet(ipv4(CLIENT4, VIP4, tcp(40000, 80)), { vlans: [200, 100] })],
    ['v4 TCP with options', ethernet(ipv4(CLIENT4, VIP4, tcp(40000, 80), { options: Buffer.alloc(8, 1) }))],
    ['v6 UDP with an extension header', ethernet(ipv6(CLIENT6, VIP6, udp(40000, 53), [{ type: 60 }]))],
    ['v4 ICMP error quoting a VIP flow', ethernet(ipv4('10.240.0.1', VIP4, icmp4Error(ipv4(VIP4, CLIENT4, tcp(80, 40000)))))],
  ];
  for (const [name, frame] of frames) {
    // The kernel refuses test frames shorter than an Ethernet header (EINVAL),
    // as a NIC never hands those to XDP: cuts start at 14 bytes.
    test(`${name}: cut at every byte`, async () => {
      for (let len = 14; len < frame.length; len++) {
        const r = await fx.run(frame.subarray(0, len));
        assert.ok(r.verdict === 'PASS' || r.verdict === 'DROP', `${name} cut to ${len} of ${frame.length} bytes: got ${r.verdict}`);
      }
    });
  }
  test('IPv4 header length below 20 bytes is dropped', async () => {
    const frame = ethernet(ipv4(CLIENT4, VIP4, tcp(40000, 80)));
    frame[14] = 0x44;
    await expectVerdict(frame, 'DROP', 'ihl 4');
  });
  test('IPv4 total length beyond the frame is dropped', async () => {
    const frame = ethernet(ipv4(CLIENT4, VIP4, tcp(40000, 80)));
    frame.writeUInt16BE(1500, 16);
    await expectVerdict(frame, 'DROP', 'tot_len 1500');
  });
});

describe('ICMP errors follow the flow they quote', () => {
  test('v4 fragmentation needed reaches the backend of the quoted flow', async () => {
    for (let port = 42000; port < 42020; port++) {
      const owner = await expectForwarded(ethernet(ipv4(CLIENT4, VIP4, tcp(port, 80))), 'flow');
      const reply = ipv4(VIP4, CLIENT4, tcp(80, port, 'ack', Buffer.alloc(1400)));
      const err = ethernet(ipv4('10.240.0.1', VIP4, icmp4Error(reply)));
      assert.equal(await expectForwarded(err, 'ICMP frag needed'), owner, `ICMP error for client port ${port} must go to backend ${owner}`);
    }
  });
  test('v6 packet too big reaches the backend of the quoted flow', async () => {
    for (let port = 43000; port < 43020; port++) {
      const owner = await expectForwarded(ethernet(ipv6(CLIENT6, VIP6, tcp(port, 80))), 'flow');
      const reply = ipv6(VIP6, CLIENT6, tcp(80, port, 'ack', Buffer.alloc(1300)));
      const err = ethernet(ipv6('2001:db8::1', VIP6, icmp6Error(reply)));
      assert.equal(await expectForwarded(err, 'ICMPv6 PTB'), owner, `ICMPv6 error for client port ${port} must go to backend ${owner}`);
    }
  });
  test('an ICMP error quoting a flow of no service is passed', async () => {
    const reply = ipv4(VIP4, CLIENT4, tcp(443, 40000));
    await expectVerdict(ethernet(ipv4('10.240.0.1', VIP4, icmp4Error(reply))), 'PASS', 'quoted port 443');
  });
});

describe('fragments', () => {
  test('fragments to a VIP with no port-less service are dropped and counted', async () => {
    const before = fx.dp.globalStats();
    const first = ethernet(ipv4(CLIENT4, VIP4, udp(5353, 53, Buffer.alloc(64)), { moreFragments: true }));
    const later = ethernet(ipv4(CLIENT4, VIP4, { proto: 17, bytes: Buffer.alloc(64) }, { fragmentOffset: 9 }));
    await expectVerdict(first, 'DROP', 'first fragment');
    await expectVerdict(later, 'DROP', 'later fragment');
    const after = fx.dp.globalStats();
    assert.equal(after.drop_fragment! - before.drop_fragment!, 2n, 'drop_fragment counts both');
    assert.equal(after.fragment! - before.fragment!, 2n, 'fragment counts both');
  });
  test('fragments to a port-less service all reach one backend (source hash)', async () => {
    const vip = '10.240.0.202';
    const first = ethernet(ipv4(CLIENT4, vip, udp(5353, 4789, Buffer.alloc(64)), { moreFragments: true }));
    const later = ethernet(ipv4(CLIENT4, vip, { proto: 17, bytes: Buffer.alloc(64) }, { fragmentOffset: 9 }));
    const a = await expectForwarded(first, 'first fragment');
    const b = await expectForwarded(later, 'later fragment');
    assert.equal(a, b, 'both fragments of a datagram must reach the same backend');
  });
  test('IPv6 fragment header to a VIP without port-less service is dropped', async () => {
    const frame = ethernet(ipv6(CLIENT6, VIP6, udp(5353, 53), [{ type: 44, moreFragments: true }]));
    await expectVerdict(frame, 'DROP', 'v6 fragment');
  });
  test('an IPv6 atomic fragment (offset 0, no more fragments) is forwarded', async () => {
    await expectForwarded(ethernet(ipv6(CLIENT6, VIP6, udp(5353, 53), [{ type: 44 }])), 'atomic fragment');
  });
});

