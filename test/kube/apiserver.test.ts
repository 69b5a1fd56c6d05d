// Proves the test control plane behaves like a real one, for the Kubernetes
// mode's tests: CRUD of the kinds xdplb uses, ordered watches, the status
// subresource, 410 Gone after compaction, RBAC, and kubectl's server-side
// dry run (with the kubectl built beside the API server, not one on PATH).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { startKube, type KubeCluster } from '../helpers/kube.ts';
import { eventually } from '../helpers/eventually.ts';

let kube: KubeCluster;
let core: k8s.CoreV1Api;

before(async () => {
  kube = await startKube({ minRequestTimeoutSeconds: 2 });
  core = kube.admin.makeApiClient(k8s.CoreV1Api);
});
after(async () => kube?.stop());

function service(name: string, externalIPs: string[] = ['10.240.0.201']): k8s.V1Service {
  return {
    metadata: { name },
    spec: { type: 'ClusterIP', externalIPs, ports: [{ name: 'http', port: 80, protocol: 'TCP' }], selector: { app: name } },
  };
}


describe('objects xdplb reads and writes', () => {
  test('Services: create, update, delete', async () => {
    const created = await core.createNamespacedService({ namespace: 'default', body: service('crud') });
    assert.ok(created.metadata?.resourceVersion, 'a created object has a resourceVersion');
    created.spec!.externalIPs = ['10.240.0.202'];
    const updated = await core.replaceNamespacedService({ namespace: 'default', name: 'crud', body: created });
    assert.deepEqual(updated.spec?.externalIPs, ['10.240.0.202']);
    assert.notEqual(updated.metadata?.resourceVersion, created.metadata?.resourceVersion);
    await core.deleteNamespacedService({ namespace: 'default', name: 'crud' });
    await assert.rejects(core.readNamespacedService({ namespace: 'default', name: 'crud' }), (e: { code?: number }) => e.code === 404);
  });

  test('the API validates: a Service with a bad port is refused with 422', async () => {
    const bad = service('bad');
    bad.spec!.ports = [{ port: 70000, protocol: 'TCP' }];
    await assert.rejects(core.createNamespacedService({ namespace: 'default', body: bad }), (e: { code?: number }) => e.code === 422);
  });

  test('EndpointSlices, Nodes and Leases', async () => {
    const discovery = kube.admin.makeApiClient(k8s.DiscoveryV1Api);
    const slice = await discovery.createNamespacedEndpointSlice({
      namespace: 'default',
      body: {
        metadata: { name: 'web-abc', labels: { 'kubernetes.io/service-name': 'web' } },
        addressType: 'IPv4',
        endpoints: [{ addresses: ['10.1.0.5'], nodeName: 'node-a', conditions: { ready: true, serving: true, terminating: false } }],
        ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      },
    });
    assert.equal(slice.endpoints?.[0]?.nodeName, 'node-a');
    const node = await core.createNode({
      body: { metadata: { name: 'node-a', labels: { 'kubernetes.io/hostname': 'node-a' } } },
    });
    node.status = { addresses: [{ type: 'InternalIP', address: '10.240.0.101' }], conditions: [{ type: 'Ready', status: 'True' }] };
    const withStatus = await core.replaceNodeStatus({ name: 'node-a', body: node });
    assert.equal(withStatus.status?.addresses?.[0]?.address, '10.240.0.101');
    const coord = kube.admin.makeApiClient(k8s.CoordinationV1Api);
    const lease = await coord.createNamespacedLease({
      namespace: 'default',
      body: { metadata: { name: 'xdplb-leader' }, spec: { holderIdentity: 'director-1', leaseDurationSeconds: 15 } },
    });
    lease.spec!.holderIdentity = 'director-2';
    const taken = await coord.replaceNamespacedLease({ namespace: 'default', name: 'xdplb-leader', body: lease });
    assert.equal(taken.spec?.holderIdentity, 'director-2');
    // a stale write (old resourceVersion) is a conflict, as leader election relies on
    await assert.rejects(coord.replaceNamespacedLease({ namespace: 'default', name: 'xdplb-leader', body: lease }), (e: { code?: number }) => e.code === 409);
    await discovery.deleteNamespacedEndpointSlice({ namespace: 'default', name: 'web-abc' });
    await core.deleteNode({ name: 'node-a' });
  });

  test('Service status is written through the status subresource only', async () => {
    const svc = service('lb');
    svc.spec!.type = 'LoadBalancer';
    svc.spec!.externalIPs = undefined;
    svc.spec!.loadBalancerClass = 'xdplb.io/director';
    await core.createNamespacedService({ namespace: 'default', body: svc });
    const current = await core.readNamespacedService({ namespace: 'default', name: 'lb' });
    current.status = { loadBalancer: { ingress: [{ ip: '10.240.0.203', ipMode: 'VIP' }] } };
    const plain = await core.replaceNamespacedService({ namespace: 'default', name: 'lb', body: current });
    assert.equal(plain.status?.loadBalancer?.ingress, undefined, 'the main resource ignores status');
    const fresh = await core.readNamespacedService({ namespace: 'default', name: 'lb' });
    fresh.status = { loadBalancer: { ingress: [{ ip: '10.240.0.203', ipMode: 'VIP' }] } };
    const written = await core.replaceNamespacedServiceStatus({ namespace: 'default', name: 'lb', body: fresh });
    assert.deepEqual(
      written.status?.loadBalancer?.ingress?.map((i) => ({ ip: i.ip, ipMode: i.ipMode })),
      [{ ip: '10.240.0.203', ipMode: 'VIP' }],
    );
    await core.deleteNamespacedService({ namespace: 'default', name: 'lb' });
  });
});

