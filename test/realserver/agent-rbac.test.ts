// The node agent's RBAC rules (AGENT_RULES in src/k8s/rbac.ts) are enough and
// each is needed: `xdplb realserver --k8s` runs in a network namespace of its
// own (its lo and sysctls are that namespace's) against the real API server,
// as a ServiceAccount bound to exactly AGENT_RULES, then to every set with
// one rule left out, and the behaviour the rule names fails.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { startKube, type KubeCluster } from '../helpers/kube.ts';
import { relayIntoNetns, type Relay } from '../helpers/relay.ts';
import { AGENT_RULES, type Rule } from '../../src/k8s/rbac.ts';
import { inNs } from '../../src/lab/lab.ts';

const NS = 'xdplb-agentrbac';
const VIP = '192.0.2.9';
const BIN = fileURLToPath(new URL('../../bin/xdplb', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'xdplb-agent-rbac-'));
const configPath = join(dir, 'config.yaml');
let kube: KubeCluster;
let relay: Relay | undefined;
let serial = 0;

before(async () => {
  execFileSync('ip', ['netns', 'add', NS]);
  execFileSync('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  kube = await startKube();
  relay = await relayIntoNetns(NS, Number(new URL(kube.server).port));
  const core = kube.admin.makeApiClient(k8s.CoreV1Api);
  const node = await core.createNode({ body: { metadata: { name: 'n1' } } });
  await core.replaceNodeStatus({ name: 'n1', body: { ...node, status: { conditions: [{ type: 'Ready', status: 'True' }], addresses: [{ type: 'InternalIP', address: '10.240.0.101' }] } } });
  await core.createNamespacedService({ namespace: 'default', body: { metadata: { name: 'ext' }, spec: { type: 'ClusterIP', externalIPs: [VIP], ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } } });
  await core.createNamespacedConfigMap({ namespace: 'kube-system', body: { metadata: { name: 'kube-proxy' }, data: { 'config.conf': 'mode: ipvs\nipvs:\n  strictARP: false\n' } } });
  writeFileSync(configPath, `kubernetes:\n  externalIPs: [${VIP}/32]\n`);
});

after(async () => {
  await relay?.stop();
  await kube?.stop();
  execFileSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
  rmSync(dir, { recursive: true, force: true });
});

interface AgentRun {
  /** The VIP was on lo (the agent listed the cluster and set lo from it). */
  vipOnLo: boolean;
  /** A KubeProxyIPVSWithoutStrictARP Event on the Node, from this run. */
  eventWritten: boolean;
  log: string;
}

/** An agent as a ServiceAccount bound to these rules, for 6 s (or until it has done everything), then stopped with --undo-on-exit. */
async function run(rules: readonly Rule[]): Promise<AgentRun> {
  const name = `agent-${++serial}`;
  const kubeconfig = join(dir, `${name}.kubeconfig`);
  writeFileSync(kubeconfig, (await kube.boundTo(name, rules)).exportConfig());
  const runDir = mkdtempSync(join(dir, 'run-'));
  const events = kube.admin.makeApiClient(k8s.EventsV1Api);
  const strictArpEvents = async () => (await events.listNamespacedEvent({ namespace: 'default', fieldSelector: 'regarding.name=n1' })).items.filter((e) => e.reason === 'KubeProxyIPVSWithoutStrictARP').length;
  const earlier = await strictArpEvents();
  const argv = inNs(NS, [BIN, 'realserver', '--k8s', '-c', configPath, '--kubeconfig', kubeconfig, '--node', 'n1', '--undo-on-exit']);
  const child = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, XDPLB_RUN_DIR: runDir, XDPLB_LOG_FORMAT: 'json' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (c: Buffer) => (log += c.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const onLo = () => execFileSync('ip', ['-n', NS, '-o', 'addr', 'show', 'dev', 'lo'], { encoding: 'utf8' }).includes(`${VIP}/32`);
  const started = Date.now();
  let vipOnLo = false;
  let eventWritten = false;
  while (Date.now() - started < 6000 && !(vipOnLo && eventWritten)) {
    vipOnLo ||= onLo();
    eventWritten ||= (await strictArpEvents()) > earlier;
    await new Promise((r) => setTimeout(r, 200));
  }
  child.kill('SIGTERM');
  assert.equal(await exited, 0, `the agent stopped cleanly:\n${log}`);
  assert.equal(onLo(), false, 'the agent undid what it added');
  rmSync(runDir, { recursive: true, force: true });
  return { vipOnLo, eventWritten, log };
}

describe("the node agent's RBAC rules", () => {
  test('with exactly AGENT_RULES: the VIP on lo, kube-proxy without strictARP reported as an Event on the Node', async () => {
    const r = await run(AGENT_RULES);
    assert.deepEqual([r.vipOnLo, r.eventWritten], [true, true], r.log);
  });

  const without: Record<string, (r: AgentRun) => void> = {
    'services list,watch': (r) => assert.equal(r.vipOnLo, false, 'never synced: no VIP on lo'),
    'endpointslices list,watch': (r) => assert.equal(r.vipOnLo, false, 'never synced: no VIP on lo'),
    'nodes list,watch': (r) => assert.equal(r.vipOnLo, false, 'never synced: no VIP on lo'),
    'configmaps get': (r) => {
      assert.deepEqual([r.vipOnLo, r.eventWritten], [true, false], 'strictARP is not checked');
      assert.match(r.log, /cannot read kube-proxy's ConfigMap/);
    },
    'events create': (r) => {
      assert.deepEqual([r.vipOnLo, r.eventWritten], [true, false], 'no Event on the Node');
      assert.match(r.log, /writing the strictARP Event on the Node failed/);
    },
  };
  for (const rule of AGENT_RULES) {
    const label = `${rule.resources.join(',')} ${rule.verbs.join(',')}`;
    test(`without "${label}" (${rule.why}): that fails`, async () => {
      const check = without[label];
      assert.ok(check, `a named behaviour for the rule ${label}`);
      check(await run(AGENT_RULES.filter((r) => r !== rule)));
    });
  }
});
