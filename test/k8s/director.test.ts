// The director in Kubernetes mode against a real API server (etcd and
// kube-apiserver from test/kube-server): `xdplb attach --kubeconfig` in a
// network namespace of its own (one veth), the API server reached through a
// relay. Objects are created on the server as an operator or a controller
// would; what the director serves is read from its API (`xdplb status
// --json`) and from the pins; what it writes (status, Events) from the API
// server. The lab test (test/lab/kubernetes.test.ts) sends real traffic.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { startKube, type KubeCluster } from '../helpers/kube.ts';
import { relayIntoNetns, type Relay } from '../helpers/relay.ts';
import { eventually as waitFor } from '../helpers/eventually.ts';
import { DIRECTOR_RULES } from '../../src/k8s/rbac.ts';

const NS = 'xdplb-k8s-test-dir';
/** The nodes' side of the veth: their addresses, and kube-proxy's /healthz on 10256 for each. */
const NODES_NS = 'xdplb-k8s-test-nodes';
const XDPLB = fileURLToPath(new URL('../../bin/xdplb', import.meta.url));
const PIN = '/sys/fs/bpf/xdplb-k8s-test-dir';
const dir = mkdtempSync(join(tmpdir(), 'xdplb-k8s-director-'));
const runDir = join(dir, 'run');
const env = { ...process.env, XDPLB_RUN_DIR: runDir, XDPLB_LOG_FORMAT: 'json' };
const NODES = [1, 2, 3].map((i) => ({ name: `node-${i}`, ip: `10.240.0.${100 + i}` }));

let kube: KubeCluster;
let core: k8s.CoreV1Api;
let relay: Relay;
let director: { child: ChildProcess; log: () => string; exited: Promise<number | null> } | null = null;
let kubeProxy: ChildProcess | null = null;

const inNs = (argv: string[]) => ['nsenter', `--net=/var/run/netns/${NS}`, '--', ...argv];

function sh(cmd: string): string {
  return execFileSync('sh', ['-c', cmd], { encoding: 'utf8' });
}

function xdplb(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const argv = inNs([XDPLB, ...args]);
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env, timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface ServiceState {
  name: string;
  vip: string;
  port: number;
  protocol: string;
  scheduler: string;
  backends: { address: string; state: string }[];
}

function served(): ServiceState[] {
  const r = xdplb('status', '--pin-dir', PIN, '--json');
  assert.equal(r.status, 0, r.stderr);
  return (JSON.parse(r.stdout) as { services: ServiceState[] }).services;
}

function eventually<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, ms = 20000): Promise<T> {
  return waitFor(what, fn, { ms, context: () => director?.log().slice(-3000) ?? '' });
}

async function startDirector(configText: string, kubeconfig: string): Promise<void> {
  const path = join(dir, 'config.yaml');
  writeFileSync(path, configText);
  const argv = inNs([XDPLB, 'attach', '-c', path, '--pin-dir', PIN, '--kubeconfig', kubeconfig]);
  const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let text = '';
  child.stderr!.on('data', (c: Buffer) => (text += c.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  director = { child, log: () => text, exited };
  await eventually('the director to be ready', () => text.includes('"msg":"ready"') || child.exitCode !== null, 40_000);
  assert.equal(child.exitCode, null, `the director exited:\n${text}`);
}

async function stopDirector(): Promise<void> {
  if (!director) return;
  if (director.child.exitCode === null) director.child.kill('SIGTERM');
  await director.exited;
  director = null;
}

function node(name: string, ip: string, o: { ready?: boolean; labels?: Record<string, string> } = {}): k8s.V1Node {
  return {
    metadata: { name, labels: o.labels ?? {} },
    status: { conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }], addresses: [{ type: 'InternalIP', address: ip }] },
  };
}

/** Creates a Node with its status (the status subresource: the create ignores it). */
async function createNode(n: k8s.V1Node): Promise<void> {
  const created = await core.createNode({ body: n });
  await core.replaceNodeStatus({ name: n.metadata!.name!, body: { ...created, status: n.status } });
}

const CONFIG = `interface: veth0
mode: generic
kubernetes:
  externalIPs: [10.240.0.200/29]
  pools: [10.240.0.208/30]
  nodeHealthCheck: { interval: 1s, timeout: 500ms }
  drainTimeout: 3s
`;

