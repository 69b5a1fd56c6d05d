// The Reconciler against a real (unattached) data plane: bursts coalesce into
// one plan, a config change plans only the services it changed, a failed
// apply is re-read and retried with backoff, and every service has a result.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { validateConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { DataPlane } from '../../src/dataplane/dataplane.ts';
import { component } from '../../src/log.ts';
import type { Facts } from '../../src/model/desired.ts';
import type { DataPlaneWriter } from '../../src/reconcile/apply.ts';
import { observe } from '../../src/reconcile/observe.ts';
import { backendKey } from '../../src/model/keys.ts';
import { Reconciler } from '../../src/reconcile/reconciler.ts';
import { MAC } from '../helpers/packets.ts';

const quiet = component('test').child({}, { level: 'silent' });
const facts = (down: Set<string> = new Set()): Facts => ({
  macOf: (a) => Buffer.from([2, 0, 0, 0, 1, a.bytes[3]!]),
  healthy: (s, a) => !down.has(backendKey(s.name, a.text)),
  health: (s, a) => (down.has(backendKey(s.name, a.text)) ? 'down' : 'up'),
});

const service = (i: number, backends = ['10.240.0.101', '10.240.0.102'], weight = 1) => ({
  name: `svc-${i}`,
  vip: `10.240.1.${i}`,
  port: 80,
  backends: backends.map((address) => ({ address, weight })),
});
const config = (services: ConfigInput['services'], extra: Partial<ConfigInput> = {}) =>
  validateConfig({ maglevTableSize: 1009, capacity: { services: 64, backends: 1024 }, services, ...extra });

