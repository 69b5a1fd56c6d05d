import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CONSTANTS, serviceIndexHash, type DestInfo, type DestValue, type ServiceInfo, type ServiceValue } from '../../src/dataplane/abi.ts';
import { DataPlane } from '../../src/dataplane/dataplane.ts';
import { validateConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { formatIp, mustParseIp, type IpAddress } from '../../src/model/address.ts';
import { desired, serviceSeed, type Facts } from '../../src/model/desired.ts';
import { backendKey, serviceKeyText, type ServiceKey } from '../../src/model/keys.ts';
import { protocolName } from '../../src/model/protocol.ts';
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
const ctx: PlanContext = { maglevSize: 1009, maxServices: 64, maxDests: 1024, directorMac: MAC.director };

/**
 * Plans for one test, against the tables a data plane would hold after the
 * plans made so far (each test makes its own: nothing is shared).
 */
function planner() {
  const written = new Map<number, { dest: Uint32Array; prev: Uint32Array }>();
  /** A table write as apply() would build it, against the table written so far. */
  const built = (t: TableWrite) => t.build(t.inPlace ? (written.get(t.serviceId) ?? null) : null);
  const step = (applied: Applied, want: ReturnType<typeof desired>) => {
    const p = plan(applied, want, ctx);
    for (const op of p.ops) if (op.kind === 'tables') for (const t of op.tables) written.set(t.serviceId, built(t));
    return { ...p, next: appliedAfter(applied, p) };
  };
  return { step, built };
}

/** One call of the writer: the method, and what matters of its arguments. */
type Call = { method: keyof DataPlaneWriter; args: Record<string, unknown> };

const keyText = (k: ServiceKey) => serviceKeyText(protocolName(k.proto), { text: formatIp(k.addr, k.family), family: k.family, bytes: k.addr }, k.port);
const owners = (dest: Uint32Array) => [...new Set(dest)].filter((d) => d !== 0).sort((a, b) => a - b);
const popcount = (words: BigUint64Array) => words.reduce((n, w) => n + [...w.toString(2)].filter((c) => c === '1').length, 0);

/** A writer that records every call with its arguments' essentials, and keeps the tables written (to read them back). */
function recordingWriter(): { writer: DataPlaneWriter; calls: Call[] } {
  const calls: Call[] = [];
  const tables = new Map<number, { dest: Uint32Array; prev: Uint32Array }>();
  const record = (method: keyof DataPlaneWriter, args: Record<string, unknown>) => void calls.push({ method, args });
  const dest = (d: { id: number; value: DestValue; info: DestInfo }) => ({ id: d.id, service: d.value.service, state: d.value.state, mac: d.value.mac.toString('hex'), weight: d.info.weight, health: d.info.health });
  const writer: DataPlaneWriter = {
    writeVipFilter: (next, current) => record('writeVipFilter', { bits: popcount(next), before: popcount(current) }),
    syncVipSet: (services) => record('syncVipSet', { vips: [...services].length }),
    putDests: (dests) => record('putDests', { dests: dests.map(dest) }),
    putTables: (iterable) => {
      const ts = [...iterable];
      record('putTables', { tables: ts.map((t) => ({ serviceId: t.serviceId, owners: owners(t.dest) })) });
      for (const t of ts) tables.set(t.serviceId, { dest: Uint32Array.from(t.dest), prev: Uint32Array.from(t.prev) });
    },
    readTable: (serviceId) => (record('readTable', { serviceId }), tables.get(serviceId) ?? null),
    patchTable: (serviceId, dest, prev) => {
      record('patchTable', { serviceId, owners: owners(dest), remembered: owners(prev) });
      if (!tables.has(serviceId)) return false;
      tables.set(serviceId, { dest: Uint32Array.from(dest), prev: Uint32Array.from(prev) });
      return true;
    },
    putService: (key: ServiceKey, value: ServiceValue) => record('putService', { key: keyText(key), ...value }),
    putServiceEntry: (entry, key, value) => record('putServiceEntry', { entry, key: keyText(key), id: value.id }),
    putServiceInfo: (id, info: ServiceInfo) => record('putServiceInfo', { id, name: info.name, entry: info.entry, tableRecorded: info.tableSig !== 0 }),
    putServiceIndex: (hash, entry) => record('putServiceIndex', { hash, entry }),
    deleteService: (key) => (record('deleteService', { key: keyText(key) }), true),
    clearServiceEntry: (entry) => record('clearServiceEntry', { entry }),
  };
  return { writer, calls };
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
    const { step } = planner();
    const p = step(emptyApplied(CONSTANTS.VIP_FILTER_WORDS), desired(config([web(['10.240.0.101', '10.240.0.102'])]), facts()));
    assert.deepEqual(kinds(p.ops), ['filter', 'dest', 'dest', 'tables', 'service', 'index']);
    assert.deepEqual(p.ops.map(describeOp).slice(1, 3), ['dest 1 service 1 state 1 mac 020000000165', 'dest 2 service 1 state 1 mac 020000000166']);
  });

  test('the same input twice plans nothing', () => {
    const { step } = planner();
    const want = desired(config([web(['10.240.0.101']), dns]), facts());
    const first = step(emptyApplied(CONSTANTS.VIP_FILTER_WORDS), want);
    assert.deepEqual(step(first.next, want).ops, []);
  });

  test('one backend changing touches that service only', () => {
    const { step } = planner();
    const before = step(emptyApplied(CONSTANTS.VIP_FILTER_WORDS), desired(config([web(['10.240.0.101', '10.240.0.102']), dns, ssh]), facts())).next;
    const p = step(before, desired(config([web(['10.240.0.101', '10.240.0.102', '10.240.0.103']), dns, ssh]), facts()));
    assert.deepEqual(kinds(p.ops), ['dest', 'serviceInfo', 'tables', 'serviceInfo']);
    const tables = p.ops.find((o) => o.kind === 'tables');
    assert.ok(tables?.kind === 'tables');
    assert.deepEqual(tables.tables.map((t) => t.serviceId), [before.services.get('tcp/10.240.0.201:80')!.id]);
  });

  test('destinations of no service (an apply cut short before its services: a daemon killed mid-reconcile) are freed', () => {
    const { step } = planner();
    const want = desired(config([web(['10.240.0.101', '10.240.0.102']), dns]), facts());
    const full = step(emptyApplied(CONSTANTS.VIP_FILTER_WORDS), want).next;
    const orphan = full.services.get('udp/10.240.0.202:53')!.dests.get('10.240.0.101')!;
    // as observe() reads the pins back: dns's destination written, dns itself not
    const cut: Applied = { ...full, services: new Map([...full.services].filter(([k]) => k !== 'udp/10.240.0.202:53')) };
    const p = step(cut, want);
    const freed = p.ops.filter((o) => o.kind === 'dest' && o.id === orphan);
    assert.equal(freed.length, 1, `the left-over destination ${orphan} is written once: ${p.ops.map(describeOp).join('; ')}`);
    assert.ok(freed[0]!.kind === 'dest' && freed[0]!.value.state === CONSTANTS.DEST_UNUSED && freed[0]!.info.service === 0, 'freed');
    const ids = new Set([...p.next.services.values()].map((s) => s.id));
    assert.deepEqual([...p.next.dests.values()].filter((d) => !ids.has(d.info.service)), [], 'every destination left belongs to a service');
    assert.equal(p.next.dests.size, 3, 'the three of the config');
    assert.deepEqual(step(p.next, want).ops, [], 'and nothing more to do');
  });

  test('removing a backend: table first, then its destination is freed', () => {
    const { step, built } = planner();
    const before = step(emptyApplied(CONSTANTS.VIP_FILTER_WORDS), desired(config([web(['10.240.0.101', '10.240.0.102'])]), facts())).next;
    const p = step(before, desired(config([web(['10.240.0.101'])]), facts()));
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
    const { step } = planner();
    const before = step(emptyApplied(CONSTANTS.VIP_FILTER_WORDS), desired(config([web(['10.240.0.101', '10.240.0.102'])]), facts())).next;
    const drained = web(['10.240.0.101']);
    drained.backends.push({ address: '10.240.0.102', state: 'draining' } as never);
    const p = step(before, desired(config([drained]), facts()));
    assert.deepEqual(kinds(p.ops), ['dest', 'serviceInfo', 'tables', 'serviceInfo']);
    assert.ok(p.ops[0]!.kind === 'dest' && p.ops[0]!.value.state === CONSTANTS.DEST_DRAINING);
  });

  test('an unresolved backend is kept out of the table until its MAC is known', () => {
    const { step, built } = planner();
    const p = step(emptyApplied(CONSTANTS.VIP_FILTER_WORDS), desired(config([web(['10.240.0.101', '10.240.0.102'])]), facts(['10.240.0.102'])));
    const t = p.ops.find((o) => o.kind === 'tables');
    assert.ok(t?.kind === 'tables' && built(t.tables[0]!).dest.every((d) => d === 1));
    const resolved = step(p.next, desired(config([web(['10.240.0.101', '10.240.0.102'])]), facts()));
    assert.deepEqual(kinds(resolved.ops), ['dest', 'serviceInfo', 'tables', 'serviceInfo']);
  });

  test('removing a service: index cleared before the service, entry cleared one plan later', () => {
    const { step } = planner();
    const before = step(emptyApplied(CONSTANTS.VIP_FILTER_WORDS), desired(config([web(['10.240.0.101']), dns]), facts())).next;
    const p = step(before, desired(config([dns]), facts()));
    assert.deepEqual(kinds(p.ops), ['tables', 'index', 'deleteService', 'dest', 'filter']);
    assert.deepEqual(kinds(step(p.next, desired(config([dns]), facts())).ops), ['clearEntry']);
  });

  test('changing a scheduler writes a fresh entry and retires the old one', () => {
    const { step } = planner();
    const before = step(emptyApplied(CONSTANTS.VIP_FILTER_WORDS), desired(config([web(['10.240.0.101'])]), facts())).next;
    const p = step(before, desired(config([web(['10.240.0.101'], { scheduler: 'maglev-source' })]), facts()));
    assert.deepEqual(kinds(p.ops), ['service', 'index']);
    assert.ok(p.ops[0]!.kind === 'service' && p.ops[0]!.entry !== before.services.get('tcp/10.240.0.201:80')!.entry);
    assert.deepEqual(p.next.retiredEntries, [before.services.get('tcp/10.240.0.201:80')!.entry]);
  });
});

