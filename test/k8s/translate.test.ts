// The Kubernetes translation, rule by rule: objects as the informers hold
// them → the services, Events and LoadBalancer addresses. Every output is
// also put through the config schema (validateServices): what the
// translation emits, the daemon accepts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import { XdplbError } from '../../src/errors.ts';
import { compileSettings, translate, validateServices, type KubeEvent, type KubernetesSettings, type ServiceInput, type Translation } from '../../src/k8s/translate.ts';
import { classless, node, NODES, NOT_READY, READY, service, settings, slice, TERMINATING } from './fixtures.ts';

function run(services: V1Service[], o: { nodes?: V1Node[]; slices?: V1EndpointSlice[]; settings?: Partial<KubernetesSettings>; previous?: Map<string, string[]> } = {}): Translation {
  const t = translate({ services, endpointSlices: o.slices ?? [], nodes: o.nodes ?? NODES }, { ...settings, ...o.settings }, o.previous);
  validateServices(t.services, { services: 4096, backends: 65536, flows: 262144 }); // throws if the schema refuses one
  return t;
}

const KUBE_PROXY = { type: 'http', port: 10256, path: '/healthz', interval: '2000ms', timeout: '1000ms', rise: 2, fall: 2 } as const;
const ALL_V4 = [
  { address: '10.0.0.1', state: 'active' },
  { address: '10.0.0.2', state: 'active' },
  { address: '10.0.0.3', state: 'active' },
] as const;

/** An expected service: port 80/tcp "http", maglev, all three nodes, kube-proxy's check, unless told otherwise. */
function out(name: string, vip: string, o: Partial<ServiceInput> = {}): ServiceInput {
  return { name, vip, port: 80, protocol: 'tcp', scheduler: 'maglev', backends: ALL_V4.map((b) => ({ ...b })), healthCheck: KUBE_PROXY, ...o };
}

const names = (t: Translation) => t.services.map((s) => s.name);
const reasons = (t: Translation) => t.events.map((e) => `${e.service} ${e.type} ${e.reason}`);
const allocs = (t: Translation) => Object.fromEntries(t.allocations);

test('a service is named namespace/name:port/vip, the port by its name or else its number', () => {
  const t = run([
    service('shop/web', { type: 'ClusterIP', externalIPs: ['198.51.100.10'], ports: [{ name: 'http', port: 80 }, { name: 'https', port: 443 }] }),
    service('shop/dns', { type: 'ClusterIP', externalIPs: ['198.51.100.11'], ports: [{ port: 53, protocol: 'UDP' }] }),
  ]);
  assert.deepEqual(t.services, [
    out('shop/dns:53/198.51.100.11', '198.51.100.11', { port: 53, protocol: 'udp' }),
    out('shop/web:http/198.51.100.10', '198.51.100.10'),
    out('shop/web:https/198.51.100.10', '198.51.100.10', { port: 443 }),
  ]);
  assert.deepEqual(t.events, []);
});

test('externalIPs are served only inside the allowed ranges; any other gets a Warning naming CVE-2020-8554', () => {
  const web = service('shop/web', { type: 'ClusterIP', externalIPs: ['198.51.100.10', '192.0.2.7', 'not-an-ip', '198.51.100.10'] });
  const t = run([web]);
  assert.deepEqual(names(t), ['shop/web:http/198.51.100.10']);
  assert.deepEqual(reasons(t), ['shop/web Warning ExternalIPNotAllowed', 'shop/web Warning InvalidExternalIP']);
  assert.match(t.events[0]!.message, /192\.0\.2\.7 is not served.*198\.51\.100\.0\/24.*CVE-2020-8554/);

  const none = run([web], { settings: { externalIPs: [] } });
  assert.deepEqual(none.services, [], 'no ranges: no externalIP is served');
  assert.deepEqual(reasons(none), ['shop/web Warning ExternalIPNotAllowed', 'shop/web Warning ExternalIPNotAllowed', 'shop/web Warning InvalidExternalIP']);
});

