// The Kubernetes mode end to end, with real traffic: the lab (a client, a
// native-XDP director, three backends on one bridge) and a real API server
// (etcd and kube-apiserver from test/kube-server), reached from the
// director's namespace through a relay. The lab's backends are registered as
// Nodes; on each, the test plays kube-proxy: /healthz on 10256, and each
// Local Service's healthCheckNodePort answered 200 only while the node has a
// ready local endpoint in the Service's EndpointSlices (503 otherwise), as
// kube-proxy answers it. Services are made with kubectl and the client, as
// an operator and the controllers would.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { clientRequests, directorPid, inNs, LAB, labDown, labUp, readLabStatus, startDirector, stopDirector } from '../../src/lab/lab.ts';
import { startKube, type KubeCluster } from '../helpers/kube.ts';
import { relayIntoNetns, type Relay } from '../helpers/relay.ts';
import { AGENT_RULES } from '../../src/k8s/rbac.ts';
import { eventually as waitFor } from '../helpers/eventually.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLIENT = `${ROOT}src/lab/client.ts`;
const NODES = [1, 2, 3];
const nodeName = (i: number) => LAB.backendName(i);
/** The LoadBalancer pool: one address, on every backend's lo like the lab's VIP. */
const POOL_IP = '10.240.0.210';

let kube: KubeCluster;
let core: k8s.CoreV1Api;
let discovery: k8s.DiscoveryV1Api;
let relay: Relay;
const kubeProxies = new Map<number, ChildProcessWithoutNullStreams>();
/** The real-server agent (`xdplb realserver --k8s`) of each node, and what the node's lo held before it started. */
const agents = new Map<number, { child: ChildProcess; log: () => string; exited: Promise<void>; relay: Relay }>();
const loBefore = new Map<number, string>();

const runDirOf = (i: number) => `${LAB.runDir}/${LAB.backendNs(i)}`;

function loAddresses(i: number): string {
  return execFileSync('ip', ['-n', LAB.backendNs(i), '-o', 'addr', 'show', 'dev', 'lo'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(/\s+/)[3])
    .filter(Boolean)
    .sort()
    .join(' ');
}

function sysctls(i: number): string {
  const argv = inNs(LAB.backendNs(i), ['sysctl', '-n', 'net.ipv4.conf.all.arp_ignore', 'net.ipv4.conf.all.arp_announce', 'net.ipv4.conf.all.rp_filter']);
  return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8' }).trim().replace(/\n/g, ' ');
}

/**
 * kube-proxy's health servers on node i: 10256 answers 200; "port P CODE"
 * on stdin makes port P (a healthCheckNodePort) listen and answer CODE.
 */
const KUBE_PROXY = `
const http = require('node:http');
const codes = new Map([[10256, 200]]);
const listen = (port) => http.createServer((q, r) => { r.statusCode = codes.get(port); r.end(JSON.stringify({ localEndpoints: codes.get(port) === 200 ? 1 : 0 })); }).listen(port);
listen(10256);
require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {
  const [, port, code] = line.split(' ').map(Number);
  if (!codes.has(port)) { codes.set(port, code); listen(port); } else codes.set(port, code);
  console.log('ok');
});
console.log('ready');
`;

async function kubeProxySays(i: number, port: number, code: 200 | 503): Promise<void> {
  const p = kubeProxies.get(i)!;
  const answered = new Promise((r) => p.stdout.once('data', r));
  p.stdin.write(`port ${port} ${code}\n`);
  await answered;
}

/** The inode of a network namespace (what names the real-server records). */
function inode(ns: string): string {
  return execFileSync('stat', ['-L', '-c', '%i', `/var/run/netns/${ns}`], { encoding: 'utf8' }).trim();
}

function directorLog(): string {
  return existsSync(`${LAB.runDir}/director.log`) ? readFileSync(`${LAB.runDir}/director.log`, 'utf8') : '';
}

function eventually<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, ms = 30000): Promise<T> {
  return waitFor(what, fn, { ms, context: () => directorLog().slice(-3000) });
}

/** Which backends answer n new connections to url (none may fail). */
function answering(url: string, n = 40): Set<string> {
  const replies = clientRequests(n, url);
  const failed = replies.filter((r) => !r.ok);
  assert.deepEqual(failed, [], `requests to ${url} failed`);
  return new Set(replies.map((r) => r.backend!));
}

/** A client sending new-connection requests to url until stopped; then what it counted. */
function continuousLoad(url: string): { stop(): Promise<{ ok: number; failures: string[] }> } {
  const argv = inNs(LAB.clientNs, [process.execPath, CLIENT, 'continuous', url]);
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1));
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  return {
    async stop() {
      const done = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      await done;
      return JSON.parse(out) as { ok: number; failures: string[] };
    },
  };
}

