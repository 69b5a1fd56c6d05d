// The translation, rule by rule, against a real API server: each row's
// Nodes, Services and EndpointSlices are created on kube-apiserver (a
// namespace per row; Nodes, which have none, carry the row in a label), read
// back with list calls — the client's model objects as the informers hand
// them over, with the server's defaults, creationTimestamps and allocated
// ports — and translated. Expectations are exact where the user chose the
// value, and taken from the read-back object where the server chose it (a
// healthCheckNodePort, the ipFamilies of PreferDualStack).
//
// Also here: what the server fills in that the hand-written fixtures
// (fixtures.ts) leave out, and how the director writes an events.k8s.io/v1
// Event with this client.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { translate, validateServices, type KubernetesSettings, type ServiceInput, type Snapshot, type Translation } from '../../src/k8s/translate.ts';
import { startKube, type KubeCluster } from '../helpers/kube.ts';
import { settings } from './fixtures.ts';

let kube: KubeCluster;
let core: k8s.CoreV1Api;
let discovery: k8s.DiscoveryV1Api;
let events: k8s.EventsV1Api;

before(async () => {
  kube = await startKube();
  core = kube.admin.makeApiClient(k8s.CoreV1Api);
  discovery = kube.admin.makeApiClient(k8s.DiscoveryV1Api);
  events = kube.admin.makeApiClient(k8s.EventsV1Api);
});
after(async () => kube?.stop());

// ---------------------------------------------------------------- rows

/** A Service of a row, as its user writes it. */
interface ServiceSpec {
  readonly name: string;
  readonly spec: k8s.V1ServiceSpec;
  readonly annotations?: Record<string, string>;
  /** status.loadBalancer.ingress, written through the status subresource after create (as a director did before a restart). */
  readonly ingress?: readonly string[];
  /** Created in a later second than the Service before it: creationTimestamps have one-second resolution. */
  readonly later?: boolean;
}

/** A Node of a row, registered with this status (as a kubelet does). */
interface NodeSpec {
  /** The row's namespace prefixes it ("<ns>-<name>"). */
  readonly name: string;
  readonly internalIPs: readonly string[];
  /** The Ready condition: True (the default), False, or none at all. */
  readonly ready?: boolean | 'absent';
  readonly labels?: Record<string, string>;
  readonly taints?: readonly string[];
  /** Deleted while a finalizer holds it: the server sets its deletionTimestamp. */
  readonly deleting?: boolean;
}

/** An EndpointSlice of a row's Service: one endpoint per [node name as in NodeSpec, conditions]. */
interface SliceSpec {
  readonly service: string;
  readonly suffix: string;
  readonly endpoints: readonly (readonly [string, k8s.V1EndpointConditions | undefined])[];
}

/** The row's objects as listed back from the server. */
interface ReadBack {
  readonly snapshot: Snapshot;
  service(name: string): k8s.V1Service;
}

interface Expected {
  readonly services: readonly ServiceInput[];
  /** "namespace/name Type Reason", in translate()'s order (Service, reason, message); a RegExp after one is matched against its message. */
  readonly events: readonly (string | RegExp)[];
  readonly allocations: Readonly<Record<string, readonly string[]>>;
}

interface Check {
  readonly settings?: Partial<KubernetesSettings>;
  readonly expect: (got: ReadBack) => Expected;
}

/** The objects of a row. */
interface Objects {
  /** The row's namespace (and its Nodes' prefix). */
  readonly ns: string;
  /** Default: NODES. */
  readonly nodes?: readonly NodeSpec[];
  readonly services: readonly ServiceSpec[];
  readonly slices?: readonly SliceSpec[];
}

interface Row extends Objects {
  readonly what: string;
  readonly checks: readonly Check[];
}

const ROW_LABEL = 'xdplb.test/row';
const KUBE_PROXY = { type: 'http', port: 10256, path: '/healthz', interval: '2000ms', timeout: '1000ms', rise: 2, fall: 2 } as const;
const NODES: readonly NodeSpec[] = [
  { name: 'node-a', internalIPs: ['10.0.0.1', 'fd00::1'] },
  { name: 'node-b', internalIPs: ['10.0.0.2', 'fd00::2'] },
];
const active = (...addresses: string[]) => addresses.map((address) => ({ address, state: 'active' as const }));
const V4 = active('10.0.0.1', '10.0.0.2');
const V6 = active('fd00::1', 'fd00::2');
const HTTP = [{ name: 'http', port: 80, protocol: 'TCP' }];

/** A type LoadBalancer spec of our class, port 80/TCP "http", plus o. */
function lb(o: k8s.V1ServiceSpec = {}): k8s.V1ServiceSpec {
  return { type: 'LoadBalancer', loadBalancerClass: 'xdplb.io/dr', ports: HTTP, ...o };
}

/** An expected service: port 80/tcp, maglev, node-a and node-b of IPv4, kube-proxy's check, unless told otherwise. */
function out(name: string, vip: string, o: Partial<ServiceInput> = {}): ServiceInput {
  return { name, vip, port: 80, protocol: 'tcp', scheduler: 'maglev', backends: V4, healthCheck: KUBE_PROXY, ...o };
}

/** The healthCheckNodePort the server allocated, checked to be one. */
function allocatedHealthCheckPort(s: k8s.V1Service): number {
  const port = s.spec?.healthCheckNodePort;
  assert.ok(port !== undefined && port >= 30000 && port <= 32767, `the server allocates a healthCheckNodePort in the NodePort range for ${s.metadata?.name}, got ${port}`);
  return port;
}

async function waitForNextSecond(after: Date | undefined): Promise<void> {
  if (!after) return;
  const wait = after.getTime() + 1000 + 20 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}

async function createNode(ns: string, n: NodeSpec): Promise<void> {
  const name = `${ns}-${n.name}`;
  const conditions = n.ready === 'absent' ? [] : [{ type: 'Ready', status: n.ready === false ? 'False' : 'True' }];
  await core.createNode({
    body: {
      metadata: { name, labels: { [ROW_LABEL]: ns, ...n.labels }, ...(n.deleting ? { finalizers: ['xdplb.test/hold'] } : {}) },
      spec: n.taints ? { taints: n.taints.map((key) => ({ key, effect: 'NoSchedule' })) } : {},
      status: {
        addresses: [{ type: 'Hostname', address: name }, { type: 'ExternalIP', address: '192.0.2.250' }, ...n.internalIPs.map((address) => ({ type: 'InternalIP', address }))],
        conditions,
      },
    },
  });
  if (n.deleting) await core.deleteNode({ name });
}

