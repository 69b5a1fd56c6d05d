// npm run bench:k8s [-- --json] [--stages] [--role standby] [--cpu-prof DIR] [--daemon-node-options '...'] [--daemon-env N=V] [--log-dir DIR]
// The Kubernetes mode against a real API server (etcd + kube-apiserver of
// test/kube-server, on 127.0.0.1): 1,000 Services on 50 Nodes, each Service
// with an EndpointSlice, created (in parallel, bounded) before the director
// starts. `xdplb attach --kubeconfig` then runs in a network namespace of
// its own (one veth, generic XDP, the API server reached through a relay);
// the nodes' 50 addresses sit in a second namespace, where one HTTP server
// answers 200 on kube-proxy's /healthz port (10256) and on every
// healthCheckNodePort the API server gave the Local Services (a catch-all
// for all 50 nodes at once: every node is healthy, whatever it is asked).
//
// Measured, with the pinned maps read from the root namespace (the bpffs):
//   1. initial sync: from the spawn of `xdplb attach` to the data plane
//      holding every service entry with every backend active (target 5 s);
//   2. one EndpointSlice change (a Local Service's endpoint moves to another
//      node) to the data plane: from the PUT's response to the moment the
//      service's Maglev table names exactly the new nodes (the old one
//      drains), polled every ms on that service's entries only (target p99
//      100 ms), 200 changes, one at a time, once every LoadBalancer status
//      is written and the daemon has been quiet for 5 s. The pins are the
//      truth the program forwards by; the daemon's "reconciled" line (1 ms
//      clock, any reconcile) is shown beside as a cross-check;
//   3. the daemon's VmRSS/VmHWM after the sync and after the changes
//      (target 300 MB).
// Baselines from the same run: the API server's own list time (the admin
// client, as the informers list), the arrival of the same changes on a watch
// the benchmark opens itself, the start of `xdplb --version` (Node and the
// CLI's modules), and the RSS of a bare Node process (the nodes' server).
// The director's own log gives the breakdown of the sync; --stages preloads
// bench/k8s-stages.ts into the daemon and breaks each change down by step.
// For investigations: --cpu-prof DIR, --daemon-node-options (e.g.
// "--heap-prof --heap-prof-dir=DIR", "--max-old-space-size=256"; Node refuses
// --trace-gc there), --daemon-env, --role standby (no status, Events or
// VIPs), --log-dir DIR (the daemon's log and the stages kept).
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { CONSTANTS, decodeDest, decodeDestInfo, decodeService, encodeServiceKey, u32Key } from '../src/dataplane/abi.ts';
import { allKeys, DataPlane, MAP_NAMES } from '../src/dataplane/dataplane.ts';
import { DIRECTOR_RULES } from '../src/k8s/rbac.ts';
import { formatIp } from '../src/model/address.ts';
import type { ServiceKey } from '../src/model/keys.ts';
import { observe } from '../src/reconcile/observe.ts';
import { startKube, type KubeCluster } from '../test/helpers/kube.ts';
import { relayIntoNetns, type Relay } from '../test/helpers/relay.ts';
import type { StageRecord } from './k8s-stages.ts';

const JSON_OUT = process.argv.includes('--json');
const option = (name: string) => ((i) => (i >= 0 ? process.argv[i + 1] : undefined))(process.argv.indexOf(name));
/** Where the daemon writes its CPU profile (--cpu-prof of Node: at its exit). */
const CPU_PROF = option('--cpu-prof');
/** More NODE_OPTIONS for the daemon (e.g. --heap-prof), for finding where time or memory goes. */
const DAEMON_NODE_OPTIONS = option('--daemon-node-options');
/** More environment for the daemon (NAME=VALUE, repeatable; NAME= removes it), e.g. MALLOC_ARENA_MAX=2. */
const DAEMON_ENV = Object.fromEntries(
  process.argv.flatMap((a, i) => (a === '--daemon-env' && process.argv[i + 1]?.includes('=') ? [[process.argv[i + 1]!.split('=')[0]!, process.argv[i + 1]!.slice(process.argv[i + 1]!.indexOf('=') + 1)]] : [])),
);
/** The director's role: active (the default: owns the VIPs, writes status and Events) or standby (keeps its maps warm only). */
const ROLE = option('--role') ?? 'active';
/** Where to keep the daemon's log and stdout. */
const LOG_DIR = option('--log-dir');
/** Time the daemon's steps (bench/k8s-stages.ts preloaded into it) and break the figures down. */
const STAGES = process.argv.includes('--stages');

const SERVICES = 1000;
const NODES = 50;
const CHANGES = 200;
const NAMESPACES = 10;
const CONCURRENCY = 32;
const TARGET = { syncMs: 5000, changeP99Ms: 100, rssMb: 300 };

const NS = 'xdplb-bench-k8s-dir';
const NODES_NS = 'xdplb-bench-k8s-nodes';
const PIN = '/sys/fs/bpf/xdplb-bench-k8s';
const XDPLB = fileURLToPath(new URL('../bin/xdplb', import.meta.url));
const DIRECTOR_ADDRESS = '10.240.0.2/20';
const nodeIp = (n: number) => `10.240.1.${n + 1}`; // on the director's /20
const POOL = '10.240.16.0/20'; // LoadBalancer addresses
const EXTERNAL_RANGE = '10.240.32.0/24'; // kubernetes.externalIPs
const externalIp = (k: number) => `10.240.32.${k + 1}`;

const mb = (kb: number) => Math.round(kb / 1024);
const round = (n: number, digits = 1) => +n.toFixed(digits);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const epochNow = () => performance.timeOrigin + performance.now();
/** CLOCK_MONOTONIC in µs: the clock of a V8 CPU profile's timestamps, to find the phases in the daemon's profile. */
const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

function percentile(xs: readonly number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] ?? NaN;
}

/** A small deterministic generator (mulberry32): the same cluster every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs fn over items, at most `limit` at once. */
async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** The commit the daemon ran from, "+" when src/ has changes not committed (others edit the tree while this runs). */
function revision(): string {
  const git = (...args: string[]) => spawnSync('git', args, { cwd: fileURLToPath(new URL('..', import.meta.url)), encoding: 'utf8' }).stdout?.trim() ?? '';
  return `${git('rev-parse', '--short', 'HEAD') || 'unknown'}${git('status', '--porcelain', '--', 'src') ? '+' : ''}`;
}