before(async () => {
  kube = await startKube();
  core = kube.admin.makeApiClient(k8s.CoreV1Api);
  for (const ns of [NS, NODES_NS]) {
    spawnSync('ip', ['netns', 'del', ns]);
    execFileSync('ip', ['netns', 'add', ns]);
    sh(`ip -n ${ns} link set lo up`);
  }
  sh(`ip -n ${NS} link add veth0 type veth peer name veth1 netns ${NODES_NS} && ip -n ${NS} link set veth0 up && ip -n ${NODES_NS} link set veth1 up`);
  sh(`ip -n ${NS} addr add 10.240.0.2/24 dev veth0`);
  for (const n of NODES) sh(`ip -n ${NODES_NS} addr add ${n.ip}/24 dev veth1`);
  const proxy = ['nsenter', `--net=/var/run/netns/${NODES_NS}`, '--', process.execPath, '-e', "require('node:http').createServer((q, r) => r.end('{}')).listen(10256, () => console.log('ready'))"];
  kubeProxy = spawn(proxy[0]!, proxy.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => kubeProxy!.stdout!.once('data', r));
  mkdirSync(runDir, { recursive: true });
  relay = await relayIntoNetns(NS, Number(new URL(kube.server).port));
  for (const n of NODES) await createNode(node(n.name, n.ip));
});