async function createRow(row: Objects): Promise<void> {
  await core.createNamespace({ body: { metadata: { name: row.ns } } });
  for (const n of row.nodes ?? NODES) await createNode(row.ns, n);
  let previous: Date | undefined;
  for (const s of row.services) {
    if (s.later) await waitForNextSecond(previous);
    const created = await core.createNamespacedService({ namespace: row.ns, body: { metadata: { name: s.name, ...(s.annotations ? { annotations: s.annotations } : {}) }, spec: s.spec } });
    previous = created.metadata?.creationTimestamp;
    if (s.ingress) {
      created.status = { loadBalancer: { ingress: s.ingress.map((ip) => ({ ip, ipMode: 'VIP' })) } };
      await core.replaceNamespacedServiceStatus({ namespace: row.ns, name: s.name, body: created });
    }
  }
  for (const sl of row.slices ?? [])
    await discovery.createNamespacedEndpointSlice({
      namespace: row.ns,
      body: {
        metadata: { name: `${sl.service}-${sl.suffix}`, labels: { 'kubernetes.io/service-name': sl.service } },
        addressType: 'IPv4',
        endpoints: sl.endpoints.map(([nodeName, conditions], i) => ({ addresses: [`10.244.${i}.10`], nodeName: `${row.ns}-${nodeName}`, ...(conditions ? { conditions } : {}) })),
        ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      },
    });
}

/** The row's objects, listed as an informer lists them. */
async function readBack(ns: string): Promise<ReadBack> {
  const [services, slices, nodes] = await Promise.all([
    core.listNamespacedService({ namespace: ns }),
    discovery.listNamespacedEndpointSlice({ namespace: ns }),
    core.listNode({ labelSelector: `${ROW_LABEL}=${ns}` }),
  ]);
  return {
    snapshot: { services: services.items, endpointSlices: slices.items, nodes: nodes.items },
    service(name: string) {
      const s = services.items.find((i) => i.metadata?.name === name);
      assert.ok(s, `Service ${ns}/${name} was read back`);
      return s;
    },
  };
}

function eventLines(t: Translation): string[] {
  return t.events.map((e) => `${e.service} ${e.type} ${e.reason}`);
}

/** The expected events without their message patterns, and each pattern with the index of its event. */
function splitEvents(expected: readonly (string | RegExp)[]): { lines: string[]; messages: [number, RegExp][] } {
  const lines: string[] = [];
  const messages: [number, RegExp][] = [];
  for (const e of expected) {
    if (typeof e === 'string') lines.push(e);
    else messages.push([lines.length - 1, e]);
  }
  return { lines, messages };
}

/** Runs translate() on the read-back snapshot with the row's settings and checks every output. */
function check(row: Row, got: ReadBack, c: Check): void {
  const t = translate(got.snapshot, { ...settings, ...c.settings });
  validateServices(t.services, { services: 4096, backends: 65536, flows: 262144 }); // throws if the schema refuses one
  const want = c.expect(got);
  const label = `${row.ns}${c.settings ? ` with ${JSON.stringify(c.settings)}` : ''}`;
  assert.deepEqual(Object.fromEntries(t.allocations), want.allocations, `${label}: allocations`);
  assert.deepEqual(t.services, want.services, `${label}: services`);
  const { lines, messages } = splitEvents(want.events);
  assert.deepEqual(eventLines(t), lines, `${label}: events`);
  for (const [i, pattern] of messages) assert.match(t.events[i]?.message ?? '', pattern, `${label}: the message of ${lines[i]}`);
}