test('LoadBalancers of our class are served; of another class never; without a class only with defaultClass', () => {
  const services = [service('a/ours'), service('a/theirs', { loadBalancerClass: 'metallb.io/l2' }), classless(service('a/plain', { created: 1 })), service('a/cluster', { type: 'ClusterIP' })];
  assert.deepEqual(allocs(run(services)), { 'a/ours': ['203.0.113.0'] });
  assert.deepEqual(allocs(run(services, { settings: { defaultClass: true } })), { 'a/ours': ['203.0.113.0'], 'a/plain': ['203.0.113.1'] });
});

test('a LoadBalancer address comes from spec.loadBalancerIP, else the annotation (one per family), else the pools', () => {
  const t = run([
    service('a/fixed', { loadBalancerIP: '203.0.113.2' }),
    service('a/annotated', { ipFamilies: ['IPv6', 'IPv4'], annotations: { 'xdplb.io/load-balancer-ips': '203.0.113.3, 2001:db8:64::3' } }),
    service('a/pooled'),
  ]);
  assert.deepEqual(allocs(t), { 'a/annotated': ['2001:db8:64::3', '203.0.113.3'], 'a/fixed': ['203.0.113.2'], 'a/pooled': ['203.0.113.0'] });
  assert.deepEqual(
    t.events.map((e) => [e.service, e.reason, e.message]),
    [
      ['a/annotated', 'IPAllocated', 'assigned 2001:db8:64::3 (annotation xdplb.io/load-balancer-ips)'],
      ['a/annotated', 'IPAllocated', 'assigned 203.0.113.3 (annotation xdplb.io/load-balancer-ips)'],
      ['a/fixed', 'IPAllocated', 'assigned 203.0.113.2 (spec.loadBalancerIP)'],
      ['a/pooled', 'IPAllocated', 'assigned 203.0.113.0 from pool 203.0.113.0/30'],
    ],
  );
});