function loadAverage(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

function sh(cmd: string): void {
  execFileSync('sh', ['-c', cmd], { stdio: ['ignore', 'ignore', 'inherit'] });
}

const inNs = (ns: string, argv: string[]) => ['nsenter', `--net=/var/run/netns/${ns}`, '--', ...argv];

// ---------------------------------------------------------------- the cluster

type Kind = 'lb' | 'external' | 'lb-local' | 'external-local';

/** One Service of the benchmark, and what the director should make of it. */
interface Planned {
  namespace: string;
  name: string;
  kind: Kind;
  ports: k8s.V1ServicePort[];
  externalIPs: string[];
  /** Indexes of the nodes its endpoints run on (distinct). */
  endpointNodes: number[];
  /** Served entries: one per port and served address. */
  entries: number;
  slice: k8s.V1EndpointSlice | null;
}

const local = (k: Kind) => k === 'lb-local' || k === 'external-local';
const kindOf = (i: number): Kind => (i % 20 < 14 ? 'lb' : i % 20 < 16 ? 'external' : i % 20 < 19 ? 'lb-local' : 'external-local'); // 70%, 10%, 15%, 5%

/** The mix: most LoadBalancers of our class, some externalIPs (a few outside the allowed range), a fifth Local; 1-3 ports. */
function plan(): Planned[] {
  const rnd = random(42);
  let externals = 0;
  return Array.from({ length: SERVICES }, (_, i) => {
    const kind = kindOf(i);
    const n = 1 + Math.floor(rnd() * 3);
    const ports: k8s.V1ServicePort[] = [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }];
    if (n > 1) ports.push(i % 5 === 0 ? { name: 'dns', port: 53, targetPort: 5353, protocol: 'UDP' } : { name: 'https', port: 443, targetPort: 8443, protocol: 'TCP' });
    if (n > 2) ports.push({ name: 'metrics', port: 9100, targetPort: 9100, protocol: 'TCP' });
    const externalIPs = kind === 'external' || kind === 'external-local' ? [externalIp(externals++), ...(i % 8 === 6 ? [`198.51.100.${i % 250}`] : [])] : [];
    const endpoints = 2 + Math.floor(rnd() * 4);
    const endpointNodes: number[] = [];
    while (endpointNodes.length < endpoints) {
      const node = Math.floor(rnd() * NODES);
      if (!endpointNodes.includes(node)) endpointNodes.push(node);
    }
    return { namespace: `bench-${i % NAMESPACES}`, name: `svc-${String(i).padStart(4, '0')}`, kind, ports, externalIPs, endpointNodes, entries: ports.length, slice: null };
  });
}

function serviceObject(p: Planned, i: number): k8s.V1Service {
  const lb = p.kind === 'lb' || p.kind === 'lb-local';
  return {
    metadata: { name: p.name, namespace: p.namespace, labels: { app: p.name, tier: i % 3 === 0 ? 'frontend' : 'backend' } },
    spec: {
      type: lb ? 'LoadBalancer' : 'ClusterIP',
      ...(lb ? { loadBalancerClass: 'xdplb.io/dr', allocateLoadBalancerNodePorts: i % 4 === 0 } : {}),
      ...(p.externalIPs.length ? { externalIPs: p.externalIPs } : {}),
      ...(local(p.kind) ? { externalTrafficPolicy: 'Local' } : {}),
      ...(i % 7 === 0 ? { sessionAffinity: 'ClientIP' } : {}),
      selector: { app: p.name },
      ports: p.ports,
    },
  };
}

let podSerial = 0;
function endpoint(p: Planned, node: number): k8s.V1Endpoint {
  const pod = podSerial++;
  return {
    addresses: [`10.244.${node}.${(pod % 250) + 2}`],
    conditions: { ready: true, serving: true, terminating: false },
    nodeName: `node-${String(node).padStart(2, '0')}`,
    targetRef: { kind: 'Pod', namespace: p.namespace, name: `${p.name}-${pod.toString(36)}` },
  };
}

function sliceObject(p: Planned): k8s.V1EndpointSlice {
  return {
    metadata: {
      name: `${p.name}-x7k2p`,
      namespace: p.namespace,
      labels: { 'kubernetes.io/service-name': p.name, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' },
    },
    addressType: 'IPv4',
    ports: p.ports.map((port) => ({ name: port.name, port: Number(port.targetPort), protocol: port.protocol })),
    endpoints: p.endpointNodes.map((n) => endpoint(p, n)),
  };
}

function nodeObject(n: number): k8s.V1Node {
  const name = `node-${String(n).padStart(2, '0')}`;
  return {
    metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'node-role.kubernetes.io/worker': '', 'topology.kubernetes.io/zone': `zone-${n % 3}` } },
    spec: { podCIDR: `10.244.${n}.0/24` },
    status: {
      conditions: ['MemoryPressure', 'DiskPressure', 'PIDPressure'].map((type) => ({ type, status: 'False' })).concat([{ type: 'Ready', status: 'True' }]),
      addresses: [
        { type: 'InternalIP', address: nodeIp(n) },
        { type: 'Hostname', address: name },
      ],
      capacity: { cpu: '16', memory: '65842916Ki', pods: '110' },
      allocatable: { cpu: '15800m', memory: '64691940Ki', pods: '110' },
      nodeInfo: {
        architecture: 'amd64',
        bootID: `b${n}`,
        containerRuntimeVersion: 'containerd://2.1.0',
        kernelVersion: '6.18.0',
        kubeProxyVersion: 'v1.36.0',
        kubeletVersion: 'v1.36.0',
        machineID: `m${n}`,
        operatingSystem: 'linux',
        osImage: 'Debian GNU/Linux 13',
        systemUUID: `u${n}`,
      },
    },
  };
}

interface Created {
  ms: number;
  namespacesMs: number;
  nodesMs: number;
  servicesMs: number;
  slicesMs: number;
  /** healthCheckNodePort of each Local LoadBalancer (the API server allocates them). */
  healthPorts: number[];
}

