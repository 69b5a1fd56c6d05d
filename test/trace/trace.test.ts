// trace's decisions from a fake TraceMaps, for what a test run cannot reach:
// a backend behind another NIC (XDP_REDIRECT: a test run's ingress is lo),
// the service index's collision and empty slots, a service without a table;
// and the parsing of VIP:PORT.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { addVipBit, CONSTANTS, hashFlow, hashToSlot, serviceIndexHash, type DestInfo, type DestValue, type ServiceValue } from '../../src/dataplane/abi.ts';
import { mustParseIp } from '../../src/model/address.ts';
import type { ServiceKey } from '../../src/model/keys.ts';
import { parseEndpoint, renderTrace, trace, type Slot, type TraceMaps, type TraceQuery } from '../../src/trace/trace.ts';

const VIP = mustParseIp('10.240.0.201');
const CLIENT = mustParseIp('10.240.0.10');
const SIZE = 13;
const KEY: ServiceKey = { addr: VIP.bytes, family: 4, proto: 6, port: 80 };
const SERVICE: ServiceValue = { id: 7, flags: 0, seed: 42 };

interface Fake {
  index: Map<number, number>;
  entries: Map<number, { key: ServiceKey; value: ServiceValue }>;
  services: Map<string, ServiceValue>;
  table: Slot[] | null;
  dests: Map<number, { value: DestValue; info: DestInfo }>;
}

const keyText = (k: ServiceKey) => `${k.addr.toString('hex')}/${k.proto}/${k.port}`;

function dest(n: number, o: Partial<DestValue> = {}): { value: DestValue; info: DestInfo } {
  const addr = Buffer.alloc(16);
  mustParseIp(`10.240.0.${100 + n}`).bytes.copy(addr, 0, 0, 4);
  return {
    value: { ifindex: 0, mac: Buffer.from([2, 0, 0, 0, 1, n]), srcMac: Buffer.from('020000000002', 'hex'), state: CONSTANTS.DEST_ACTIVE, service: 7, ...o },
    info: { addr, family: 4, service: 7, weight: 1, configured: 'active', health: 'up' },
  };
}

/** One service on VIP:80 found through the index, a table whose every slot is dest 1. */
function fake(): Fake {
  const entry = 3;
  return {
    index: new Map([[serviceIndexHash(KEY), entry]]),
    entries: new Map([[entry, { key: KEY, value: SERVICE }]]),
    services: new Map([[keyText(KEY), SERVICE]]),
    table: Array.from({ length: SIZE }, () => ({ dest: 1, prev: 0 })),
    dests: new Map([[1, dest(1)]]),
  };
}

function mapsOf(f: Fake, o: { ingressIfindex?: number | null; names?: Record<number, string> } = {}): TraceMaps {
  const filter = new BigUint64Array(CONSTANTS.VIP_FILTER_WORDS);
  addVipBit(filter, VIP.bytes, 4);
  return {
    maglevSize: SIZE,
    nicMac: null,
    ingressIfindex: o.ingressIfindex ?? 2,
    nowNs: 1_000_000_000_000n,
    vipFilterWord: (w) => filter[w] ?? 0n,
    serviceIndex: (h) => f.index.get(h) ?? 0,
    serviceEntry: (n) => f.entries.get(n) ?? null,
    service: (k) => f.services.get(keyText(k)) ?? null,
    servicesOfVip: () => [KEY],
    serviceName: () => 'web',
    slot: (_id, i) => f.table?.[i] ?? null,
    dest: (id) => f.dests.get(id) ?? null,
    flow: () => null,
    interfaceName: (i) => o.names?.[i] ?? null,
  };
}

const QUERY: TraceQuery = { protocol: 'tcp', vip: VIP, port: 80, client: CLIENT, clientPort: 40000 };

