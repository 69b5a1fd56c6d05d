// deploy/helm/xdplb: the chart passes `helm lint --strict`; it renders with
// its default values and with values that change every setting, and the
// objects are what the README and the templates' comments say (host network,
// exactly the documented capabilities, the host's bpffs, probes on the metrics
// address, one ServiceAccount per component, RBAC equal to src/k8s/rbac.ts, a
// config that xdplb's own schema accepts, the dashboard and the alerts exactly
// deploy/grafana/xdplb.json and deploy/prometheus/xdplb.rules.yml); everything
// rendered passes `kubectl apply --dry-run=server` on a real API server with
// prometheus-operator's CRDs, which refuse a broken rule; templates/rbac.yaml,
// files/ and deploy/k8s/ are their generators' output. helm, kubectl, the API
// server and the CRDs come from test/kube-server/build: a failed build fails
// the tests.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { dump, load, loadAll } from 'js-yaml';
import { parseConfigText, validateConfig } from '../../src/config/load.ts';
import { OWN_NAMESPACE, AGENT_RULES, DIRECTOR_RULES, type Rule } from '../../src/k8s/rbac.ts';
import { CHART_COPIES, COMPONENT_RULES, RBAC_TEMPLATE, rbacTemplate } from '../../deploy/helm/generate.ts';
import { CHART, helmTemplate, MANIFESTS, NAMESPACE, renderManifests } from '../../deploy/helm/render.ts';
import { helmPath, prometheusOperatorCrdDir, startKube, type KubeCluster } from '../helpers/kube.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The one definition of the dashboard and of the alerts that the chart ships. */
const DASHBOARD = join(ROOT, 'deploy/grafana/xdplb.json');
const RULES = join(ROOT, 'deploy/prometheus/xdplb.rules.yml');
/** The ServiceMonitors, the PrometheusRule and the dashboard's ConfigMap on, every other value its default. */
const MONITORING_ON = ['--set', 'metrics.serviceMonitor.enabled=true', '--set', 'metrics.prometheusRule.enabled=true', '--set', 'metrics.grafanaDashboard.enabled=true'];

/** The capabilities the director adds (README, "Install on Kubernetes"; director.yaml says why each). */
const DIRECTOR_CAPABILITIES = ['NET_ADMIN', 'NET_RAW', 'BPF', 'PERFMON', 'SYS_ADMIN'];
/** The agent's, with realserver.writeSysctls false (else it is privileged). */
const AGENT_CAPABILITIES = ['NET_ADMIN'];

/** Values that change every setting the chart has. */
const CUSTOM_VALUES = {
  image: { repository: 'registry.example/xdplb', tag: '9.9.9', pullPolicy: 'Always' },
  imagePullSecrets: [{ name: 'pull' }],
  interface: 'ens5',
  mode: 'generic',
  leaderElection: { enabled: true, leaseName: 'lb-lease', leaseDuration: '2s', renewDeadline: '1500ms', retryPeriod: '300ms' },
  kubernetes: {
    externalIPs: ['198.51.100.0/24', '2001:db8:e::/64'],
    loadBalancerClass: 'example.com/dr',
    defaultClass: true,
    pools: ['198.51.100.64/26', '2001:db8:64::/120'],
    nodeSelector: 'node-role.kubernetes.io/worker,!example.com/no-lb',
    nodeHealthCheck: { port: 10257, path: '/livez', interval: '3s', timeout: '500ms', rise: 3, fall: 4 },
    drainTimeout: '2m',
  },
  config: { hashSeed: 7, capacity: { services: 1024, backends: 8192, flows: 65536 } },
  metrics: {
    host: '::',
    directorPort: 19842,
    realserverPort: 19843,
    serviceMonitor: { enabled: true, interval: '15s', labels: { release: 'prom' } },
    prometheusRule: { enabled: true, labels: { release: 'prom' } },
    // null: Helm drops the default's key (another sidecar label)
    grafanaDashboard: { enabled: true, labels: { grafana_dashboard: null, 'example.com/dashboard': 'lb' }, annotations: { grafana_folder: 'Load balancing' }, namespace: 'monitoring' },
  },
  director: {
    nodeSelector: { 'example.com/lb': 'director', 'xdplb.io/director': null }, // null: Helm drops the default's key
    tolerations: [{ key: 'example.com/lb', operator: 'Exists', effect: 'NoSchedule' }],
    resources: { requests: { cpu: '1', memory: '512Mi' }, limits: { memory: '4Gi' } },
    extraCapabilities: ['SYS_RESOURCE'],
    seLinuxOptions: { type: 'spc_t', level: 's0' },
    priorityClassName: 'system-node-critical',
    terminationGracePeriodSeconds: 45,
    mountBpffs: true,
  },
  realserver: {
    nodeSelector: { 'node-role.kubernetes.io/worker': '' },
    tolerations: [{ operator: 'Exists' }],
    resources: { requests: { cpu: '5m', memory: '32Mi' }, limits: { memory: '128Mi' } },
    writeSysctls: false,
    undoOnExit: false,
    priorityClassName: 'system-node-critical',
    terminationGracePeriodSeconds: 60,
  },
};

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