function servedNames(): string[] {
  return readLabStatus().services.map((s) => s.name);
}

function endpointSlice(service: string, endpoints: { node: number; ready?: boolean; terminating?: boolean }[]): k8s.V1EndpointSlice {
  return {
    metadata: { name: `${service}-1`, labels: { 'kubernetes.io/service-name': service } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
    endpoints: endpoints.map((e) => ({
      addresses: [`10.244.${e.node}.10`],
      nodeName: nodeName(e.node),
      conditions: { ready: e.ready ?? !e.terminating, serving: true, terminating: e.terminating ?? false },
    })),
  };
}

async function setEndpoints(service: string, endpoints: Parameters<typeof endpointSlice>[1]): Promise<void> {
  const body = endpointSlice(service, endpoints);
  try {
    const have = await discovery.readNamespacedEndpointSlice({ namespace: 'default', name: body.metadata!.name! });
    await discovery.replaceNamespacedEndpointSlice({ namespace: 'default', name: body.metadata!.name!, body: { ...body, metadata: { ...body.metadata, resourceVersion: have.metadata?.resourceVersion } } });
  } catch (err) {
    if ((err as { code?: number }).code !== 404) throw err;
    await discovery.createNamespacedEndpointSlice({ namespace: 'default', body });
  }
}

async function setReady(i: number, ready: boolean): Promise<void> {
  const n = await core.readNodeStatus({ name: nodeName(i) });
  n.status!.conditions = [{ type: 'Ready', status: ready ? 'True' : 'False', reason: 'KubeletReady', message: 'test' }];
  await core.replaceNodeStatus({ name: nodeName(i), body: n });
}

const CONFIG = `# written by test/lab/kubernetes.test.ts
interface: ${LAB.nic}
kubernetes:
  externalIPs: [${LAB.vip}/32]
  pools: [${POOL_IP}/32]
  nodeHealthCheck: { interval: 500ms, timeout: 250ms, rise: 1, fall: 1 }
  drainTimeout: 3s
`;

before(async () => {
  kube = await startKube();
  core = kube.admin.makeApiClient(k8s.CoreV1Api);
  discovery = kube.admin.makeApiClient(k8s.DiscoveryV1Api);
  await labUp({ backends: NODES.length, mode: 'native' });
  await stopDirector(); // the lab's static director, replaced by one in Kubernetes mode
  for (const i of NODES) {
    const argv = inNs(LAB.backendNs(i), [process.execPath, '-e', KUBE_PROXY]);
    const p = spawn(argv[0]!, argv.slice(1));
    await new Promise((r) => p.stdout.once('data', r));
    kubeProxies.set(i, p);
    const created = await core.createNode({ body: { metadata: { name: nodeName(i) } } });
    await core.replaceNodeStatus({
      name: nodeName(i),
      body: { ...created, status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'test' }], addresses: [{ type: 'InternalIP', address: LAB.backend(i) }] } },
    });
  }
  relay = await relayIntoNetns(LAB.directorNs, Number(new URL(kube.server).port));
  const kubeconfig = join(LAB.runDir, 'kubeconfig');
  writeFileSync(kubeconfig, kube.admin.exportConfig());
  writeFileSync(LAB.configPath, CONFIG);
  // each node's agent, from the same config as the director (the lab's VIP 10.240.0.201 was put on lo by
  // `xdplb lab up` with `xdplb realserver --vip`: the agent must leave it alone), as a ServiceAccount bound to
  // exactly AGENT_RULES; kube-proxy's ConfigMap says IPVS without strictARP, which each agent must report
  const agentKubeconfig = join(LAB.runDir, 'agent.kubeconfig');
  writeFileSync(agentKubeconfig, (await kube.boundTo('xdplb-realserver', AGENT_RULES)).exportConfig());
  await core.createNamespacedConfigMap({ namespace: 'kube-system', body: { metadata: { name: 'kube-proxy' }, data: { 'config.conf': 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\nipvs:\n  strictARP: false\n' } } });
  for (const i of NODES) {
    loBefore.set(i, `${loAddresses(i)} | ${sysctls(i)}`);
    const agentRelay = await relayIntoNetns(LAB.backendNs(i), Number(new URL(kube.server).port));
    const argv = inNs(LAB.backendNs(i), [`${ROOT}bin/xdplb`, 'realserver', '--k8s', '-c', LAB.configPath, '--kubeconfig', agentKubeconfig, '--node', nodeName(i), '--undo-on-exit']);
    const child = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, XDPLB_RUN_DIR: runDirOf(i), XDPLB_LOG_FORMAT: 'json' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let text = '';
    child.stderr!.on('data', (c: Buffer) => (text += c.toString()));
    agents.set(i, { child, log: () => text, exited: new Promise((r) => child.once('exit', () => r())), relay: agentRelay });
  }
  startDirector('native', ['--kubeconfig', kubeconfig]);
  await eventually('the director ready', () => directorLog().includes('"msg":"ready"'));
});

after(async () => {
  for (const a of agents.values()) {
    a.child.kill('SIGKILL');
    await a.relay.stop();
  }
  for (const p of kubeProxies.values()) p.kill('SIGKILL');
  await relay?.stop();
  await labDown();
  await kube?.stop();
});

describe('Kubernetes Services through the lab director', () => {
  test('a Service with externalIPs, made with kubectl: HTTP through the VIP reaches every node', async () => {
    const manifest = join(LAB.runDir, 'web.yaml');
    writeFileSync(
      manifest,
      `apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec:
  type: ClusterIP
  externalIPs: [${LAB.vip}]
  selector: { app: web }
  ports: [{ name: http, port: 80, protocol: TCP }]
`,
    );
    const r = spawnSync(kube.kubectl, ['--kubeconfig', kube.kubeconfigPath, 'apply', '-f', manifest], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    await eventually('web served', () => servedNames().includes(`default/web:http/${LAB.vip}`));
    const seen = await eventually('every node answering', () => {
      const s = answering(`http://${LAB.vip}/`);
      return s.size === NODES.length && s;
    });
    assert.deepEqual([...seen].sort(), NODES.map(nodeName));
  });

  let shopHealthPort = 0;

  test('a LoadBalancer with externalTrafficPolicy Local: address from the pool, in its status, served by the two nodes with endpoints only', async () => {
    await core.createNamespacedService({
      namespace: 'default',
      body: { metadata: { name: 'shop' }, spec: { type: 'LoadBalancer', loadBalancerClass: 'xdplb.io/dr', externalTrafficPolicy: 'Local', selector: { app: 'shop' }, ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } },
    });
    const shop = await core.readNamespacedService({ namespace: 'default', name: 'shop' });
    shopHealthPort = shop.spec!.healthCheckNodePort!;
    assert.ok(shopHealthPort > 0, 'the API server allocated a healthCheckNodePort');
    for (const i of NODES) await kubeProxySays(i, shopHealthPort, i === 3 ? 503 : 200);
    for (const i of NODES) await eventually(`the agent of node ${i} putting ${POOL_IP} on lo`, () => loAddresses(i).includes(`${POOL_IP}/32`));
    await setEndpoints('shop', [{ node: 1 }, { node: 2 }]);
    const ingress = await eventually('the address in status', async () => (await core.readNamespacedServiceStatus({ namespace: 'default', name: 'shop' })).status?.loadBalancer?.ingress?.[0]);
    assert.deepEqual({ ip: ingress.ip, ipMode: ingress.ipMode }, { ip: POOL_IP, ipMode: 'VIP' });
    const seen = await eventually('nodes 1 and 2 answering', () => {
      const s = answering(`http://${POOL_IP}/`);
      return s.size === 2 && s;
    });
    assert.deepEqual([...seen].sort(), [nodeName(1), nodeName(2)]);
  });

  test('endpoints scaled up and down under continuous load: the set follows, no request fails', async () => {
    const load = continuousLoad(`http://${POOL_IP}/`);
    try {
      await kubeProxySays(3, shopHealthPort, 200);
      await setEndpoints('shop', [{ node: 1 }, { node: 2 }, { node: 3 }]);
      await eventually('node 3 answering', () => answering(`http://${POOL_IP}/`).has(nodeName(3)));
      // down again, as Kubernetes does it: the endpoint terminates (still serving), then goes
      await setEndpoints('shop', [{ node: 1 }, { node: 2 }, { node: 3, terminating: true }]);
      await eventually('node 3 draining', () => readLabStatus().services.find((s) => s.vip === POOL_IP)?.backends.find((b) => b.address === LAB.backend(3))?.state === 'draining');
      assert.ok(!answering(`http://${POOL_IP}/`).has(nodeName(3)), 'a draining node takes no new connection');
      await setEndpoints('shop', [{ node: 1 }, { node: 2 }]);
      await kubeProxySays(3, shopHealthPort, 503);
      await eventually('node 3 gone after drainTimeout', () => !readLabStatus().services.find((s) => s.vip === POOL_IP)?.backends.some((b) => b.address === LAB.backend(3)), 15_000);
    } finally {
      const result = await load.stop();
      assert.deepEqual(result.failures, [], 'no request failed while the endpoints changed');
      assert.ok(result.ok > 50, `the client kept sending (${result.ok} requests)`);
    }
  });

  test('a node NotReady is out of every Service; Ready again, it is back', async () => {
    await setReady(2, false);
    await eventually('node 2 out of web', () => !answering(`http://${LAB.vip}/`, 30).has(nodeName(2)));
    assert.ok(!answering(`http://${POOL_IP}/`, 30).has(nodeName(2)), 'and out of shop');
    await setReady(2, true);
    await eventually('node 2 back in web', () => answering(`http://${LAB.vip}/`).has(nodeName(2)));
  });

  test('the API server away: traffic continues unchanged; back: no flap and nothing rewritten', async () => {
    const before = readLabStatus().services.map((s) => ({ name: s.name, backends: s.backends.map((b) => `${b.address} ${b.state}`) }));
    const logBefore = directorLog().length;
    const load = continuousLoad(`http://${LAB.vip}/`);
    let result: { ok: number; failures: string[] };
    try {
      await relay.pause();
      await eventually('the director seeing the API server gone', () => directorLog().slice(logBefore).includes('watch failed'));
      await new Promise((r) => setTimeout(r, 3000));
      await relay.resume();
      await eventually('the watches open again', () => {
        const r = spawnSync(inNs(LAB.directorNs, [`${ROOT}bin/xdplb`, 'status', '--pin-dir', LAB.pinDir])[0]!, inNs(LAB.directorNs, [`${ROOT}bin/xdplb`, 'status', '--pin-dir', LAB.pinDir]).slice(1), { encoding: 'utf8', env: { ...process.env, ...LAB.directorEnv } });
        return r.status === 0 && !r.stdout.includes('DOWN') && r.stdout.includes('synced;');
      });
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      result = await load.stop();
    }
    assert.deepEqual(result.failures, [], 'no request failed');
    const after = readLabStatus().services.map((s) => ({ name: s.name, backends: s.backends.map((b) => `${b.address} ${b.state}`) }));
    assert.deepEqual(after, before, 'the same services and backends');
    const rewrites = directorLog()
      .slice(logBefore)
      .split('\n')
      .filter((l) => l.includes('"msg":"reconciled"'));
    assert.deepEqual(rewrites, [], 'no reconcile wrote anything');
  });

  test('deleted: the VIP is gone from the director and the data plane, and (drainTimeout later) from every node\'s lo', async () => {
    await core.deleteNamespacedService({ namespace: 'default', name: 'shop' });
    await eventually('shop gone', () => !readLabStatus().services.some((s) => s.vip === POOL_IP));
    const addrs = execFileSync('ip', ['-n', LAB.directorNs, '-o', 'addr', 'show', 'dev', LAB.nic], { encoding: 'utf8' });
    assert.ok(!addrs.includes(`${POOL_IP}/`), `the director no longer holds ${POOL_IP}`);
    assert.ok(directorPid() !== null);
    for (const i of NODES) await eventually(`${POOL_IP} off the lo of node ${i}`, () => !loAddresses(i).includes(`${POOL_IP}/32`), 15_000);
    for (const i of NODES) assert.ok(loAddresses(i).includes(`${LAB.vip}/32`), `node ${i} keeps ${LAB.vip}, which the agent did not add`);
  });

  test('each agent reports kube-proxy in IPVS mode without strictARP: in its log and as a Warning Event on its Node', async () => {
    const events = kube.admin.makeApiClient(k8s.EventsV1Api);
    for (const i of NODES) {
      const e = await eventually(`the Event on node ${i}`, async () =>
        (await events.listNamespacedEvent({ namespace: 'default', fieldSelector: `regarding.name=${nodeName(i)}` })).items.find((x) => x.reason === 'KubeProxyIPVSWithoutStrictARP'),
      );
      assert.equal(e.type, 'Warning');
      assert.equal(e.regarding?.kind, 'Node');
      assert.match(agents.get(i)!.log(), /IPVS mode without strictARP/);
    }
  });

  test('a Service created again: its VIP comes back on lo; the agents stopped (--undo-on-exit) leave every node as it was', async () => {
    await core.createNamespacedService({ namespace: 'default', body: { metadata: { name: 'again' }, spec: { type: 'LoadBalancer', loadBalancerClass: 'xdplb.io/dr', selector: { app: 'again' }, ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] } } });
    for (const i of NODES) await eventually(`${POOL_IP} on the lo of node ${i} again`, () => loAddresses(i).includes(`${POOL_IP}/32`));
    for (const [i, a] of agents) {
      const record = `${runDirOf(i)}/realserver-k8s-${inode(LAB.backendNs(i))}.json`;
      assert.ok(existsSync(record), `the agent keeps its record of what it added (${record})`);
      a.child.kill('SIGTERM');
      await a.exited;
      assert.match(a.log(), /"msg":"undone: the VIPs the agent added removed, the sysctls restored"/);
      assert.equal(`${loAddresses(i)} | ${sysctls(i)}`, loBefore.get(i), `node ${i} as it was before its agent`);
      assert.ok(!existsSync(record), 'the agent\'s record is gone');
    }
    await core.deleteNamespacedService({ namespace: 'default', name: 'again' });
  });
});