async function createObjects(kube: KubeCluster, planned: Planned[]): Promise<Created> {
  const core = kube.admin.makeApiClient(k8s.CoreV1Api);
  const discovery = kube.admin.makeApiClient(k8s.DiscoveryV1Api);
  const t0 = performance.now();
  await pool(Array.from({ length: NAMESPACES }, (_, i) => `bench-${i}`), CONCURRENCY, (name) => core.createNamespace({ body: { metadata: { name } } }));
  const t1 = performance.now();
  await pool(Array.from({ length: NODES }, (_, n) => nodeObject(n)), CONCURRENCY, async (n) => {
    const created = await core.createNode({ body: n });
    await core.replaceNodeStatus({ name: n.metadata!.name!, body: { ...created, status: n.status } });
  });
  const t2 = performance.now();
  const services = await pool(planned, CONCURRENCY, (p, i) => core.createNamespacedService({ namespace: p.namespace, body: serviceObject(p, i) }));
  const t3 = performance.now();
  await pool(planned, CONCURRENCY, async (p) => {
    p.slice = await discovery.createNamespacedEndpointSlice({ namespace: p.namespace, body: sliceObject(p) });
  });
  const t4 = performance.now();
  return {
    ms: t4 - t0,
    namespacesMs: t1 - t0,
    nodesMs: t2 - t1,
    servicesMs: t3 - t2,
    slicesMs: t4 - t3,
    healthPorts: services.flatMap((s) => (s.spec?.healthCheckNodePort ? [s.spec.healthCheckNodePort] : [])),
  };
}

/** What the informers do at start, with the admin client: each kind alone (median of 3), then the three at once. */
async function listBaseline(kube: KubeCluster): Promise<{ servicesMs: number; slicesMs: number; nodesMs: number; allMs: number }> {
  const core = kube.admin.makeApiClient(k8s.CoreV1Api);
  const discovery = kube.admin.makeApiClient(k8s.DiscoveryV1Api);
  const timed = async (fn: () => Promise<unknown>) => {
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      await fn();
      times.push(performance.now() - t);
    }
    return percentile(times, 0.5);
  };
  const servicesMs = await timed(() => core.listServiceForAllNamespaces());
  const slicesMs = await timed(() => discovery.listEndpointSliceForAllNamespaces());
  const nodesMs = await timed(() => core.listNode());
  const allMs = await timed(() => Promise.all([core.listServiceForAllNamespaces(), discovery.listEndpointSliceForAllNamespaces(), core.listNode()]));
  return { servicesMs, slicesMs, nodesMs, allMs };
}

/** A kubeconfig acting as a ServiceAccount with exactly the director's rules. */
async function directorKubeconfig(kube: KubeCluster, path: string): Promise<void> {
  const rbac = kube.admin.makeApiClient(k8s.RbacAuthorizationV1Api);
  await rbac.createClusterRole({ body: { metadata: { name: 'xdplb-director' }, rules: DIRECTOR_RULES.map((r) => ({ apiGroups: [...r.apiGroups], resources: [...r.resources], verbs: [...r.verbs] })) } });
  await rbac.createClusterRoleBinding({
    body: { metadata: { name: 'xdplb-director' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'xdplb-director' }, subjects: [{ kind: 'ServiceAccount', name: 'xdplb-director', namespace: 'default' }] },
  });
  writeFileSync(path, (await kube.asServiceAccount('default', 'xdplb-director')).exportConfig());
}

// ---------------------------------------------------------------- the data plane, read from the pins

/** Every backend of every entry: the addresses a Service's entries must name. */
function expectedBackends(p: Planned): string[] {
  return (local(p.kind) ? p.endpointNodes : Array.from({ length: NODES }, (_, n) => n)).map(nodeIp).sort();
}

/** The served entries of the plan: LoadBalancers one address, externalIPs those inside the range. */
function expectedEntries(p: Planned): number {
  const addresses = (p.kind === 'lb' || p.kind === 'lb-local' ? 1 : 0) + p.externalIPs.filter((ip) => ip.startsWith('10.240.32.')).length;
  return addresses * p.ports.length;
}

function pinsComplete(): boolean {
  return MAP_NAMES.every((n) => existsSync(`${PIN}/${n}`));
}

function closeMaps(dp: DataPlane): void {
  for (const m of Object.values(dp.maps)) m.close();
}

/** Destinations in use and active (one batched read of each map). */
function activeDests(dp: DataPlane): number {
  let n = 0;
  for (const d of dp.usedDests()) if (d.value.state === CONSTANTS.DEST_ACTIVE) n++;
  return n;
}

/** The addresses an entry's Maglev table names (the backends that take new flows); null: no such entry. */
function tableAddresses(dp: DataPlane, key: ServiceKey): Set<string> | null {
  const v = dp.maps.services.lookup(encodeServiceKey(key));
  if (!v) return null;
  const out = new Set<string>();
  for (const id of dp.tableShares(decodeService(v).id).keys()) {
    if (id === 0) continue;
    const info = dp.maps.dest_info.lookup(u32Key(id));
    const value = dp.maps.dests.lookup(u32Key(id));
    if (info && value && decodeDest(value).state === CONSTANTS.DEST_ACTIVE) {
      const i = decodeDestInfo(info);
      out.add(formatIp(i.addr, i.family));
    }
  }
  return out;
}

const sameSet = (a: ReadonlySet<string>, b: readonly string[]) => a.size === b.length && b.every((x) => a.has(x));

// ---------------------------------------------------------------- processes

interface Director {
  child: ChildProcess;
  /** The daemon's log (JSON lines), so far. */
  log: () => string;
  exited: Promise<void>;
}

const started: ChildProcess[] = [];
process.on('exit', () => {
  for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});

function spawnDirector(configPath: string, kubeconfig: string, env: NodeJS.ProcessEnv): Director {
  const argv = inNs(NS, [XDPLB, 'attach', '-c', configPath, '--pin-dir', PIN, '--kubeconfig', kubeconfig]);
  const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  const chunks: string[] = [];
  const out: string[] = [];
  child.stderr!.on('data', (c: Buffer) => chunks.push(c.toString()));
  child.stdout!.on('data', (c: Buffer) => out.push(c.toString()));
  const exited = new Promise<void>((r) =>
    child.once('exit', () => {
      if (LOG_DIR) {
        mkdirSync(LOG_DIR, { recursive: true });
        writeFileSync(join(LOG_DIR, 'director.log'), chunks.join(''));
        writeFileSync(join(LOG_DIR, 'director.stdout'), out.join(''));
      }
      r();
    }),
  );
  return { child, log: () => chunks.join(''), exited };
}