const ROWS: readonly Row[] = [
  {
    ns: 'external-ips',
    what: 'externalIPs (any type) are served inside the allowed ranges only; the others get ExternalIPNotAllowed',
    services: [
      { name: 'web', spec: { type: 'ClusterIP', externalIPs: ['198.51.100.10', '192.0.2.7'], ports: HTTP } },
      { name: 'node-port', spec: { type: 'NodePort', externalIPs: ['198.51.100.11'], ports: HTTP } },
      { name: 'other-class', spec: lb({ loadBalancerClass: 'metallb.io/l2', externalIPs: ['198.51.100.12'] }) },
    ],
    checks: [
      {
        expect: () => ({
          allocations: {},
          services: [
            out('external-ips/node-port:http/198.51.100.11', '198.51.100.11'),
            out('external-ips/other-class:http/198.51.100.12', '198.51.100.12'),
            out('external-ips/web:http/198.51.100.10', '198.51.100.10'),
          ],
          events: ['external-ips/web Warning ExternalIPNotAllowed', /^externalIP 192\.0\.2\.7 is not served: it is outside the allowed ranges \(198\.51\.100\.0\/24; CVE-2020-8554\)$/],
        }),
      },
      {
        settings: { externalIPs: [] },
        expect: () => ({
          allocations: {},
          services: [],
          events: [
            'external-ips/node-port Warning ExternalIPNotAllowed',
            'external-ips/other-class Warning ExternalIPNotAllowed',
            'external-ips/web Warning ExternalIPNotAllowed',
            'external-ips/web Warning ExternalIPNotAllowed',
          ],
        }),
      },
    ],
  },
  {
    ns: 'lb-class',
    what: 'LoadBalancers of our class are served, of another class never, classless ones only with defaultClass',
    services: [
      { name: 'ours', spec: lb() },
      { name: 'theirs', spec: lb({ loadBalancerClass: 'metallb.io/l2' }) },
      { name: 'plain', spec: { type: 'LoadBalancer', ports: HTTP } },
      { name: 'cluster', spec: { type: 'ClusterIP', ports: HTTP } },
    ],
    checks: [
      {
        expect: () => ({
          allocations: { 'lb-class/ours': ['203.0.113.0'] },
          services: [out('lb-class/ours:http/203.0.113.0', '203.0.113.0')],
          events: ['lb-class/ours Normal IPAllocated', /^assigned 203\.0\.113\.0 from pool 203\.0\.113\.0\/30$/],
        }),
      },
      {
        settings: { defaultClass: true },
        // ours is older, or as old and first by name: it has .0 either way
        expect: () => ({
          allocations: { 'lb-class/ours': ['203.0.113.0'], 'lb-class/plain': ['203.0.113.1'] },
          services: [out('lb-class/ours:http/203.0.113.0', '203.0.113.0'), out('lb-class/plain:http/203.0.113.1', '203.0.113.1')],
          events: ['lb-class/ours Normal IPAllocated', 'lb-class/plain Normal IPAllocated'],
        }),
      },
    ],
  },
  {
    ns: 'lb-ip',
    what: 'spec.loadBalancerIP: inside a pool it is the address; invalid (the server keeps any text), of another family or outside the pools → a Warning',
    services: [
      { name: 'fixed', spec: lb({ loadBalancerIP: '203.0.113.2' }) },
      { name: 'garbage', spec: lb({ loadBalancerIP: 'not-an-ip' }) },
      { name: 'outside', spec: lb({ loadBalancerIP: '198.51.100.1' }) },
      { name: 'pooled', spec: lb() },
      { name: 'v6-on-v4', spec: lb({ loadBalancerIP: '2001:db8:64::1' }) },
    ],
    checks: [
      {
        expect: () => ({
          allocations: { 'lb-ip/fixed': ['203.0.113.2'], 'lb-ip/pooled': ['203.0.113.0'] },
          services: [out('lb-ip/fixed:http/203.0.113.2', '203.0.113.2'), out('lb-ip/pooled:http/203.0.113.0', '203.0.113.0')],
          events: [
            'lb-ip/fixed Normal IPAllocated',
            /^assigned 203\.0\.113\.2 \(spec\.loadBalancerIP\)$/,
            'lb-ip/garbage Warning InvalidLoadBalancerIP',
            /^spec\.loadBalancerIP: "not-an-ip" is not the address of one host; the load balancer is not served$/,
            'lb-ip/outside Warning LoadBalancerIPNotInPool',
            'lb-ip/pooled Normal IPAllocated',
            'lb-ip/v6-on-v4 Warning InvalidLoadBalancerIP',
            /IPv6, not one of the Service's ipFamilies \(IPv4\)/,
          ],
        }),
      },
    ],
  },
  {
    ns: 'lb-annotation',
    what: 'the xdplb.io/load-balancer-ips annotation: one address per family, in ipFamilies order; spec.loadBalancerIP wins over it',
    services: [
      {
        name: 'annotated',
        annotations: { 'xdplb.io/load-balancer-ips': '203.0.113.3, 2001:db8:64::3' },
        spec: lb({ ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv6', 'IPv4'] }),
      },
      { name: 'both', annotations: { 'xdplb.io/load-balancer-ips': '203.0.113.2' }, spec: lb({ loadBalancerIP: '203.0.113.1' }) },
    ],
    checks: [
      {
        expect: () => ({
          allocations: { 'lb-annotation/annotated': ['2001:db8:64::3', '203.0.113.3'], 'lb-annotation/both': ['203.0.113.1'] },
          services: [
            out('lb-annotation/annotated:http/2001:db8:64::3', '2001:db8:64::3', { backends: V6 }),
            out('lb-annotation/annotated:http/203.0.113.3', '203.0.113.3'),
            out('lb-annotation/both:http/203.0.113.1', '203.0.113.1'),
          ],
          events: [
            'lb-annotation/annotated Normal IPAllocated',
            /^assigned 2001:db8:64::3 \(annotation xdplb\.io\/load-balancer-ips\)$/,
            'lb-annotation/annotated Normal IPAllocated',
            'lb-annotation/both Normal IPAllocated',
            /^assigned 203\.0\.113\.1 \(spec\.loadBalancerIP\)$/,
          ],
        }),
      },
    ],
  },
  {
    ns: 'pools',
    what: 'addresses from the pools go oldest first (creationTimestamp, not the name); none left → PoolExhausted',
    services: [
      { name: 'z-oldest', spec: lb() },
      { name: 'm-middle', spec: lb(), later: true },
      { name: 'a-newest', spec: lb(), later: true },
    ],
    checks: [
      {
        expect: () => ({
          allocations: { 'pools/a-newest': ['203.0.113.2'], 'pools/m-middle': ['203.0.113.1'], 'pools/z-oldest': ['203.0.113.0'] },
          services: [
            out('pools/a-newest:http/203.0.113.2', '203.0.113.2'),
            out('pools/m-middle:http/203.0.113.1', '203.0.113.1'),
            out('pools/z-oldest:http/203.0.113.0', '203.0.113.0'),
          ],
          events: ['pools/a-newest Normal IPAllocated', 'pools/m-middle Normal IPAllocated', 'pools/z-oldest Normal IPAllocated'],
        }),
      },
      {
        settings: { pools: ['203.0.113.0/31'] },
        expect: () => ({
          allocations: { 'pools/m-middle': ['203.0.113.1'], 'pools/z-oldest': ['203.0.113.0'] },
          services: [out('pools/m-middle:http/203.0.113.1', '203.0.113.1'), out('pools/z-oldest:http/203.0.113.0', '203.0.113.0')],
          events: ['pools/a-newest Warning PoolExhausted', /^no pool has a free IPv4 address \(pools: 203\.0\.113\.0\/31\); the load balancer is not served$/, 'pools/m-middle Normal IPAllocated', 'pools/z-oldest Normal IPAllocated'],
        }),
      },
    ],
  },
  {
    ns: 'contention',
    what: 'two Services asking for one address: the older (by creationTimestamp) keeps it, the newer gets AddressConflict and is not served',
    services: [
      { name: 'z-older', spec: lb({ loadBalancerIP: '203.0.113.1' }) },
      { name: 'a-newer', spec: lb({ loadBalancerIP: '203.0.113.1' }), later: true },
    ],
    checks: [
      {
        expect: () => ({
          allocations: { 'contention/z-older': ['203.0.113.1'] },
          services: [out('contention/z-older:http/203.0.113.1', '203.0.113.1')],
          events: [
            'contention/a-newer Warning AddressConflict',
            /^spec\.loadBalancerIP: 203\.0\.113\.1 is held by the older Service contention\/z-older; the load balancer is not served$/,
            'contention/z-older Normal IPAllocated',
          ],
        }),
      },
    ],
  },
  {
    ns: 'contention-held',
    what: 'an address a newer Service only holds in its status, asked for by an older one: the older has it, the newer gets another',
    services: [
      { name: 'z-older', spec: lb({ loadBalancerIP: '203.0.113.1' }) },
      { name: 'a-newer', spec: lb(), ingress: ['203.0.113.1'], later: true },
    ],
    checks: [
      {
        expect: () => ({
          allocations: { 'contention-held/a-newer': ['203.0.113.0'], 'contention-held/z-older': ['203.0.113.1'] },
          services: [out('contention-held/a-newer:http/203.0.113.0', '203.0.113.0'), out('contention-held/z-older:http/203.0.113.1', '203.0.113.1')],
          events: [
            'contention-held/a-newer Warning AddressConflict',
            /^203\.0\.113\.1 is held by the older Service contention-held\/z-older; a new address is allocated$/,
            'contention-held/a-newer Normal IPAllocated',
            'contention-held/z-older Normal IPAllocated',
          ],
        }),
      },
    ],
  },
  {
    ns: 'sharing',
    what: 'equal xdplb.io/allow-shared-ip keys and disjoint ports share one address; another key gets its own',
    services: [
      { name: 'dns-tcp', annotations: { 'xdplb.io/allow-shared-ip': 'dns' }, spec: lb({ ports: [{ name: 'dns', port: 53, protocol: 'TCP' }] }) },
      { name: 'dns-udp', annotations: { 'xdplb.io/allow-shared-ip': 'dns' }, spec: lb({ ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] }) },
      { name: 'web', annotations: { 'xdplb.io/allow-shared-ip': 'web' }, spec: lb() },
    ],
    checks: [
      {
        expect: () => ({
          allocations: { 'sharing/dns-tcp': ['203.0.113.0'], 'sharing/dns-udp': ['203.0.113.0'], 'sharing/web': ['203.0.113.1'] },
          services: [
            out('sharing/dns-tcp:dns/203.0.113.0', '203.0.113.0', { port: 53 }),
            out('sharing/dns-udp:dns/203.0.113.0', '203.0.113.0', { port: 53, protocol: 'udp' }),
            out('sharing/web:http/203.0.113.1', '203.0.113.1'),
          ],
          events: ['sharing/dns-tcp Normal IPAllocated', 'sharing/dns-udp Normal IPAllocated', 'sharing/web Normal IPAllocated'],
        }),
      },
    ],
  },
  {
    ns: 'sharing-overlap',
    what: 'equal keys but an overlapping port: asking for the address is refused (AddressConflict), the pools give another',
    services: [
      { name: 'one', annotations: { 'xdplb.io/allow-shared-ip': 'k' }, spec: lb({ loadBalancerIP: '203.0.113.0' }) },
      { name: 'two', annotations: { 'xdplb.io/allow-shared-ip': 'k' }, spec: lb({ loadBalancerIP: '203.0.113.0' }), later: true },
      { name: 'three', annotations: { 'xdplb.io/allow-shared-ip': 'k' }, spec: lb(), later: true },
    ],
    checks: [
      {
        expect: () => ({
          allocations: { 'sharing-overlap/one': ['203.0.113.0'], 'sharing-overlap/three': ['203.0.113.1'] },
          services: [out('sharing-overlap/one:http/203.0.113.0', '203.0.113.0'), out('sharing-overlap/three:http/203.0.113.1', '203.0.113.1')],
          events: ['sharing-overlap/one Normal IPAllocated', 'sharing-overlap/three Normal IPAllocated', 'sharing-overlap/two Warning AddressConflict', /held by the older Service sharing-overlap\/one/],
        }),
      },
    ],
  },
  {
    ns: 'sctp',
    what: 'an SCTP port gets UnsupportedProtocol and alone is skipped; a LoadBalancer of SCTP ports only gets no address and no service',
    services: [
      {
        name: 'mixed',
        spec: {
          type: 'ClusterIP',
          externalIPs: ['198.51.100.1'],
          ports: [
            { name: 'web', port: 80, protocol: 'TCP' },
            { name: 'sig', port: 3868, protocol: 'SCTP' },
            { name: 'dns', port: 53, protocol: 'UDP' },
          ],
        },
      },
      // a LoadBalancer none of whose ports is served gets no address (its status would name one nobody answers)
      { name: 'sctp-only', spec: lb({ ports: [{ name: 'sig', port: 3868, protocol: 'SCTP' }] }) },
    ],
    checks: [
      {
        expect: () => ({
          allocations: {},
          services: [out('sctp/mixed:dns/198.51.100.1', '198.51.100.1', { port: 53, protocol: 'udp' }), out('sctp/mixed:web/198.51.100.1', '198.51.100.1')],
          events: [
            'sctp/mixed Warning UnsupportedProtocol',
            /^port sig \(SCTP\/3868\) is not served: xdplb balances TCP and UDP only$/,
            'sctp/sctp-only Warning UnsupportedProtocol',
          ],
        }),
      },
    ],
  },
  {
    ns: 'dual-stack',
    what: 'dual stack per ipFamilies: one service per family, each with the nodes of its family; PreferDualStack gets both from the server',
    services: [
      { name: 'dual', spec: lb({ ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv4', 'IPv6'] }) },
      { name: 'prefer', spec: lb({ ipFamilyPolicy: 'PreferDualStack' }) },
      { name: 'v6', spec: lb({ ipFamilies: ['IPv6'] }) },
    ],
    checks: [
      {
        expect: (got) => {
          assert.deepEqual(got.service('prefer').spec?.ipFamilies, ['IPv4', 'IPv6'], 'PreferDualStack on a dual-stack cluster: the server sets both, its primary family first');
          assert.deepEqual(got.service('v6').spec?.ipFamilyPolicy, 'SingleStack');
          return {
            allocations: { 'dual-stack/dual': ['203.0.113.0', '2001:db8:64::'], 'dual-stack/prefer': ['203.0.113.1', '2001:db8:64::1'], 'dual-stack/v6': ['2001:db8:64::2'] },
            services: [
              out('dual-stack/dual:http/2001:db8:64::', '2001:db8:64::', { backends: V6 }),
              out('dual-stack/dual:http/203.0.113.0', '203.0.113.0'),
              out('dual-stack/prefer:http/2001:db8:64::1', '2001:db8:64::1', { backends: V6 }),
              out('dual-stack/prefer:http/203.0.113.1', '203.0.113.1'),
              out('dual-stack/v6:http/2001:db8:64::2', '2001:db8:64::2', { backends: V6 }),
            ],
            events: [
              'dual-stack/dual Normal IPAllocated',
              'dual-stack/dual Normal IPAllocated',
              'dual-stack/prefer Normal IPAllocated',
              'dual-stack/prefer Normal IPAllocated',
              'dual-stack/v6 Normal IPAllocated',
            ],
          };
        },
      },
    ],
  },
  {
    ns: 'affinity',
    what: 'sessionAffinity ClientIP → maglev-source; the server default (None) → maglev',
    services: [
      { name: 'a-sticky', spec: lb({ sessionAffinity: 'ClientIP' }) },
      { name: 'b-plain', spec: lb() },
    ],
    checks: [
      {
        expect: (got) => {
          assert.equal(got.service('b-plain').spec?.sessionAffinity, 'None');
          return {
            allocations: { 'affinity/a-sticky': ['203.0.113.0'], 'affinity/b-plain': ['203.0.113.1'] },
            services: [out('affinity/a-sticky:http/203.0.113.0', '203.0.113.0', { scheduler: 'maglev-source' }), out('affinity/b-plain:http/203.0.113.1', '203.0.113.1')],
            events: ['affinity/a-sticky Normal IPAllocated', 'affinity/b-plain Normal IPAllocated'],
          };
        },
      },
    ],
  },
  {
    ns: 'traffic-policy',
    what: 'externalTrafficPolicy: Cluster → every node on kube-proxy /healthz; Local → nodes with ready local endpoints (terminating ones drain) on the healthCheckNodePort',
    nodes: [
      { name: 'node-a', internalIPs: ['10.0.0.1'] },
      { name: 'node-b', internalIPs: ['10.0.0.2'] },
      { name: 'node-c', internalIPs: ['10.0.0.3'] },
    ],
    services: [
      { name: 'cluster', spec: lb({ externalTrafficPolicy: 'Cluster' }) },
      { name: 'local', spec: lb({ externalTrafficPolicy: 'Local' }) },
      { name: 'local-external-ip', spec: { type: 'ClusterIP', externalIPs: ['198.51.100.20'], externalTrafficPolicy: 'Local', ports: HTTP } },
      { name: 'local-none', spec: lb({ externalTrafficPolicy: 'Local' }) },
    ],
    slices: [
      { service: 'cluster', suffix: 'a', endpoints: [['node-a', { ready: true, serving: true, terminating: false }]] },
      {
        service: 'local',
        suffix: 'a',
        endpoints: [
          ['node-a', { ready: true, serving: true, terminating: false }],
          ['node-b', { ready: false, serving: true, terminating: true }],
          ['node-c', { ready: false, serving: false, terminating: false }],
        ],
      },
      { service: 'local', suffix: 'b', endpoints: [['node-b', { ready: false, serving: false, terminating: true }]] },
      { service: 'local-external-ip', suffix: 'a', endpoints: [['node-c', undefined]] }, // no conditions: ready
    ],
    checks: [
      {
        expect: (got) => {
          assert.equal(got.service('local-external-ip').spec?.healthCheckNodePort, undefined, 'the server allocates a healthCheckNodePort only for a Local LoadBalancer');
          return {
            allocations: { 'traffic-policy/cluster': ['203.0.113.0'], 'traffic-policy/local': ['203.0.113.1'], 'traffic-policy/local-none': ['203.0.113.2'] },
            services: [
              out('traffic-policy/cluster:http/203.0.113.0', '203.0.113.0', { backends: active('10.0.0.1', '10.0.0.2', '10.0.0.3') }),
              out('traffic-policy/local-external-ip:http/198.51.100.20', '198.51.100.20', { backends: active('10.0.0.3') }),
              out('traffic-policy/local-none:http/203.0.113.2', '203.0.113.2', { backends: [], healthCheck: { ...KUBE_PROXY, port: allocatedHealthCheckPort(got.service('local-none')) } }),
              out('traffic-policy/local:http/203.0.113.1', '203.0.113.1', {
                backends: [
                  { address: '10.0.0.1', state: 'active' },
                  { address: '10.0.0.2', state: 'draining' },
                ],
                healthCheck: { ...KUBE_PROXY, port: allocatedHealthCheckPort(got.service('local')) },
              }),
            ],
            events: [
              'traffic-policy/cluster Normal IPAllocated',
              'traffic-policy/local Normal IPAllocated',
              'traffic-policy/local-none Normal IPAllocated',
              'traffic-policy/local-none Warning NoEligibleNode',
              /^no eligible IPv4 node with a ready local endpoint \(externalTrafficPolicy: Local\): served with no backends, its packets are dropped$/,
            ],
          };
        },
      },
    ],
  },
  {
    ns: 'nodes',
    what: 'backends: Ready nodes, not excluded, inside nodeSelector, by their first InternalIP of the VIP family',
    nodes: [
      { name: 'ready', internalIPs: ['10.0.0.1', '10.0.0.11', 'fd00::1'], labels: { 'node-role.kubernetes.io/worker': '' } },
      { name: 'not-ready', internalIPs: ['10.0.0.2', 'fd00::2'], ready: false, labels: { 'node-role.kubernetes.io/worker': '' } },
      { name: 'unknown', internalIPs: ['10.0.0.3', 'fd00::3'], ready: 'absent', labels: { 'node-role.kubernetes.io/worker': '' } },
      { name: 'excluded', internalIPs: ['10.0.0.4', 'fd00::4'], labels: { 'node-role.kubernetes.io/worker': '', 'node.kubernetes.io/exclude-from-external-load-balancers': 'true' } },
      { name: 'control', internalIPs: ['10.0.0.5', 'fd00::5'], labels: { 'node-role.kubernetes.io/control-plane': '' } },
      { name: 'v6-only', internalIPs: ['fd00::6'], labels: { 'node-role.kubernetes.io/worker': '' } },
      { name: 'no-internal-ip', internalIPs: [], labels: { 'node-role.kubernetes.io/worker': '' } },
    ],
    services: [{ name: 'web', spec: lb({ ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv4', 'IPv6'] }) }],
    checks: (
      [
        ['', ['10.0.0.1', '10.0.0.5'], ['fd00::1', 'fd00::5', 'fd00::6']],
        ['node-role.kubernetes.io/worker', ['10.0.0.1'], ['fd00::1', 'fd00::6']],
        ['!node-role.kubernetes.io/worker', ['10.0.0.5'], ['fd00::5']],
      ] as const
    ).map(([nodeSelector, v4, v6]) => ({
      settings: { nodeSelector },
      expect: () => ({
        allocations: { 'nodes/web': ['203.0.113.0', '2001:db8:64::'] },
        services: [out('nodes/web:http/2001:db8:64::', '2001:db8:64::', { backends: active(...v6) }), out('nodes/web:http/203.0.113.0', '203.0.113.0', { backends: active(...v4) })],
        events: ['nodes/web Normal IPAllocated', 'nodes/web Normal IPAllocated'],
      }),
    })),
  },
  {
    ns: 'departing',
    what: 'a departing node (deleted but held by a finalizer, or tainted ToBeDeletedByClusterAutoscaler) drains',
    nodes: [
      { name: 'staying', internalIPs: ['10.0.0.1'] },
      { name: 'deleted', internalIPs: ['10.0.0.2'], deleting: true },
      { name: 'autoscaled', internalIPs: ['10.0.0.3'], taints: ['ToBeDeletedByClusterAutoscaler'] },
    ],
    services: [{ name: 'web', spec: lb() }],
    checks: [
      {
        expect: () => ({
          allocations: { 'departing/web': ['203.0.113.0'] },
          services: [
            out('departing/web:http/203.0.113.0', '203.0.113.0', {
              backends: [
                { address: '10.0.0.1', state: 'active' },
                { address: '10.0.0.2', state: 'draining' },
                { address: '10.0.0.3', state: 'draining' },
              ],
            }),
          ],
          events: ['departing/web Normal IPAllocated'],
        }),
      },
    ],
  },
];

describe('each rule of the translation, on objects read back from the API server', () => {
  for (const row of ROWS)
    test(`${row.ns}: ${row.what}`, async () => {
      await createRow(row);
      const got = await readBack(row.ns);
      // the premise of "later": each such Service is strictly younger than the one before it
      row.services.forEach((s, i) => {
        const before = row.services[i - 1];
        if (s.later && before)
          assert.ok(got.service(s.name).metadata!.creationTimestamp! > got.service(before.name).metadata!.creationTimestamp!, `${s.name} was created after ${before.name}`);
      });
      for (const c of row.checks) check(row, got, c);
    });
});

// ---------------------------------------------------------------- known mismatches

// externalIPs the API server accepts but kube-proxy on the nodes never programs
// (k8s.io/kubernetes v1.36.3 pkg/proxy: serviceToServiceMap skips a Service
// with no ClusterIP of the proxier's family and every headless one,
// ShouldSkipService; newBaseServiceInfo keeps only the externalIPs of that
// family). Serving them would send packets to nodes that drop them: not
// served, and a Warning (ExternalIPNotServed) on the Service.
describe('externalIPs the nodes do not serve', () => {
  const only = (t: Translation, service: string) => t.events.filter((e) => e.service === service);

  test('an externalIP of a family not in spec.ipFamilies is not served (kube-proxy ignores it)', async () => {
    const row: Objects = {
      ns: 'external-ip-family',
      services: [
        { name: 'v4-only', spec: { type: 'ClusterIP', externalIPs: ['198.51.100.30', '2001:db8:ee::30'], ports: HTTP } },
        { name: 'dual', spec: { type: 'ClusterIP', ipFamilyPolicy: 'RequireDualStack', externalIPs: ['198.51.100.31', '2001:db8:ee::31'], ports: HTTP } },
      ],
    };
    await createRow(row);
    const got = await readBack(row.ns);
    assert.deepEqual(got.service('v4-only').spec?.ipFamilies, ['IPv4'], 'the server accepts an IPv6 externalIP on a single-stack IPv4 Service');
    const t = translate(got.snapshot, { ...settings, externalIPs: ['198.51.100.0/24', '2001:db8:ee::/64'] });
    assert.deepEqual(t.services, [
      out('external-ip-family/dual:http/198.51.100.31', '198.51.100.31'),
      out('external-ip-family/dual:http/2001:db8:ee::31', '2001:db8:ee::31', { backends: V6 }),
      out('external-ip-family/v4-only:http/198.51.100.30', '198.51.100.30'),
    ]);
    const warnings = only(t, 'external-ip-family/v4-only');
    assert.equal(warnings.length, 1, 'one Warning says why 2001:db8:ee::30 is not served');
    assert.deepEqual([warnings[0]?.type, warnings[0]?.reason], ['Warning', 'ExternalIPNotServed']);
    assert.match(warnings[0]?.message ?? '', /2001:db8:ee::30/);
  });

  test('the externalIPs of a headless Service (clusterIP: None) are not served (kube-proxy skips it)', async () => {
    const row: Objects = {
      ns: 'external-ip-headless',
      services: [
        { name: 'headless', spec: { type: 'ClusterIP', clusterIP: 'None', externalIPs: ['198.51.100.40'], ports: HTTP } },
        { name: 'plain', spec: { type: 'ClusterIP', externalIPs: ['198.51.100.41'], ports: HTTP } },
      ],
    };
    await createRow(row);
    const got = await readBack(row.ns);
    assert.deepEqual(got.service('headless').spec?.clusterIPs, ['None'], 'the server accepts externalIPs on a headless Service');
    const t = translate(got.snapshot, settings);
    assert.deepEqual(t.services, [out('external-ip-headless/plain:http/198.51.100.41', '198.51.100.41')]);
    const warnings = only(t, 'external-ip-headless/headless');
    assert.equal(warnings.length, 1, 'one Warning says why 198.51.100.40 is not served');
    assert.deepEqual([warnings[0]?.type, warnings[0]?.reason], ['Warning', 'ExternalIPNotServed']);
  });
});

// ---------------------------------------------------------------- the server's part

/** The code and message of a refused request. */
function refusal(err: unknown): { code: number | undefined; message: string } {
  const e = err as { code?: number; body?: unknown };
  const body = typeof e.body === 'string' ? (JSON.parse(e.body) as { message?: string }) : (e.body as { message?: string } | undefined);
  return { code: e.code, message: body?.message ?? String(err) };
}

/** The client's model objects as plain data (they are class instances, which deepStrictEqual tells apart). */
function plain(x: unknown): unknown {
  return x === undefined ? undefined : JSON.parse(JSON.stringify(x));
}

async function refused(what: string, request: Promise<unknown>, code: number, message: RegExp): Promise<void> {
  const err = await request.then(
    () => assert.fail(`${what}: the server accepted it`),
    (e: unknown) => e,
  );
  const r = refusal(err);
  assert.equal(r.code, code, `${what}: ${r.message}`);
  assert.match(r.message, message, what);
}

describe('what the API server fills in, and refuses, that the hand-written fixtures leave out', () => {
  const ns = 'server-defaults';
  const create = (name: string, spec: k8s.V1ServiceSpec) => core.createNamespacedService({ namespace: ns, body: { metadata: { name }, spec } });
  const inNodePortRange = (p: number | undefined) => p !== undefined && p >= 30000 && p <= 32767;

  before(async () => {
    await core.createNamespace({ body: { metadata: { name: ns } } });
  });

  test('Services: families, policies and affinity are always set; healthCheckNodePort only for a Local LoadBalancer', async () => {
    const minimal = await create('minimal-lb', { type: 'LoadBalancer', ports: [{ port: 80 }] });
    const { clusterIP, clusterIPs, ports, ...spec } = minimal.spec ?? {};
    assert.deepEqual(spec, {
      allocateLoadBalancerNodePorts: true,
      externalTrafficPolicy: 'Cluster',
      internalTrafficPolicy: 'Cluster',
      ipFamilies: ['IPv4'],
      ipFamilyPolicy: 'SingleStack',
      sessionAffinity: 'None',
      type: 'LoadBalancer',
    }, 'no loadBalancerClass, no healthCheckNodePort, no sessionAffinityConfig');
    assert.match(clusterIP ?? '', /^10\.96\./);
    assert.deepEqual(clusterIPs, [clusterIP]);
    assert.equal(ports?.length, 1);
    assert.equal(ports?.[0]?.protocol, 'TCP', 'a port without protocol is TCP');
    assert.equal(ports?.[0]?.targetPort, 80);
    assert.ok(inNodePortRange(ports?.[0]?.nodePort), 'a LoadBalancer gets node ports');
    assert.deepEqual(plain(minimal.status), { loadBalancer: {} }, 'status.loadBalancer is there, with no ingress');
    const created = minimal.metadata?.creationTimestamp;
    assert.ok(created instanceof Date, 'the client hands creationTimestamp over as a Date');
    assert.equal(created.getUTCMilliseconds(), 0, 'creationTimestamp has one-second resolution: Services created in one second tie, and their names decide compareAge');

    const local = await create('local-lb', { type: 'LoadBalancer', externalTrafficPolicy: 'Local', ports: [{ port: 80 }] });
    assert.ok(inNodePortRange(local.spec?.healthCheckNodePort), 'a Local LoadBalancer gets a healthCheckNodePort');
    const noNodePorts = await create('local-lb-no-node-ports', { type: 'LoadBalancer', externalTrafficPolicy: 'Local', allocateLoadBalancerNodePorts: false, ports: [{ port: 80 }] });
    assert.ok(inNodePortRange(noNodePorts.spec?.healthCheckNodePort), 'even without node ports');
    assert.equal(noNodePorts.spec?.ports?.[0]?.nodePort, undefined);

    const clusterIp = await create('cluster-ip', { ports: [{ port: 80 }] });
    assert.equal(clusterIp.spec?.type, 'ClusterIP');
    assert.equal(clusterIp.spec?.externalTrafficPolicy, undefined, 'a ClusterIP Service without externalIPs has no externalTrafficPolicy');
    const external = await create('external-ip', { externalIPs: ['198.51.100.1', '198.51.100.1', '2001:DB8::2'], ports: [{ port: 80 }] });
    assert.equal(external.spec?.externalTrafficPolicy, 'Cluster', 'one with externalIPs is externally accessible: Cluster by default');
    assert.deepEqual(external.spec?.externalIPs, ['198.51.100.1', '198.51.100.1', '2001:DB8::2'], 'kept verbatim: duplicates, upper case, another family than the ClusterIP');
    const externalLocal = await create('external-ip-local', { externalIPs: ['198.51.100.2'], externalTrafficPolicy: 'Local', ports: [{ port: 80 }] });
    assert.equal(externalLocal.spec?.externalTrafficPolicy, 'Local');
    assert.equal(externalLocal.spec?.healthCheckNodePort, undefined, 'no healthCheckNodePort for a Local Service that is not a LoadBalancer');

    const sticky = await create('sticky', { sessionAffinity: 'ClientIP', ports: [{ port: 80 }] });
    assert.deepEqual(plain(sticky.spec?.sessionAffinityConfig), { clientIP: { timeoutSeconds: 10800 } }, 'ClientIP affinity gets a 3-hour timeout');

    const headless = await create('headless', { clusterIP: 'None', ports: [{ port: 80 }] });
    assert.deepEqual([headless.spec?.ipFamilyPolicy, headless.spec?.ipFamilies], ['RequireDualStack', ['IPv4', 'IPv6']], 'a headless Service on a dual-stack cluster is dual-stack');

    const loose = await create('loose-lb-ip', { type: 'LoadBalancer', loadBalancerIP: ' 203.0.113.1', ports: [{ port: 80 }] });
    assert.equal(loose.spec?.loadBalancerIP, ' 203.0.113.1', 'spec.loadBalancerIP is kept verbatim and not validated');
    const externalName = await create('external-name', { type: 'ExternalName', externalName: 'a.example', externalIPs: ['198.51.100.3'] });
    assert.deepEqual(externalName.spec?.externalIPs, ['198.51.100.3'], 'an ExternalName Service may carry externalIPs');
  });

  test('Services the server refuses (so no translation rule ever meets them)', async () => {
    for (const [ip, message] of [
      ['not-an-ip', /must be a valid IP address/],
      ['127.0.0.1', /loopback/],
      ['0.0.0.0', /unspecified/],
      ['224.0.0.1', /link-local multicast/],
    ] as const)
      await refused(`externalIP ${ip}`, create('bad-external-ip', { externalIPs: [ip], ports: [{ port: 80 }] }), 422, message);
    await refused('two ports without names', create('unnamed', { externalIPs: ['198.51.100.1'], ports: [{ port: 80 }, { port: 443 }] }), 422, /spec\.ports\[0\]\.name: Required value/);
    await refused('a class on a ClusterIP Service', create('classy', { loadBalancerClass: 'xdplb.io/dr', ports: [{ port: 80 }] }), 422, /loadBalancerClass: Forbidden/);
    await refused('a headless LoadBalancer', create('headless-lb', { type: 'LoadBalancer', clusterIP: 'None', ports: [{ port: 80 }] }), 422, /may not be set to 'None' for LoadBalancer services/);
  });

  test('type LoadBalancer → ClusterIP: the server clears status.loadBalancer, the class, the policy and the node ports; it keeps spec.loadBalancerIP', async () => {
    await create('was-lb', lb({ loadBalancerIP: '203.0.113.1', externalTrafficPolicy: 'Local' }));
    const current = await core.readNamespacedService({ namespace: ns, name: 'was-lb' });
    current.status = { loadBalancer: { ingress: [{ ip: '203.0.113.1', ipMode: 'VIP' }] } };
    await core.replaceNamespacedServiceStatus({ namespace: ns, name: 'was-lb', body: current });
    const withStatus = await core.readNamespacedService({ namespace: ns, name: 'was-lb' });
    assert.deepEqual(plain(withStatus.status?.loadBalancer?.ingress), [{ ip: '203.0.113.1', ipMode: 'VIP' }]);
    withStatus.spec!.type = 'ClusterIP'; // and nothing else: the rest is as read back
    const changed = await core.replaceNamespacedService({ namespace: ns, name: 'was-lb', body: withStatus });
    assert.deepEqual(plain(changed.status), { loadBalancer: {} }, 'the API server clears status.loadBalancer itself');
    assert.deepEqual(
      [changed.spec?.loadBalancerClass, changed.spec?.externalTrafficPolicy, changed.spec?.healthCheckNodePort, changed.spec?.allocateLoadBalancerNodePorts, changed.spec?.ports?.[0]?.nodePort],
      [undefined, undefined, undefined, undefined, undefined],
    );
    assert.equal(changed.spec?.loadBalancerIP, '203.0.113.1', 'spec.loadBalancerIP stays');
  });

  test('Nodes keep the status they are created with (and get the not-ready taint); an endpoint without conditions has {}', async () => {
    const node = await core.createNode({
      body: { metadata: { name: 'defaults-node', labels: { [ROW_LABEL]: ns } }, status: { addresses: [{ type: 'InternalIP', address: '10.0.0.1' }], conditions: [{ type: 'Ready', status: 'True' }] } },
    });
    assert.deepEqual(plain(node.status?.addresses), [{ type: 'InternalIP', address: '10.0.0.1' }]);
    assert.deepEqual(node.status?.conditions?.map((c) => [c.type, c.status]), [['Ready', 'True']]);
    assert.deepEqual(node.spec?.taints?.map((t) => `${t.key}:${t.effect}`), ['node.kubernetes.io/not-ready:NoSchedule'], 'added on create whatever the conditions say; no controller here takes it off');
    await discovery.createNamespacedEndpointSlice({
      namespace: ns,
      body: { metadata: { name: 'bare', labels: { 'kubernetes.io/service-name': 'bare' } }, addressType: 'IPv4', endpoints: [{ addresses: ['10.244.0.1'], nodeName: 'defaults-node' }] },
    });
    const [slice] = (await discovery.listNamespacedEndpointSlice({ namespace: ns })).items;
    assert.deepEqual(plain(slice?.endpoints?.[0]?.conditions), {}, 'conditions: {} (each absent: ready)');
  });
});

test('addresses written to status are read back: the next translation keeps them with no new Event, and a Service that stops being a LoadBalancer lets its address go', async () => {
  const row: Objects = { ns: 'restart', services: [{ name: 'old', spec: lb() }, { name: 'web', spec: lb(), later: true }] };
  await createRow(row);
  const first = translate((await readBack(row.ns)).snapshot, settings);
  assert.deepEqual(Object.fromEntries(first.allocations), { 'restart/old': ['203.0.113.0'], 'restart/web': ['203.0.113.1'] });
  assert.deepEqual(eventLines(first), ['restart/old Normal IPAllocated', 'restart/web Normal IPAllocated']);
  for (const [key, ips] of first.allocations) {
    const name = key.split('/')[1]!;
    const s = await core.readNamespacedService({ namespace: row.ns, name });
    s.status = { loadBalancer: { ingress: ips.map((ip) => ({ ip, ipMode: 'VIP' })) } };
    await core.replaceNamespacedServiceStatus({ namespace: row.ns, name, body: s });
  }

  const restarted = await readBack(row.ns); // a new director: no previous translation, only what status says
  assert.deepEqual(restarted.service('web').status?.loadBalancer?.ingress?.map((i) => [i.ip, i.ipMode]), [['203.0.113.1', 'VIP']]);
  const second = translate(restarted.snapshot, settings);
  assert.deepEqual(Object.fromEntries(second.allocations), Object.fromEntries(first.allocations));
  assert.deepEqual(second.services, first.services);
  assert.deepEqual(second.events, [], 'a kept address is not announced again');

  const web = restarted.service('web');
  web.spec!.type = 'ClusterIP';
  await core.replaceNamespacedService({ namespace: row.ns, name: 'web', body: web });
  const third = translate((await readBack(row.ns)).snapshot, settings, second.allocations);
  assert.deepEqual(Object.fromEntries(third.allocations), { 'restart/old': ['203.0.113.0'] });
  assert.deepEqual(third.services.map((s) => s.name), ['restart/old:http/203.0.113.0']);
});

// ---------------------------------------------------------------- Events

describe('an Event as the director will write it (events.k8s.io/v1, @kubernetes/client-node 2.0.1)', () => {
  const ns = 'events';
  let regarding: k8s.V1ObjectReference;

  before(async () => {
    await core.createNamespace({ body: { metadata: { name: ns } } });
    const svc = await core.createNamespacedService({ namespace: ns, body: { metadata: { name: 'web' }, spec: lb() } });
    regarding = { apiVersion: 'v1', kind: 'Service', namespace: ns, name: 'web', uid: svc.metadata?.uid };
  });

  /**
   * The recipe. eventTime is a MicroTime: RFC 3339 with exactly six
   * fractional digits. The client sends the model's eventTime through
   * JSON.stringify unchanged (its serializer does not know the type
   * V1MicroTime), so the value must print itself that way: the client's own
   * V1MicroTime class does (toISOString pads milliseconds to six digits). A
   * plain Date also type-checks (V1MicroTime adds no member) and is refused.
   */
  function event(o: Partial<k8s.EventsV1Event> = {}): k8s.EventsV1Event {
    return {
      metadata: { name: `web.${randomBytes(8).toString('hex')}`, namespace: ns },
      eventTime: new k8s.V1MicroTime(),
      reportingController: 'xdplb.io/director',
      reportingInstance: 'director-1',
      action: 'Allocate',
      reason: 'IPAllocated',
      regarding,
      note: 'assigned 203.0.113.0 from pool 203.0.113.0/30',
      type: 'Normal',
      ...o,
    };
  }

  test('is accepted with a V1MicroTime, and reads back with its time as a string', async () => {
    const sent = event();
    const created = await events.createNamespacedEvent({ namespace: ns, body: sent });
    assert.equal(created.metadata?.name, sent.metadata?.name);
    const listed = (await events.listNamespacedEvent({ namespace: ns })).items.find((e) => e.metadata?.name === sent.metadata?.name);
    assert.ok(listed);
    const time = listed.eventTime as unknown;
    assert.equal(typeof time, 'string', 'the client does not turn a MicroTime back into a Date');
    assert.equal(time, sent.eventTime.toISOString(), 'six fractional digits, as sent');
    assert.match(time as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    assert.deepEqual(
      [listed.reason, listed.type, listed.action, listed.note, listed.reportingController, listed.reportingInstance, listed.regarding?.uid],
      ['IPAllocated', 'Normal', 'Allocate', sent.note, 'xdplb.io/director', 'director-1', regarding.uid],
    );
    const legacy = (await core.listNamespacedEvent({ namespace: ns })).items.find((e) => e.metadata?.name === sent.metadata?.name);
    assert.deepEqual(
      [legacy?.involvedObject.kind, legacy?.involvedObject.name, legacy?.message, legacy?.reportingComponent],
      ['Service', 'web', sent.note, 'xdplb.io/director'],
      'kubectl describe service (core/v1 Events) shows it',
    );
    const text = await events.createNamespacedEvent({ namespace: ns, body: event({ eventTime: '2026-01-01T00:00:00.123456Z' as unknown as k8s.V1MicroTime }) });
    assert.ok(text.metadata?.name, 'a string with six fractional digits is sent as it is, and accepted too');
  });

  test('a plain Date (milliseconds) is refused: the MicroTime parser wants exactly six digits', async () => {
    await refused('eventTime: new Date()', events.createNamespacedEvent({ namespace: ns, body: event({ eventTime: new Date() }) }), 400, /cannot parse "\.\d{3}Z" as "\.000000"/);
    await refused('no fraction', events.createNamespacedEvent({ namespace: ns, body: event({ eventTime: '2026-01-01T00:00:00Z' as unknown as k8s.V1MicroTime }) }), 400, /cannot parse "Z" as "\.000000"/);
  });

  test('which fields are required, and the limits', async () => {
    const without = (field: keyof k8s.EventsV1Event) => {
      const body: Partial<k8s.EventsV1Event> = event();
      delete body[field];
      return events.createNamespacedEvent({ namespace: ns, body: body as k8s.EventsV1Event });
    };
    await refused('no metadata.name', events.createNamespacedEvent({ namespace: ns, body: event({ metadata: { namespace: ns } }) }), 422, /name or generateName is required/);
    await refused('no eventTime', without('eventTime'), 422, /eventTime: Required value/);
    await refused('no reportingController', without('reportingController'), 422, /reportingController: Required value/);
    await refused('no reportingInstance', without('reportingInstance'), 422, /reportingInstance: Required value/);
    await refused('no action', without('action'), 422, /action: Required value/);
    await refused('no reason', without('reason'), 422, /reason: Required value/);
    await refused('no type', without('type'), 422, /type: Invalid value: "": has invalid value: $/);
    await refused('type Info', events.createNamespacedEvent({ namespace: ns, body: event({ type: 'Info' }) }), 422, /has invalid value: Info/);
    await refused('no regarding (outside "default")', without('regarding'), 422, /involvedObject\.namespace: Invalid value: "": does not match event\.namespace/);
    await refused('a reportingController that is not a qualified name', events.createNamespacedEvent({ namespace: ns, body: event({ reportingController: 'xdplb director' }) }), 422, /reportingController: Invalid value/);
    await refused('a reason over 128', events.createNamespacedEvent({ namespace: ns, body: event({ reason: 'R'.repeat(129) }) }), 422, /reason: .*at most 128 characters/);
    await refused('an action over 128', events.createNamespacedEvent({ namespace: ns, body: event({ action: 'A'.repeat(129) }) }), 422, /action: .*at most 128 characters/);
    // note: at most 1024 *bytes* (the message says characters): 600 "é" are 1200 bytes
    await refused('a note over 1024 bytes', events.createNamespacedEvent({ namespace: ns, body: event({ note: 'é'.repeat(600) }) }), 422, /at most 1024 characters/);
    assert.ok((await events.createNamespacedEvent({ namespace: ns, body: event({ note: 'n'.repeat(1024) }) })).metadata?.name, '1024 ASCII characters fit');
    assert.ok((await without('note')).metadata?.name, 'note is optional');
  });
});
