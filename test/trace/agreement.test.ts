// `xdplb trace` against the program: for many random flows of services in
// every state (active, draining, a changed slot with its previous owner, a
// gone backend, no backend at all, port-less, maglev-source, flow-table
// entries present and absent), trace's answer for each kind of packet (SYN,
// non-SYN segment, UDP datagram, ICMP error, fragment) must be what
// BPF_PROG_TEST_RUN does with that packet: the verdict, the backend's MAC
// written into the frame, the counter that moves, and what the packet leaves
// in the flow table. Each packet runs from the same state (the flow table's
// entry for it is put back after each run).
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { before, describe, test } from 'node:test';
import { decodeFlow, encodeFlow, encodeFlowKey, type FlowKey } from '../../src/dataplane/abi.ts';
import { formatMac, mustParseIp, type IpAddress } from '../../src/model/address.ts';
import { IPPROTO, type Protocol } from '../../src/model/protocol.ts';
import { dataPlaneMaps } from '../../src/trace/read.ts';
import { trace, type Outcome, type PacketKind, type Trace } from '../../src/trace/trace.ts';
import { Fixture, type FixtureService } from '../helpers/dataplane-fixture.ts';
import { backendMac, ethernet, icmp4Error, icmp6Error, ipv4, ipv6, MAC, tcp, udp } from '../helpers/packets.ts';

const VIP4 = '10.240.0.201';
const VIP4B = '10.240.0.202'; // port-less services beside a port's
const VIP6 = '2001:db8::201';
const ROUTER4 = '10.240.0.1';
const ROUTER6 = '2001:db8::1';
const FOUR = [{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }];

/** Each service as it was set up first, then as it is now (the second state makes changed slots). */
const CASES: { what: string; first: FixtureService; now?: FixtureService['backends'] }[] = [
  { what: 'all active, no slot changed', first: { id: 1, vip: VIP4, port: 80, proto: 'tcp', backends: FOUR } },
  { what: 'a backend draining (changed slots, previous owner draining)', first: { id: 2, vip: VIP4, port: 81, proto: 'tcp', backends: FOUR }, now: [...FOUR.slice(0, 3), { n: 4, state: 'draining' }] },
  { what: 'a backend gone (changed slots, previous owner gone)', first: { id: 3, vip: VIP4, port: 82, proto: 'tcp', backends: FOUR }, now: [...FOUR.slice(0, 3), { n: 4, state: 'gone' }] },
  { what: 'a backend added (changed slots, previous owners active)', first: { id: 4, vip: VIP4, port: 83, proto: 'tcp', backends: FOUR.slice(0, 3) }, now: FOUR },
  { what: 'UDP, a backend draining', first: { id: 5, vip: VIP4, port: 53, proto: 'udp', backends: FOUR }, now: [...FOUR.slice(0, 3), { n: 4, state: 'draining' }] },
  { what: 'every backend gone, noBackend drop', first: { id: 6, vip: VIP4, port: 84, proto: 'tcp', backends: FOUR.slice(0, 2) }, now: [{ n: 1, state: 'gone' }, { n: 2, state: 'gone' }] },
  { what: 'every backend gone, noBackend pass', first: { id: 7, vip: VIP4, port: 85, proto: 'tcp', noBackendPass: true, backends: FOUR.slice(0, 2) }, now: [{ n: 1, state: 'gone' }, { n: 2, state: 'gone' }] },
  { what: 'port-less TCP beside a port (a backend gone)', first: { id: 8, vip: VIP4B, port: 0, proto: 'tcp', backends: FOUR }, now: [{ n: 1, state: 'gone' }, ...FOUR.slice(1)] },
  { what: 'the port beside the port-less service', first: { id: 9, vip: VIP4B, port: 443, proto: 'tcp', backends: FOUR.slice(0, 2) } },
  { what: 'port-less UDP, a backend added', first: { id: 10, vip: VIP4B, port: 0, proto: 'udp', backends: FOUR.slice(0, 3) }, now: FOUR },
  { what: 'maglev-source over IPv6, a backend draining', first: { id: 11, vip: VIP6, port: 80, proto: 'tcp', sourceHash: true, seed: 0x1234567, backends: FOUR }, now: [{ n: 1, state: 'draining' }, ...FOUR.slice(1)] },
  { what: 'IPv6 UDP, a backend gone', first: { id: 12, vip: VIP6, port: 53, proto: 'udp', seed: 0xfedcba98, backends: FOUR }, now: [...FOUR.slice(0, 3), { n: 4, state: 'gone' }] },
  { what: 'IPv6 port-less TCP, a backend added', first: { id: 13, vip: VIP6, port: 0, proto: 'tcp', backends: FOUR.slice(0, 3) }, now: FOUR },
];

let fx: Fixture;

before(async () => {
  fx = await Fixture.create();
  for (const c of CASES) {
    fx.setService(c.first);
    if (c.now) fx.setService({ ...c.first, backends: c.now });
  }
});