async function stopProcess(p: ChildProcess, exited: Promise<void>): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  p.kill('SIGTERM');
  const timer = setTimeout(() => p.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/** One HTTP server for every node address: kube-proxy's /healthz port and each Local Service's healthCheckNodePort, all 200. */
async function startNodesServer(ports: number[]): Promise<ChildProcess> {
  const script = `
const http = require('node:http');
const ports = process.argv.slice(1).map(Number);
let listening = 0;
for (const port of ports) http.createServer((q, r) => { r.setHeader('content-type', 'application/json'); r.end('{}'); }).listen(port, '0.0.0.0', () => { if (++listening === ports.length) console.log('ready'); });
`;
  const argv = inNs(NODES_NS, [process.execPath, '-e', script, '10256', ...ports.map(String)]);
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  started.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`the nodes' HTTP server exited with ${code}`)));
  });
  return child;
}

function memoryOf(pid: number): { rssMb: number; hwmMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMb: mb(kb('VmRSS')), hwmMb: mb(kb('VmHWM')) };
}

/**
 * The daemon's memory as it sees it (its /metrics: V8 heap, external), and
 * what one scrape costs. Read last: a scrape of 80k backends allocates.
 */
function heapOf(): { heapUsedMb: number; heapTotalMb: number; externalMb: number; scrapeMs: number; scrapeKb: number } {
  const argv = inNs(NS, ['curl', '-s', '--max-time', '60', 'http://127.0.0.1:9842/metrics']);
  const t = performance.now();
  const text = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', maxBuffer: 1 << 30 }).stdout ?? '';
  const scrapeMs = performance.now() - t;
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN) / 1048576;
  return {
    heapUsedMb: Math.round(value('nodejs_heap_size_used_bytes')),
    heapTotalMb: Math.round(value('nodejs_heap_size_total_bytes')),
    externalMb: Math.round(value('nodejs_external_memory_bytes')),
    scrapeMs: Math.round(scrapeMs),
    scrapeKb: Math.round(text.length / 1024),
  };
}

/** From spawn to exit of `xdplb --version` in the namespace: Node's start and the CLI's modules. */
function versionStartMs(): number {
  const argv = inNs(NS, [XDPLB, '--version']);
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    spawnSync(argv[0]!, argv.slice(1), { stdio: 'ignore' });
    times.push(performance.now() - t);
  }
  return percentile(times, 0.5);
}

// ---------------------------------------------------------------- the director's log

interface LogLine {
  time: number;
  msg: string;
  component?: string;
  reason?: string;
  durationMs?: number;
  services?: number;
  writes?: number;
  [k: string]: unknown;
}

function logLines(text: string): LogLine[] {
  return text.split('\n').flatMap((l) => {
    try {
      return l.startsWith('{') ? [JSON.parse(l) as LogLine] : [];
    } catch {
      return [];
    }
  });
}

/** The steps of the director's start, in ms after the spawn, from its own log. */
function syncBreakdown(lines: LogLine[], spawnEpoch: number): Record<string, number | null> {
  const at = (pred: (l: LogLine) => boolean) => {
    const l = lines.find(pred);
    return l ? Math.round(l.time - spawnEpoch) : null;
  };
  const startFlush = lines.find((l) => l.msg === 'reconciled' && l.reason === 'start');
  return {
    first_log_ms: lines[0] ? Math.round(lines[0].time - spawnEpoch) : null,
    watching_ms: at((l) => l.msg.startsWith('watching Services')),
    synced_translated_ms: at((l) => l.msg === 'new data plane' || l.msg === 'adopting the pinned data plane'),
    start_flush_end_ms: startFlush ? Math.round(startFlush.time - spawnEpoch) : null,
    start_flush_ms: startFlush?.durationMs === undefined ? null : Math.round(startFlush.durationMs),
    start_flush_writes: startFlush?.writes ?? null,
    program_attached_ms: at((l) => l.msg === 'XDP program in place'),
    ready_ms: at((l) => l.msg === 'ready'),
  };
}

// ---------------------------------------------------------------- the daemon's steps (--stages)

function readStages(path: string): StageRecord[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as StageRecord);
}

type Timed = StageRecord & { start: number; end: number };

/** The wrapped steps that run without yielding (their time is the event loop's). Outermost only: translateNow holds accept. */
const SYNC_STEPS = ['source.translateNow', 'source.keepNow', 'paths.targets', 'health.sync', 'reconciler.setConfig', 'reconciler.flush', 'vips.sync'];

/** p50 / p99 / max of a step over the changes, ms. */
function spread(xs: number[]): { p50: number; p99: number; max: number; n: number } {
  return { p50: round(percentile(xs, 0.5)), p99: round(percentile(xs, 0.99)), max: round(Math.max(...xs)), n: xs.length };
}

/**
 * The sync's steps (ms after the spawn) and, per change, where its time went:
 * the event's arrival in the daemon, the wait for the event loop, the
 * translation, the wait for the apply, the apply and its parts.
 */