describe('plan with a scope (what the director does for a health verdict, a MAC or an override)', () => {
  test('planning only the changed service gives the same operations and state as comparing every service', () => {
    const { step } = planner();
    const cfg = config([web(['10.240.0.101', '10.240.0.102']), dns, ssh]);
    const down = new Set<string>();
    const f: Facts = { macOf, healthy: (s, a) => !down.has(backendKey(s.name, a.text)), health: (s, a) => (down.has(backendKey(s.name, a.text)) ? 'down' : 'up') };
    const before = step(emptyApplied(CONSTANTS.VIP_FILTER_WORDS), desired(cfg, f)).next;
    down.add(backendKey('web', '10.240.0.102'));
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
  test('writes through the narrow interface in plan order, with the arguments of the plan (recording fake)', () => {
    const { writer, calls } = recordingWriter();
    apply(writer, plan(emptyApplied(CONSTANTS.VIP_FILTER_WORDS), desired(config([web(['10.240.0.101'])]), facts()), ctx).ops);
    const vip = mustParseIp('10.240.0.201');
    const key = { addr: vip.bytes, family: vip.family, proto: 6, port: 80 };
    const seed = serviceSeed(0, 'tcp/10.240.0.201:80');
    assert.deepEqual(calls, [
      { method: 'writeVipFilter', args: { bits: 1, before: 0 } },
      { method: 'putDests', args: { dests: [{ id: 1, service: 1, state: CONSTANTS.DEST_ACTIVE, mac: '020000000165', weight: 1, health: 'none' }] } },
      { method: 'putTables', args: { tables: [{ serviceId: 1, owners: [1] }] } },
      { method: 'putService', args: { key: 'tcp/10.240.0.201:80', id: 1, flags: 0, seed } },
      { method: 'putServiceEntry', args: { entry: 1, key: 'tcp/10.240.0.201:80', id: 1 } },
      { method: 'putServiceInfo', args: { id: 1, name: 'web', entry: 1, tableRecorded: true } },
      { method: 'putServiceIndex', args: { hash: serviceIndexHash(key), entry: 1 } },
    ]);
  });

  test('a removed backend: its table read back and patched in place, the record bracketing the write, then its destination freed (recording fake)', () => {
    const { writer, calls } = recordingWriter();
    const first = plan(emptyApplied(CONSTANTS.VIP_FILTER_WORDS), desired(config([web(['10.240.0.101', '10.240.0.102'])]), facts()), ctx);
    apply(writer, first.ops);
    calls.length = 0;
    apply(writer, plan(appliedAfter(emptyApplied(CONSTANTS.VIP_FILTER_WORDS), first), desired(config([web(['10.240.0.101'])]), facts()), ctx).ops);
    assert.deepEqual(calls, [
      { method: 'putServiceInfo', args: { id: 1, name: 'web', entry: 1, tableRecorded: false } },
      { method: 'readTable', args: { serviceId: 1 } },
      { method: 'patchTable', args: { serviceId: 1, owners: [1], remembered: [2] } },
      { method: 'putServiceInfo', args: { id: 1, name: 'web', entry: 1, tableRecorded: true } },
      { method: 'putDests', args: { dests: [{ id: 2, service: 0, state: CONSTANTS.DEST_UNUSED, mac: '020000000166', weight: 1, health: 'none' }] } },
    ]);
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