/** A writer over the data plane that fails the next `failures` table writes, and counts them. */
function flaky(dp: DataPlane) {
  const state = { failures: 0, tableWrites: 0, onTableWrite: () => {} };
  const writer = new Proxy(dp, {
    get(target, name) {
      const real = Reflect.get(target, name) as unknown;
      if (name !== 'putTables' && name !== 'patchTable') return typeof real === 'function' ? (real as (...a: unknown[]) => unknown).bind(target) : real;
      return (...args: unknown[]) => {
        state.tableWrites++;
        state.onTableWrite();
        if (state.failures > 0) {
          state.failures--;
          throw Object.assign(new Error('injected: bpf_map_update_elem: No space left on device'), { code: 'ENOSPC' });
        }
        return (real as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as DataPlaneWriter;
  return { writer, state };
}

/** How many backends desired() looked at, through the facts it asked. */
const asked = { macOf: 0 };

async function setup(down = new Set<string>()) {
  const dp = await DataPlane.load({ maglevSize: 1009, maxServices: 64, maxDests: 1024, maxFlows: 4096 });
  const { writer, state } = flaky(dp);
  const r = new Reconciler(observe(dp), {
    writer,
    observe: () => observe(dp),
    context: () => ({ maglevSize: 1009, maxServices: 64, maxDests: 1024, directorMac: MAC.director, tableCache: new Map() }),
    facts: { ...facts(down), macOf: (a, via) => (asked.macOf++, facts(down).macOf(a, via)) },
    log: quiet,
    retryMs: 20,
    maxRetryMs: 80,
  });
  return { dp, r, state };
}

describe('Reconciler', () => {
  test('a config change plans only the services it changed; a setting they all depend on plans them all', async () => {
    const { r } = await setup();
    r.setConfig(config([service(1), service(2), service(3)]));
    assert.equal(r.flush('start').services, 3);
    const changed = r.setConfig(config([service(1), service(2, ['10.240.0.101', '10.240.0.102'], 3), service(3)]));
    assert.deepEqual([...changed], ['svc-2']);
    asked.macOf = 0;
    const one = r.flush('reload');
    assert.equal(one.services, 1, 'one service planned');
    assert.equal(asked.macOf, 2, 'only its two backends were looked at');
    assert.ok(one.writes > 0, 'and written');
    assert.equal(r.flush('again').ops, 0, 'nothing left to do');
    const added = r.setConfig(config([service(1), service(2, ['10.240.0.101', '10.240.0.102'], 3), service(3), service(4)]));
    assert.deepEqual([...added], ['svc-4']);
    r.flush('add');
    assert.equal(r.state.services.size, 4);
    r.setConfig(config([service(1), service(2, ['10.240.0.101', '10.240.0.102'], 3), service(4)]));
    r.flush('remove');
    assert.equal(r.state.services.size, 3, 'the removed service left the data plane');
    assert.equal(r.results.has('svc-3'), false, 'and its result');
    const all = r.setConfig(config([service(1), service(2, ['10.240.0.101', '10.240.0.102'], 3), service(4)], { hashSeed: 7 }));
    assert.equal(all.size, 3, 'a new hash seed changes every service');
  });

  test('a renamed service, and two services that swap keys, stay in the data plane', async () => {
    const { r } = await setup();
    r.setConfig(config([service(1), service(2)]));
    r.flush('start');
    r.setConfig(config([{ ...service(1), name: 'svc-1-renamed' }, service(2)]));
    r.flush('rename');
    assert.deepEqual([...r.state.services.values()].map((s) => s.name).sort(), ['svc-1-renamed', 'svc-2'], 'renamed, not removed');
    r.setConfig(config([{ ...service(2), name: 'svc-1-renamed' }, { ...service(1), name: 'svc-2' }]));
    r.flush('swap');
    assert.deepEqual(
      [...r.state.services.values()].map((s) => `${s.name}@${s.keyText}`).sort(),
      ['svc-1-renamed@tcp/10.240.1.2:80', 'svc-2@tcp/10.240.1.1:80'],
      'both keys still served, under their new names',
    );
    assert.equal(r.flush('again').ops, 0, 'and nothing is left to do');
  });

  test('a burst of events makes one plan', async () => {
    const down = new Set<string>();
    const { r } = await setup(down);
    r.setConfig(config([service(1), service(2), service(3)]));
    r.flush('start');
    const flushes: Promise<unknown>[] = [];
    for (const i of [1, 2, 3]) {
      down.add(backendKey(`svc-${i}`, '10.240.0.101'));
      r.markDirty([`svc-${i}`]);
      flushes.push(r.schedule(`health svc-${i}`));
    }
    const results = await Promise.all(flushes);
    assert.equal(new Set(results).size, 1, 'the three events were answered by one flush');
    const result = results[0] as { services: number; reason: string };
    assert.equal(result.services, 3);
    assert.match(result.reason, /health svc-1, health svc-2, health svc-3/);
    for (const i of [1, 2, 3]) assert.ok(r.state.services.get(`tcp/10.240.1.${i}:80`)!.tableInput.length > 0);
  });

  test('a failed apply is reported per service, the data plane re-read, and the change retried with backoff until it lands', async () => {
    const down = new Set<string>();
    const { dp, r, state } = await setup(down);
    r.setConfig(config([service(1), service(2)]));
    r.flush('start');
    const tableBefore = dp.readTable(r.state.services.get('tcp/10.240.1.1:80')!.id)!;
    state.failures = 2;
    const failedAt = Date.now();
    const retries: number[] = [];
    state.onTableWrite = () => retries.push(Date.now() - failedAt);
    down.add(backendKey('svc-1', '10.240.0.101'));
    r.markDirty(['svc-1']);
    await assert.rejects(r.schedule('health'), /injected/);
    retries.length = 0; // the first write was the failure itself
    assert.equal(r.results.get('svc-1')?.ok, false);
    assert.match(r.results.get('svc-1')!.error!, /No space left on device/);
    assert.deepEqual(dp.readTable(r.state.services.get('tcp/10.240.1.1:80')!.id), tableBefore, 'nothing half-written: the old table stays');
    const deadline = Date.now() + 3000;
    while (r.results.get('svc-1')?.ok !== true && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
    assert.equal(r.results.get('svc-1')?.ok, true, 'the retry landed');
    assert.equal(state.failures, 0, 'after the second injected failure too');
    assert.ok(retries.length >= 2 && retries[1]! - retries[0]! >= 35, `the second retry waited about twice as long as the first (${retries.join(', ')} ms after the failure)`);
    assert.ok(dp.readTable(r.state.services.get('tcp/10.240.1.1:80')!.id)!.dest.every((d) => d === r.state.services.get('tcp/10.240.1.1:80')!.dests.get('10.240.0.102')), 'the down backend left the table');
    r.stop();
  });

  test('a service removed after a failure leaves no result behind', async () => {
    const down = new Set<string>();
    const { r, state } = await setup(down);
    r.setConfig(config([service(1), service(2)]));
    r.flush('start');
    state.failures = 1;
    down.add(backendKey('svc-2', '10.240.0.101'));
    r.markDirty(['svc-2']);
    assert.throws(() => r.flush('health'), /injected/);
    assert.equal(r.results.get('svc-2')?.ok, false);
    r.stop(); // no retry: the next flush is this one
    r.setConfig(config([service(1)]));
    r.flush('svc-2 removed');
    assert.deepEqual([...r.results.keys()], ['svc-1'], 'the failed result of the removed service is gone');
  });
});