function stageBreakdown(records: StageRecord[], spawnEpoch: number, changes: Change[]): Record<string, unknown> {
  const timed = records.filter((r): r is Timed => r.start !== undefined && r.end !== undefined);
  const calls = (fn: string) => timed.filter((r) => r.fn === fn);
  const first = (fn: string, after = 0) => timed.find((r) => r.fn === fn && r.start >= after);
  const inside = (fn: string, outer: Timed) => timed.filter((r) => r.fn === fn && r.start >= outer.start && r.end <= outer.end);
  const sum = (rs: Timed[]) => rs.reduce((n, r) => n + (r.end - r.start), 0);
  const rel = (t: number | undefined) => (t === undefined ? null : Math.round(t - spawnEpoch));
  const dur = (r: Timed | undefined) => (r ? Math.round(r.end - r.start) : null);

  const bringUp = first('director.bringUp');
  const syncSteps: Record<string, unknown> = {
    missing: records.filter((r) => r.missing).map((r) => r.fn),
    preload_at: rel(records.find((r) => r.fn === 'preload')?.at),
    dataplane_load: { at: rel(first('DataPlane.load')?.start), ms: dur(first('DataPlane.load')) },
    lists: Object.fromEntries(['list services', 'list endpointslices', 'list nodes'].map((fn) => [fn, { at: rel(first(fn)?.start), ms: dur(first(fn)) }])),
    first_translation: { at: rel(first('source.translateNow', first('list nodes')?.end ?? 0)?.start), ms: dur(timed.find((r) => r.fn === 'source.translateNow' && inside('stable.accept', r).length > 0)) },
    first_validation_ms: dur(first('stable.accept', first('list nodes')?.end ?? 0)),
  };
  if (bringUp) {
    const part = (fn: string) => Math.round(sum(inside(fn, bringUp)));
    const translations = timed.filter((r) => r.fn === 'source.translateNow' && r.start >= bringUp.start && r.end <= bringUp.end);
    Object.assign(syncSteps, {
      bring_up: { at: rel(bringUp.start), ms: dur(bringUp) },
      in_bring_up_ms: {
        'paths.resolve': part('paths.resolve'),
        'health.sync': part('health.sync'),
        'reconciler.setConfig': part('reconciler.setConfig'),
        'reconciler.flush': part('reconciler.flush'),
        'vips.sync': part('vips.sync'),
        [`translations meanwhile (${translations.length})`]: Math.round(sum(translations)),
      },
    });
  }

  const rows: Record<string, number[]> = {};
  const delays: { at_ms: number; delay_ms: number }[] = [];
  const add = (k: string, v: number | undefined) => {
    if (v !== undefined && Number.isFinite(v)) (rows[k] ??= []).push(v);
  };
  for (const c of changes) {
    const event = records.find((r) => r.fn === 'event' && r.path?.includes('endpointslices') && r.name === c.slice && r.rv === c.rv);
    const at = event?.at;
    if (at === undefined) continue;
    const translation = first('source.translateNow', at);
    const apply = translation && first('director.apply', translation.end);
    add('event in the daemon (after the PUT answer)', at - c.ackEpoch);
    delays.push({ at_ms: Math.round(c.ackEpoch - spawnEpoch), delay_ms: Math.round(at - c.ackEpoch) });
    // what kept the daemon's event loop from reading the event: its synchronous steps in [answer, event]
    const busy = timed.filter((r) => SYNC_STEPS.includes(r.fn) && r.end > c.ackEpoch && r.start < at);
    add('  of which the daemon busy in sync steps', busy.reduce((n, r) => n + Math.min(r.end, at) - Math.max(r.start, c.ackEpoch), 0));
    if (!translation || !apply) continue;
    add('wait: event -> translateNow', translation.start - at);
    add('source.translateNow', translation.end - translation.start);
    add('  of which stable.accept (validation)', sum(inside('stable.accept', translation)));
    add('wait: translateNow -> director.apply', apply.start - translation.end);
    add('director.apply', apply.end - apply.start);
    for (const fn of ['paths.targets', 'paths.resolve', 'health.sync', 'reconciler.setConfig', 'reconciler.flush', 'vips.sync']) add(`  of which ${fn}`, sum(inside(fn, apply)));
    add('data plane seen (pins polled)', c.dataPlaneMs);
  }
  const keeps = calls('source.keepNow').map((r) => r.end - r.start);
  return {
    sync: syncSteps,
    per_change_ms: Object.fromEntries(Object.entries(rows).map(([k, xs]) => [k, spread(xs)])),
    keep_now_ms: keeps.length ? spread(keeps) : null,
    /** The changes whose event reached the daemon last (ms after the spawn): where to look in a CPU profile. */
    slowest_events: delays.sort((a, b) => b.delay_ms - a.delay_ms).slice(0, 5),
    translations: calls('source.translateNow').length,
    applies: calls('director.apply').length,
  };
}

// ---------------------------------------------------------------- the run

interface Change {
  /** When the API server's answer to the PUT was in (epoch ms), the slice ("namespace/name") and its new resourceVersion. */
  ackEpoch: number;
  slice: string;
  rv: string;
  dataPlaneMs: number;
  watchMs: number;
  /** From the daemon's "reconciled" line (ms resolution), for comparison. */
  logMs: number | null;
}