test('an asked-for address that is invalid, of another family or outside the pools → a Warning, that Service alone is not served', () => {
  const bad: [V1Service, string, RegExp][] = [
    [service('a/x', { loadBalancerIP: '203.0.113.999' }), 'InvalidLoadBalancerIP', /"203\.0\.113\.999" is not the address of one host/],
    [service('a/x', { loadBalancerIP: '127.0.0.1' }), 'InvalidLoadBalancerIP', /not the address of one host/],
    [service('a/x', { loadBalancerIP: '2001:db8:64::1' }), 'InvalidLoadBalancerIP', /IPv6, not one of the Service's ipFamilies \(IPv4\)/],
    [service('a/x', { annotations: { 'xdplb.io/load-balancer-ips': '203.0.113.1,203.0.113.2' } }), 'InvalidLoadBalancerIP', /more than one IPv4 address/],
    [service('a/x', { loadBalancerIP: '198.51.100.1' }), 'LoadBalancerIPNotInPool', /198\.51\.100\.1 is outside the pools \(203\.0\.113\.0\/30, 2001:db8:64::\/126\)/],
  ];
  for (const [svc, reason, message] of bad) {
    const t = run([svc, service('a/good', { created: 5 })]);
    assert.deepEqual(allocs(t), { 'a/good': ['203.0.113.0'] }, reason);
    assert.deepEqual(names(t), ['a/good:http/203.0.113.0']);
    const warning = t.events.find((e) => e.service === 'a/x');
    assert.equal(warning?.reason, reason);
    assert.match(warning.message, message);
    assert.match(warning.message, /the load balancer is not served/);
  }
});

test('a pool with no free address → PoolExhausted, and the Services allocated before keep theirs', () => {
  const services = [0, 1, 2, 3, 4].map((i) => service(`a/s${i}`, { created: i }));
  const t = run(services);
  assert.deepEqual(allocs(t), { 'a/s0': ['203.0.113.0'], 'a/s1': ['203.0.113.1'], 'a/s2': ['203.0.113.2'], 'a/s3': ['203.0.113.3'] });
  assert.deepEqual(
    t.events.filter((e) => e.type === 'Warning'),
    [{ service: 'a/s4', type: 'Warning', reason: 'PoolExhausted', message: 'no pool has a free IPv4 address (pools: 203.0.113.0/30, 2001:db8:64::/126); the load balancer is not served' }],
  );
});

test('a dual-stack Service whose second family is exhausted is not served at all, and its first address goes back', () => {
  const t = run([service('a/dual', { ipFamilies: ['IPv4', 'IPv6'] })], { settings: { pools: ['203.0.113.0/30'] } });
  assert.deepEqual(allocs(t), {});
  assert.deepEqual(reasons(t), ['a/dual Warning PoolExhausted']);
});

test('addresses read back from status (after a restart) and from the previous translation are kept, with no new Event', () => {
  const restarted = run([service('a/old', { created: 0 }), service('a/web', { created: 1, ingress: ['203.0.113.3'] })]);
  assert.deepEqual(allocs(restarted), { 'a/old': ['203.0.113.0'], 'a/web': ['203.0.113.3'] });
  assert.deepEqual(reasons(restarted), ['a/old Normal IPAllocated'], 'a kept address is not announced again');

  const again = run([service('a/old', { created: 0 }), service('a/web', { created: 1, ingress: ['203.0.113.3'] })], { previous: new Map(restarted.allocations as Map<string, string[]>) });
  assert.deepEqual(allocs(again), allocs(restarted), 'the next translation gives the same addresses');
  assert.deepEqual(again.events, []);

  const stale = run([service('a/web', { ingress: ['198.51.100.9', '203.0.113.7'] })]);
  assert.deepEqual(allocs(stale), { 'a/web': ['203.0.113.0'] }, 'a status address outside the pools is not kept');
});

test('two Services wanting one address: the older keeps it, the newer gets a Warning', () => {
  const t = run([service('a/newer', { created: 2, loadBalancerIP: '203.0.113.1' }), service('a/older', { created: 1, loadBalancerIP: '203.0.113.1' })]);
  assert.deepEqual(allocs(t), { 'a/older': ['203.0.113.1'] });
  assert.deepEqual(t.events.find((e) => e.type === 'Warning'), {
    service: 'a/newer',
    type: 'Warning',
    reason: 'AddressConflict',
    message: 'spec.loadBalancerIP: 203.0.113.1 is held by the older Service a/older; the load balancer is not served',
  });

  const held = run([service('a/newer', { created: 2, ingress: ['203.0.113.1'] }), service('a/older', { created: 1, loadBalancerIP: '203.0.113.1' })]);
  assert.deepEqual(allocs(held), { 'a/newer': ['203.0.113.0'], 'a/older': ['203.0.113.1'] }, 'a Service that only held the address gets another');
  assert.deepEqual(reasons(held), ['a/newer Warning AddressConflict', 'a/newer Normal IPAllocated', 'a/older Normal IPAllocated']);

  const tie = run([service('b/same', { loadBalancerIP: '203.0.113.1' }), service('a/same', { loadBalancerIP: '203.0.113.1' })]);
  assert.deepEqual(allocs(tie), { 'a/same': ['203.0.113.1'] }, 'created together: namespace/name decides');
});

test('an address is shared only by Services with the same allow-shared-ip value and disjoint ports', () => {
  const share = (key: string, created: number, value: string | undefined, port: number, protocol = 'TCP') =>
    service(key, { created, ...(value ? { annotations: { 'xdplb.io/allow-shared-ip': value } } : {}), ports: [{ name: 'p', port, protocol }] });
  const cases: [string, V1Service[], Record<string, string[]>][] = [
    ['same key, other port', [share('a/web', 0, 'k', 80), share('a/dns', 1, 'k', 53, 'UDP')], { 'a/dns': ['203.0.113.0'], 'a/web': ['203.0.113.0'] }],
    ['same key, same port number, other protocol', [share('a/dnst', 0, 'k', 53), share('a/dnsu', 1, 'k', 53, 'UDP')], { 'a/dnst': ['203.0.113.0'], 'a/dnsu': ['203.0.113.0'] }],
    ['same key, same port', [share('a/one', 0, 'k', 80), share('a/two', 1, 'k', 80)], { 'a/one': ['203.0.113.0'], 'a/two': ['203.0.113.1'] }],
    ['other key', [share('a/one', 0, 'k', 80), share('a/two', 1, 'j', 443)], { 'a/one': ['203.0.113.0'], 'a/two': ['203.0.113.1'] }],
    ['one has no key', [share('a/one', 0, 'k', 80), share('a/two', 1, undefined, 443)], { 'a/one': ['203.0.113.0'], 'a/two': ['203.0.113.1'] }],
  ];
  for (const [what, services, expected] of cases) assert.deepEqual(allocs(run(services)), expected, what);

  const web = share('a/web', 0, 'k', 80);
  web.status = { loadBalancer: { ingress: [{ ip: '203.0.113.0', ipMode: 'VIP' }] } };
  const dns = share('a/dns', 1, 'k', 80);
  dns.spec!.loadBalancerIP = '203.0.113.0';
  const asked = run([web, dns]);
  assert.deepEqual(allocs(asked), { 'a/web': ['203.0.113.0'] });
  assert.deepEqual(reasons(asked), ['a/dns Warning AddressConflict'], 'asking for a shared address with an overlapping port is refused');
});

test('TCP and UDP ports are served; SCTP gets a Warning and that port alone is skipped', () => {
  const t = run([service('a/mixed', { type: 'ClusterIP', externalIPs: ['198.51.100.1'], ports: [{ name: 'web', port: 80 }, { name: 'sig', port: 3868, protocol: 'SCTP' }, { name: 'dns', port: 53, protocol: 'UDP' }] })]);
  assert.deepEqual(names(t), ['a/mixed:dns/198.51.100.1', 'a/mixed:web/198.51.100.1']);
  assert.deepEqual(t.events, [{ service: 'a/mixed', type: 'Warning', reason: 'UnsupportedProtocol', message: 'port sig (SCTP/3868) is not served: xdplb balances TCP and UDP only' }]);
});

test('dual stack: one service per family per port, each with the nodes of its family', () => {
  const t = run([service('a/dual', { ipFamilies: ['IPv6', 'IPv4'] })]);
  assert.deepEqual(allocs(t), { 'a/dual': ['2001:db8:64::', '203.0.113.0'] });
  assert.deepEqual(t.services, [
    out('a/dual:http/2001:db8:64::', '2001:db8:64::', { backends: ['fd00::1', 'fd00::2', 'fd00::3'].map((address) => ({ address, state: 'active' as const })) }),
    out('a/dual:http/203.0.113.0', '203.0.113.0'),
  ]);
});

test('sessionAffinity ClientIP → maglev-source', () => {
  const t = run([service('a/sticky', { sessionAffinity: 'ClientIP' }), service('a/plain', { sessionAffinity: 'None', created: 1 })]);
  assert.deepEqual(
    t.services.map((s) => [s.name, s.scheduler]),
    [
      ['a/plain:http/203.0.113.1', 'maglev'],
      ['a/sticky:http/203.0.113.0', 'maglev-source'],
    ],
  );
});

test('backends: Ready nodes only, not excluded, inside nodeSelector, by their InternalIP of the VIP family', () => {
  const nodes = [
    node('ready', ['10.0.0.1'], { labels: { 'node-role.kubernetes.io/worker': '', zone: 'a' } }),
    node('notready', ['10.0.0.2'], { ready: false, labels: { 'node-role.kubernetes.io/worker': '' } }),
    node('excluded', ['10.0.0.3'], { labels: { 'node-role.kubernetes.io/worker': '', 'node.kubernetes.io/exclude-from-external-load-balancers': 'true' } }),
    node('control', ['10.0.0.4'], { labels: { 'node-role.kubernetes.io/control-plane': '' } }),
    node('v6only', ['fd00::5'], { labels: { 'node-role.kubernetes.io/worker': '', zone: 'b' } }),
    node('zone-b', ['10.0.0.6'], { labels: { 'node-role.kubernetes.io/worker': '', zone: 'b' } }),
  ];
  const backends = (nodeSelector: string) => run([service('a/web')], { nodes, settings: { nodeSelector } }).services[0]?.backends?.map((b) => b.address);
  assert.deepEqual(backends(''), ['10.0.0.1', '10.0.0.4', '10.0.0.6']);
  assert.deepEqual(backends('node-role.kubernetes.io/worker'), ['10.0.0.1', '10.0.0.6']);
  assert.deepEqual(backends('!node-role.kubernetes.io/worker'), ['10.0.0.4']);
  assert.deepEqual(backends('zone=b'), ['10.0.0.6']);
  assert.deepEqual(backends('zone==b'), ['10.0.0.6']);
  assert.deepEqual(backends('zone!=b'), ['10.0.0.1', '10.0.0.4'], '!= also selects nodes without the label');
  assert.deepEqual(backends('node-role.kubernetes.io/worker, zone!=a'), ['10.0.0.6']);
});

test('a departing node (being deleted, or tainted ToBeDeletedByClusterAutoscaler) drains', () => {
  const nodes = [node('a', ['10.0.0.1']), node('b', ['10.0.0.2'], { deleting: true }), node('c', ['10.0.0.3'], { taints: ['ToBeDeletedByClusterAutoscaler'] })];
  assert.deepEqual(run([service('a/web')], { nodes }).services[0]?.backends, [
    { address: '10.0.0.1', state: 'active' },
    { address: '10.0.0.2', state: 'draining' },
    { address: '10.0.0.3', state: 'draining' },
  ]);
});

test('externalTrafficPolicy Cluster: every eligible node, checked on kube-proxy /healthz (port and path from the settings)', () => {
  const t = run([service('a/web')], { settings: { nodeHealthCheck: { port: 10999, path: '/livez', interval: 5000, timeout: 2000, rise: 3, fall: 4 } } });
  assert.deepEqual(t.services, [out('a/web:http/203.0.113.0', '203.0.113.0', { healthCheck: { type: 'http', port: 10999, path: '/livez', interval: '5000ms', timeout: '2000ms', rise: 3, fall: 4 } })]);
});

test('externalTrafficPolicy Local: nodes with ready local endpoints, terminating-only ones drain, checked on healthCheckNodePort /healthz', () => {
  const web = service('shop/web', { externalTrafficPolicy: 'Local', healthCheckNodePort: 31234 });
  const slices = [
    slice('shop/web', [['node-a', READY], ['node-b', TERMINATING], ['node-c', NOT_READY]]),
    slice('shop/web', [['node-b', { terminating: true, serving: false }]], 'b'),
    slice('other/web', [['node-c', READY]]), // another namespace's "web"
    slice('shop/api', [['node-c', READY]]),
  ];
  assert.deepEqual(run([web], { slices }).services, [
    out('shop/web:http/203.0.113.0', '203.0.113.0', {
      backends: [
        { address: '10.0.0.1', state: 'active' },
        { address: '10.0.0.2', state: 'draining' },
      ],
      healthCheck: { ...KUBE_PROXY, port: 31234 },
    }),
  ]);
  const readyToo = [...slices, slice('shop/web', [['node-b', {}]], 'c')];
  assert.deepEqual(
    run([web], { slices: readyToo }).services[0]?.backends?.map((b) => b.state),
    ['active', 'active'],
    'a ready endpoint anywhere on the node wins over a terminating one (absent conditions: ready)',
  );
});

test('no eligible node: the service is still served, with no backends, and a NoEligibleNode Warning', () => {
  const t = run([service('a/web', { externalTrafficPolicy: 'Local', healthCheckNodePort: 31000 })]);
  assert.deepEqual(t.services, [out('a/web:http/203.0.113.0', '203.0.113.0', { backends: [], healthCheck: { ...KUBE_PROXY, port: 31000 } })]);
  assert.deepEqual(reasons(t), ['a/web Normal IPAllocated', 'a/web Warning NoEligibleNode']);
  assert.match(t.events[1]!.message, /no eligible IPv4 node with a ready local endpoint/);
});

test('one VIP, protocol and port claimed by two Services: the older has it, the newer gets PortConflict (and the rest stays served)', () => {
  const t = run([
    service('a/newer', { type: 'ClusterIP', created: 2, externalIPs: ['198.51.100.1'], ports: [{ name: 'http', port: 80 }, { name: 'alt', port: 8080 }] }),
    service('a/older', { type: 'ClusterIP', created: 1, externalIPs: ['198.51.100.1'] }),
  ]);
  assert.deepEqual(names(t), ['a/newer:alt/198.51.100.1', 'a/older:http/198.51.100.1']);
  assert.deepEqual(t.events, [{ service: 'a/newer', type: 'Warning', reason: 'PortConflict', message: 'tcp/198.51.100.1:80 is not served: the older Service a/older has it' }]);
});

test('pool addresses served as externalIPs are never allocated', () => {
  const t = run([service('a/ext', { type: 'ClusterIP', externalIPs: ['203.0.113.0'] }), service('a/lb', { created: 1 })], { settings: { externalIPs: ['203.0.113.0/24'] } });
  assert.deepEqual(allocs(t), { 'a/lb': ['203.0.113.1'] });
});

test('ExternalName Services and Services being deleted are not served', () => {
  const deleting = service('a/gone', { type: 'ClusterIP', externalIPs: ['198.51.100.2'] });
  deleting.metadata!.deletionTimestamp = new Date();
  const t = run([service('a/ext', { type: 'ExternalName', externalIPs: ['198.51.100.1'] }), deleting]);
  assert.deepEqual(t, { services: [], events: [], allocations: new Map() });
});

test('invalid settings are refused, naming every problem', () => {
  assert.throws(
    () => compileSettings({ ...settings, externalIPs: ['198.51.100.1/24'], pools: ['nope'], nodeSelector: 'zone in (a,b)' }),
    (e: XdplbError) =>
      e.code === 'CONFIG_INVALID' &&
      e.details.length === 3 &&
      /^kubernetes\.externalIPs\[0\]: .*198\.51\.100\.0\/24/.test(e.details[0]!) &&
      /^kubernetes\.pools\[0\]: a CIDR/.test(e.details[1]!) &&
      /^kubernetes\.nodeSelector: .*"in" and "notin" are not supported/.test(e.details[2]!),
  );
});

/** A realistic cluster: what every rule above meets at once. */
function mixedSnapshot() {
  const services = [
    service('kube-system/kube-dns', { type: 'ClusterIP', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] }),
    service('shop/frontend', { created: 10, ipFamilies: ['IPv4', 'IPv6'], ports: [{ name: 'http', port: 80 }, { name: 'https', port: 443 }], ingress: ['203.0.113.2', '2001:db8:64::2'] }),
    service('shop/checkout', { created: 20, externalTrafficPolicy: 'Local', healthCheckNodePort: 30111, sessionAffinity: 'ClientIP', ports: [{ port: 8443 }] }),
    service('legacy/ftp', { type: 'ClusterIP', created: 5, externalIPs: ['198.51.100.21', '10.1.2.3'], ports: [{ name: 'ftp', port: 21 }, { name: 'sctp', port: 9, protocol: 'SCTP' }] }),
    service('dns/public', { created: 30, annotations: { 'xdplb.io/allow-shared-ip': 'dns' }, ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] }),
    service('dns/public-tcp', { created: 31, annotations: { 'xdplb.io/allow-shared-ip': 'dns' }, ports: [{ name: 'dns', port: 53, protocol: 'TCP' }] }),
    service('other/nginx', { created: 1, loadBalancerClass: 'metallb.io/l2', ingress: ['203.0.113.0'] }),
    service('late/squatter', { created: 40, loadBalancerIP: '203.0.113.2' }),
  ];
  const nodes = [
    node('worker-1', ['10.0.0.11', 'fd00::11'], { labels: { 'node-role.kubernetes.io/worker': '' } }),
    node('worker-2', ['10.0.0.12', 'fd00::12'], { labels: { 'node-role.kubernetes.io/worker': '' } }),
    node('worker-3', ['10.0.0.13', 'fd00::13'], { labels: { 'node-role.kubernetes.io/worker': '' }, ready: false }),
    node('control-1', ['10.0.0.1', 'fd00::1'], { labels: { 'node-role.kubernetes.io/control-plane': '' } }),
  ];
  const endpointSlices = [slice('shop/checkout', [['worker-1', READY], ['worker-2', TERMINATING], ['worker-3', READY]])];
  return { services, nodes, endpointSlices };
}
const mixedSettings: KubernetesSettings = { ...settings, nodeSelector: 'node-role.kubernetes.io/worker' };

