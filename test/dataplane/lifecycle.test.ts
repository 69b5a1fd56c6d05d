// Flow stickiness through backend changes, distribution over 100k flows,
// identical tables for identical input, and exact counters — all through the
// real program with BPF_PROG_TEST_RUN.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CONSTANTS, serviceIndexHash } from '../../src/dataplane/abi.ts';
import { IPPROTO } from '../../src/model/protocol.ts';
import { mustParseIp } from '../../src/model/address.ts';
import { Fixture, type FixtureBackend } from '../helpers/dataplane-fixture.ts';
import { ethernet, ipv4, ipv6, tcp, udp } from '../helpers/packets.ts';

const VIP = '10.240.0.210';

function clientOf(i: number): string {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}

function segment(i: number, flags: 'syn' | 'ack'): Buffer {
  return ethernet(ipv4(clientOf(i), VIP, tcp(10000 + (i % 50000), 80, flags)));
}

async function ownerOf(fx: Fixture, frame: Buffer, what: string): Promise<number> {
  const r = await fx.run(frame);
  assert.equal(r.verdict, 'TX', `${what}: expected XDP_TX, got ${r.verdict}`);
  return Fixture.backendOf(r.packet);
}

describe('backend life cycle keeps established flows', () => {
  const FLOWS = 600;
  const backends = (two: FixtureBackend['state']): FixtureBackend[] => [{ n: 1 }, { n: 2, state: two }, { n: 3 }, { n: 4 }];

  test('draining keeps its flows and gets no new ones; gone moves them', async () => {
    const fx = await Fixture.create(1009);
    fx.setService({ id: 1, vip: VIP, port: 80, proto: 'tcp', backends: backends('active') });
    const owner = new Map<number, number>();
    for (let i = 0; i < FLOWS; i++) owner.set(i, await ownerOf(fx, segment(i, 'ack'), `flow ${i}`));
    const onTwo = [...owner].filter(([, b]) => b === 2).map(([i]) => i);
    assert.ok(onTwo.length > FLOWS / 8, `backend 2 should hold about a quarter of ${FLOWS} flows, has ${onTwo.length}`);

    fx.setService({ id: 1, vip: VIP, port: 80, proto: 'tcp', backends: backends('draining') });
    for (const [i, b] of owner)
      assert.equal(await ownerOf(fx, segment(i, 'ack'), `flow ${i}`), b, `established flow ${i} must stay on backend ${b} while 2 drains`);
    // a new connection reusing the 5-tuple of a flow pinned to the draining backend
    for (const i of onTwo.slice(0, 20)) {
      const reused = await ownerOf(fx, segment(i, 'syn'), `SYN reusing flow ${i}`);
      assert.notEqual(reused, 2, `a SYN reusing the ports of flow ${i} must start a new connection, not follow the old one to the draining backend`);
      assert.equal(await ownerOf(fx, segment(i, 'ack'), `flow ${i}`), reused, 'and the new connection stays where its SYN went');
      owner.set(i, reused);
    }
    for (let i = FLOWS; i < FLOWS * 2; i++) {
      const b = await ownerOf(fx, segment(i, 'syn'), `new flow ${i}`);
      assert.notEqual(b, 2, `new flow ${i} (SYN) must not go to the draining backend`);
      owner.set(i, b);
      assert.equal(await ownerOf(fx, segment(i, 'ack'), `flow ${i}`), b, `new flow ${i} must stay where its SYN went`);
    }
    const stats = fx.dp.globalStats();
    assert.ok(stats.flow_hit! > 0n && stats.flow_miss! > 0n, 'changed slots went through the flow table');

    fx.setService({ id: 1, vip: VIP, port: 80, proto: 'tcp', backends: backends('gone') });
    for (const [i, b] of owner) {
      const now = await ownerOf(fx, segment(i, 'ack'), `flow ${i}`);
      if (b === 2) assert.notEqual(now, 2, `flow ${i} of the removed backend must move`);
      else assert.equal(now, b, `flow ${i} on backend ${b} must not move when backend 2 goes`);
    }
  });

  test('a flow started between two changes survives the second one', async () => {
    const fx = await Fixture.create(1009);
    const set = (list: number[]) =>
      fx.setService({ id: 1, vip: VIP, port: 80, proto: 'tcp', backends: list.map((n) => ({ n })) });
    set([1, 2, 3]);
    set([1, 2, 3, 4]); // every slot that moved to 4 is now a changed slot
    const owners: [number, number][] = [];
    for (let i = 0; i < 300; i++) owners.push([i, await ownerOf(fx, segment(i, 'syn'), `SYN ${i}`)]);
    set([1, 2, 3, 4, 5]);
    for (const [i, b] of owners) assert.equal(await ownerOf(fx, segment(i, 'ack'), `flow ${i}`), b, `flow ${i} must stay on ${b}`);
  });

  test('no backend: dropped and counted, or passed by policy', async () => {
    const fx = await Fixture.create(101);
    fx.setService({ id: 1, vip: VIP, port: 80, proto: 'tcp', backends: [] });
    fx.setService({ id: 2, vip: VIP, port: 81, proto: 'tcp', backends: [], noBackendPass: true });
    const frame80 = ethernet(ipv4('10.240.0.10', VIP, tcp(1234, 80)));
    const frame81 = ethernet(ipv4('10.240.0.10', VIP, tcp(1234, 81)));
    assert.equal((await fx.run(frame80)).verdict, 'DROP');
    assert.equal((await fx.run(frame81)).verdict, 'PASS');
    const s = fx.dp.globalStats();
    assert.equal(s.drop_no_backend, 1n);
    assert.equal(s.pass_no_backend, 1n);
  });
});

