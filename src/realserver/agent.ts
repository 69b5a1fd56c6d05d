// `xdplb realserver --k8s`: the node agent (a DaemonSet). From the same
// Services, EndpointSlices and Nodes, and the same `kubernetes:` settings, as
// the director, it keeps this node's lo VIPs in step with what the director
// may send it: while the node is eligible (Ready, not excluded, selected),
// every served VIP of its address families (nodeVips says why not only the
// ones sent to it now); a VIP it stops holding stays for drainTimeout, as the
// director drains a node that leaves. It adds and removes only addresses it
// added itself (its own record in realserver.ts: not those of `xdplb
// realserver --vip`), keeps the Direct-Routing sysctls while it runs, and
// reports a kube-proxy in IPVS mode without strictARP: that node answers ARP
// for every VIP kube-proxy binds on kube-ipvs0, taking them from the director.
import { CoreV1Api, EventsV1Api, type KubeConfig } from '@kubernetes/client-node';
import { load } from 'js-yaml';
import type { Server } from 'node:http';
import { Gauge, Registry } from 'prom-client';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import { mustParseIp } from '../model/address.ts';
import { startMetricsServer } from '../metrics/server.ts';
import type { ClusterAccess } from '../k8s/client.ts';
import { compileSettings, eligibleNodes, translate, type EligibleNode, type KubernetesSettings, type ServiceInput } from '../k8s/translate.ts';
import { ClusterWatch } from '../k8s/watch.ts';
import { eventBody } from '../k8s/events.ts';
import { addedVips, configureRealserver, undoRealserver } from './realserver.ts';

/**
 * The VIPs this node holds: while it is eligible (Ready, not excluded,
 * selected: eligibleNodes), every VIP of a family it has an InternalIP of.
 * Not only those the director sends it now: a Local Service moves between
 * nodes as its endpoints do, and a VIP already on lo cannot be late for the
 * first packet (on lo, with arp_ignore, it takes nothing from the director).
 * Pure; sorted.
 */
export function nodeVips(services: readonly ServiceInput[], node: EligibleNode | undefined): string[] {
  if (!node) return [];
  const vips = new Set<string>();
  for (const s of services) {
    const vip = mustParseIp(s.vip);
    if (node.addresses.has(vip.family)) vips.add(vip.text);
  }
  return [...vips].sort();
}

/**
 * VIPs the node stops holding stay on lo for drainMs (the director drains a
 * node that leaves for as long: its flows still arrive). Pure.
 */
export function withLeaving(previous: readonly string[], next: readonly string[], leaving: ReadonlyMap<string, number>, now: number, drainMs: number): { vips: string[]; leaving: Map<string, number>; nextDeadline: number | null } {
  const wanted = new Set(next);
  const still = new Map<string, number>();
  for (const [vip, deadline] of leaving) if (!wanted.has(vip) && deadline > now) still.set(vip, deadline);
  for (const vip of previous) if (!wanted.has(vip) && !leaving.has(vip)) still.set(vip, now + drainMs);
  const deadlines = [...still.values()];
  return { vips: [...new Set([...next, ...still.keys()])].sort(), leaving: still, nextDeadline: deadlines.length ? Math.min(...deadlines) : null };
}

/**
 * Whether kube-proxy's configuration (the config.conf of ConfigMap
 * kube-system/kube-proxy) puts it in IPVS mode without strictARP; null when
 * it cannot tell (no such ConfigMap: another proxy, or none).
 */
export function ipvsWithoutStrictArp(configText: string | undefined): boolean | null {
  if (configText === undefined) return null;
  const c = load(configText) as { mode?: string; ipvs?: { strictARP?: boolean } } | null;
  return c?.mode === 'ipvs' && c.ipvs?.strictARP !== true;
}

export interface AgentOptions {
  access: ClusterAccess;
  settings: KubernetesSettings;
  /** This node's name (its Node object). */
  node: string;
  metricsAddress: string;
  undoOnExit: boolean;
  log: Logger;
}

export class RealserverAgent {
  private readonly o: AgentOptions;
  private readonly watch: ClusterWatch;
  private pending: NodeJS.Immediate | null = null;
  private leaving: ReadonlyMap<string, number> = new Map();
  private drainTimer: NodeJS.Timeout | null = null;
  private kubeProxyTimer: NodeJS.Timeout | null = null;
  private server: Server | null = null;
  private readonly registry = new Registry();
  private synced = false;
  private vips: string[] = [];
  private syncErrors = 0;
  private stopped = false;

  constructor(o: AgentOptions) {
    this.o = o;
    this.watch = new ClusterWatch(o.access.kubeconfig, () => this.schedule(), o.log);
    const view = () => this;
    new Gauge({ name: 'xdplb_realserver_synced', help: '1 once the agent has listed the cluster and set lo as it asks.', registers: [this.registry], collect() { this.set(view().synced ? 1 : 0); } });
    new Gauge({ name: 'xdplb_realserver_vips', help: 'VIPs on lo that this node serves (added by the agent, or there already).', registers: [this.registry], collect() { this.set(view().vips.length); } });
    new Gauge({ name: 'xdplb_realserver_sync_errors', help: 'Times setting lo failed since the start (retried on the next change).', registers: [this.registry], collect() { this.set(view().syncErrors); } });
  }

