// A real Kubernetes control plane for tests: etcd and kube-apiserver (built by
// test/kube-server/build, with the kubectl of the same release and helm) on 127.0.0.1,
// free ports, a temporary directory, RBAC on, dual-stack Service ranges, a
// bootstrap admin token, and ServiceAccount identities on demand. stop()
// always kills both and removes their files; so does process exit.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { OWN_NAMESPACE, type Rule } from '../../src/k8s/rbac.ts';

export interface KubeOptions {
  /** Watches end after [n, 2n) seconds, so informers reconnect often. */
  minRequestTimeoutSeconds?: number;
  /** Admit privileged containers (--allow-privileged), as kubeadm's and most clusters' API servers do. */
  allowPrivileged?: boolean;
}

export interface KubeCluster {
  readonly server: string;
  readonly etcdUrl: string;
  readonly dir: string;
  /** kubeconfig of the bootstrap admin (group system:masters). */
  readonly admin: k8s.KubeConfig;
  readonly kubeconfigPath: string;
  /** The kubectl built beside the API server (never the one on PATH). */
  readonly kubectl: string;
  /** A kubeconfig that acts as a ServiceAccount (created if missing). */
  asServiceAccount(namespace: string, name: string): Promise<k8s.KubeConfig>;
  /**
   * A ServiceAccount default/name bound to exactly these rules, as the chart
   * binds them: a ClusterRole for the cluster-wide ones, a Role in each
   * namespace that a rule names. Its kubeconfig.
   */
  boundTo(name: string, rules: readonly Rule[]): Promise<k8s.KubeConfig>;
  /** Compacts etcd at its current revision; returns that revision. */
  compactEtcd(): Promise<number>;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

/** Where the binaries (etcd, kube-apiserver, kubectl) are: $XDPLB_KUBE_BIN, else built (or found in the cache) now. */
export function kubeBinDir(): string {
  if (process.env.XDPLB_KUBE_BIN) return process.env.XDPLB_KUBE_BIN;
  const script = fileURLToPath(new URL('../kube-server/build', import.meta.url));
  const r = spawnSync(script, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`building the Kubernetes test server failed (exit ${r.status}): see the output above`);
  return r.stdout.trim();
}

/** The kubectl of the test server's release, for tests that need no running server. */
export function kubectlPath(): string {
  return join(kubeBinDir(), 'kubectl');
}

/** The helm built beside the API server (never the one on PATH), for the chart's tests. */
export function helmPath(): string {
  return join(kubeBinDir(), 'helm');
}

/**
 * The directory of prometheus-operator's ServiceMonitor and PrometheusRule CRDs, for `kubectl apply -f`
 * (copied beside the binaries from the release that test/kube-server/crds/go.mod pins).
 */
export function prometheusOperatorCrdDir(): string {
  return join(kubeBinDir(), 'crds');
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function start(bin: string, args: string[], logFile: string): ChildProcess {
  const p = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(p);
  const chunks: Buffer[] = [];
  p.stdout?.on('data', (c: Buffer) => chunks.push(c));
  p.stderr?.on('data', (c: Buffer) => chunks.push(c));
  p.on('exit', () => {
    live.delete(p);
    try {
      writeFileSync(logFile, Buffer.concat(chunks));
    } catch {
      /* the directory is already gone */
    }
  });
  (p as ChildProcess & { output: () => string }).output = () => Buffer.concat(chunks).toString().slice(-4000);
  return p;
}

async function waitFor(what: string, proc: ChildProcess, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`${what} exited with ${proc.exitCode}:\n${(proc as ChildProcess & { output: () => string }).output()}`);
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} not ready after ${timeoutMs} ms:\n${(proc as ChildProcess & { output: () => string }).output()}`);
}

async function stopProcess(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  const timer = setTimeout(() => p.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

function kubeconfigFor(server: string, ca: string, user: string, token: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'test', server, caData: Buffer.from(ca).toString('base64'), skipTLSVerify: false }],
    users: [{ name: user, token }],
    contexts: [{ name: 'test', cluster: 'test', user }],
    currentContext: 'test',
  });
  return kc;
}

export async function startKube(options: KubeOptions = {}): Promise<KubeCluster> {
  const bin = kubeBinDir();
  const dir = mkdtempSync(join(tmpdir(), 'xdplb-kube-'));
  const procs: ChildProcess[] = [];
  const cleanup = async () => {
    for (const p of procs.reverse()) await stopProcess(p);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    const etcd = start(
      join(bin, 'etcd'),
      [
        '--name=test',
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=test=${peerUrl}`,
        '--unsafe-no-fsync',
        '--log-level=warn',
      ],
      join(dir, 'etcd.log'),
    );
    procs.push(etcd);
    await waitFor('etcd', etcd, async () => (await fetch(`${etcdUrl}/health`)).ok, 30_000);

    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(join(dir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    writeFileSync(join(dir, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const adminToken = randomBytes(24).toString('hex');
    writeFileSync(join(dir, 'tokens.csv'), `${adminToken},admin,admin,system:masters\n`);
    const server = `https://127.0.0.1:${apiPort}`;
    const api = start(
      join(bin, 'kube-apiserver'),
      [
        `--etcd-servers=${etcdUrl}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${apiPort}`,
        `--cert-dir=${join(dir, 'pki')}`,
        '--authorization-mode=RBAC',
        `--token-auth-file=${join(dir, 'tokens.csv')}`,
        '--service-account-issuer=https://kubernetes.default.svc',
        `--service-account-key-file=${join(dir, 'sa.pub')}`,
        `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
        // dual stack, so that Services may ask for ipFamilies [IPv4, IPv6]
        '--service-cluster-ip-range=10.96.0.0/16,fd00:10:96::/112',
        // Services are watched straight from etcd (no watch cache), so that
        // a compaction really expires a stale resourceVersion (410 Gone).
        '--watch-cache-sizes=services#0',
        `--min-request-timeout=${options.minRequestTimeoutSeconds ?? 1800}`,
        '--enable-priority-and-fairness=false',
        ...(options.allowPrivileged ? ['--allow-privileged=true'] : []),
        '--profiling=false',
      ],
      join(dir, 'kube-apiserver.log'),
    );
    procs.push(api);
    const caPath = join(dir, 'pki', 'apiserver.crt');
    await waitFor('kube-apiserver (certificates)', api, async () => existsSync(caPath), 60_000);
    const ca = readFileSync(caPath, 'utf8');
    const admin = kubeconfigFor(server, ca, 'admin', adminToken);
    await waitFor(
      'kube-apiserver /readyz',
      api,
      async () => {
        const res = await admin.makeApiClient(k8s.CoreV1Api).listNamespace();
        return res.items.some((n) => n.metadata?.name === 'default');
      },
      120_000,
    );
    const kubeconfigPath = join(dir, 'admin.kubeconfig');
    writeFileSync(kubeconfigPath, admin.exportConfig());

    const asServiceAccount = async (namespace: string, name: string): Promise<k8s.KubeConfig> => {
      const core = admin.makeApiClient(k8s.CoreV1Api);
      await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } }).catch((err: { code?: number }) => {
        if (err.code !== 409) throw err;
      });
      const tr = await core.createNamespacedServiceAccountToken({
        namespace,
        name,
        body: { spec: { audiences: ['https://kubernetes.default.svc'], expirationSeconds: 3600 } },
      });
      return kubeconfigFor(server, ca, `system:serviceaccount:${namespace}:${name}`, tr.status?.token ?? '');
    };

    return {
      server,
      etcdUrl,
      dir,
      admin,
      kubeconfigPath,
      kubectl: join(bin, 'kubectl'),
      asServiceAccount,
      async boundTo(name: string, rules: readonly Rule[]) {
        const rbac = admin.makeApiClient(k8s.RbacAuthorizationV1Api);
        const plain = (r: Rule) => ({ apiGroups: [...r.apiGroups], resources: [...r.resources], verbs: [...r.verbs] });
        const subjects = [{ kind: 'ServiceAccount', name, namespace: 'default' }];
        await rbac.createClusterRole({ body: { metadata: { name }, rules: rules.filter((r) => !r.namespace).map(plain) } });
        await rbac.createClusterRoleBinding({ body: { metadata: { name }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name }, subjects } });
        // the ServiceAccount's own namespace (default) is where OWN_NAMESPACE rules apply, as the chart's release namespace
        const inNs = (r: Rule) => (r.namespace === OWN_NAMESPACE ? 'default' : r.namespace);
        for (const ns of new Set(rules.flatMap((r) => inNs(r) ?? []))) {
          await rbac.createNamespacedRole({ namespace: ns, body: { metadata: { name }, rules: rules.filter((r) => inNs(r) === ns).map(plain) } });
          await rbac.createNamespacedRoleBinding({ namespace: ns, body: { metadata: { name }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name }, subjects } });
        }
        return asServiceAccount('default', name);
      },
      async compactEtcd() {
        const range = await fetch(`${etcdUrl}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: Buffer.from('/').toString('base64') }) });
        const revision = Number(((await range.json()) as { header: { revision: string } }).header.revision);
        const res = await fetch(`${etcdUrl}/v3/kv/compaction`, { method: 'POST', body: JSON.stringify({ revision, physical: true }) });
        if (!res.ok) throw new Error(`etcd compaction failed: ${res.status} ${await res.text()}`);
        return revision;
      },
      stop: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
