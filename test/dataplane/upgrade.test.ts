// Upgrading over the pins of the previous release (SPEC §2: a new program
// version keeps the maps; a restart adopts them without a counter reset).
// The previous release's XDP object is built from git at its commit with its
// own Makefile, loaded with pins in a bpffs directory of this test's own,
// filled with services and run with packets (BPF_PROG_TEST_RUN; no
// interface). Then this build loads over the same pins, as a restarted
// daemon of the new version does, and must find everything as it was, add
// its new maps, and gate ARP for owned VIPs.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import {
  CONSTANTS,
  encodeDest,
  encodeDestInfo,
  encodeService,
  encodeServiceEntry,
  encodeServiceInfo,
  encodeServiceKey,
  encodeSlots,
  LAYOUT,
  serviceIndexHash,
  u32Key,
  vipFilterBit,
} from '../../src/dataplane/abi.ts';
import { ensureBpffs } from '../../src/dataplane/bpffs.ts';
import { ADDED_MAPS, DataPlane, globalStatLists, MAP_NAMES } from '../../src/dataplane/dataplane.ts';
import { native, type NativeObject } from '../../src/dataplane/native.ts';
import { Metrics } from '../../src/metrics/metrics.ts';
import { mustParseIp } from '../../src/model/address.ts';
import { canonicalOrder, maglevTable, NO_BACKEND } from '../../src/model/maglev.ts';
import { emptyApplied } from '../../src/reconcile/state.ts';
import { readStatus } from '../../src/status/status.ts';
import { VERDICT, type Verdict } from '../helpers/dataplane-fixture.ts';
import { arp, backendMac, BROADCAST, ETH_P_ARP, ethernet, ipv4, ipv6, MAC, tcp, udp } from '../helpers/packets.ts';
import { buildReleaseObject, loadRelease, PREVIOUS_RELEASE } from '../helpers/previous-release.ts';

const caps = { maglevSize: 101, maxServices: 16, maxDests: 256, maxFlows: 1024 };
const VIP4 = '10.240.0.201';
const VIP6 = '2001:db8::201';
const CLIENT4 = '10.240.0.10';
const CLIENT6 = '2001:db8::10';
const MS = 1_000_000n;
const SYNS = 20; // per VIP, from as many client ports
const syn4 = (sport: number) => ethernet(ipv4(CLIENT4, VIP4, tcp(sport, 80, 'syn')));
const syn6 = (sport: number) => ethernet(ipv6(CLIENT6, VIP6, tcp(sport, 443, 'syn')));
const arpRequest = ethernet(arp('request', CLIENT4, VIP4), { dst: BROADCAST, src: MAC.client, type: ETH_P_ARP });
const notVip = ethernet(ipv4(CLIENT4, '10.240.0.77', udp(5000, 53)));

let release: { path: string; remove: () => void };
let pinDir: string;
let old: NativeObject;

async function run(program: { testRun(p: Buffer, r: number): Promise<{ retval: number; packet: Buffer }> }, frame: Buffer): Promise<{ verdict: Verdict; packet: Buffer }> {
  const r = await program.testRun(frame, 1);
  return { verdict: VERDICT[r.retval] ?? 'ABORTED', packet: r.packet };
}

/**
 * Writes a service as the previous release's daemon did, straight into its
 * maps: destinations (id = service id * 100 + n, MAC backendMac(n)) and
 * their records, the Maglev table, the prefilter bit, the service with its
 * entry (entry = id) and index slot, its record. The ABI-1 structs are
 * encoded with this build's codecs: their layout is unchanged (abi.test.ts
 * ties the codecs to the header; a changed struct would fail adoption below).
 */