function randomClient(family: 4 | 6): IpAddress {
  if (family === 4) return mustParseIp(`10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`);
  return mustParseIp(`2001:db8:${randomInt(0x10000).toString(16)}::${randomInt(1, 0x10000).toString(16)}`);
}

/** The frame of one kind of packet of the flow, to `to`. */
function frameOf(kind: PacketKind, proto: Protocol, client: IpAddress, sport: number, vip: IpAddress, dport: number, to: Buffer): Buffer {
  const v4 = vip.family === 4;
  const ip = (src: string, dst: string, l4: ReturnType<typeof tcp>, o: { fragment?: boolean } = {}) =>
    v4 ? ipv4(src, dst, l4, o.fragment ? { moreFragments: true } : {}) : ipv6(src, dst, l4, o.fragment ? [{ type: 44, moreFragments: true }] : []);
  const l4 = (a: number, b: number) => (proto === 'tcp' ? tcp(a, b, kind === 'SYN' ? 'syn' : 'ack') : udp(a, b));
  switch (kind) {
    case 'ICMP error': {
      const quoted = ip(vip.text, client.text, l4(dport, sport)); // the reply the router could not send on
      return ethernet(v4 ? ipv4(ROUTER4, vip.text, icmp4Error(quoted)) : ipv6(ROUTER6, vip.text, icmp6Error(quoted)), { dst: to });
    }
    case 'fragment':
      return ethernet(ip(client.text, vip.text, l4(sport, dport), { fragment: true }), { dst: to });
    default:
      return ethernet(ip(client.text, vip.text, l4(sport, dport)), { dst: to });
  }
}

/** What the flow table holds for a key now (null: nothing), and a way to put it back. */
function flowEntry(key: FlowKey): { dest: number; service: number } | null {
  const v = fx.dp.maps.flows.lookup(encodeFlowKey(key));
  if (!v) return null;
  const f = decodeFlow(v);
  return { dest: f.dest, service: f.service };
}

function restore(key: FlowKey, before: Buffer | null): void {
  if (before) fx.dp.maps.flows.update(encodeFlowKey(key), before);
  else fx.dp.maps.flows.delete(encodeFlowKey(key));
}

const coverage = new Map<string, number>();
function saw(what: string): void {
  coverage.set(what, (coverage.get(what) ?? 0) + 1);
}

/** Runs one packet and checks it against trace's outcome for it. */
async function check(o: Outcome, frame: Buffer, key: FlowKey, serviceId: number, what: string): Promise<void> {
  const kept = fx.dp.maps.flows.lookup(encodeFlowKey(key));
  const keptEntry = kept && decodeFlow(kept);
  const counters = fx.dp.globalStats();
  const r = await fx.run(frame);
  const after = fx.dp.globalStats();
  try {
    assert.equal(r.verdict, o.verdict, `${what}: trace says ${o.verdict} (${o.because}), the program returned ${r.verdict}`);
    if (o.verdict === 'TX') {
      assert.equal(r.packet.subarray(0, 6).toString('hex'), o.backend!.mac.replaceAll(':', ''), `${what}: trace says ${o.backend!.address} (${o.because}), the program wrote another MAC`);
      assert.deepEqual(r.packet.subarray(6, 12), MAC.director, `${what}: source MAC`);
    } else assert.deepEqual(r.packet, frame, `${what}: a ${o.verdict} frame is untouched`);
    assert.equal(after[o.counter]! - counters[o.counter]!, 1n, `${what}: trace says the packet counts in ${o.counter}`);
    const now = flowEntry(key);
    if (o.records !== null) assert.deepEqual(now, { dest: o.records, service: serviceId }, `${what}: trace says it records dest ${o.records} in the flow table (${o.because})`);
    else assert.equal(now?.dest ?? null, keptEntry?.dest ?? null, `${what}: trace says it leaves the flow table as it was (${o.because})`);
    saw(`${o.packet} ${o.verdict}`);
    if (o.records !== null) saw(`${o.packet} records`);
  } finally {
    restore(key, kept);
  }
}

/** A flow-table entry to plant before a trace: none, or one naming a destination of some kind. */
function plant(key: FlowKey, serviceId: number, t: Trace): string {
  const slot = t.packets.slot;
  const choice = randomInt(6);
  const put = (dest: number) => fx.dp.maps.flows.update(encodeFlowKey(key), encodeFlow({ dest, service: serviceId, lastSeenNs: process.hrtime.bigint() }));
  if (choice === 0 && slot?.previousOwner) return put(slot.previousOwner.dest), 'entry → previous owner';
  if (choice === 1 && slot?.owner) return put(slot.owner.dest), 'entry → owner';
  if (choice === 2) return put(serviceId * 100 + randomInt(1, 5)), 'entry → a backend of the service';
  if (choice === 3) return put(((serviceId % CASES.length) + 1) * 100 + 1), 'entry → another service’s backend';
  if (choice === 4) return put(serviceId * 100 + 9), 'entry → an unused destination';
  return 'no entry';
}

