// Directors behind ECMP must agree: given the same config, every director
// builds the same table for every service, slot by slot (by backend
// address: dest ids are each director's own), whatever order the backends
// were listed in and whatever changes led there. Two real (unattached) data
// planes, two reconcilers, two histories; then every table compared, and the
// fingerprints `xdplb status --json` shows.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { DataPlane } from '../../src/dataplane/dataplane.ts';
import { component } from '../../src/log.ts';
import type { Facts } from '../../src/model/desired.ts';
import { observe } from '../../src/reconcile/observe.ts';
import { Reconciler } from '../../src/reconcile/reconciler.ts';
import { readStatus } from '../../src/status/status.ts';
import { MAC } from '../helpers/packets.ts';

const SIZE = 1009;
const quiet = component('test').child({}, { level: 'silent' });
const facts: Facts = { macOf: (a) => Buffer.from([2, 0, 0, 0, a.bytes[2]!, a.bytes[3]!]), healthy: () => true, health: () => 'up' };
const backends = (n: number, weight = (i: number) => 1 + (i % 3)) => Array.from({ length: n }, (_, i) => ({ address: `10.240.${1 + Math.floor(i / 200)}.${(i % 200) + 1}`, weight: weight(i) }));
const config = (services: ConfigInput['services']) => validateConfig({ maglevTableSize: SIZE, hashSeed: 7, capacity: { services: 64, backends: 4096 }, services });

async function director() {
  const dp = await DataPlane.load({ maglevSize: SIZE, maxServices: 64, maxDests: 4096, maxFlows: 4096 });
  const r = new Reconciler(observe(dp), { writer: dp, observe: () => observe(dp), context: () => ({ maglevSize: SIZE, maxServices: 64, maxDests: 4096, directorMac: MAC.director, tableCache: new Map() }), facts, log: quiet });
  const apply = (services: ConfigInput['services']) => {
    r.setConfig(config(services));
    r.flush('test');
  };
  return { dp, r, apply };
}

/** Each service's table: its slots' owners by backend address. */
function tables(d: Awaited<ReturnType<typeof director>>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const s of d.r.state.services.values()) {
    const t = d.dp.readTable(s.id);
    assert.ok(t, `${s.name} has a table`);
    const addressOf = (id: number) => d.r.state.dests.get(id)?.address.text ?? `(none ${id})`;
    out.set(s.name, [...t.dest].map(addressOf));
  }
  return out;
}

test('two directors with the same config build the same tables, slot by slot, whatever the backend order and history', async () => {
  const final = [
    { name: 'web', vip: '10.240.0.201', port: 80, backends: backends(40) },
    { name: 'api', vip: '10.240.0.202', port: 443, backends: backends(7, () => 1) },
    { name: 'dns', vip: '10.240.0.203', port: 53, protocol: 'udp' as const, scheduler: 'maglev-source' as const, backends: backends(13) },
  ];
  const a = await director();
  const b = await director();
  // a: a long history (backends added and removed, a service added later, weights changed and back)
  a.apply([{ ...final[0]!, backends: backends(10) }]);
  a.apply([{ ...final[0]!, backends: backends(60) }, { ...final[1]!, backends: backends(3, () => 5) }]);
  a.apply([{ ...final[0]!, backends: backends(40).slice(5) }, final[1]!]);
  a.apply([final[2]!, final[1]!, final[0]!]);
  // b: the final config at once, every list reversed
  b.apply(final.map((s) => ({ ...s, backends: [...s.backends].reverse() })).reverse());
  const ta = tables(a);
  const tb = tables(b);
  assert.deepEqual([...ta.keys()].sort(), ['api', 'dns', 'web']);
  for (const [name, slots] of ta) {
    const other = tb.get(name)!;
    assert.equal(slots.length, SIZE);
    const differ = slots.findIndex((owner, i) => owner !== other[i]);
    assert.equal(differ, -1, `${name}: slot ${differ} is ${slots[differ]} on one director and ${other[differ]} on the other`);
  }
  // the dest ids differ (different histories), the fingerprints do not
  const ids = (d: typeof a) => [...d.r.state.services.get([...d.r.state.services.keys()].find((k) => d.r.state.services.get(k)!.name === 'web')!)!.dests.values()].sort();
  assert.notDeepEqual(ids(a), ids(b), 'the histories gave different dest ids');
  const prints = (d: typeof a) => Object.fromEntries(readStatus(d.dp, '/x').services.map((s) => [s.name, s.tableFingerprint]));
  const pa = prints(a);
  assert.deepEqual(pa, prints(b));
  assert.equal(new Set(Object.values(pa)).size, 3, 'each service its own fingerprint');
  // a different input: another fingerprint
  b.apply(final.map((s, i) => (i === 0 ? { ...s, backends: s.backends.slice(1) } : s)));
  assert.notEqual(prints(b).web, pa.web);
  assert.equal(prints(b).api, pa.api);
});