after(async () => {
  await stopDirector();
  const d = inNs([XDPLB, 'detach', '--pin-dir', PIN, '--force']);
  spawnSync(d[0]!, d.slice(1), { env });
  rmSync(PIN, { recursive: true, force: true });
  await relay?.stop();
  kubeProxy?.kill('SIGKILL');
  for (const ns of [NS, NODES_NS]) spawnSync('ip', ['netns', 'del', ns]);
  await kube?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function externalService(name: string, externalIPs: string[]): k8s.V1Service {
  return { metadata: { name }, spec: { type: 'ClusterIP', externalIPs, ports: [{ name: 'http', port: 80, protocol: 'TCP' }], selector: { app: name } } };
}

function loadBalancer(name: string, o: { ports?: k8s.V1ServicePort[] } = {}): k8s.V1Service {
  return { metadata: { name }, spec: { type: 'LoadBalancer', loadBalancerClass: 'xdplb.io/dr', ports: o.ports ?? [{ name: 'http', port: 80, protocol: 'TCP' }], selector: { app: name } } };
}

/** The director's /metrics, from inside its namespace. */
function metricsText(): string {
  const argv = inNs([process.execPath, '-e', "fetch('http://127.0.0.1:9842/metrics').then(async (r) => process.stdout.write(await r.text()))"]);
  return spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' }).stdout;
}

/** What is served once every backend is active (health checks passed). */
function allActive(): Promise<ServiceState[]> {
  return eventually('every backend active', () => {
    const s = served();
    return s.every((x) => x.backends.length === NODES.length && x.backends.every((b) => b.state === 'active')) && s;
  });
}

async function events(name: string): Promise<k8s.EventsV1Event[]> {
  const events = kube.admin.makeApiClient(k8s.EventsV1Api);
  return (await events.listNamespacedEvent({ namespace: 'default', fieldSelector: `regarding.name=${name}` })).items;
}

describe('the director serves the cluster\'s Services', () => {
  test('a director whose ServiceAccount has exactly the director\'s rules starts, lists and serves', async () => {
    const rbac = kube.admin.makeApiClient(k8s.RbacAuthorizationV1Api);
    await rbac.createClusterRole({ body: { metadata: { name: 'xdplb-director' }, rules: DIRECTOR_RULES.map((r) => ({ apiGroups: [...r.apiGroups], resources: [...r.resources], verbs: [...r.verbs] })) } });
    await rbac.createClusterRoleBinding({
      body: { metadata: { name: 'xdplb-director' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'xdplb-director' }, subjects: [{ kind: 'ServiceAccount', name: 'xdplb-director', namespace: 'default' }] },
    });
    const sa = await kube.asServiceAccount('default', 'xdplb-director');
    const kubeconfig = join(dir, 'director.kubeconfig');
    writeFileSync(kubeconfig, sa.exportConfig());
    await core.createNamespacedService({ namespace: 'default', body: externalService('web', ['10.240.0.201', '192.0.2.7']) });
    await startDirector(CONFIG, kubeconfig);
    const [web] = await eventually('web served', () => {
      const s = served().filter((x) => x.name.startsWith('default/web:'));
      return s.length === 1 && s;
    });
    assert.equal(web!.name, 'default/web:http/10.240.0.201');
    assert.deepEqual([web!.vip, web!.port, web!.protocol], ['10.240.0.201', 80, 'TCP']);
    assert.deepEqual(web!.backends.map((b) => b.address).sort(), NODES.map((n) => n.ip));
    const refused = await eventually('the ExternalIPNotAllowed Event', async () => (await events('web')).find((e) => e.reason === 'ExternalIPNotAllowed'));
    assert.equal(refused.type, 'Warning');
    assert.match(refused.note ?? '', /192\.0\.2\.7/);
    assert.equal(refused.reportingController, 'xdplb.io/director');
  });

  test('a LoadBalancer gets an address from the pool, written to its status with ipMode VIP, and is served', async () => {
    await core.createNamespacedService({ namespace: 'default', body: loadBalancer('shop') });
    const ingress = await eventually('status.loadBalancer.ingress', async () => (await core.readNamespacedServiceStatus({ namespace: 'default', name: 'shop' })).status?.loadBalancer?.ingress?.[0]);
    assert.deepEqual({ ip: ingress.ip, ipMode: ingress.ipMode }, { ip: '10.240.0.208', ipMode: 'VIP' });
    await eventually('shop served', () => served().some((s) => s.name === 'default/shop:http/10.240.0.208'));
    const allocated = await eventually('the IPAllocated Event', async () => (await events('shop')).find((e) => e.reason === 'IPAllocated'));
    assert.equal(allocated.type, 'Normal');
  });

  test('a Node NotReady drains from every Service (its flows kept, no new ones) and goes after drainTimeout; Ready again, it is back', async () => {
    const n = await core.readNodeStatus({ name: 'node-2' });
    n.status!.conditions = [{ type: 'Ready', status: 'False' }];
    await core.replaceNodeStatus({ name: 'node-2', body: n });
    const state = (address: string) => served().map((s) => s.backends.find((b) => b.address === address)?.state ?? 'absent');
    await eventually('node-2 draining', () => state('10.240.0.102').every((st) => st === 'draining'));
    await eventually('node-2 gone after drainTimeout (3s)', () => state('10.240.0.102').every((st) => st === 'absent'), 10_000);
    const back = await core.readNodeStatus({ name: 'node-2' });
    back.status!.conditions = [{ type: 'Ready', status: 'True' }];
    await core.replaceNodeStatus({ name: 'node-2', body: back });
    await eventually('node-2 back', () => served().every((s) => s.backends.some((b) => b.address === '10.240.0.102')));
  });

  test('the API server unreachable: everything stays served; reachable again: nothing rewritten', async () => {
    const before = await allActive();
    await relay.pause();
    try {
      await eventually('a watch seen down', () => {
        const r = xdplb('status', '--pin-dir', PIN);
        return /DOWN/.test(r.stdout) && r.stdout;
      }, 60_000);
      assert.deepEqual(served(), before, 'nothing changed while the API server was away');
    } finally {
      await relay.resume();
    }
    await eventually('the watches up again', () => !/DOWN/.test(xdplb('status', '--pin-dir', PIN).stdout), 60_000);
    assert.deepEqual(served(), before);
  });

  test('restarted while the API server is away: it serves what it served, from the kept set', async () => {
    const before = await allActive();
    await stopDirector();
    await relay.pause();
    try {
      await startDirector(CONFIG, join(dir, 'director.kubeconfig'));
      assert.deepEqual(served(), before);
      assert.match(director!.log(), /kept until the API server has been listed/);
    } finally {
      await relay.resume();
    }
    await eventually('synced', () => /synced;/.test(xdplb('status', '--pin-dir', PIN).stdout), 60_000);
    assert.deepEqual(served(), before);
    await new Promise((r) => setTimeout(r, 500)); // pino writes asynchronously: the last lines are out
    const reconciles = director!.log().split('\n').filter((l) => l.includes('"msg":"reconciled"'));
    assert.ok(reconciles.every((l) => l.includes('"writes":0')), `a restart rewrites nothing:\n${reconciles.join('\n')}`);
  });

  test('one EndpointSlice change plans and writes only its own Service', async () => {
    await core.createNamespacedService({
      namespace: 'default',
      body: { metadata: { name: 'local' }, spec: { type: 'ClusterIP', externalIPs: ['10.240.0.203'], externalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, protocol: 'TCP' }], selector: { app: 'local' } } },
    });
    const discovery = kube.admin.makeApiClient(k8s.DiscoveryV1Api);
    const slice = (nodes: string[]): k8s.V1EndpointSlice => ({
      metadata: { name: 'local-1', labels: { 'kubernetes.io/service-name': 'local' } },
      addressType: 'IPv4',
      endpoints: nodes.map((n, i) => ({ addresses: [`10.244.0.${i + 1}`], nodeName: n, conditions: { ready: true } })),
    });
    await discovery.createNamespacedEndpointSlice({ namespace: 'default', body: slice(['node-1']) });
    const backendsOf = () => served().find((x) => x.name === 'default/local:http/10.240.0.203')?.backends.map((b) => b.address).sort();
    await eventually('local served by node-1', () => backendsOf()?.join() === '10.240.0.101');
    await new Promise((r) => setTimeout(r, 1000)); // the log of that change written out (pino writes asynchronously)
    const logAt = director!.log().length;
    const have = await discovery.readNamespacedEndpointSlice({ namespace: 'default', name: 'local-1' });
    await discovery.replaceNamespacedEndpointSlice({ namespace: 'default', name: 'local-1', body: { ...slice(['node-1', 'node-3']), metadata: { ...slice([]).metadata, resourceVersion: have.metadata?.resourceVersion } } });
    await eventually('local served by node-1 and node-3', () => backendsOf()?.join() === '10.240.0.101,10.240.0.103');
    await eventually('the change logged', () => director!.log().slice(logAt).includes('"msg":"reconciled"'));
    await new Promise((r) => setTimeout(r, 500));
    const reconciles = director!.log().slice(logAt).split('\n').filter((l) => l.includes('"msg":"reconciled"')).map((l) => JSON.parse(l) as { reason: string; services: number });
    assert.ok(reconciles.length > 0, 'the change was reconciled');
    for (const r of reconciles) assert.equal(r.services, 1, `only local was planned: ${JSON.stringify(r)}`);
  });

  test('a watch whose resourceVersion was compacted away relists (410 Gone) and catches up', async () => {
    const relists = () => (JSON.parse(xdplb('status', '--pin-dir', PIN, '--json').stdout) as { kubernetes: { watches: { kind: string; relists: number }[] } }).kubernetes.watches.find((w) => w.kind === 'services')!.relists;
    const before = relists();
    await relay.pause();
    try {
      await eventually('the watches seen down', () => /DOWN/.test(xdplb('status', '--pin-dir', PIN).stdout), 60_000);
      await core.createNamespacedService({ namespace: 'default', body: externalService('late', ['10.240.0.204']) });
      await kube.compactEtcd();
    } finally {
      await relay.resume();
    }
    await eventually('late served', () => served().some((x) => x.name === 'default/late:http/10.240.0.204'), 60_000);
    assert.ok(relists() > before, 'the Services were listed again');
    const metrics = metricsText();
    for (const series of [/^xdplb_kubernetes_synced 1$/m, /^xdplb_kubernetes_watch_up\{resource="services"\} 1$/m, /^xdplb_kubernetes_watch_relists_total\{resource="services"\} [1-9]/m, /^xdplb_kubernetes_refusals\{reason="ExternalIPNotAllowed"\} 1$/m, /^xdplb_kubernetes_services_served [1-9]/m, /^xdplb_kubernetes_events_total\{result="written"\} [1-9]/m, /^xdplb_service_packets_total\{name="default\/late:http\/10\.240\.0\.204"/m])
      assert.match(metrics, series);
  });

  test('deleted: its VIP is no longer served', async () => {
    await core.deleteNamespacedService({ namespace: 'default', name: 'shop' });
    await eventually('shop gone', () => !served().some((s) => s.name.startsWith('default/shop:')));
  });
});