function writeAsRelease(o: NativeObject, s: { id: number; name: string; vip: string; port: number; backends: { n: number; draining?: boolean }[] }): void {
  const vip = mustParseIp(s.vip);
  for (const b of s.backends) {
    const id = s.id * 100 + b.n;
    o.map('dests').update(u32Key(id), encodeDest({ ifindex: 0, mac: backendMac(b.n), srcMac: MAC.director, state: b.draining ? CONSTANTS.DEST_DRAINING : CONSTANTS.DEST_ACTIVE, service: s.id }));
    o.map('dest_info').update(u32Key(id), encodeDestInfo({ addr: mustParseIp(`10.240.0.${100 + b.n}`).bytes, family: 4, service: s.id, weight: 1, configured: b.draining ? 'draining' : 'active', health: 'up' }));
  }
  const order = canonicalOrder(s.backends.filter((b) => !b.draining).map((b) => ({ key: `backend-${b.n}`, weight: 1, n: b.n })));
  const dest = Uint32Array.from(maglevTable(order, caps.maglevSize), (i) => (i === NO_BACKEND ? 0 : s.id * 100 + order[i]!.n));
  const inner = native.createArrayMap(LAYOUT.slot.size, caps.maglevSize, encodeSlots(dest, new Uint32Array(caps.maglevSize)));
  o.map('maglev_tables').update(u32Key(s.id), inner);
  inner.close();
  const bit = vipFilterBit(vip.bytes, vip.family);
  const word = o.map('vip_filter').lookup(u32Key(bit >> 6))?.readBigUInt64LE(0) ?? 0n;
  const filter = Buffer.alloc(8);
  filter.writeBigUInt64LE(word | (1n << BigInt(bit & 63)));
  o.map('vip_filter').update(u32Key(bit >> 6), filter);
  const key = { addr: vip.bytes, family: vip.family, proto: 6, port: s.port };
  const value = { id: s.id, flags: 0, seed: 0x5eed };
  o.map('service_entries').update(u32Key(s.id), encodeServiceEntry(key, value));
  o.map('service_index').update(u32Key(serviceIndexHash(key)), u32Key(s.id));
  o.map('services').update(encodeServiceKey(key), encodeService(value));
  o.map('service_info').update(u32Key(s.id), encodeServiceInfo({ name: s.name, entry: s.id, tableSig: 0x1234 + s.id }));
}

/** Everything a restart must keep, read through a DataPlane. */
function snapshot(dp: DataPlane) {
  return {
    services: dp.listServices().sort((a, b) => a.value.id - b.value.id),
    tables: [1, 2].map((id) => dp.readTable(id)),
    dests: [...dp.usedDests()],
    serviceInfo: [1, 2].map((id) => dp.readServiceInfo(id)),
    serviceTraffic: [1, 2].map((id) => dp.serviceTraffic(id)),
    destTraffic: [101, 102, 201, 202].map((id) => dp.destTraffic(id)),
    vipFilter: dp.readVipFilter(),
  };
}

before(async () => {
  ensureBpffs();
  release = buildReleaseObject();
  pinDir = mkdtempSync('/sys/fs/bpf/xdplb-test-upgrade-');
});
after(() => {
  rmSync(pinDir, { recursive: true, force: true });
  release?.remove();
});