describe('trace decides as the program does', () => {
  test('a backend behind another NIC: XDP_REDIRECT, naming the NIC; on the NIC frames arrive on: XDP_TX', () => {
    const f = fake();
    f.dests.set(1, dest(1, { ifindex: 5 }));
    const t = trace(QUERY, mapsOf(f, { ingressIfindex: 2, names: { 5: 'eth2' } }));
    assert.equal(t.packets.outcomes[0]!.verdict, 'REDIRECT');
    assert.equal(t.packets.outcomes[0]!.counter, 'xdp_redirect');
    assert.equal(t.packets.outcomes[0]!.backend!.via, 'eth2');
    assert.match(renderTrace(t), /^SYN: {13}XDP_REDIRECT \[xdp_redirect\] → 10\.240\.0\.101 \(dest 1, MAC 02:00:00:00:01:01, active, health up, weight 1, via eth2\)$/m);
    const same = trace(QUERY, mapsOf(f, { ingressIfindex: 5 }));
    assert.equal(same.packets.outcomes[0]!.verdict, 'TX');
    assert.equal(same.packets.outcomes[0]!.backend!.via, undefined);
  });

  test('the index: a collision sends the lookup to the services map; an empty index slot means no service, whatever the map holds', () => {
    const f = fake();
    f.index.set(serviceIndexHash(KEY), CONSTANTS.SERVICE_INDEX_COLLISION);
    assert.equal(trace(QUERY, mapsOf(f)).packets.service!.via, 'services map');
    f.index.set(serviceIndexHash(KEY), 9); // an entry of another key
    f.entries.set(9, { key: { ...KEY, port: 81 }, value: { id: 8, flags: 0, seed: 1 } });
    assert.equal(trace(QUERY, mapsOf(f)).packets.service!.id, 7, 'another key in the entry: the map decides');
    f.index.delete(serviceIndexHash(KEY));
    const t = trace(QUERY, mapsOf(f));
    assert.equal(t.packets.service, null);
    assert.equal(t.packets.outcomes[0]!.counter, 'pass_not_vip');
  });

  test('no table: XDP_DROP in drop_no_table; a slot without an owner: the no-backend policy', () => {
    const f = fake();
    f.table = null;
    const t = trace(QUERY, mapsOf(f));
    assert.deepEqual(t.packets.outcomes.map((o) => o.counter), ['drop_no_table', 'drop_no_table', 'drop_no_table']);
    const g = fake();
    const slot = hashToSlot(hashFlow({ saddr: CLIENT.bytes, daddr: VIP.bytes, sport: 40000, dport: 80, proto: 6, family: 4 }, SERVICE.seed), SIZE);
    g.table![slot] = { dest: 0, prev: 0 };
    assert.equal(trace(QUERY, mapsOf(g)).packets.outcomes[0]!.counter, 'drop_no_backend');
    g.entries.set(3, { key: KEY, value: { ...SERVICE, flags: CONSTANTS.SVC_F_NO_BACKEND_PASS } });
    assert.equal(trace(QUERY, mapsOf(g)).packets.outcomes[0]!.counter, 'pass_no_backend');
  });

  test('a client of the other family is refused', () => {
    assert.throws(() => trace({ ...QUERY, client: mustParseIp('2001:db8::1') }, mapsOf(fake())), /different address families/);
  });
});

describe('parseEndpoint', () => {
  test('ADDRESS:PORT and [IPv6]:PORT, or what is wrong', () => {
    const ok = (text: string) => {
      const r = parseEndpoint(text);
      assert.ok(typeof r !== 'string', `${text}: ${String(r)}`);
      return `${r.ip.text} ${r.port}`;
    };
    assert.equal(ok('10.240.0.201:80'), '10.240.0.201 80');
    assert.equal(ok('[2001:db8::201]:443'), '2001:db8::201 443');
    assert.equal(ok('[2001:DB8:0::201]:0'), '2001:db8::201 0');
    assert.equal(parseEndpoint('10.240.0.201'), '10.240.0.201 has no port: write 10.240.0.201:PORT');
    assert.equal(parseEndpoint('[2001:db8::201]'), '[2001:db8::201] has no port: write [2001:db8::201]:PORT');
    assert.equal(parseEndpoint('10.240.0.201:65536'), 'port 65536 is not 0 to 65535');
    assert.equal(parseEndpoint('web:80'), 'web is not an IPv4 or IPv6 address');
    assert.equal(parseEndpoint('[10.0.0.1]:80'), 'an IPv4 address goes without brackets: 10.0.0.1:80');
    assert.match(parseEndpoint('') as string, /is not ADDRESS:PORT/);
  });
});