describe('distribution and determinism', () => {
  test('100k distinct flows spread within ±2% of the weights', async () => {
    const fx = await Fixture.create();
    const weights = { 1: 1, 2: 1, 3: 2 } as Record<number, number>;
    fx.setService({ id: 1, vip: VIP, port: 80, proto: 'tcp', backends: [1, 2, 3].map((n) => ({ n, weight: weights[n]! })) });
    const count: Record<number, number> = { 1: 0, 2: 0, 3: 0 };
    const N = 100_000;
    for (let i = 0; i < N; i++) count[await ownerOf(fx, segment(i, 'syn'), `flow ${i}`)]!++;
    for (const n of [1, 2, 3]) {
      const want = weights[n]! / 4;
      const got = count[n]! / N;
      assert.ok(Math.abs(got - want) <= 0.02 * want, `backend ${n}: ${(got * 100).toFixed(2)}% of flows, weight share ${(want * 100).toFixed(2)}%`);
    }
  });

  test('client-IP affinity: every port of a client reaches one backend', async () => {
    const fx = await Fixture.create(1009);
    fx.setService({ id: 1, vip: VIP, port: 80, proto: 'tcp', sourceHash: true, backends: [1, 2, 3].map((n) => ({ n })) });
    for (let c = 0; c < 30; c++) {
      const first = await ownerOf(fx, ethernet(ipv4(clientOf(c), VIP, tcp(1000, 80))), 'first');
      for (let p = 1001; p < 1010; p++)
        assert.equal(await ownerOf(fx, ethernet(ipv4(clientOf(c), VIP, tcp(p, 80))), 'port'), first, `client ${clientOf(c)} port ${p}`);
    }
  });

  test('two directors fed the same input build byte-identical tables and choose alike', async () => {
    const spec = { id: 1, vip: VIP, port: 80, proto: 'tcp' as const, backends: [3, 1, 2].map((n) => ({ n, weight: n })) };
    const a = await Fixture.create();
    const b = await Fixture.create();
    a.setService(spec);
    b.setService({ ...spec, backends: [...spec.backends].reverse() });
    const ta = a.dp.readTable(1)!;
    const tb = b.dp.readTable(1)!;
    assert.ok(Buffer.from(ta.dest.buffer).equals(Buffer.from(tb.dest.buffer)), 'tables must be byte-identical');
    for (let i = 0; i < 200; i++) {
      const f = segment(i, 'syn');
      assert.equal(await ownerOf(a, f, 'a'), await ownerOf(b, f, 'b'), `flow ${i} must reach the same backend on both directors`);
    }
  });
});

