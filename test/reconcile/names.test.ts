// Service names long enough for Kubernetes ("namespace/name:port"): the
// whole name in the config, the daemon's records and its status; a bounded,
// unique form of it in the data plane's 64-byte name field, which status
// from the pins shows.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CONSTANTS, pinnedServiceName, SERVICE_NAME_LEN } from '../../src/dataplane/abi.ts';
import { DataPlane } from '../../src/dataplane/dataplane.ts';
import { validateConfig } from '../../src/config/load.ts';
import { XdplbError } from '../../src/errors.ts';
import { desired, type Facts } from '../../src/model/desired.ts';
import { backendKey } from '../../src/model/keys.ts';
import { MAX_SERVICE_NAME } from '../../src/model/service.ts';
import { apply } from '../../src/reconcile/apply.ts';
import { observe } from '../../src/reconcile/observe.ts';
import { appliedAfter, commit, describeOp, plan, type PlanContext } from '../../src/reconcile/plan.ts';
import { emptyApplied, recordedDown, type Applied } from '../../src/reconcile/state.ts';
import { readStatus } from '../../src/status/status.ts';
import { MAC } from '../helpers/packets.ts';

/** A Kubernetes namespace/name of `length` characters: a namespace, "/", a DNS subdomain of labels. */
function namespacedName(length: number): string {
  const namespace = 'team-payments';
  let name = '';
  for (let i = 0; name.length < length - namespace.length - 1; i++) name += `${i ? '.' : ''}checkout-v${i}`;
  return `${namespace}/${name.slice(0, length - namespace.length - 1).replace(/[.-]+$/, (m) => 'x'.repeat(m.length))}`;
}

const LONG = namespacedName(253);
/** Two services of one Kubernetes Service: 253 characters in common, then their ports' names. */
const HTTP = `${LONG}:http`;
const HTTPS = `${LONG}:https`;
const facts: Facts = { macOf: (a) => Buffer.from([2, 0, 0, 0, 1, a.bytes[3]!]), healthy: () => true, health: () => 'none' };
const ctx: PlanContext = { maglevSize: 101, maxServices: 16, maxDests: 64, directorMac: MAC.director };
/** Service names by service key. */
const names = (a: Applied) => Object.fromEntries([...a.services.values()].map((s) => [s.keyText, s.name]));
const KEYS = ['tcp/10.240.0.201:80', 'tcp/10.240.0.201:81', 'tcp/10.240.0.201:82'];
const byKey = (values: string[]) => Object.fromEntries(values.map((v, i) => [KEYS[i]!, v]));

function config(names: string[]) {
  return validateConfig({
    maglevTableSize: 101,
    capacity: { services: 16, backends: 64 },
    services: names.map((name, i) => ({ name, vip: '10.240.0.201', port: 80 + i, backends: [{ address: `10.240.0.${101 + i}` }] })),
  });
}

describe('long service names', () => {
  test('the schema takes a namespace/name of 253 characters and a port name, and no more than MAX_SERVICE_NAME', () => {
    assert.equal(LONG.length, 253);
    assert.equal(config([HTTP, HTTPS]).services[1]!.name, HTTPS);
    assert.equal(config(['a'.repeat(MAX_SERVICE_NAME)]).services[0]!.name.length, MAX_SERVICE_NAME);
    assert.throws(
      () => config(['a'.repeat(MAX_SERVICE_NAME + 1)]),
      (e: XdplbError) => e.code === 'CONFIG_INVALID' && e.details.some((d) => d.startsWith('services[0].name: a name of 1-317 ')),
    );
  });

  test('planned and applied whole; the data plane holds a bounded form that status from the pins shows, without collisions', async () => {
    const cfg = config([HTTP, HTTPS, 'web']);
    const dp = await DataPlane.load({ maglevSize: 101, maxServices: 16, maxDests: 64, maxFlows: 1024 });
    const first = plan(emptyApplied(CONSTANTS.VIP_FILTER_WORDS), desired(cfg, facts), ctx);
    assert.deepEqual(
      first.ops.filter((o) => o.kind === 'service').map((o) => o.kind === 'service' && o.name),
      [HTTP, HTTPS, 'web'],
      'the plan carries the whole names',
    );
    apply(dp, first.ops);
    const applied = appliedAfter(emptyApplied(CONSTANTS.VIP_FILTER_WORDS), first);
    assert.deepEqual(names(applied), byKey([HTTP, HTTPS, 'web']), "the daemon's record holds the whole names");

    // read back from the maps: the pinned forms, distinct, each starting as its name does
    const read = observe(dp);
    assert.deepEqual(names(read), byKey([pinnedServiceName(HTTP), pinnedServiceName(HTTPS), 'web']));
    const pinned = Object.values(names(read));
    assert.equal(new Set(pinned).size, 3, 'no two services share a pinned name');
    for (const [key, full] of [[KEYS[0]!, HTTP], [KEYS[1]!, HTTPS]] as const) {
      const p = names(read)[key]!;
      assert.equal(Buffer.byteLength(p), SERVICE_NAME_LEN - 1);
      assert.ok(p.startsWith(full.slice(0, 46)) && /~[0-9a-f]{16}$/.test(p), p);
    }

    const fromPins = readStatus(dp, 'test');
    assert.deepEqual(fromPins.services.map((s) => s.name).sort(), [...pinned].sort(), 'status from the pins: the forms they hold');
    const fromDaemon = readStatus(dp, 'test', applied);
    assert.deepEqual(fromDaemon.services.map((s) => s.name).sort(), [HTTP, HTTPS, 'web'].sort(), 'status from the daemon: the whole names');
    assert.deepEqual(
      fromDaemon.services.map((s) => `${s.name.length} ${s.port} ${s.backends.map((b) => b.address).join()}`).sort(),
      ['258 80 10.240.0.101', '259 81 10.240.0.102', '3 82 10.240.0.103'],
      'each name with its own service',
    );

    // a restarted daemon (state read back) rewrites nothing, and records the whole names again
    const again = plan(read, desired(cfg, facts), ctx);
    assert.deepEqual(again.ops.filter((o) => o.kind !== 'clearEntry').map(describeOp), [], 'adopting the pins rewrites no name');
    commit(read, again.delta);
    assert.deepEqual(names(read), byKey([HTTP, HTTPS, 'web']));

    // a backend recorded down in the pins is found under the whole name (a restarted daemon's checks start from it)
    const sick: Facts = { ...facts, health: (svc, a) => (svc.name === HTTPS && a.text === '10.240.0.102' ? 'down' : 'up') };
    const marked = plan(read, desired(cfg, sick), ctx);
    apply(dp, marked.ops);
    assert.deepEqual([...recordedDown(observe(dp), cfg.services)], [backendKey(HTTPS, '10.240.0.102')]);
    commit(read, marked.delta);

    // a rename that keeps the pinned beginning is written
    const renamed = plan(read, desired(config([`${LONG}:web`, HTTPS, 'web']), facts), ctx);
    assert.deepEqual(renamed.ops.filter((o) => o.kind === 'service').map((o) => o.kind === 'service' && o.name), [`${LONG}:web`]);
    apply(dp, renamed.ops);
    assert.equal(observe(dp).services.get('tcp/10.240.0.201:80')!.name, pinnedServiceName(`${LONG}:web`));
  });
});