describe('trace agrees with the program (BPF_PROG_TEST_RUN)', () => {
  for (const withMac of [false, true]) {
    for (const c of CASES) {
      test(`${c.what}${withMac ? ', the NIC\u2019s MAC set' : ''}: 150 random flows, every kind of packet`, async () => {
        fx.dp.setIngressMac(withMac ? MAC.director : null);
        const s = c.first;
        const vip = mustParseIp(s.vip);
        for (let i = 0; i < 150; i++) {
          const client = randomClient(vip.family);
          const sport = randomInt(1024, 65536);
          const dport = s.port === 0 ? randomInt(1, 65536) : s.port;
          const proto = IPPROTO[s.proto];
          const key: FlowKey = { saddr: client.bytes, daddr: vip.bytes, sport, dport, proto, family: vip.family };
          const to = withMac && randomInt(4) === 0 ? Buffer.from('02000000beef', 'hex') : MAC.director;
          const query = { protocol: s.proto, vip, port: dport, client, clientPort: sport, frameTo: to };
          const maps = () => dataPlaneMaps(fx.dp, { ingressIfindex: 1, nicMac: fx.dp.ingressMac() });
          const planted = plant(key, s.id, trace(query, maps()));
          const fragKey = { ...key, sport: 0, dport: 0 };
          const t = trace(query, maps());
          saw(planted);
          saw(t.packets.slot?.changed ? 'changed slot' : 'unchanged slot');
          const what = (kind: string) => `${c.what}: ${kind} ${client.text}:${sport} → ${s.vip}:${dport} (${planted}${to === MAC.director ? '' : ', to another MAC'})`;
          for (const o of t.packets.outcomes) await check(o, frameOf(o.packet, s.proto, client, sport, vip, dport, to), key, t.packets.service?.id ?? 0, what(o.packet));
          for (const o of t.fragments.outcomes) await check(o, frameOf('fragment', s.proto, client, sport, vip, dport, to), fragKey, t.fragments.service?.id ?? 0, what('fragment'));
          restore(key, null);
        }
      });
    }
  }

  test('every case was met: each verdict, changed and unchanged slots, entries of every kind', () => {
    fx.dp.setIngressMac(null);
    const wanted = [
      'SYN TX', 'SYN DROP', 'SYN PASS', 'SYN records', 'non-SYN segment TX', 'non-SYN segment DROP', 'non-SYN segment PASS', 'non-SYN segment records',
      'datagram TX', 'datagram records', 'ICMP error TX', 'ICMP error PASS', 'fragment TX', 'fragment DROP', 'fragment PASS', 'fragment records',
      'changed slot', 'unchanged slot', 'no entry', 'entry → previous owner', 'entry → owner', 'entry → a backend of the service', 'entry → another service’s backend', 'entry → an unused destination',
    ];
    const missing = wanted.filter((w) => !coverage.has(w));
    if (process.env.XDPLB_TRACE_COVERAGE) console.log(coverage);
    assert.deepEqual(missing, [], `cases never met: ${missing.join(', ')} (met: ${JSON.stringify(Object.fromEntries(coverage))})`);
  });

  test('a flow the program answers differently from trace would be caught: a stale trace after the table changed', async () => {
    // the check must be able to fail: trace, then move the slot to another owner, then run
    fx.dp.setIngressMac(null);
    const vip = mustParseIp(VIP4);
    const client = mustParseIp('10.9.9.9');
    const query = { protocol: 'tcp' as const, vip, port: 80, client, clientPort: 40000 };
    const t = trace(query, dataPlaneMaps(fx.dp, { ingressIfindex: 1, nicMac: null }));
    const before = t.packets.outcomes[0]!;
    const table = fx.dp.readTable(1)!;
    const other = [101, 102, 103, 104].find((d) => d !== before.backend!.dest)!;
    table.dest[t.packets.slot!.index] = other;
    fx.dp.patchTable(1, table.dest, table.prev);
    try {
      const key: FlowKey = { saddr: client.bytes, daddr: vip.bytes, sport: 40000, dport: 80, proto: 6, family: 4 };
      await assert.rejects(check(before, frameOf('SYN', 'tcp', client, 40000, vip, 80, MAC.director), key, 1, 'stale'), /wrote another MAC/);
      assert.equal(trace(query, dataPlaneMaps(fx.dp, { ingressIfindex: 1, nicMac: null })).packets.outcomes[0]!.backend!.mac, formatMac(backendMac(other - 100)));
    } finally {
      table.dest[t.packets.slot!.index] = before.backend!.dest;
      fx.dp.patchTable(1, table.dest, table.prev);
    }
  });
});