async function main(cleanups: (() => Promise<void> | void)[]): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'xdplb-bench-k8s-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const runDir = join(dir, 'run');
  mkdirSync(runDir, { recursive: true });
  const env: NodeJS.ProcessEnv = { ...process.env, XDPLB_RUN_DIR: runDir, XDPLB_LOG_FORMAT: 'json' };
  const stagesFile = join(dir, 'stages.jsonl');
  const nodeOptions = [
    process.env.NODE_OPTIONS,
    CPU_PROF && `--cpu-prof --cpu-prof-dir=${CPU_PROF}`,
    STAGES && `--import=${pathToFileURL(fileURLToPath(new URL('k8s-stages.ts', import.meta.url)))}`,
    DAEMON_NODE_OPTIONS,
  ].filter(Boolean);
  /** The daemon's environment: the investigation options apply to it alone (not to detach or status). */
  const directorEnv: NodeJS.ProcessEnv = { ...env, ...DAEMON_ENV, ...(nodeOptions.length ? { NODE_OPTIONS: nodeOptions.join(' ') } : {}), ...(STAGES ? { XDPLB_BENCH_STAGES: stagesFile } : {}) };
  for (const [k, v] of Object.entries(DAEMON_ENV)) if (v === '') delete directorEnv[k];

  // namespaces: the director's and the nodes', one veth between them (nothing in the root namespace)
  for (const ns of [NS, NODES_NS]) {
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    execFileSync('ip', ['netns', 'add', ns]);
    cleanups.push(() => void spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }));
    sh(`ip -n ${ns} link set lo up`);
  }
  sh(`ip -n ${NS} link add veth0 type veth peer name veth1 netns ${NODES_NS} && ip -n ${NS} link set veth0 up && ip -n ${NODES_NS} link set veth1 up`);
  sh(`ip -n ${NS} addr add ${DIRECTOR_ADDRESS} dev veth0`);
  sh(Array.from({ length: NODES }, (_, n) => `ip -n ${NODES_NS} addr add ${nodeIp(n)}/20 dev veth1`).join(' && '));

  const kube = await startKube();
  cleanups.push(() => kube.stop());
  const planned = plan();
  const created = await createObjects(kube, planned);
  const lists = await listBaseline(kube);
  const kubeconfig = join(dir, 'director.kubeconfig');
  await directorKubeconfig(kube, kubeconfig);

  const nodesServer = await startNodesServer(created.healthPorts);
  cleanups.push(() => void nodesServer.kill('SIGKILL'));
  const relay: Relay = await relayIntoNetns(NS, Number(new URL(kube.server).port));
  cleanups.push(() => relay.stop());
  const versionMs = versionStartMs();
  const bareNode = memoryOf(nodesServer.pid!);

  const entries = planned.reduce((n, p) => n + expectedEntries(p), 0);
  const dests = planned.reduce((n, p) => n + expectedEntries(p) * expectedBackends(p).length, 0);
  const configPath = join(dir, 'config.yaml');
  writeFileSync(
    configPath,
    `interface: veth0
mode: generic
role: ${ROLE}
capacity: { services: 4096, backends: ${2 ** Math.ceil(Math.log2(dests * 1.5))} }
kubernetes:
  externalIPs: [${EXTERNAL_RANGE}]
  pools: [${POOL}]
`,
  );

  // 1. initial sync
  if (existsSync(PIN)) rmSync(PIN, { recursive: true, force: true });
  cleanups.push(() => {
    const d = inNs(NS, [XDPLB, 'detach', '--pin-dir', PIN, '--force']);
    spawnSync(d[0]!, d.slice(1), { env, stdio: 'ignore' });
    rmSync(PIN, { recursive: true, force: true });
  });
  const rev = revision();
  const loadBefore = loadAverage();
  const spawnEpoch = epochNow();
  const spawnMonotonicUs = monotonicUs();
  const t0 = performance.now();
  const director = spawnDirector(configPath, kubeconfig, directorEnv);
  cleanups.push(() => stopProcess(director.child, director.exited));
  let dp: DataPlane | null = null;
  cleanups.push(() => void (dp && closeMaps(dp)));
  let presentMs: number | null = null;
  let syncMs: number | null = null;
  const deadline = t0 + 120_000;
  while (syncMs === null) {
    if (performance.now() > deadline) throw new Error(`no initial sync after 120 s:\n${director.log().slice(-4000)}`);
    if (director.child.exitCode !== null) throw new Error(`the director exited (${director.child.exitCode}):\n${director.log().slice(-4000)}`);
    const t = performance.now();
    if (!dp && pinsComplete())
      try {
        dp = DataPlane.openPinned(PIN);
      } catch {
        /* pinned, not yet stamped with its ABI version */
      }
    if (dp) {
      let n = 0;
      for (const _ of allKeys(dp.maps.services)) n++;
      if (n === entries) {
        presentMs ??= t - t0;
        if (activeDests(dp) === dests) syncMs = t - t0;
      }
    }
    await sleep(2);
  }
  const afterSync = memoryOf(director.child.pid!);
  const byService = verify(dp!, planned);

  await waitFor('the director ready', () => director.log().includes('"msg":"ready"'), 60_000);
  const lbCount = planned.filter((p) => p.kind === 'lb' || p.kind === 'lb-local').length;
  const statusWrittenMs = ROLE === 'active' ? (await statusesWritten(kube, lbCount)) - spawnEpoch : NaN; // a standby writes none
  const settled = await quiet(director, 5000, 240_000); // the status writes (and their retries after 429s), and the translations they cause, are over
  const statusLines = logLines(director.log());
  const statusWrites = statusLines.filter((l) => l.msg === 'status.loadBalancer written').length;
  const statusRefused = statusLines.filter((l) => l.msg.startsWith('status.loadBalancer write failed')).length;

  // 2. EndpointSlice changes, with a watch of our own as the baseline
  const changesFrom = epochNow() - spawnEpoch;
  const changes = await runChanges(kube, dp!, planned, byService, director);
  const changesTo = epochNow() - spawnEpoch;
  const afterChanges = memoryOf(director.child.pid!);
  const heap = heapOf();
  const loadAfter = loadAverage();
  await sleep(500); // the preload writes its records every 200 ms
  const stages = STAGES ? stageBreakdown(readStages(stagesFile), spawnEpoch, changes) : null;
  if (STAGES && LOG_DIR && existsSync(stagesFile)) mkdirSync(LOG_DIR, { recursive: true }), writeFileSync(join(LOG_DIR, 'stages.jsonl'), readFileSync(stagesFile));
  const lines = logLines(director.log());
  const watchFailures = lines.filter((l) => l.msg.startsWith('watch failed')).length;

  const dpMs = changes.map((c) => c.dataPlaneMs);
  const watchMs = changes.map((c) => c.watchMs);
  const logMs = changes.flatMap((c) => (c.logMs === null ? [] : [c.logMs]));
  return {
    revision: rev,
    role: ROLE,
    /** The host's 1-minute load average before the director's start and after the changes (others share the host). */
    load_average: [loadBefore, loadAfter],
    services: SERVICES,
    nodes: NODES,
    endpoint_slices: SERVICES,
    entries,
    dests,
    mix: Object.fromEntries((['lb', 'external', 'lb-local', 'external-local'] as const).map((k) => [k, planned.filter((p) => p.kind === k).length])),
    health_check_node_ports: created.healthPorts.length,
    create_ms: Math.round(created.ms),
    create_nodes_ms: Math.round(created.nodesMs),
    create_services_ms: Math.round(created.servicesMs),
    create_slices_ms: Math.round(created.slicesMs),
    create_per_s: Math.round(((NODES * 2 + SERVICES * 2 + NAMESPACES) / created.ms) * 1000),
    baseline_list_services_ms: Math.round(lists.servicesMs),
    baseline_list_slices_ms: Math.round(lists.slicesMs),
    baseline_list_nodes_ms: Math.round(lists.nodesMs),
    baseline_list_all_ms: Math.round(lists.allMs),
    baseline_version_start_ms: Math.round(versionMs),
    sync_ms: Math.round(syncMs),
    sync_present_ms: Math.round(presentMs!),
    sync_target_ms: TARGET.syncMs,
    sync_met: syncMs <= TARGET.syncMs,
    sync_breakdown: syncBreakdown(lines, spawnEpoch),
    status_written_ms: Math.round(statusWrittenMs),
    status_writes: statusWrites,
    status_writes_refused: statusRefused,
    settled_before_changes: settled,
    changes: changes.length,
    changes_from_ms: Math.round(changesFrom),
    changes_to_ms: Math.round(changesTo),
    change_p50_ms: round(percentile(dpMs, 0.5)),
    change_p99_ms: round(percentile(dpMs, 0.99)),
    change_max_ms: round(Math.max(...dpMs)),
    change_target_p99_ms: TARGET.changeP99Ms,
    change_met: percentile(dpMs, 0.99) <= TARGET.changeP99Ms,
    change_log_p50_ms: round(percentile(logMs, 0.5)),
    change_log_p99_ms: round(percentile(logMs, 0.99)),
    baseline_watch_p50_ms: round(percentile(watchMs, 0.5), 2),
    baseline_watch_p99_ms: round(percentile(watchMs, 0.99), 2),
    rss_after_sync_mb: afterSync.rssMb,
    hwm_after_sync_mb: afterSync.hwmMb,
    rss_after_changes_mb: afterChanges.rssMb,
    hwm_after_changes_mb: afterChanges.hwmMb,
    rss_target_mb: TARGET.rssMb,
    rss_met: Math.max(afterSync.hwmMb, afterChanges.hwmMb) <= TARGET.rssMb,
    heap_used_after_changes_mb: heap.heapUsedMb,
    heap_total_after_changes_mb: heap.heapTotalMb,
    external_after_changes_mb: heap.externalMb,
    metrics_scrape_ms: heap.scrapeMs,
    metrics_scrape_kb: heap.scrapeKb,
    baseline_bare_node_rss_mb: bareNode.rssMb,
    watch_failures: watchFailures,
    ...(stages ? { stages } : {}),
    ...(CPU_PROF ? { cpu_prof_dir: CPU_PROF, cpu_prof_spawn_monotonic_us: spawnMonotonicUs } : {}),
  };
}