describe(`over the pins of the previous release (${PREVIOUS_RELEASE.commit.slice(0, 7)}, ABI ${PREVIOUS_RELEASE.abiVersion})`, () => {
  let kept: ReturnType<typeof snapshot>;
  let globalBefore: Record<string, bigint>;
  let ids: Record<string, number>;
  let dp: DataPlane;

  test('the previous release pins its maps, forwards and counts', async () => {
    old = await loadRelease(release.path, pinDir, caps);
    assert.deepEqual(readdirSync(pinDir).sort(), [...PREVIOUS_RELEASE.maps].sort(), 'the previous release pins exactly its ABI-1 maps (none of those added since)');
    writeAsRelease(old, { id: 1, name: 'web', vip: VIP4, port: 80, backends: [{ n: 1 }, { n: 2 }] });
    writeAsRelease(old, { id: 2, name: 'web6', vip: VIP6, port: 443, backends: [{ n: 1 }, { n: 2, draining: true }] });
    const program = old.program('xdplb_ingress');
    for (let i = 0; i < SYNS; i++) {
      for (const frame of [syn4(40000 + i), syn6(40000 + i)]) {
        const r = await run(program, frame);
        assert.equal(r.verdict, 'TX', 'the previous release forwards a SYN to a VIP');
      }
    }
    assert.equal((await run(program, arpRequest)).verdict, 'PASS', 'the previous release passes ARP');
    assert.equal((await run(program, notVip)).verdict, 'PASS');
    const pinned = DataPlane.openPinned(pinDir); // as status reads them
    kept = snapshot(pinned);
    globalBefore = pinned.globalStats();
    assert.equal(kept.services.length, 2);
    assert.equal(pinned.capacities.maglevSize, caps.maglevSize);
    assert.equal(globalBefore.xdp_tx, BigInt(2 * SYNS), 'its counters counted');
    assert.equal(globalBefore.pass_not_vip, 2n, 'the ARP request and the packet to another address');
    ids = Object.fromEntries(PREVIOUS_RELEASE.maps.map((n) => [n, old.map(n).info().id]));
  });

  test("this build's status reads the previous release's pins, the maps added since as empty", () => {
    const dp = DataPlane.openPinned(pinDir);
    const status = readStatus(dp, pinDir);
    assert.deepEqual(status.services.map((s) => [s.name, s.vip, s.packets]), [['web', VIP4, SYNS], ['web6', VIP6, SYNS]]);
    assert.equal(status.global.xdp_tx, 2 * SYNS);
    for (const name of globalStatLists().ext) assert.equal(status.global[name], 0, `${name}: not counted by the previous release`);
    assert.deepEqual(dp.ownerStatus(), { deadline: 0, claiming: false, remainingNs: 0n, vips: [] }, 'owns nothing');
    assert.equal(status.ingressMac, null, 'no ingress MAC: frames for a VIP are forwarded whatever their destination');
    for (const n of ADDED_MAPS) assert.ok(!existsSync(`${pinDir}/${n}`), `status pinned nothing (${n})`);
    assert.throws(() => dp.setOwnedVips([mustParseIp(VIP4)]), (e: Error & { code?: string }) => e.code === 'PIN_INCOMPATIBLE' && /older xdplb/.test(e.message), 'and writes nothing there');
  });

  test('this build loads over them: the ABI is the same and every map is adopted, not re-created', async () => {
    dp = await DataPlane.load({ ...caps, pinDir });
    for (const n of PREVIOUS_RELEASE.maps) assert.equal(dp.maps[n].info().id, ids[n], `${n}: the previous release's map`);
    assert.equal(dp.maps.xdplb_abi.lookup(u32Key(0))?.readUInt32LE(0), PREVIOUS_RELEASE.abiVersion, 'ABI version unchanged');
    assert.deepEqual(readdirSync(pinDir).sort(), [...MAP_NAMES].sort(), 'the maps added since are pinned beside them');
    const known = new Set(Object.values(ids));
    for (const n of ADDED_MAPS) assert.ok(!known.has(dp.maps[n].info().id), `${n}: a new map`);
  });

  test('services, tables, records and every counter are as the previous release left them', () => {
    assert.deepEqual(snapshot(dp), kept, 'what the previous release pinned, read back by this build');
    const now = dp.globalStats();
    for (const name of globalStatLists().stats) assert.equal(now[name], globalBefore[name], `global counter ${name}: no reset`);
    for (const name of globalStatLists().ext) assert.equal(now[name], 0n, `${name}: new, from 0`);
  });

  test('the new program forwards every flow to the backend the previous one chose, and counts on', async () => {
    const program = dp.program;
    for (const frame of [syn4(40000), syn4(40007), syn6(40003)]) {
      const was = await run(old.program('xdplb_ingress'), frame);
      const is = await run(program, frame);
      assert.equal(is.verdict, 'TX');
      assert.deepEqual(is.packet, was.packet, 'the same output frame: same backend MAC, same source MAC');
    }
    assert.equal(dp.globalStats().xdp_tx, globalBefore.xdp_tx! + 6n, 'xdp_tx went on from the adopted count: both programs count into the same map');
  });

  test('until the daemon owns VIPs, ARP passes as it did; then the gate works', async () => {
    const program = dp.program;
    const count = (name: string) => dp.globalStats()[name]!;
    const notVipBefore = count('pass_not_vip');
    assert.equal((await run(program, arpRequest)).verdict, 'PASS', 'nothing owned yet: the upgrade alone changes nothing for ARP');
    assert.equal(count('pass_not_vip'), notVipBefore + 1n);
    dp.setOwnedVips([mustParseIp(VIP4)]);
    dp.setOwnerDeadline(process.hrtime.bigint() + 60_000n * MS);
    assert.equal((await run(program, arpRequest)).verdict, 'PASS', 'owned VIP, live deadline: the kernel answers');
    assert.equal(count('pass_neigh_owned'), 1n);
    dp.setOwnerDeadline(process.hrtime.bigint() - MS);
    assert.equal((await run(program, arpRequest)).verdict, 'DROP', 'owned VIP, deadline passed: the kernel stays silent');
    assert.equal(count('drop_neigh_expired'), 1n);
    assert.equal(count('pass_not_vip'), notVipBefore + 1n, 'gated requests are not counted as not-VIP');
  });

  test('until the daemon sets the ingress MAC, a frame for a VIP is forwarded whatever its destination; then only one sent to the NIC', async () => {
    const program = dp.program;
    const flooded = ethernet(ipv4(CLIENT4, VIP4, tcp(40000, 80, 'syn')), { dst: backendMac(9) }); // for another host
    assert.equal(dp.ingressMac(), null, 'the previous release wrote none');
    assert.equal((await run(program, flooded)).verdict, 'TX', 'unset: forwarded, as the previous release did');
    dp.setIngressMac(MAC.director);
    assert.equal((await run(program, flooded)).verdict, 'PASS', 'set: a frame for another host goes to the kernel');
    assert.equal(dp.globalStats().pass_not_our_mac, 1n);
    assert.equal((await run(program, syn4(40000))).verdict, 'TX', 'one sent to the director is forwarded');
  });

  test('Prometheus sees the adopted counters going on and the new ones', async () => {
    const metrics = new Metrics({ dp, applied: () => emptyApplied(CONSTANTS.VIP_FILTER_WORDS), perBackend: () => true }, 'test');
    const text = (await metrics.exposition()).join('');
    const value = (series: string) => new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\d+)$`, 'm').exec(text)?.[1];
    const g = dp.globalStats();
    assert.equal(value('xdplb_datapath_events_total{event="xdp_tx"}'), String(g.xdp_tx));
    assert.equal(value('xdplb_xdp_actions_total{action="tx"}'), String(g.xdp_tx));
    assert.equal(value('xdplb_drops_total{reason="neigh_expired"}'), '1');
    assert.equal(value('xdplb_datapath_events_total{event="pass_neigh_owned"}'), '1');
    const passes = Object.entries(g).filter(([n]) => n.startsWith('pass_')).reduce((a, [, v]) => a + v, 0n);
    assert.equal(value('xdplb_xdp_actions_total{action="pass"}'), String(passes), 'pass_neigh_owned among the passes');
  });

  test('a restart of this build adopts the new maps too', async () => {
    const again = await DataPlane.load({ ...caps, pinDir });
    for (const n of MAP_NAMES) assert.equal(again.maps[n].info().id, dp.maps[n].info().id, `${n}: adopted`);
    assert.deepEqual(again.globalStats(), dp.globalStats());
    assert.deepEqual(again.ownedVips().map((v) => v.text), [VIP4]);
    assert.deepEqual(again.ingressMac(), MAC.director);
  });

  test('the previous release loads over the upgraded pins (a rollback keeps the maps too)', async () => {
    const back = await loadRelease(release.path, pinDir, caps);
    for (const n of PREVIOUS_RELEASE.maps) assert.equal(back.map(n).info().id, ids[n], `${n}: adopted by the previous release`);
    const r = await run(back.program('xdplb_ingress'), syn4(40000));
    assert.equal(r.verdict, 'TX');
    assert.deepEqual(r.packet.subarray(0, 6), (await run(dp.program, syn4(40000))).packet.subarray(0, 6));
    assert.ok([backendMac(1), backendMac(2)].some((m) => m.equals(r.packet.subarray(0, 6))));
  });
});