describe('counters move by exactly what was sent', () => {
  test('per destination, per service and global', async () => {
    const fx = await Fixture.create(1009);
    fx.setService({ id: 1, vip: VIP, port: 80, proto: 'tcp', backends: [1, 2, 3].map((n) => ({ n })) });
    fx.setService({ id: 2, vip: '2001:db8::210', port: 53, proto: 'udp', backends: [1, 2].map((n) => ({ n })) });
    const expect = new Map<number, { packets: bigint; bytes: bigint; newFlows: bigint }>();
    const add = (dest: number, bytes: number, syn: boolean) => {
      const e = expect.get(dest) ?? { packets: 0n, bytes: 0n, newFlows: 0n };
      e.packets++;
      e.bytes += BigInt(bytes);
      e.newFlows += syn ? 1n : 0n;
      expect.set(dest, e);
    };
    let tx = 0n;
    for (let i = 0; i < 120; i++) {
      const syn = i % 3 === 0;
      const ip = ipv4(clientOf(i), VIP, tcp(20000 + i, 80, syn ? 'syn' : 'ack', Buffer.alloc(i)));
      const b = await ownerOf(fx, ethernet(ip), 'tcp');
      add(100 + b, ip.length, syn);
      tx++;
    }
    for (let i = 0; i < 40; i++) {
      const ip = ipv6(`2001:db8::${(i + 1).toString(16)}`, '2001:db8::210', udp(30000 + i, 53, Buffer.alloc(10 + i)));
      const b = await ownerOf(fx, ethernet(ip), 'udp');
      add(200 + b, ip.length, false);
      tx++;
    }
    for (let i = 0; i < 7; i++) await fx.run(ethernet(ipv4('10.240.0.10', '10.240.0.99', tcp(1, 22))));
    for (const [dest, want] of expect) assert.deepEqual(fx.dp.destTraffic(dest), want, `dest ${dest}`);
    const sum = (prefix: number) =>
      [...expect].filter(([d]) => Math.floor(d / 100) === prefix).reduce(
        (a, [, v]) => ({ packets: a.packets + v.packets, bytes: a.bytes + v.bytes, newFlows: a.newFlows + v.newFlows }),
        { packets: 0n, bytes: 0n, newFlows: 0n },
      );
    assert.deepEqual(fx.dp.serviceTraffic(1), sum(1), 'service 1');
    assert.deepEqual(fx.dp.serviceTraffic(2), sum(2), 'service 2');
    const g = fx.dp.globalStats();
    assert.equal(g.xdp_tx, tx, 'xdp_tx');
    assert.equal(g.pass_not_vip, 7n, 'pass_not_vip');
    for (const [name, v] of Object.entries(g))
      if (!['xdp_tx', 'pass_not_vip'].includes(name)) assert.equal(v, 0n, `${name} must not move`);
  });
});

describe('service index', () => {
  test('services whose keys collide in the index are both served (through the hash map, counted)', async () => {
    const fx = await Fixture.create(101);
    const key = (vip: string, port: number) => {
      const ip = mustParseIp(vip);
      return { addr: ip.bytes, family: ip.family, proto: IPPROTO.tcp, port };
    };
    const target = serviceIndexHash(key(VIP, 80));
    let other: { vip: string; port: number } | undefined;
    for (let i = 0; i < 1 << 20 && !other; i++) {
      const vip = `10.241.${(i >> 16) & 255}.${(i >> 8) & 255}`;
      const port = 1 + (i & 255);
      if (serviceIndexHash(key(vip, port)) === target) other = { vip, port };
    }
    assert.ok(other, 'found a colliding key');
    fx.setService({ id: 1, vip: VIP, port: 80, proto: 'tcp', backends: [{ n: 1 }] });
    fx.setService({ id: 2, vip: other.vip, port: other.port, proto: 'tcp', backends: [{ n: 2 }] });
    assert.equal(fx.dp.readServiceIndex(target), CONSTANTS.SERVICE_INDEX_COLLISION, 'the index marks the collision');
    assert.equal(await ownerOf(fx, ethernet(ipv4('10.240.0.10', VIP, tcp(1, 80))), 'first'), 1);
    assert.equal(await ownerOf(fx, ethernet(ipv4('10.240.0.10', other.vip, tcp(1, other.port))), 'second'), 2);
    assert.equal(fx.dp.globalStats().service_slow_lookup, 2n, 'both went through the hash map');
  });

  test('a packet to a served VIP normally never touches the hash map', async () => {
    const fx = await Fixture.create(101);
    fx.setService({ id: 1, vip: VIP, port: 80, proto: 'tcp', backends: [{ n: 1 }] });
    for (let i = 0; i < 10; i++) await ownerOf(fx, segment(i, 'ack'), 'flow');
    assert.equal(fx.dp.globalStats().service_slow_lookup, 0n);
  });
});