/** When (epoch ms) the API server first shows an address in the status of every LoadBalancer of ours. */
async function statusesWritten(kube: KubeCluster, lbCount: number): Promise<number> {
  const core = kube.admin.makeApiClient(k8s.CoreV1Api);
  const deadline = Date.now() + 240_000;
  for (;;) {
    const list = await core.listServiceForAllNamespaces();
    const written = list.items.filter((s) => s.spec?.type === 'LoadBalancer' && (s.status?.loadBalancer?.ingress?.length ?? 0) > 0).length;
    if (written >= lbCount) return epochNow();
    if (Date.now() > deadline) throw new Error(`only ${written} of ${lbCount} LoadBalancer statuses written after 240 s`);
    await sleep(250);
  }
}

/** Waits until the daemon has logged nothing about status writes for quietMs (false: still busy after maxMs). */
async function quiet(director: Director, quietMs: number, maxMs: number): Promise<boolean> {
  const deadline = Date.now() + maxMs;
  while (Date.now() < deadline) {
    const last = logLines(director.log()).findLast((l) => l.msg.startsWith('status.loadBalancer'))?.time ?? 0;
    if (Date.now() - last >= quietMs) return true;
    await sleep(250);
  }
  return false;
}

async function waitFor(what: string, check: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Checks the whole data plane once against the plan; returns each Service's entries ("namespace/name" → keys). */
function verify(dp: DataPlane, planned: Planned[]): Map<string, ServiceKey[]> {
  const applied = observe(dp);
  const byService = new Map<string, ServiceKey[]>();
  const byName = new Map(planned.map((p) => [`${p.namespace}/${p.name}`, p]));
  for (const s of applied.services.values()) {
    const owner = s.name.slice(0, s.name.indexOf(':'));
    const p = byName.get(owner);
    if (!p) throw new Error(`the data plane serves ${s.name}, which the benchmark did not create`);
    const addresses = [...s.dests.keys()].sort();
    if (addresses.join() !== expectedBackends(p).join()) throw new Error(`${s.name}: backends ${addresses.join(', ')}, expected ${expectedBackends(p).join(', ')}`);
    byService.set(owner, [...(byService.get(owner) ?? []), s.key]);
  }
  for (const p of planned)
    if ((byService.get(`${p.namespace}/${p.name}`)?.length ?? 0) !== expectedEntries(p)) throw new Error(`${p.namespace}/${p.name}: ${byService.get(`${p.namespace}/${p.name}`)?.length ?? 0} entries, expected ${expectedEntries(p)}`);
  return byService;
}

/**
 * CHANGES times, one after the other: move the first endpoint of the next
 * Local Service's slice to a node it has none on (PUT), then poll that
 * Service's entries every ms until each table names exactly the new nodes;
 * and wait for the same update on the benchmark's own watch.
 */
async function runChanges(kube: KubeCluster, dp: DataPlane, planned: Planned[], byService: Map<string, ServiceKey[]>, director: Director): Promise<Change[]> {
  const discovery = kube.admin.makeApiClient(k8s.DiscoveryV1Api);
  const arrivals = new Map<string, number>();
  const listed = await discovery.listEndpointSliceForAllNamespaces({ limit: 1 });
  const watch = new k8s.Watch(kube.admin);
  let watchError: unknown = null;
  const controller = await watch.watch(
    '/apis/discovery.k8s.io/v1/endpointslices',
    { resourceVersion: listed.metadata?.resourceVersion, allowWatchBookmarks: true },
    (type: string, obj: k8s.V1EndpointSlice) => {
      if (type === 'MODIFIED') arrivals.set(`${obj.metadata?.namespace}/${obj.metadata?.name}@${obj.metadata?.resourceVersion}`, performance.now());
    },
    (err: unknown) => (watchError = err ?? 'closed'),
  );
  const rnd = random(7);
  const locals = planned.filter((p) => local(p.kind));
  const out: Change[] = [];
  try {
    for (let k = 0; k < CHANGES; k++) {
      const p = locals[k % locals.length]!;
      const from = p.endpointNodes[0]!;
      let to = Math.floor(rnd() * NODES);
      while (p.endpointNodes.includes(to)) to = (to + 1) % NODES;
      const slice = p.slice!;
      slice.endpoints = [endpoint(p, to), ...(slice.endpoints ?? []).slice(1)];
      p.endpointNodes = [to, ...p.endpointNodes.slice(1)];
      const want = expectedBackends(p);
      const keys = byService.get(`${p.namespace}/${p.name}`)!;
      const updated = await discovery.replaceNamespacedEndpointSlice({ name: slice.metadata!.name!, namespace: p.namespace, body: slice });
      const ack = performance.now();
      const ackEpoch = epochNow();
      p.slice = updated;
      // poll: the first entry until it matches, then the others (one flush writes them together)
      let pending = [...keys];
      const deadline = ack + 10_000;
      while (pending.length > 0) {
        const current = tableAddresses(dp, pending[0]!);
        if (current && sameSet(current, want)) pending = pending.slice(1);
        else {
          if (performance.now() > deadline) throw new Error(`${p.namespace}/${p.name}: the data plane still names ${[...(current ?? [])].join(', ')}, want ${want.join(', ')}\n${director.log().slice(-3000)}`);
          await sleep(1);
        }
      }
      const dataPlaneMs = performance.now() - ack;
      const key = `${p.namespace}/${slice.metadata!.name}@${updated.metadata?.resourceVersion}`;
      await waitFor(`the watch event of ${key}`, () => arrivals.has(key) || watchError !== null, 10_000);
      if (watchError) throw new Error(`the benchmark's watch ended: ${String(watchError)}`);
      const reconciled = logLines(director.log()).find((l) => l.msg === 'reconciled' && String(l.reason).includes('kubernetes') && l.time >= Math.floor(ackEpoch));
      out.push({ ackEpoch, slice: `${p.namespace}/${slice.metadata!.name}`, rv: updated.metadata?.resourceVersion ?? '', dataPlaneMs, watchMs: arrivals.get(key)! - ack, logMs: reconciled ? reconciled.time - ackEpoch : null });
      await sleep(20 + rnd() * 30); // not in step with the daemon's timers
    }
  } finally {
    controller.abort();
  }
  return out;
}

function table(r: Record<string, unknown>): string {
  const b = r.sync_breakdown as Record<string, number | null>;
  const yes = (ok: unknown) => (ok ? 'met' : 'MISSED');
  const rows: [string, string, string, string, string][] = [
    ['objects created (parallel, 32 at once)', `${r.create_ms} ms`, `${r.create_per_s} objects/s; nodes ${r.create_nodes_ms} ms, Services ${r.create_services_ms} ms, EndpointSlices ${r.create_slices_ms} ms`, '', ''],
    ['API list (admin client): Services / EndpointSlices / Nodes', '', `${r.baseline_list_services_ms} / ${r.baseline_list_slices_ms} / ${r.baseline_list_nodes_ms} ms; all three at once ${r.baseline_list_all_ms} ms`, '', ''],
    ['initial sync: spawn -> every entry, every backend active', `${r.sync_ms} ms`, `xdplb --version start ${r.baseline_version_start_ms} ms; API list ${r.baseline_list_all_ms} ms`, `<= ${TARGET.syncMs} ms`, yes(r.sync_met)],
    ['  entries present (backends not all active yet)', `${r.sync_present_ms} ms`, '', '', ''],
    ['  director ready (program attached, VIPs owned)', `${Math.round(b.ready_ms ?? NaN)} ms`, '', '', ''],
    ['  every LoadBalancer status written (read back from the API)', `${r.status_written_ms} ms`, `${r.status_writes} PATCHes for ${(r.mix as Record<string, number>).lb! + (r.mix as Record<string, number>)['lb-local']!} Services, ${r.status_writes_refused} refused (429)${r.settled_before_changes ? '' : '; NOT quiet before the changes'}`, '', ''],
    [`EndpointSlice change -> data plane, p50 / p99 (${r.changes})`, `${r.change_p50_ms} / ${r.change_p99_ms} ms`, `own watch event ${r.baseline_watch_p50_ms} / ${r.baseline_watch_p99_ms} ms`, `p99 <= ${TARGET.changeP99Ms} ms`, yes(r.change_met)],
    ['  same, by the daemon\'s "reconciled" line (1 ms clock)', `${r.change_log_p50_ms} / ${r.change_log_p99_ms} ms`, `max by the pins ${r.change_max_ms} ms`, '', ''],
    ['daemon VmRSS / VmHWM after sync', `${r.rss_after_sync_mb} / ${r.hwm_after_sync_mb} MB`, `bare Node ${r.baseline_bare_node_rss_mb} MB`, `<= ${TARGET.rssMb} MB`, yes(r.rss_met)],
    ['daemon VmRSS / VmHWM after the changes', `${r.rss_after_changes_mb} / ${r.hwm_after_changes_mb} MB`, `then: V8 heap ${r.heap_used_after_changes_mb} used of ${r.heap_total_after_changes_mb} MB, external ${r.external_after_changes_mb} MB`, `<= ${TARGET.rssMb} MB`, ''],
    ['one /metrics scrape (after the RSS readings)', `${r.metrics_scrape_ms} ms`, `${r.metrics_scrape_kb} KiB`, '', ''],
  ];
  const widths = [0, 1, 2, 3].map((c) => Math.max(...rows.map((row) => row[c]!.length)));
  const lines = rows.map((row) => row.map((cell, c) => (c < 4 ? cell.padEnd(widths[c]!) : cell)).join('  '));
  const steps = Object.entries(b)
    .map(([k, v]) => `${k.replace(/_ms$/, '')} ${v ?? '-'}`)
    .join(', ');
  return [
    `xdplb Kubernetes mode (${r.revision}, ${r.role}; host load ${(r.load_average as number[]).join(' -> ')}): ${r.services} Services (${Object.entries(r.mix as object).map(([k, v]) => `${v} ${k}`).join(', ')}) x ${r.nodes} Nodes, ${r.endpoint_slices} EndpointSlices -> ${r.entries} entries, ${r.dests} backends; real API server`,
    ...lines,
    `director's log, ms after spawn: ${steps}`,
    ...(r.stages ? stagesTable(r.stages as ReturnType<typeof stageBreakdown>) : []),
    ...(r.watch_failures ? [`the director logged ${r.watch_failures} watch failures during the run`] : []),
  ].join('\n');
}

function stagesTable(st: Record<string, unknown>): string[] {
  const per = st.per_change_ms as Record<string, ReturnType<typeof spread>>;
  const width = Math.max(...Object.keys(per).map((k) => k.length));
  return [
    `the daemon's steps (--stages): sync ${JSON.stringify(st.sync)}`,
    `per change (of ${Object.values(per)[0]?.n ?? 0}), ms:${''.padEnd(width - 18)}    p50      p99      max`,
    ...Object.entries(per).map(([k, v]) => `  ${k.padEnd(width)} ${String(v.p50).padStart(8)} ${String(v.p99).padStart(8)} ${String(v.max).padStart(8)}`),
    `keepNow (the run file) ${JSON.stringify(st.keep_now_ms)}; ${st.translations} translations, ${st.applies} applies in all`,
  ];
}

const cleanups: (() => Promise<void> | void)[] = [];
let cleaning: Promise<void> | null = null;
function cleanup(): Promise<void> {
  return (cleaning ??= (async () => {
    for (const c of cleanups.splice(0).reverse())
      try {
        await c();
      } catch (err) {
        console.error(`cleanup: ${String(err)}`);
      }
  })());
}
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    console.error(`${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });

try {
  const r = await main(cleanups);
  console.log(JSON_OUT ? JSON.stringify(r) : table(r));
} finally {
  await cleanup();
}
