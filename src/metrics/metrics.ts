// Prometheus metrics. The data plane's series (per service and per backend)
// are written directly in the text format from one batched read of each
// per-CPU counter map per scrape; the director's own metrics (reconciles,
// reloads, health-check latency, build, process) live on a prom-client
// registry of their own. Labels follow node_exporter's IPVS collector
// (local_address, local_port, proto, remote_address, remote_port). With
// perBackend off, series per backend and per neighbour are left out (very
// large fleets); per-service series stay.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { unexpectedErrors } from '../guards.ts';
import { ABI_VERSION, CONSTANTS, trafficAt } from '../dataplane/abi.ts';
import type { DataPlane } from '../dataplane/dataplane.ts';
import type { HealthCheckView } from '../health/checker.ts';
import { formatIp } from '../model/address.ts';
import { backendKey } from '../model/keys.ts';
import { protocolLabel } from '../model/protocol.ts';
import { idLimits, type Applied } from '../reconcile/state.ts';
import { Chunks, Family, labelValue } from './exposition.ts';
import type { Role } from '../model/role.ts';
import type { KubernetesView } from '../k8s/source.ts';
import type { ElectionView } from '../k8s/lease.ts';

export interface MetricsSource {
  dp: DataPlane;
  /** What the data plane holds now (the director's applied state). */
  applied(): Applied;
  /** Whether to write series per backend and per neighbour (the config may change it on reload). */
  perBackend(): boolean;
  healthChecks?(): Iterable<HealthCheckView>;
  /** Backend nodes the director resolves, and whether their MAC is known. */
  neighbours?(): Iterable<{ address: string; resolved: boolean }>;
  /** Whether the program is attached to its NIC (absent: not a daemon). */
  attached?(): boolean;
}

/** The XDP action each global counter stands for (the rest are events). */
function actionOf(stat: string): string | null {
  if (stat === 'xdp_tx') return 'tx';
  if (stat === 'xdp_redirect') return 'redirect';
  if (stat.startsWith('pass_')) return 'pass';
  if (stat.startsWith('drop_')) return 'drop';
  if (stat === 'aborted') return 'aborted';
  return null;
}

export class Metrics {
  /** The director's own metrics; the data plane's are added by exposition(). */
  readonly registry = new Registry();
  readonly reconcileDuration: Histogram;
  readonly reconcileFailures: Counter;
  private readonly roleGauge: Gauge;
  private readonly reloads: Counter<'result'>;
  private readonly lastReloadOk: Gauge;
  private readonly lastReloadOkAt: Gauge;
  readonly healthCheckDuration: Histogram<'check' | 'result'>;
  private readonly src: MetricsSource;