test('a realistic mixed snapshot', () => {
  const { services, nodes, endpointSlices } = mixedSnapshot();
  const t = translate({ services, nodes, endpointSlices }, mixedSettings);
  const workers = (f: 4 | 6) => (f === 4 ? ['10.0.0.11', '10.0.0.12'] : ['fd00::11', 'fd00::12']).map((address) => ({ address, state: 'active' as const }));
  assert.deepEqual(allocs(t), {
    'dns/public': ['203.0.113.1'],
    'dns/public-tcp': ['203.0.113.1'],
    'shop/checkout': ['203.0.113.0'],
    'shop/frontend': ['203.0.113.2', '2001:db8:64::2'],
  });
  assert.deepEqual(t.services, [
    out('dns/public-tcp:dns/203.0.113.1', '203.0.113.1', { port: 53, backends: workers(4) }),
    out('dns/public:dns/203.0.113.1', '203.0.113.1', { port: 53, protocol: 'udp', backends: workers(4) }),
    out('legacy/ftp:ftp/198.51.100.21', '198.51.100.21', { port: 21, backends: workers(4) }),
    out('shop/checkout:8443/203.0.113.0', '203.0.113.0', {
      port: 8443,
      scheduler: 'maglev-source',
      backends: [
        { address: '10.0.0.11', state: 'active' },
        { address: '10.0.0.12', state: 'draining' },
      ],
      healthCheck: { ...KUBE_PROXY, port: 30111 },
    }),
    out('shop/frontend:http/2001:db8:64::2', '2001:db8:64::2', { backends: workers(6) }),
    out('shop/frontend:http/203.0.113.2', '203.0.113.2', { backends: workers(4) }),
    out('shop/frontend:https/2001:db8:64::2', '2001:db8:64::2', { port: 443, backends: workers(6) }),
    out('shop/frontend:https/203.0.113.2', '203.0.113.2', { port: 443, backends: workers(4) }),
  ]);
  assert.deepEqual(
    t.events.map((e: KubeEvent) => `${e.service} ${e.type} ${e.reason}`),
    [
      'dns/public Normal IPAllocated',
      'dns/public-tcp Normal IPAllocated',
      'late/squatter Warning AddressConflict',
      'legacy/ftp Warning ExternalIPNotAllowed',
      'legacy/ftp Warning UnsupportedProtocol',
      'shop/checkout Normal IPAllocated',
    ],
  );
  const valid = validateServices(t.services, { services: 64, backends: 256, flows: 262144 });
  assert.equal(valid.length, 8);
  assert.equal(valid[0]?.healthCheck.type === 'http' && valid[0].healthCheck.interval, 2000, 'through the schema: durations in ms');
});

/** A deterministic shuffle (a small LCG), so a failure can be replayed. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const a = [...items];
  let x = seed;
  for (let i = a.length - 1; i > 0; i--) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const j = x % (i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

test('deterministic: the snapshot in any order gives byte-identical output', () => {
  const { services, nodes, endpointSlices } = mixedSnapshot();
  const text = (t: Translation) => JSON.stringify({ ...t, allocations: [...t.allocations] });
  const expected = text(translate({ services, nodes, endpointSlices }, mixedSettings));
  for (let seed = 1; seed <= 25; seed++) {
    const t = translate({ services: shuffled(services, seed), nodes: shuffled(nodes, seed + 100), endpointSlices: shuffled(endpointSlices, seed) }, mixedSettings);
    assert.equal(text(t), expected, `seed ${seed}`);
  }
});