  async start(): Promise<void> {
    const registry = this.registry;
    this.server = await startMetricsServer(this.o.metricsAddress, { chunks: async function* () { yield await registry.metrics(); }, contentType: registry.contentType }, () => this.synced);
    this.o.log.info({ node: this.o.node, server: this.o.access.server, metrics: this.o.metricsAddress }, 'real-server agent watching Services, EndpointSlices and Nodes');
    void this.watch.start();
    void this.checkKubeProxy();
    this.kubeProxyTimer = setInterval(() => void this.checkKubeProxy(), 3_600_000);
  }

  private schedule(): void {
    if (this.pending || this.stopped) return;
    this.pending = setImmediate(() => {
      this.pending = null;
      this.sync();
    });
  }

  /** Makes lo hold the VIPs this node serves now, and only those (of the ones the agent added). */
  private sync(): void {
    if (!this.watch.synced()) return;
    try {
      const snapshot = this.watch.snapshot();
      const t = translate(snapshot, this.o.settings);
      const node = eligibleNodes(snapshot.nodes, compileSettings(this.o.settings).selector).find((n) => n.name === this.o.node);
      const held = withLeaving(this.vips, nodeVips(t.services, node), this.leaving, Date.now(), this.o.settings.drainTimeout);
      this.leaving = held.leaving;
      if (this.drainTimer) clearTimeout(this.drainTimer);
      this.drainTimer = held.nextDeadline === null ? null : setTimeout(() => this.schedule(), Math.max(0, held.nextDeadline - Date.now()) + 10);
      const wanted = held.vips;
      const added = configureRealserver(wanted.map(mustParseIp), 'agent');
      const stale = addedVips('agent').filter((v) => !wanted.includes(v));
      const removed = stale.length > 0 ? undoRealserver(stale.map(mustParseIp), { keepSysctls: true, by: 'agent' }) : null;
      if (added.vipsAdded.length > 0 || removed?.vipsRemoved.length || Object.keys(added.sysctls).length > 0)
        this.o.log.info({ added: added.vipsAdded, removed: removed?.vipsRemoved ?? [], sysctls: added.sysctls, vips: wanted }, 'lo VIPs set');
      this.vips = wanted;
      this.synced = true;
    } catch (err) {
      this.syncErrors++;
      this.o.log.error({ err }, 'setting the lo VIPs failed; retried on the next change');
    }
  }

  /** Reads kube-proxy's ConfigMap; IPVS mode without strictARP → an error in the log and a Warning Event on this Node. */
  private async checkKubeProxy(): Promise<void> {
    const kc: KubeConfig = this.o.access.kubeconfig;
    let text: string | undefined;
    try {
      text = (await kc.makeApiClient(CoreV1Api).readNamespacedConfigMap({ namespace: 'kube-system', name: 'kube-proxy' })).data?.['config.conf'];
    } catch (err) {
      if ((err as { code?: number }).code !== 404) this.o.log.warn({ err: errorMessage(err) }, "cannot read kube-proxy's ConfigMap (kube-system/kube-proxy) to check strictARP");
      return;
    }
    let bad: boolean | null;
    try {
      bad = ipvsWithoutStrictArp(text);
    } catch (err) {
      this.o.log.warn({ err: errorMessage(err) }, "kube-proxy's config.conf is not YAML: strictARP not checked");
      return;
    }
    if (!bad) return;
    const note = 'kube-proxy runs in IPVS mode without strictARP: this node answers ARP for every Service VIP (kube-ipvs0), taking them from the xdplb director; set ipvs.strictARP: true in kube-system/kube-proxy';
    this.o.log.error({ node: this.o.node }, note);
    try {
      await kc.makeApiClient(EventsV1Api).createNamespacedEvent({
        namespace: 'default',
        body: eventBody({ namespace: 'default', instance: this.o.node, action: 'Check', reason: 'KubeProxyIPVSWithoutStrictARP', note, type: 'Warning', regarding: { apiVersion: 'v1', kind: 'Node', name: this.o.node } }),
      });
    } catch (err) {
      this.o.log.warn({ err: errorMessage(err) }, 'writing the strictARP Event on the Node failed');
    }
  }

  /** Stops watching; with undoOnExit, removes the VIPs it added and restores the sysctls. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.pending) clearImmediate(this.pending);
    if (this.drainTimer) clearTimeout(this.drainTimer);
    if (this.kubeProxyTimer) clearInterval(this.kubeProxyTimer);
    await this.watch.stop();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    if (this.o.undoOnExit) {
      const r = undoRealserver(undefined, { by: 'agent' });
      this.o.log.info({ removed: r.vipsRemoved, sysctls: r.sysctls }, 'undone: the VIPs the agent added removed, the sysctls restored');
    }
  }
}