describe('watches', () => {
  test('a watch sees ADDED, MODIFIED, DELETED in order', async () => {
    const start = await core.listNamespacedService({ namespace: 'default' });
    const events: string[] = [];
    const watch = new k8s.Watch(kube.admin);
    const req = await watch.watch(
      '/api/v1/namespaces/default/services',
      { resourceVersion: start.metadata?.resourceVersion, fieldSelector: 'metadata.name=ordered' },
      (type, obj: k8s.V1Service) => events.push(`${type}:${obj.spec?.externalIPs?.join(',') ?? ''}`),
      () => undefined,
    );
    try {
      const s = await core.createNamespacedService({ namespace: 'default', body: service('ordered') });
      s.spec!.externalIPs = ['10.240.0.205'];
      await core.replaceNamespacedService({ namespace: 'default', name: 'ordered', body: s });
      await core.deleteNamespacedService({ namespace: 'default', name: 'ordered' });
      await eventually('three events', () => events.length >= 3);
      assert.deepEqual(events, ['ADDED:10.240.0.201', 'MODIFIED:10.240.0.205', 'DELETED:10.240.0.205']);
    } finally {
      req.abort();
    }
  });

  test('an informer recovers from an expired resourceVersion (410 Gone after compaction)', async () => {
    let lists = 0;
    const listFn = () => {
      lists++;
      return core.listNamespacedService({ namespace: 'default' });
    };
    const informer = k8s.makeInformer(kube.admin, '/api/v1/namespaces/default/services', listFn);
    const seen = new Set<string>();
    informer.on('add', (s: k8s.V1Service) => seen.add(s.metadata!.name!));
    await informer.start();
    try {
      await core.createNamespacedService({ namespace: 'default', body: service('before-compaction') });
      await eventually('informer sees the first service', () => seen.has('before-compaction'));
      // While connected, bookmarks keep an informer's version fresh. A
      // director cut off across a compaction is what meets 410: stop the
      // informer, move etcd on, compact, and let it resume from its version.
      await informer.stop();
      const stale = (informer as unknown as { latestResourceVersion(): string }).latestResourceVersion();
      await core.createNamespacedService({ namespace: 'default', body: service('while-away') });
      for (let i = 0; i < 5; i++) await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: `bump-${i}` } } });
      await kube.compactEtcd();
      const gone = await new Promise<number | undefined>((resolve) => {
        let code: number | undefined;
        void new k8s.Watch(kube.admin).watch(
          '/api/v1/namespaces/default/services',
          { resourceVersion: stale },
          (type, obj: { code?: number }) => {
            if (type === 'ERROR') code = obj.code;
          },
          (err: { code?: number; statusCode?: number } | null) => resolve(code ?? err?.statusCode ?? err?.code),
        );
      });
      assert.equal(gone, 410, `a watch from the compacted resourceVersion ${stale} answers 410 Gone`);
      assert.equal(lists, 1);
      await informer.start(); // resumes its watch from the stale version
      await eventually('the informer relists after 410', () => lists >= 2, { ms: 30_000 });
      await eventually('the relist brings what happened while away', () => seen.has('while-away'));
      await core.createNamespacedService({ namespace: 'default', body: service('after-compaction') });
      await eventually('the informer watches again', () => seen.has('after-compaction'), { ms: 30_000 });
    } finally {
      await informer.stop();
    }
  });
});

