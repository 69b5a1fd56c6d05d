// The director's RBAC rules (src/k8s/rbac.ts) are enough and each is needed:
// the Kubernetes source (informers, status, Events) and the leader election
// run against the real API server with a ServiceAccount token bound to exactly DIRECTOR_RULES, then to
// every set with one rule left out, and the behaviour the rule names fails.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { startKube, type KubeCluster } from '../helpers/kube.ts';
import { eventually } from '../helpers/eventually.ts';
import { DIRECTOR_RULES, type Rule } from '../../src/k8s/rbac.ts';
import { LeaseElector } from '../../src/k8s/lease.ts';
import { component } from '../../src/log.ts';

let kube: KubeCluster;
let core: k8s.CoreV1Api;
const runDir = mkdtempSync(join(tmpdir(), 'xdplb-rbac-'));
process.env.XDPLB_RUN_DIR = runDir; // before the source is loaded: its run file goes here
const { KubernetesSource } = await import('../../src/k8s/source.ts');
const { DEFAULT_SETTINGS } = await import('../../src/k8s/translate.ts');

before(async () => {
  kube = await startKube();
  core = kube.admin.makeApiClient(k8s.CoreV1Api);
  const node = await core.createNode({ body: { metadata: { name: 'n1' } } });
  await core.replaceNodeStatus({ name: 'n1', body: { ...node, status: { conditions: [{ type: 'Ready', status: 'True' }], addresses: [{ type: 'InternalIP', address: '10.240.0.101' }] } } });
  await core.createNamespacedService({ namespace: 'default', body: { metadata: { name: 'lb' }, spec: { type: 'LoadBalancer', loadBalancerClass: 'xdplb.io/dr', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } } });
  await core.createNamespacedService({ namespace: 'default', body: { metadata: { name: 'ext' }, spec: { type: 'ClusterIP', externalIPs: ['192.0.2.9'], ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } } });
});
after(async () => {
  await kube?.stop();
  rmSync(runDir, { recursive: true, force: true });
});

let serial = 0;

/** A ServiceAccount bound to exactly these rules, as a ClusterAccess. */
async function accessWith(rules: readonly Rule[]) {
  const name = `director-${++serial}`;
  return { kubeconfig: await kube.boundTo(name, rules), from: name, server: kube.server, namespace: 'default', pin: `/sys/fs/bpf/xdplb-rbac-${serial}` };
}

/** What the director's source and its leader election do with these rules, in 8 s: synced, the LoadBalancer's status written, Events written, the Lease held. */
async function run(rules: readonly Rule[]): Promise<{ synced: boolean; statusWritten: boolean; eventsWritten: number; eventsFailed: number; led: boolean }> {
  const a = await accessWith(rules);
  const elector = new LeaseElector({
    kubeconfig: a.kubeconfig,
    namespace: a.namespace,
    name: `lease-${serial}`,
    identity: a.from,
    timings: { leaseDuration: 1000, renewDeadline: 700, retryPeriod: 200 },
    log: component('rbac-test'),
    onLeading: () => undefined,
  });
  elector.start();
  await core.patchNamespacedServiceStatus({ namespace: 'default', name: 'lb', body: { status: { loadBalancer: { ingress: [] } } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
  const source = new KubernetesSource(a, { ...DEFAULT_SETTINGS, pools: ['203.0.113.0/30'] }, { pinDir: a.pin, capacity: { services: 4096, backends: 65536, flows: 262144 }, instance: a.from, log: component('rbac-test'), onChange: () => undefined, isLeader: () => true });
  try {
    source.start();
    const synced = await source.waitSynced(8000);
    const statusWritten = synced
      ? await eventually('status', async () => ((await core.readNamespacedServiceStatus({ namespace: 'default', name: 'lb' })).status?.loadBalancer?.ingress?.length ?? 0) > 0, { ms: 4000 }).catch(() => false)
      : false;
    if (synced) await eventually('Events tried', () => source.view().events.written + source.view().events.failed >= 2, { ms: 4000 }).catch(() => undefined);
    const v = source.view();
    const led = await eventually('leading', () => elector.isLeading, { ms: 2000 }).catch(() => false);
    return { synced, statusWritten, eventsWritten: v.events.written, eventsFailed: v.events.failed, led };
  } finally {
    await source.stop();
    await elector.stop();
  }
}

describe('the director\'s RBAC rules', () => {
  test('with exactly DIRECTOR_RULES: listed and watched, status written, Events written', async () => {
    const r = await run(DIRECTOR_RULES);
    assert.deepEqual(r, { synced: true, statusWritten: true, eventsWritten: 2, eventsFailed: 0, led: true }); // IPAllocated on lb, ExternalIPNotAllowed on ext
  });

  const without: Record<string, (r: Awaited<ReturnType<typeof run>>) => void> = {
    'services list,watch': (r) => assert.equal(r.synced, false, 'never synced: nothing to serve'),
    'services/status patch': (r) => assert.deepEqual([r.synced, r.statusWritten], [true, false], 'the address is not written to status'),
    'endpointslices list,watch': (r) => assert.equal(r.synced, false, 'never synced: Local Services would have no endpoints'),
    'nodes list,watch': (r) => assert.equal(r.synced, false, 'never synced: no backends'),
    'events create': (r) => assert.deepEqual([r.synced, r.eventsWritten, r.eventsFailed > 0], [true, 0, true], 'no Event is written'),
    'leases get,create,update': (r) => assert.deepEqual([r.synced, r.led], [true, false], 'never leads: no director would own the VIPs'),
  };
  for (const rule of DIRECTOR_RULES) {
    const label = `${rule.resources.join(',')} ${rule.verbs.join(',')}`;
    test(`without "${label}" (${rule.why}): that fails`, async () => {
      const check = without[label];
      assert.ok(check, `a named behaviour for the rule ${label}`);
      check(await run(DIRECTOR_RULES.filter((r) => r !== rule)));
    });
  }
});