  constructor(src: MetricsSource, version: string) {
    this.src = src;
    const r = this.registry;
    new Gauge({ name: 'xdplb_build_info', help: 'Build of this xdplb (value 1).', labelNames: ['version', 'abi_version'], registers: [r] }).set({ version, abi_version: String(ABI_VERSION) }, 1);
    this.reconcileDuration = new Histogram({ name: 'xdplb_reconcile_duration_seconds', help: 'Time to plan and apply a change to the data plane.', buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2, 10], registers: [r] });
    this.reconcileFailures = new Counter({ name: 'xdplb_reconcile_failures_total', help: 'Reconciles that failed (the data plane state was re-read).', registers: [r] });
    this.roleGauge = new Gauge({ name: 'xdplb_role', help: 'The director\'s role: 1 for the one it has (active owns and announces the VIPs; standby keeps its maps filled).', labelNames: ['role'], registers: [r] });
    new Counter({
      name: 'xdplb_unexpected_errors_total',
      help: 'Errors that nothing caught (defects), logged with their stack; the daemon carried on.',
      registers: [r],
      collect() {
        this.reset();
        this.inc(unexpectedErrors());
      },
    });
    this.reloads = new Counter({ name: 'xdplb_config_reloads_total', help: 'Configuration reloads, by result (ok, refused).', labelNames: ['result'], registers: [r] });
    for (const result of ['ok', 'refused']) this.reloads.inc({ result }, 0);
    this.lastReloadOk = new Gauge({ name: 'xdplb_config_last_reload_successful', help: '1 when the last configuration load (start or reload) was applied, 0 when it was refused.', registers: [r] });
    this.lastReloadOkAt = new Gauge({ name: 'xdplb_config_last_reload_success_timestamp_seconds', help: 'When a configuration was last applied (Unix time).', registers: [r] });
    this.lastReloadOk.set(1);
    this.lastReloadOkAt.setToCurrentTime();
    this.healthCheckDuration = new Histogram({
      name: 'xdplb_health_check_duration_seconds',
      help: 'Health-check probe durations of all backends, by check type and result (ok, failed).',
      labelNames: ['check', 'result'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2],
      registers: [r],
    });
    collectDefaultMetrics({ register: r });
  }

  /**
   * The Kubernetes mode's series, read from the source at each scrape: the
   * state of each watch, the Services served, the decisions refusing ports or
   * addresses by reason, and the Events and status writes made.
   */
  watchKubernetes(view: () => KubernetesView): void {
    // each series is filled from one view of the source at scrape time
    const collected = <M extends Gauge | Counter>(fill: (m: M, v: KubernetesView) => void) =>
      function (this: M) {
        this.reset();
        fill(this, view());
      };
    const registers = [this.registry];
    const gauge = (name: string, help: string, labelNames: string[], fill: (g: Gauge, v: KubernetesView) => void) => new Gauge({ name, help, labelNames, registers, collect: collected(fill) });
    const counter = (name: string, help: string, labelNames: string[], fill: (c: Counter, v: KubernetesView) => void) => new Counter({ name, help, labelNames, registers, collect: collected(fill) });
    gauge('xdplb_kubernetes_synced', '1 once Services, EndpointSlices and Nodes have all been listed from the API server.', [], (g, v) => g.set(v.synced ? 1 : 0));
    gauge('xdplb_kubernetes_watch_up', '1 while the last list or watch of a resource succeeded (no error since).', ['resource'], (g, v) => v.watches.forEach((w) => g.set({ resource: w.kind }, w.up ? 1 : 0)));
    gauge('xdplb_kubernetes_watch_last_list_timestamp_seconds', 'When a resource was last listed in full (Unix time; 0 before the first).', ['resource'], (g, v) =>
      v.watches.forEach((w) => g.set({ resource: w.kind }, (w.lastListMs ?? 0) / 1000)),
    );
    counter('xdplb_kubernetes_watch_relists_total', 'Full lists of a resource after the first (410 Gone, reconnects after errors).', ['resource'], (c, v) => v.watches.forEach((w) => c.inc({ resource: w.kind }, w.relists)));
    counter('xdplb_kubernetes_watch_errors_total', 'Failed lists and watches of a resource (each retried with backoff; the cache stays).', ['resource'], (c, v) => v.watches.forEach((w) => c.inc({ resource: w.kind }, w.errors)));
    gauge('xdplb_kubernetes_objects', 'Objects of a resource in the director\'s cache.', ['resource'], (g, v) => v.watches.forEach((w) => g.set({ resource: w.kind }, w.objects)));
    gauge('xdplb_kubernetes_services_served', 'Kubernetes Services with at least one port served.', [], (g, v) => g.set(v.servedServices));
    gauge('xdplb_kubernetes_refusals', 'What the director refuses to serve now, by reason (one per Service port, address or externalIP refused; each also a Warning Event).', ['reason'], (g, v) =>
      Object.entries(v.refusals).forEach(([reason, n]) => g.set({ reason }, n)),
    );
    counter('xdplb_kubernetes_events_total', 'Kubernetes Events the director wrote, failed to write, or dropped (too many waiting).', ['result'], (c, v) => {
      c.inc({ result: 'written' }, v.events.written);
      c.inc({ result: 'failed' }, v.events.failed);
      c.inc({ result: 'dropped' }, v.events.dropped);
    });
    counter('xdplb_kubernetes_status_writes_total', 'status.loadBalancer writes that succeeded.', [], (c, v) => c.inc(v.statusWrites));
    gauge('xdplb_kubernetes_translation_duration_seconds', 'How long the last translation of the cluster\'s objects into services took.', [], (g, v) => g.set((v.lastTranslationDurationMs ?? 0) / 1000));
  }

  /** The NIC's own count of XDP frames it failed to send (nic-health.ts), since the daemon started. */
  watchNic(view: () => number | null): void {
    new Gauge({
      name: 'xdplb_nic_xdp_tx_errors',
      help: "XDP frames the NIC's driver failed to send since the daemon started (its ethtool -S counters): rising, the program sends frames that never leave.",
      registers: [this.registry],
      collect() {
        const v = view();
        if (v !== null) this.set(v);
      },
    });
  }

  /** routeTable and drain-director: what this director gives the routing daemon to announce. */
  watchRoutes(view: () => { announced: number; drained: boolean }): void {
    const registers = [this.registry];
    new Gauge({ name: 'xdplb_routes_announced', help: 'VIPs whose route this director keeps in routeTable, for the routing daemon to announce.', registers, collect() { this.set(view().announced); } });
    new Gauge({ name: 'xdplb_director_drained', help: '1 while the director is drained (xdplb drain-director): no route published, forwarding kept.', registers, collect() { this.set(view().drained ? 1 : 0); } });
  }

  /** Series of kubernetes.leaderElection, filled from the elector's view at scrape time. */
  watchElection(view: () => ElectionView): void {
    const registers = [this.registry];
    const collect = <M extends Gauge | Counter>(fill: (m: M, v: ElectionView) => void) =>
      function (this: M) {
        this.reset();
        fill(this, view());
      };
    new Gauge({ name: 'xdplb_leader_election_leading', help: '1 while this director holds the Lease (and so is active).', labelNames: ['lease'], registers, collect: collect((g: Gauge, v) => g.set({ lease: v.lease }, v.leading ? 1 : 0)) });
    new Gauge({
      name: 'xdplb_leader_election_holder',
      help: 'The Lease\'s holder as this director last read or wrote it (1 on its series; holder "" when released).',
      labelNames: ['lease', 'holder'],
      registers,
      collect: collect((g: Gauge, v) => void (v.holder !== null && g.set({ lease: v.lease, holder: v.holder }, 1))),
    });
    new Gauge({
      name: 'xdplb_leader_election_lease_age_seconds',
      help: 'Seconds since the Lease last changed (a renewal or a takeover), as this director saw it: stays under leaseDuration while someone holds it.',
      labelNames: ['lease'],
      registers,
      collect: collect((g: Gauge, v) => void (v.ageSeconds !== null && g.set({ lease: v.lease }, v.ageSeconds))),
    });
    new Gauge({ name: 'xdplb_leader_election_transitions', help: 'How often the Lease changed holder (its leaseTransitions).', labelNames: ['lease'], registers, collect: collect((g: Gauge, v) => g.set({ lease: v.lease }, v.transitions)) });
    new Counter({ name: 'xdplb_leader_election_errors_total', help: 'Reads and writes of the Lease that failed (each retried after retryPeriod).', labelNames: ['lease'], registers, collect: collect((c: Counter, v) => c.inc({ lease: v.lease }, v.errors)) });
  }

  /** The director's role: 1 on its own series, 0 on the other. */
  role(role: Role): void {
    this.roleGauge.set({ role: 'active' }, role === 'active' ? 1 : 0);
    this.roleGauge.set({ role: 'standby' }, role === 'standby' ? 1 : 0);
  }

  /** Counts a configuration reload; a refused one leaves the running configuration in place. */
  reloadResult(ok: boolean): void {
    this.reloads.inc({ result: ok ? 'ok' : 'refused' });
    this.lastReloadOk.set(ok ? 1 : 0);
    if (ok) this.lastReloadOkAt.setToCurrentTime();
  }

  /**
   * The whole /metrics text, in chunks of a few hundred KiB to be written out
   * one after the other (see chunks()). Joined, it is the scrape's body.
   */
  async exposition(): Promise<string[]> {
    const pieces: string[] = [];
    for await (const piece of this.chunks()) pieces.push(piece);
    return pieces;
  }

  /**
   * The /metrics text as it is written: the data plane's series, then the
   * registry's. A chunk is given out as soon as it fills, so a scrape holds
   * one chunk, not the whole text (~95 MB at 10,000 services x 10 backends;
   * building it at once added ~100 MB RSS).
   */
  async *chunks(): AsyncGenerator<string> {
    yield* this.dataPlaneChunks();
    yield await this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * Counters, gauges and the applied state are read first, in one pass, so
   * the scrape is one moment's view. The text is family by family (the
   * format wants each family's samples together), so the services are gone
   * over once per family; each full chunk is given out with a turn of the
   * event loop after it: a scrape of a very large fleet must not hold up
   * health checks (a stalled loop can time a probe out).
   */
  private async *dataPlaneChunks(): AsyncGenerator<string> {
    const { dp } = this.src;
    const perBackend = this.src.perBackend();
    const applied = this.src.applied();
    const checks = new Map<string, HealthCheckView>();
    for (const c of this.src.healthChecks?.() ?? []) checks.set(backendKey(c.service, c.address), c);
    const limits = idLimits(applied);
    const svcTraffic = dp.serviceTrafficAll(limits.services);
    const destTraffic = perBackend ? dp.destTrafficAll(limits.dests) : null;
    const attachedNow = this.src.attached ? this.src.attached() : null;
    const flowEntries = dp.flowEntries();
    const neighbours = [...(this.src.neighbours?.() ?? [])];
    const globalStats = Object.entries(dp.globalStats());

    /** Per service: its labels, its data-plane backends (address, id, entry) and how many are up and healthy. */
    const rows = [...applied.services.values()].map((s) => {
      const local = `local_address="${formatIp(s.key.addr, s.key.family)}",local_port="${s.key.port}",proto="${protocolLabel(s.key.proto)}"`;
      const dests: { address: string; id: number; d: NonNullable<ReturnType<typeof applied.dests.get>> }[] = [];
      let up = 0;
      let healthy = 0;
      for (const [address, id] of s.dests) {
        const d = applied.dests.get(id);
        if (!d) continue;
        if (d.value.state === CONSTANTS.DEST_ACTIVE) up++;
        if (d.info.health !== 'down') healthy++;
        if (destTraffic) dests.push({ address, id, d });
      }
      return { s, local, svc: `{name="${labelValue(s.name)}",${local}}`, dests, up, healthy };
    });

    const out = new Chunks();
    const f = (name: string, type: 'counter' | 'gauge', help: string) => new Family(out, name, type, help);
    const flush = async function* (): AsyncGenerator<string> {
      if (!out.full) return;
      yield out.take();
      await new Promise((r) => setImmediate(r));
    };

    const attached = f('xdplb_xdp_attached', 'gauge', '1 while the program is attached to its NIC; 0 when it was detached or the NIC went away.');
    if (attachedNow !== null) attached.sample('', attachedNow ? 1 : 0);

    type Row = (typeof rows)[number];
    type Spec<T> = [name: string, type: 'counter' | 'gauge', help: string, each: (fam: Family, r: Row, x: T) => void];
    /** One family over every service (header first, written when its turn comes). */
    const perService = async function* ([name, type, help, each]: Spec<null>): AsyncGenerator<string> {
      const fam = f(name, type, help);
      for (const r of rows) {
        each(fam, r, null);
        yield* flush();
      }
    };
    const svcT = (r: Row) => trafficAt(svcTraffic, r.s.id);
    const svcSpecs: Spec<null>[] = [
      ['xdplb_service_packets_total', 'counter', 'Packets forwarded for a service (VIP, port, protocol).', (fam, r) => fam.sample(r.svc, svcT(r).packets)],
      ['xdplb_service_bytes_total', 'counter', 'IP bytes forwarded for a service.', (fam, r) => fam.sample(r.svc, svcT(r).bytes)],
      ['xdplb_service_new_flows_total', 'counter', 'New flows (TCP SYNs and flow-table creations) of a service.', (fam, r) => fam.sample(r.svc, svcT(r).newFlows)],
      ['xdplb_service_backends', 'gauge', 'Backends of a service in the data plane.', (fam, r) => fam.sample(r.svc, r.s.dests.size)],
      ['xdplb_service_backends_healthy', 'gauge', 'Backends of a service that pass their health check (all of them without a check).', (fam, r) => fam.sample(r.svc, r.healthy)],
      ['xdplb_service_backends_up', 'gauge', 'Backends of a service that take new flows (resolved, healthy, not draining).', (fam, r) => fam.sample(r.svc, r.up)],
    ];
    for (const spec of svcSpecs) yield* perService(spec);

    type Dest = Row['dests'][number];
    /** One family over every backend of every service (none without perBackend: header only). */
    const perDest = async function* ([name, type, help, each]: Spec<Dest>): AsyncGenerator<string> {
      const fam = f(name, type, help);
      for (const r of rows) {
        for (const x of r.dests) each(fam, r, x);
        yield* flush();
      }
    };
    const labelsOf = (r: Row, x: Dest) => `{${r.local},remote_address="${x.address}",remote_port="${r.s.key.port}"}`;
    const destT = (x: Dest) => trafficAt(destTraffic!, x.id);
    const checkOf = (r: Row, x: Dest) => checks.get(backendKey(r.s.name, x.address));
    const destSpecs: Spec<Dest>[] = [
      ['xdplb_backend_packets_total', 'counter', 'Packets forwarded to a backend of a service.', (fam, r, x) => fam.sample(labelsOf(r, x), destT(x).packets)],
      ['xdplb_backend_bytes_total', 'counter', 'IP bytes forwarded to a backend of a service.', (fam, r, x) => fam.sample(labelsOf(r, x), destT(x).bytes)],
      ['xdplb_backend_new_flows_total', 'counter', 'New flows sent to a backend of a service.', (fam, r, x) => fam.sample(labelsOf(r, x), destT(x).newFlows)],
      ['xdplb_backend_up', 'gauge', '1 when the backend takes new flows (resolved, healthy, not draining).', (fam, r, x) => fam.sample(labelsOf(r, x), x.d.value.state === CONSTANTS.DEST_ACTIVE ? 1 : 0)],
      ['xdplb_backend_draining', 'gauge', '1 when the backend is drained: it keeps its flows but takes no new ones.', (fam, r, x) => fam.sample(labelsOf(r, x), x.d.value.state === CONSTANTS.DEST_DRAINING ? 1 : 0)],
      ['xdplb_backend_weight', 'gauge', 'Configured weight of a backend.', (fam, r, x) => fam.sample(labelsOf(r, x), x.d.info.weight)],
      ['xdplb_backend_health_up', 'gauge', 'Health-check verdict: 1 up, 0 down (absent without a check).', (fam, r, x) => {
        if (x.d.info.health !== 'none') fam.sample(labelsOf(r, x), x.d.info.health === 'up' ? 1 : 0);
      }],
      ['xdplb_backend_health_checks_total', 'counter', 'Health-check probes of a backend, by result (ok, failed), since the daemon started.', (fam, r, x) => {
        const check = checkOf(r, x);
        if (!check) return;
        const base = labelsOf(r, x).slice(0, -1);
        fam.sample(`${base},result="ok"}`, check.ok);
        fam.sample(`${base},result="failed"}`, check.failed);
      }],
      ['xdplb_backend_health_check_last_duration_seconds', 'gauge', 'Duration of the last health-check probe of a backend.', (fam, r, x) => {
        const check = checkOf(r, x);
        if (check && check.lastDurationMs !== null) fam.sample(labelsOf(r, x), check.lastDurationMs / 1000);
      }],
    ];
    for (const spec of destSpecs) yield* perDest(spec);

    f('xdplb_services', 'gauge', 'Services in the data plane.').sample('', applied.services.size);
    f('xdplb_flow_table_entries', 'gauge', 'Entries in the flow table (flows on Maglev slots that changed owner; LRU).').sample('', flowEntries);
    f('xdplb_flow_table_capacity', 'gauge', 'Capacity of the flow table (capacity.flows).').sample('', dp.capacities.maxFlows);

    const nCount = f('xdplb_neighbours', 'gauge', 'Backend nodes by neighbour (ARP/NDP) resolution state.');
    const resolved = neighbours.filter((n) => n.resolved).length;
    nCount.sample('{state="resolved"}', resolved);
    nCount.sample('{state="unresolved"}', neighbours.length - resolved);
    const nResolved = f('xdplb_neighbour_resolved', 'gauge', '1 when the MAC address of a backend node is known.');
    if (perBackend) for (const n of neighbours) nResolved.sample(`{remote_address="${n.address}"}`, n.resolved ? 1 : 0);
    yield* flush();

    const byAction = new Map<string, bigint>();
    for (const [name, v] of globalStats) {
      const action = actionOf(name);
      if (action) byAction.set(action, (byAction.get(action) ?? 0n) + v);
    }
    const actions = f('xdplb_xdp_actions_total', 'counter', 'XDP verdicts of the program.');
    for (const [action, v] of byAction) actions.sample(`{action="${action}"}`, v);
    const drops = f('xdplb_drops_total', 'counter', 'Packets dropped, by reason.');
    for (const [name, v] of globalStats) if (name.startsWith('drop_')) drops.sample(`{reason="${name.slice(5)}"}`, v);
    const events = f('xdplb_datapath_events_total', 'counter', 'Every global data-plane counter, by name.');
    for (const [name, v] of globalStats) events.sample(`{event="${name}"}`, v);
    yield out.take();
  }
}