describe('RBAC', () => {
  test('a ServiceAccount is refused without a rule and allowed once a Role grants it', async () => {
    const kc = await kube.asServiceAccount('default', 'director');
    const asSa = kc.makeApiClient(k8s.CoreV1Api);
    await assert.rejects(asSa.listNamespacedService({ namespace: 'default' }), (e: { code?: number }) => e.code === 403);
    const rbac = kube.admin.makeApiClient(k8s.RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace: 'default',
      body: { metadata: { name: 'read-services' }, rules: [{ apiGroups: [''], resources: ['services'], verbs: ['get', 'list', 'watch'] }] },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: 'default',
      body: {
        metadata: { name: 'director-reads-services' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'read-services' },
        subjects: [{ kind: 'ServiceAccount', name: 'director', namespace: 'default' }],
      },
    });
    const list = await eventually('the grant to apply', async () => asSa.listNamespacedService({ namespace: 'default' }).catch(() => undefined));
    assert.ok(Array.isArray(list.items));
    await assert.rejects(asSa.deleteNamespacedService({ namespace: 'default', name: 'kubernetes' }), (e: { code?: number }) => e.code === 403, 'the Role grants no delete');
  });
});

describe('kubectl', () => {
  test('kubectl apply --dry-run=server validates without creating', () => {
    const kubectl = (...args: string[]) => spawnSync(kube.kubectl, ['--kubeconfig', kube.kubeconfigPath, ...args], { encoding: 'utf8' });
    const which = spawnSync(kube.kubectl, ['version', '--client'], { encoding: 'utf8' });
    assert.equal(which.status, 0, `the kubectl built with the test server (${kube.kubectl}) did not run: ${which.error?.message ?? which.stderr}`);
    const manifest = join(kube.dir, 'svc.yaml');
    writeFileSync(
      manifest,
      'apiVersion: v1\nkind: Service\nmetadata:\n  name: dry\n  namespace: default\nspec:\n  externalIPs: [10.240.0.201]\n  ports: [{port: 80}]\n',
    );
    const ok = kubectl('apply', '--dry-run=server', '-f', manifest);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /service\/dry created \(server dry run\)/);
    const get = kubectl('get', 'service', 'dry', '-n', 'default');
    assert.notEqual(get.status, 0, 'a dry run creates nothing');
    writeFileSync(manifest, 'apiVersion: v1\nkind: Service\nmetadata:\n  name: dry\nspec:\n  ports: [{port: 99999}]\n');
    const bad = kubectl('apply', '--dry-run=server', '-f', manifest);
    assert.notEqual(bad.status, 0, 'the server rejects an invalid port');
    assert.match(bad.stderr, /Invalid value: 99999/);
  });
});