/** A rendered object, read field by field (every field read is asserted). */
type Any = any;

let helmBin: string | null = null;
/** The built helm; building it fails the test that asks, loudly (kubeBinDir throws). */
function helm(): string {
  return (helmBin ??= helmPath());
}

function run(bin: string, args: string[], input?: string): { status: number | null; out: string; stdout: string } {
  const r = spawnSync(bin, args, { cwd: ROOT, encoding: 'utf8', input, maxBuffer: 64 << 20 });
  assert.equal(r.error, undefined, `${bin} could not be run: ${r.error?.message}`);
  return { status: r.status, out: `${r.stdout}${r.stderr}`, stdout: r.stdout };
}

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'xdplb-helm-'));
  writeFileSync(join(dir, 'custom.yaml'), dump(CUSTOM_VALUES));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function objects(text: string): K8sObject[] {
  return (loadAll(text) as (K8sObject | null)[]).filter((o): o is K8sObject => o !== null);
}

function one(objs: K8sObject[], kind: string, name: string): Any {
  const found = objs.filter((o) => o.kind === kind && o.metadata.name === name);
  assert.equal(found.length, 1, `one ${kind} ${name} (found ${found.length}; rendered: ${objs.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')})`);
  return found[0];
}

/** The rules bound to a ServiceAccount by the rendered (Cluster)RoleBindings, as rbac.ts writes them. */
function boundRules(objs: K8sObject[], serviceAccount: string, namespace: string): Omit<Rule, 'why'>[] {
  const rules: Omit<Rule, 'why'>[] = [];
  for (const b of objs.filter((o) => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding') as Any[]) {
    if (!b.subjects.some((s: Any) => s.kind === 'ServiceAccount' && s.name === serviceAccount && s.namespace === namespace)) continue;
    const role: Any = one(objs, b.roleRef.kind, b.roleRef.name);
    if (b.kind === 'RoleBinding') assert.equal(role.metadata.namespace, b.metadata.namespace, `${b.metadata.name} binds a Role of its own namespace`);
    for (const r of role.rules) rules.push({ ...(role.kind === 'Role' ? { namespace: role.metadata.namespace } : {}), apiGroups: r.apiGroups, resources: r.resources, verbs: r.verbs });
  }
  return rules;
}

/** The groups of deploy/prometheus/xdplb.rules.yml, as Prometheus reads them. */
function ruleGroups(): unknown[] {
  return (load(readFileSync(RULES, 'utf8')) as { groups: unknown[] }).groups;
}

/** Every job="…" a query of the alerts or of the dashboard selects. */
function jobsSelected(): Set<string> {
  const text = `${readFileSync(RULES, 'utf8')}${readFileSync(DASHBOARD, 'utf8')}`;
  return new Set([...text.matchAll(/job=\\?"([^"\\]+)\\?"/g)].map((m) => m[1] as string));
}

/**
 * The dashboard's ConfigMap and the PrometheusRule: the files' own content, where the values put
 * them; the director's ServiceMonitor gives its metrics the job the alerts and the dashboard select.
 */
function assertMonitoring(objs: K8sObject[], expect: { dashboardNamespace: string; dashboardLabels: Record<string, string>; ruleLabels: Record<string, string> }): void {
  const cm: Any = one(objs, 'ConfigMap', 'xdplb-dashboard');
  assert.equal(cm.metadata.namespace, expect.dashboardNamespace);
  for (const [key, value] of Object.entries(expect.dashboardLabels)) assert.equal(cm.metadata.labels[key], value, `the dashboard's ConfigMap has the sidecar's label ${key}`);
  assert.deepEqual(Object.keys(cm.data), ['xdplb.json'], 'one file, the dashboard');
  assert.equal(cm.data['xdplb.json'], readFileSync(DASHBOARD, 'utf8'), 'the ConfigMap holds deploy/grafana/xdplb.json byte for byte');
  const rule: Any = one(objs, 'PrometheusRule', 'xdplb');
  assert.equal(rule.apiVersion, 'monitoring.coreos.com/v1');
  assert.equal(rule.metadata.namespace, NAMESPACE);
  for (const [key, value] of Object.entries(expect.ruleLabels)) assert.equal(rule.metadata.labels[key], value, `the PrometheusRule has the label ${key} for the ruleSelector`);
  assert.deepEqual(Object.keys(rule.spec), ['groups']);
  assert.deepEqual(rule.spec.groups, ruleGroups(), "the PrometheusRule's groups are deploy/prometheus/xdplb.rules.yml's");
  const sm: Any = one(objs, 'ServiceMonitor', 'xdplb-director');
  const svc: Any = one(objs, 'Service', 'xdplb-director-metrics');
  assert.ok(sm.spec.jobLabel, 'the ServiceMonitor names the job (else it is the Service name)');
  assert.deepEqual(jobsSelected(), new Set([svc.metadata.labels[sm.spec.jobLabel]]), "the alerts and the dashboard select the director's job");
  const agentSm: Any = one(objs, 'ServiceMonitor', 'xdplb-realserver');
  const agentSvc: Any = one(objs, 'Service', 'xdplb-realserver-metrics');
  assert.notEqual(agentSvc.metadata.labels[agentSm.spec.jobLabel], svc.metadata.labels[sm.spec.jobLabel], "the agents' targets are not in the director's job (XdplbDown is the director's)");
}

/** The rules as the chart binds them: OWN_NAMESPACE is the release's. */
const withoutWhy = (rules: readonly Rule[]) => rules.map(({ why: _why, chartValue: _value, ...r }) => (r.namespace === OWN_NAMESPACE ? { ...r, namespace: NAMESPACE } : r));
const sortRules = <T extends Omit<Rule, 'why'>>(rules: T[]) => [...rules].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

function container(ds: Any): Any {
  assert.equal(ds.spec.template.spec.containers.length, 1, `${ds.metadata.name} has one container`);
  return ds.spec.template.spec.containers[0];
}

function mountOf(ds: Any, path: string): { mount: Any; volume: Any } {
  const mount = container(ds).volumeMounts.find((m: Any) => m.mountPath === path);
  assert.ok(mount, `${ds.metadata.name} mounts ${path}`);
  return { mount, volume: ds.spec.template.spec.volumes.find((v: Any) => v.name === mount.name) };
}

/** The director's and the agent's config, parsed and validated as the daemons do (the same text, the same schema). */
function configOf(objs: K8sObject[]) {
  const cm: Any = one(objs, 'ConfigMap', 'xdplb-config');
  return validateConfig(parseConfigText(cm.data['config.yaml'], 'the ConfigMap xdplb-config'));
}

/** What every rendering must hold, whatever the values. */
function assertInvariants(objs: K8sObject[], text: string): void {
  const director: Any = one(objs, 'DaemonSet', 'xdplb-director');
  const agent: Any = one(objs, 'DaemonSet', 'xdplb-realserver');
  for (const ds of [director, agent]) {
    const pod = ds.spec.template.spec;
    assert.equal(pod.hostNetwork, true, `${ds.metadata.name}: the host's network`);
    assert.equal(pod.dnsPolicy, 'ClusterFirstWithHostNet', `${ds.metadata.name}: the cluster's DNS despite hostNetwork`);
    assert.equal(ds.spec.selector.matchLabels['app.kubernetes.io/component'], ds.metadata.name.replace('xdplb-', ''));
    const c = container(ds);
    assert.equal(c.securityContext.readOnlyRootFilesystem, true, `${ds.metadata.name}: a read-only root filesystem`);
    const config = mountOf(ds, '/etc/xdplb');
    assert.equal(config.mount.readOnly, true);
    assert.equal(config.volume.configMap.name, 'xdplb-config', `${ds.metadata.name} reads the shared ConfigMap`);
    const run = mountOf(ds, '/run/xdplb');
    assert.deepEqual(run.volume.hostPath, { path: '/run/xdplb', type: 'DirectoryOrCreate' }, `${ds.metadata.name}: the host's run directory`);
    assert.equal(c.readinessProbe.httpGet.path, '/readyz');
    assert.equal(c.livenessProbe.httpGet.path, '/healthz');
    assert.equal(c.readinessProbe.httpGet.port, 'metrics');
    assert.equal(c.livenessProbe.httpGet.port, 'metrics');
    assert.ok(pod.terminationGracePeriodSeconds >= 30, `${ds.metadata.name}: time to stop in order`);
  }
  // the director
  const d = container(director);
  assert.deepEqual(d.command, ['xdplb', 'attach', '-c', '/etc/xdplb/config.yaml']);
  assert.equal(director.spec.template.spec.serviceAccountName, 'xdplb-director');
  assert.equal(director.spec.updateStrategy.rollingUpdate.maxSurge, 0, 'the old director stops before the new one takes the pins');
  assert.deepEqual(d.securityContext.capabilities.drop, ['ALL']);
  assert.equal(d.securityContext.privileged, undefined, 'the director is not privileged');
  assert.equal(d.securityContext.allowPrivilegeEscalation, false);
  const bpffs = mountOf(director, '/sys/fs/bpf');
  assert.deepEqual(bpffs.volume.hostPath, { path: '/sys/fs/bpf', type: 'Directory' }, "the host's bpffs, whose pins outlive the pod");
  assert.equal(bpffs.mount.mountPropagation, 'HostToContainer');
  const metricsPort = d.ports.find((p: Any) => p.name === 'metrics').containerPort;
  const config = configOf(objs);
  assert.equal(config.metricsAddress.replace(/^.*:/, ''), String(metricsPort), "the probes' port is where the director's metrics listen");
  assert.doesNotMatch(config.metricsAddress, /^(127\.|localhost|\[::1\])/, 'the kubelet probes the node address, not loopback');
  assert.ok(config.kubernetes, 'the config has a kubernetes: section');
  assert.equal(config.kubernetes.kubeconfig, undefined, "the pods' ServiceAccounts, not a kubeconfig");
  // the agent
  const a = container(agent);
  assert.deepEqual(a.command.slice(0, 5), ['xdplb', 'realserver', '--k8s', '-c', '/etc/xdplb/config.yaml']);
  assert.equal(agent.spec.template.spec.serviceAccountName, 'xdplb-realserver');
  assert.deepEqual(a.env.find((e: Any) => e.name === 'NODE_NAME')?.valueFrom, { fieldRef: { fieldPath: 'spec.nodeName' } });
  const agentPort = a.ports.find((p: Any) => p.name === 'metrics').containerPort;
  const metricsAddress = a.command[a.command.indexOf('--metrics-address') + 1];
  assert.equal(metricsAddress.replace(/^.*:/, ''), String(agentPort), "the probes' port is where the agent's metrics listen");
  // one ServiceAccount per component, and RBAC equal to src/k8s/rbac.ts, each rule with its why above it
  for (const [component, rules] of Object.entries(COMPONENT_RULES)) {
    const sa = one(objs, 'ServiceAccount', `xdplb-${component}`);
    assert.equal(sa.metadata.namespace, NAMESPACE);
    assert.deepEqual(sortRules(boundRules(objs, `xdplb-${component}`, NAMESPACE)), sortRules(withoutWhy(rules)), `the ${component}'s RBAC is ${component === 'director' ? 'DIRECTOR_RULES' : 'AGENT_RULES'}`);
    for (const r of rules) assert.ok(text.includes(`  # ${r.why}\n  - apiGroups: ${JSON.stringify(r.apiGroups)}`), `the rule for ${r.resources.join(',')} says why: ${r.why}`);
  }
  assert.equal(objs.filter((o) => o.kind === 'ServiceAccount').length, 2, 'a ServiceAccount per component, no more');
}

describe('the Helm chart', () => {
  test('helm lint --strict passes, with the default values and with values that change every setting', () => {
    for (const args of [[], ['-f', join(dir, 'custom.yaml')]]) {
      const r = run(helm(), ['lint', '--strict', CHART, ...args]);
      assert.equal(r.status, 0, `helm lint --strict ${args.join(' ')}:\n${r.out}`);
      assert.match(r.out, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  test('templates/rbac.yaml is generated from src/k8s/rbac.ts, files/ are the dashboard and the alerts, and deploy/k8s/ is the chart rendered with its defaults', () => {
    assert.equal(readFileSync(RBAC_TEMPLATE, 'utf8'), rbacTemplate(), 'deploy/helm/xdplb/templates/rbac.yaml is stale: run scripts/node deploy/helm/generate.ts');
    assert.deepEqual(CHART_COPIES.map((c) => fileURLToPath(c.source)).sort(), [DASHBOARD, RULES].sort());
    for (const { copy, source } of CHART_COPIES) {
      const name = fileURLToPath(copy).slice(ROOT.length);
      assert.ok(readFileSync(copy).equals(readFileSync(source)), `${name} is stale (a copy of ${fileURLToPath(source).slice(ROOT.length)}, which is the one to edit): run scripts/node deploy/helm/generate.ts`);
    }
    assert.equal(readFileSync(MANIFESTS, 'utf8'), renderManifests(helm()), 'deploy/k8s/xdplb.yaml is stale: run scripts/node deploy/helm/render.ts');
    assert.deepEqual(COMPONENT_RULES, { director: DIRECTOR_RULES, realserver: AGENT_RULES });
  });

  test('the default values render the director and the agent as documented', () => {
    const text = helmTemplate(helm());
    const objs = objects(text);
    assertInvariants(objs, text);
    assert.deepEqual(objs.map((o) => o.kind).sort(), ['ClusterRole', 'ClusterRole', 'ClusterRoleBinding', 'ClusterRoleBinding', 'ConfigMap', 'DaemonSet', 'DaemonSet', 'Role', 'Role', 'RoleBinding', 'RoleBinding', 'ServiceAccount', 'ServiceAccount']);
    const director: Any = one(objs, 'DaemonSet', 'xdplb-director');
    const d = container(director);
    assert.deepEqual(d.securityContext.capabilities.add, DIRECTOR_CAPABILITIES);
    assert.deepEqual(director.spec.template.spec.nodeSelector, { 'xdplb.io/director': 'true' });
    assert.equal(d.image, 'xdplb:0.1.0');
    assert.equal(d.resources.limits, undefined, "no memory limit: the BPF maps are charged to the director's memory cgroup");
    assert.equal(director.spec.template.spec.initContainers, undefined, 'no privileged init container unless mountBpffs');
    const a = container(one(objs, 'DaemonSet', 'xdplb-realserver'));
    assert.equal(a.securityContext.privileged, true, 'writing the host sysctls needs /proc/sys writable: only privileged has that');
    assert.equal(a.securityContext.capabilities, undefined, 'a privileged container has every capability: no list pretends otherwise');
    assert.deepEqual(a.command.slice(5), ['--metrics-address', '0.0.0.0:9843', '--undo-on-exit']);
    const config = configOf(objs);
    assert.equal(config.interface, undefined, 'no interface until the operator names one (the director refuses to start)');
    assert.equal(config.metricsAddress, '0.0.0.0:9842');
    assert.deepEqual(config.kubernetes, {
      externalIPs: [],
      loadBalancerClass: 'xdplb.io/dr',
      defaultClass: false,
      pools: [],
      nodeSelector: '!xdplb.io/director',
      nodeHealthCheck: { port: 10256, path: '/healthz', interval: 2000, timeout: 1000, rise: 2, fall: 2 },
      drainTimeout: 60_000,
      leaderElection: { namespace: NAMESPACE, name: 'xdplb-director', leaseDuration: 1000, renewDeadline: 700, retryPeriod: 200 },
    });
    assert.deepEqual(d.env, [{ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }], "the director's identity in the Lease: its node");
  });

  test('values that change every setting reach the objects and the config', () => {
    const text = helmTemplate(helm(), '-f', join(dir, 'custom.yaml'));
    const objs = objects(text);
    assertInvariants(objs, text);
    const director: Any = one(objs, 'DaemonSet', 'xdplb-director');
    const pod = director.spec.template.spec;
    const d = container(director);
    assert.deepEqual(d.securityContext.capabilities.add, [...DIRECTOR_CAPABILITIES, 'SYS_RESOURCE']);
    assert.deepEqual(d.securityContext.seLinuxOptions, CUSTOM_VALUES.director.seLinuxOptions);
    assert.deepEqual(pod.nodeSelector, { 'example.com/lb': 'director' });
    assert.deepEqual(pod.tolerations, CUSTOM_VALUES.director.tolerations);
    assert.deepEqual(d.resources, CUSTOM_VALUES.director.resources);
    assert.equal(pod.priorityClassName, 'system-node-critical');
    assert.equal(pod.terminationGracePeriodSeconds, 45);
    assert.deepEqual(pod.imagePullSecrets, [{ name: 'pull' }]);
    const [init, ...more]: Any[] = pod.initContainers;
    assert.deepEqual([init.name, more], ['mount-bpffs', []], 'mountBpffs: an init container mounts the bpffs on the host');
    assert.equal(init.securityContext.privileged, true, 'Bidirectional propagation needs a privileged container');
    assert.deepEqual(init.volumeMounts, [{ name: 'bpffs', mountPath: '/sys/fs/bpf', mountPropagation: 'Bidirectional' }]);
    assert.match(init.command.join(' '), /mount -t bpf -o mode=0700 bpf \/sys\/fs\/bpf/);
    assert.equal(d.image, 'registry.example/xdplb:9.9.9');
    assert.equal(d.imagePullPolicy, 'Always');
    assert.equal(d.ports[0].containerPort, 19842);
    const agent: Any = one(objs, 'DaemonSet', 'xdplb-realserver');
    const a = container(agent);
    assert.equal(a.securityContext.privileged, undefined, 'writeSysctls false: not privileged');
    assert.deepEqual(a.securityContext.capabilities, { drop: ['ALL'], add: AGENT_CAPABILITIES });
    assert.equal(a.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(a.command.slice(5), ['--metrics-address', '[::]:19843'], 'no --undo-on-exit');
    assert.deepEqual(agent.spec.template.spec.nodeSelector, { 'kubernetes.io/os': 'linux', ...CUSTOM_VALUES.realserver.nodeSelector }, 'merged with the default');
    assert.deepEqual(agent.spec.template.spec.tolerations, CUSTOM_VALUES.realserver.tolerations);
    assert.deepEqual(a.resources, CUSTOM_VALUES.realserver.resources);
    assert.equal(agent.spec.template.spec.terminationGracePeriodSeconds, 60);
    const config = configOf(objs);
    assert.equal(config.interface, 'ens5');
    assert.equal(config.mode, 'generic');
    assert.equal(config.metricsAddress, '[::]:19842');
    assert.equal(config.hashSeed, 7);
    assert.deepEqual(config.capacity, CUSTOM_VALUES.config.capacity);
    const k = CUSTOM_VALUES.kubernetes;
    assert.deepEqual(config.kubernetes, {
      ...k,
      nodeHealthCheck: { ...k.nodeHealthCheck, interval: 3000, timeout: 500 },
      drainTimeout: 120_000,
      leaderElection: { namespace: NAMESPACE, name: 'lb-lease', leaseDuration: 2000, renewDeadline: 1500, retryPeriod: 300 },
    });
    for (const [component, port] of [['director', 19842], ['realserver', 19843]] as const) {
      const svc: Any = one(objs, 'Service', `xdplb-${component}-metrics`);
      assert.equal(svc.spec.clusterIP, 'None');
      assert.deepEqual(svc.spec.ports, [{ name: 'metrics', port, targetPort: 'metrics', protocol: 'TCP' }]);
      assert.equal(svc.spec.selector['app.kubernetes.io/component'], component);
      const sm: Any = one(objs, 'ServiceMonitor', `xdplb-${component}`);
      assert.equal(sm.apiVersion, 'monitoring.coreos.com/v1');
      assert.equal(sm.metadata.labels.release, 'prom');
      for (const [key, value] of Object.entries(sm.spec.selector.matchLabels)) assert.equal(svc.metadata.labels[key], value, `the ServiceMonitor selects its Service (${key})`);
      assert.equal(sm.spec.selector.matchLabels['app.kubernetes.io/component'], component);
      assert.deepEqual(sm.spec.endpoints, [{ port: 'metrics', path: '/metrics', interval: '15s' }]);
    }
    assertMonitoring(objs, { dashboardNamespace: 'monitoring', dashboardLabels: { 'example.com/dashboard': 'lb' }, ruleLabels: { release: 'prom' } });
    const cm: Any = one(objs, 'ConfigMap', 'xdplb-dashboard');
    assert.equal(cm.metadata.labels.grafana_dashboard, undefined, 'the default sidecar label dropped (null)');
    assert.deepEqual(cm.metadata.annotations, { grafana_folder: 'Load balancing' });
  });

  test('leaderElection.enabled=false: no leaderElection in the config, and no Lease rule granted', () => {
    const objs = objects(helmTemplate(helm(), '--set', 'leaderElection.enabled=false'));
    assert.equal(configOf(objs).kubernetes!.leaderElection, undefined);
    const granted = sortRules(boundRules(objs, 'xdplb-director', NAMESPACE));
    assert.deepEqual(granted, sortRules(withoutWhy(DIRECTOR_RULES.filter((r) => r.chartValue !== 'leaderElection.enabled'))));
    assert.ok(!granted.some((r) => r.resources.includes('leases')));
  });

  test("the dashboard and the alerts, turned on with their defaults: kube-prometheus-stack's sidecar label, the files' content", () => {
    const objs = objects(helmTemplate(helm(), ...MONITORING_ON));
    assertMonitoring(objs, { dashboardNamespace: NAMESPACE, dashboardLabels: { grafana_dashboard: '1' }, ruleLabels: {} });
    assert.equal(one(objs, 'ConfigMap', 'xdplb-dashboard').metadata.annotations, undefined);
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { templating: { list: { name: string; type: string }[] } };
    assert.ok(dashboard.templating.list.some((v) => v.type === 'datasource'), 'the dashboard asks for its data source (the sidecar resolves no import inputs)');
  });

  test('the README documents the capabilities the chart gives', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Install on Kubernetes'));
    assert.ok(readme.includes('## Install on Kubernetes'), 'the README has "Install on Kubernetes"');
    const rows = [...section.matchAll(/^\| (director|agent) \| `([A-Z_]+|privileged)` \|/gm)].map((m) => `${m[1]} ${m[2]}`);
    assert.deepEqual(rows, [...DIRECTOR_CAPABILITIES.map((c) => `director ${c}`), 'agent privileged', ...AGENT_CAPABILITIES.map((c) => `agent ${c}`)]);
  });
});

describe('the rendered objects on a real API server', () => {
  let kube: KubeCluster;
  before(async () => {
    kube = await startKube({ allowPrivileged: true }); // as kubeadm's API server: the agent is privileged by default
    // prometheus-operator's CRDs, as a cluster that runs it has them (server-side: upstream's advice, for their size)
    const crds = kubectl(['apply', '--server-side', '-f', prometheusOperatorCrdDir()]);
    assert.equal(crds.status, 0, `kubectl apply of prometheus-operator's CRDs:\n${crds.out}`);
    const established = kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/servicemonitors.monitoring.coreos.com', 'crd/prometheusrules.monitoring.coreos.com']);
    assert.equal(established.status, 0, `the CRDs are established:\n${established.out}`);
    // a dry run creates nothing, so the namespace of the custom values' dashboard is made for real
    const ns = kubectl(['create', 'namespace', 'monitoring']);
    assert.equal(ns.status, 0, ns.out);
  });
  after(async () => kube?.stop());

  function kubectl(args: string[], input?: string) {
    return run(kube.kubectl, ['--kubeconfig', kube.kubeconfigPath, ...args], input);
  }

  /** A v1 List of the objects, for one `kubectl apply -f -`. */
  const list = (items: unknown[]) => JSON.stringify({ apiVersion: 'v1', kind: 'List', items });

  test('kubectl apply --dry-run=server accepts deploy/k8s/xdplb.yaml (the default values) and the other values, ServiceMonitors, PrometheusRule and dashboard too', () => {
    const manifests = readFileSync(MANIFESTS, 'utf8');
    const all = objects(manifests);
    // a dry run creates nothing, so the namespace the other objects go in is applied for real first
    const ns = kubectl(['apply', '-f', '-'], JSON.stringify(one(all, 'Namespace', NAMESPACE)));
    assert.equal(ns.status, 0, ns.out);
    const r = kubectl(['apply', '--dry-run=server', '-f', fileURLToPath(MANIFESTS)]);
    assert.equal(r.status, 0, `kubectl apply --dry-run=server -f deploy/k8s/xdplb.yaml:\n${r.out}`);
    for (const o of all) assert.match(r.out, new RegExp(`^${o.kind.toLowerCase()}[./].*${o.metadata.name} (created|configured|unchanged) \\(server dry run\\)$`, 'm'), `${o.kind} ${o.metadata.name} accepted`);
    assert.doesNotMatch(r.out, /Warning/, 'no warnings');
    for (const [what, args] of [['the other values', ['-f', join(dir, 'custom.yaml')]], ['the defaults with the monitoring objects on', MONITORING_ON]] as const) {
      const rendered = objects(helmTemplate(helm(), ...args));
      for (const kind of ['ServiceMonitor', 'PrometheusRule']) assert.ok(rendered.some((o) => o.kind === kind), `${what} render a ${kind}`);
      const c = kubectl(['apply', '--dry-run=server', '-f', '-'], list(rendered));
      assert.equal(c.status, 0, `kubectl apply --dry-run=server of ${what}:\n${c.out}`);
      assert.equal(c.out.match(/\(server dry run\)/g)?.length, rendered.length, c.out);
      assert.doesNotMatch(c.out, /Warning/, 'no warnings');
    }
  });

  test("the server keeps the PrometheusRule's groups and the dashboard as rendered (its CRD prunes nothing)", () => {
    const rendered = objects(helmTemplate(helm(), ...MONITORING_ON)).filter((o) => o.kind === 'PrometheusRule' || o.metadata.name === 'xdplb-dashboard');
    assert.equal(rendered.length, 2);
    const r = kubectl(['apply', '--dry-run=server', '-o', 'json', '-f', '-'], list(rendered));
    assert.equal(r.status, 0, r.out);
    const back = (JSON.parse(r.stdout) as { items: Any[] }).items;
    assert.deepEqual(back.find((o) => o.kind === 'PrometheusRule')?.spec, { groups: ruleGroups() }, 'the stored groups are the rule file\'s');
    assert.equal(back.find((o) => o.kind === 'ConfigMap')?.data['xdplb.json'], readFileSync(DASHBOARD, 'utf8'));
  });

  test("the server refuses a PrometheusRule or a ServiceMonitor that prometheus-operator's CRD does not allow", () => {
    const rendered = objects(helmTemplate(helm(), ...MONITORING_ON));
    const broken = (kind: string, name: string, change: (o: Any) => void): Any => {
      const o = structuredClone(one(rendered, kind, name));
      change(o);
      return o;
    };
    const cases = [
      { what: 'a rule whose for is no duration', obj: broken('PrometheusRule', 'xdplb', (o) => void (o.spec.groups[0].rules[0].for = 'soon')), refused: /spec\.groups\[0\]\.rules\[0\]\.for in body should match/ },
      { what: 'a rule with a field rules do not have', obj: broken('PrometheusRule', 'xdplb', (o) => void (o.spec.groups[0].rules[0].alrt = 'XdplbDown')), refused: /unknown field "spec\.groups\[0\]\.rules\[0\]\.alrt"/ },
      { what: 'a rule without its expression', obj: broken('PrometheusRule', 'xdplb', (o) => void delete o.spec.groups[0].rules[0].expr), refused: /spec\.groups\[0\]\.rules\[0\]\.expr: Required value/ },
      { what: 'a ServiceMonitor whose interval is no duration', obj: broken('ServiceMonitor', 'xdplb-director', (o) => void (o.spec.endpoints[0].interval = 'often')), refused: /spec\.endpoints\[0\]\.interval in body should match/ },
    ];
    for (const c of cases) {
      const r = kubectl(['apply', '--dry-run=server', '-f', '-'], JSON.stringify(c.obj));
      assert.notEqual(r.status, 0, `${c.what} is refused:\n${r.out}`);
      assert.match(r.out, c.refused, `${c.what} is refused for that field:\n${r.out}`);
    }
  });
});
