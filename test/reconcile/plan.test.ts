import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CONSTANTS, serviceIndexHash } from '../../src/dataplane/abi.ts';
import { DataPlane } from '../../src/dataplane/dataplane.ts';
import { validateConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import type { IpAddress } from '../../src/model/address.ts';
import { desired, type Facts } from '../../src/model/desired.ts';
import { apply, type DataPlaneWriter } from '../../src/reconcile/apply.ts';
import { observe } from '../../src/reconcile/observe.ts';
import { appliedAfter, commit, describeOp, plan, type Op, type PlanContext, type TableWrite } from '../../src/reconcile/plan.ts';
import { emptyApplied, type Applied } from '../../src/reconcile/state.ts';
import { ethernet, ipv4, MAC, tcp } from '../helpers/packets.ts';

const macOf = (a: IpAddress) => Buffer.from([2, 0, 0, 0, 1, a.bytes[3]!]);
const facts = (unresolved: string[] = []): Facts => ({
  macOf: (a) => (unresolved.includes(a.text) ? null : macOf(a)),
  healthy: () => true,
  health: () => 'none',
});
// Tables as a data plane would hold them: what the plans wrote so far.
const written = new Map<number, { dest: Uint32Array; prev: Uint32Array }>();
const ctx: PlanContext = { maglevSize: 1009, maxServices: 64, maxDests: 1024, directorMac: MAC.director };
/** A table write as apply() would build it, against the table written so far. */
const built = (t: TableWrite) => t.build(t.inPlace ? (written.get(t.serviceId) ?? null) : null);
const realPlan = plan;
function recordingPlan(applied: Applied, want: ReturnType<typeof desired>, c: PlanContext) {
  const p = realPlan(applied, want, c);
  if (c === ctx) for (const op of p.ops) if (op.kind === 'tables') for (const t of op.tables) written.set(t.serviceId, built(t));
  return { ...p, next: appliedAfter(applied, p) };
}

function config(services: ConfigInput['services']) {
  return validateConfig({ maglevTableSize: 1009, capacity: { services: 64, backends: 1024 }, services });
}

const web = (backends: string[], extra: object = {}) => ({
  name: 'web',
  vip: '10.240.0.201',
  port: 80,
  backends: backends.map((address) => ({ address })),
  ...extra,
});
const dns = { name: 'dns', vip: '10.240.0.202', port: 53, protocol: 'udp' as const, backends: [{ address: '10.240.0.101' }] };
const ssh = { name: 'ssh', vip: '10.240.0.203', port: 22, backends: [{ address: '10.240.0.102' }] };

function kinds(ops: Op[]): string[] {
  return ops.map((o) => o.kind);
}

describe('plan', () => {
  test('a first service: filter, destinations, table, service, index — in that order', () => {
    const p = recordingPlan(emptyApplied(CONSTANTS.VIP_FILTER_WORDS), desired(config([web(['10.240.0.101', '10.240.0.102'])]), facts()), ctx);
    assert.deepEqual(kinds(p.ops), ['filter', 'dest', 'dest', 'tables', 'service', 'index']);
    assert.deepEqual(p.ops.map(describeOp).slice(1, 3), ['dest 1 service 1 state 1 mac 020000000165', 'dest 2 service 1 state 1 mac 020000000166']);
  });

  test('the same input twice plans nothing', () => {
    const want = desired(config([web(['10.240.0.101']), dns]), facts());
    const first = recordingPlan(emptyApplied(CONSTANTS.VIP_FILTER_WORDS), want, ctx);
    assert.deepEqual(recordingPlan(first.next, want, ctx).ops, []);
  });

  test('one backend changing touches that service only', () => {
    const before = recordingPlan(emptyApplied(CONSTANTS.VIP_FILTER_WORDS), desired(config([web(['10.240.0.101', '10.240.0.102']), dns, ssh]), facts()), ctx).next;
    const p = recordingPlan(before, desired(config([web(['10.240.0.101', '10.240.0.102', '10.240.0.103']), dns, ssh]), facts()), ctx);
    assert.deepEqual(kinds(p.ops), ['dest', 'serviceInfo', 'tables', 'serviceInfo']);
    const tables = p.ops.find((o) => o.kind === 'tables');
    assert.ok(tables?.kind === 'tables');
    assert.deepEqual(tables.tables.map((t) => t.serviceId), [before.services.get('tcp/10.240.0.201:80')!.id]);
  });

  test('removing a backend: table first, then its destination is freed', () => {
    const before = recordingPlan(emptyApplied(CONSTANTS.VIP_FILTER_WORDS), desired(config([web(['10.240.0.101', '10.240.0.102'])]), facts()), ctx).next;
    const p = recordingPlan(before, desired(config([web(['10.240.0.101'])]), facts()), ctx);
    assert.deepEqual(kinds(p.ops), ['serviceInfo', 'tables', 'serviceInfo', 'dest']);
    const freed = p.ops[3]!;
    assert.ok(freed.kind === 'dest' && freed.value.state === CONSTANTS.DEST_UNUSED && freed.info.service === 0);
    assert.deepEqual([p.ops[0], p.ops[2]].map((o) => describeOp(o!)), ['service 1 table being rewritten', 'service 1 table recorded'], 'the signature brackets the table write');
    const table = p.ops[1]!;
    assert.ok(table.kind === 'tables');
    const after = built(table.tables[0]!);
    assert.ok(after.dest.every((d) => d === 1), 'every slot now names the remaining backend');
    assert.ok(after.prev.some((d) => d === 2), 'slots of the removed backend remember it');
  });

  test('draining keeps the destination (state draining) and takes it out of the table', () => {
    const before = recordingPlan(emptyApplied(CONSTANTS.VIP_FILTER_WORDS), desired(config([web(['10.240.0.101', '10.240.0.102'])]), facts()), ctx).next;
    const drained = web(['10.240.0.101']);
    drained.backends.push({ address: '10.240.0.102', state: 'draining' } as never);
    const p = recordingPlan(before, desired(config([drained]), facts()), ctx);
    assert.deepEqual(kinds(p.ops), ['dest', 'serviceInfo', 'tables', 'serviceInfo']);
    assert.ok(p.ops[0]!.kind === 'dest' && p.ops[0]!.value.state === CONSTANTS.DEST_DRAINING);
  });

  test('an unresolved backend is kept out of the table until its MAC is known', () => {
    const p = recordingPlan(emptyApplied(CONSTANTS.VIP_FILTER_WORDS), desired(config([web(['10.240.0.101', '10.240.0.102'])]), facts(['10.240.0.102'])), ctx);
    const t = p.ops.find((o) => o.kind === 'tables');
    assert.ok(t?.kind === 'tables' && built(t.tables[0]!).dest.every((d) => d === 1));
    const resolved = recordingPlan(p.next, desired(config([web(['10.240.0.101', '10.240.0.102'])]), facts()), ctx);
    assert.deepEqual(kinds(resolved.ops), ['dest', 'serviceInfo', 'tables', 'serviceInfo']);
  });

  test('removing a service: index cleared before the service, entry cleared one plan later', () => {
    const before = recordingPlan(emptyApplied(CONSTANTS.VIP_FILTER_WORDS), desired(config([web(['10.240.0.101']), dns]), facts()), ctx).next;
    const p = recordingPlan(before, desired(config([dns]), facts()), ctx);
    assert.deepEqual(kinds(p.ops), ['tables', 'index', 'deleteService', 'dest', 'filter']);
    assert.deepEqual(kinds(recordingPlan(p.next, desired(config([dns]), facts()), ctx).ops), ['clearEntry']);
  });

  test('changing a scheduler writes a fresh entry and retires the old one', () => {
    const before = recordingPlan(emptyApplied(CONSTANTS.VIP_FILTER_WORDS), desired(config([web(['10.240.0.101'])]), facts()), ctx).next;
    const p = recordingPlan(before, desired(config([web(['10.240.0.101'], { scheduler: 'maglev-source' })]), facts()), ctx);
    assert.deepEqual(kinds(p.ops), ['service', 'index']);
    assert.ok(p.ops[0]!.kind === 'service' && p.ops[0]!.entry !== before.services.get('tcp/10.240.0.201:80')!.entry);
    assert.deepEqual(p.next.retiredEntries, [before.services.get('tcp/10.240.0.201:80')!.entry]);
  });
});

describe('plan with a scope (what the director does for a health verdict, a MAC or an override)', () => {
  test('planning only the changed service gives the same operations and state as comparing every service', () => {
    const cfg = config([web(['10.240.0.101', '10.240.0.102']), dns, ssh]);
    const down = new Set<string>();
    const f: Facts = { macOf, healthy: (s, a) => !down.has(`${s.name} ${a.text}`), health: (s, a) => (down.has(`${s.name} ${a.text}`) ? 'down' : 'up') };
    const before = recordingPlan(emptyApplied(CONSTANTS.VIP_FILTER_WORDS), desired(cfg, f), ctx).next;
    down.add('web 10.240.0.102');
    const want = desired(cfg, f);
    const full = plan(before, want, ctx);
    const scoped = plan(before, want, ctx, new Set(['tcp/10.240.0.201:80']));
    assert.deepEqual(scoped.ops.map(describeOp), full.ops.map(describeOp));
    assert.ok(scoped.ops.some((o) => o.kind === 'dest'), 'the backend goes down');
    assert.deepEqual(appliedAfter(before, scoped), appliedAfter(before, full));
    const unrelated = plan(before, want, ctx, new Set(['udp/10.240.0.202:53']));
    assert.deepEqual(unrelated.ops, [], 'a scope without the changed service leaves it alone (the caller names what changed)');
    const fewer = desired(config([web(['10.240.0.101', '10.240.0.102']), dns]), f);
    assert.ok(plan(before, fewer, ctx, new Set(['tcp/10.240.0.201:80'])).ops.some((o) => o.kind === 'deleteService'), 'a different set of services is compared whole, whatever the scope');
  });
});

describe('apply', () => {
  test('writes through the narrow interface in plan order (recording fake)', () => {
    const calls: string[] = [];
    const rec = new Proxy({} as DataPlaneWriter, { get: (_t, name) => () => void calls.push(String(name)) });
    apply(rec, plan(emptyApplied(CONSTANTS.VIP_FILTER_WORDS), desired(config([web(['10.240.0.101'])]), facts()), ctx).ops);
    assert.deepEqual(calls, ['writeVipFilter', 'putDests', 'putTables', 'putService', 'putServiceEntry', 'putServiceInfo', 'putServiceIndex']);
  });

  test('for real: packets follow the applied config, and a re-read data plane needs no writes', async () => {
    const dp = await DataPlane.load({ maglevSize: 1009, maxServices: 64, maxDests: 1024, maxFlows: 4096 });
    const real = ctx;
    let applied: Applied = emptyApplied(CONSTANTS.VIP_FILTER_WORDS);
    const step = (services: ConfigInput['services']) => {
      const p = plan(applied, desired(config(services), facts()), real);
      apply(dp, p.ops);
      commit(applied, p.delta);
    };
    step([web(['10.240.0.101', '10.240.0.102']), dns]);
    const frame = (port: number) => ethernet(ipv4('10.240.0.10', '10.240.0.201', tcp(port, 80)));
    const seen = new Set<number>();
    for (let p = 1000; p < 1100; p++) {
      const r = await dp.program.testRun(frame(p), 1);
      assert.equal(r.retval, 3, 'XDP_TX');
      seen.add(r.packet[5]!);
    }
    assert.deepEqual([...seen].sort(), [101, 102], 'both backends take flows');
    const webId = applied.services.get('tcp/10.240.0.201:80')!.id;
    const tableMap = () => dp.maps.maglev_tables.lookup(Buffer.from(Uint32Array.of(webId).buffer))!.readUInt32LE(0);
    const before = tableMap();
    step([web(['10.240.0.102']), dns]);
    for (let p = 1000; p < 1100; p++) assert.equal((await dp.program.testRun(frame(p), 1)).packet[5], 102, 'only backend 102 remains');
    assert.equal(tableMap(), before, 'a changed table is patched in place: the same map, no swap');
    const t = dp.readTable(webId)!;
    assert.ok(t.prev.some((d) => d !== 0), 'the patched slots remember their previous owner');

    const adopted = observe(dp);
    assert.deepEqual([...adopted.services.keys()].sort(), [...applied.services.keys()].sort());
    const again = plan(adopted, desired(config([web(['10.240.0.102']), dns]), facts()), real);
    assert.deepEqual(again.ops.filter((o) => o.kind !== 'clearEntry').map(describeOp), [], 'adopting a data plane rewrites nothing');

    // ... and builds no table: the pins record what each table was built from
    let reads = 0;
    const counting = new Proxy(dp, { get: (t, name) => (name === 'readTable' ? (id: number) => (reads++, t.readTable(id)) : Reflect.get(t, name)) }) as DataPlaneWriter;
    apply(counting, plan(observe(dp), desired(config([web(['10.240.0.102']), dns]), facts()), real).ops);
    assert.equal(reads, 0, 'no table read back on adoption');
    // a table write cut short leaves its signature at 0: that table is patched against what the data plane holds
    const webNow = observe(dp).services.get('tcp/10.240.0.201:80')!;
    dp.putServiceInfo(webNow.id, { ...dp.readServiceInfo(webNow.id), tableSig: 0 });
    const slotsBefore = dp.readTable(webNow.id)!;
    const checked = plan(observe(dp), desired(config([web(['10.240.0.102']), dns]), facts()), real);
    const rewrite = checked.ops.find((o) => o.kind === 'tables');
    assert.ok(rewrite?.kind === 'tables' && rewrite.tables.every((t) => t.inPlace), 'the unknown table is patched in place, not swapped');
    apply(counting, checked.ops);
    assert.equal(reads, 1, 'the unknown table is read back once, by apply');
    assert.equal(tableMap(), before, 'the same table map');
    assert.deepEqual(dp.readTable(webNow.id), slotsBefore, 'equal: no slot changed');
    assert.equal(observe(dp).services.get('tcp/10.240.0.201:80')!.tableSig, webNow.tableSig, 'and its signature is recorded again');
    // a config changed while the daemon was away: the recorded signature no longer matches
    const moved = plan(observe(dp), desired(config([web(['10.240.0.101']), dns]), facts()), real);
    assert.ok(moved.ops.some((o) => o.kind === 'tables'), 'the changed table is rebuilt');

    // an index slot lost (a write cut short): the read-back state says so, and the next plan restores it
    const web0 = adopted.services.get('tcp/10.240.0.201:80')!;
    dp.putServiceIndex(serviceIndexHash(web0.key), 0);
    const damaged = observe(dp);
    assert.equal(damaged.indexStale, true);
    const repair = plan(damaged, desired(config([web(['10.240.0.102']), dns]), facts()), real);
    assert.deepEqual(repair.ops.filter((o) => o.kind === 'index').map(describeOp), [`index ${serviceIndexHash(web0.key)} -> ${web0.entry}`]);
    assert.equal(observe(dp).indexStale, true, 'still damaged until applied');
    apply(dp, repair.ops);
    assert.equal(observe(dp).indexStale, false);
  });
});
