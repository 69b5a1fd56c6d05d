// The director daemon: loads or adopts the data plane, keeps it equal to the
// configuration (reloads, neighbour changes, health), owns the VIPs, and
// leaves the data plane forwarding when it stops (unless told to detach).
import { existsSync, rmSync } from 'node:fs';
import { runFile, writeRunFile } from '../paths.ts';
import type { ConfigOverrides } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { attachOrReplace, defaultPinDir, detachPins, linkPath } from '../dataplane/attach.ts';
import { ensurePinDir } from '../dataplane/bpffs.ts';
import { DataPlane } from '../dataplane/dataplane.ts';
import { native, type NativeLink } from '../dataplane/native.ts';
import { errorMessage, XdplbError } from '../errors.ts';
import { component } from '../log.ts';
import { mustParseIp, parseIp, type IpAddress } from '../model/address.ts';
import type { BackendOverride, Facts } from '../model/desired.ts';
import type { Server } from 'node:http';
import { HealthChecker } from '../health/checker.ts';
import { readStatus, type DaemonState } from '../status/status.ts';
import { startApi } from './api.ts';
import { BackendPaths, lookupNics } from './backend-paths.ts';
import { POLL_MS as NEIGHBOUR_POLL_MS, TROUBLE_POLL_MS } from '../net/neighbours.ts';
import { PinDirLock } from './lock.ts';
import { Metrics } from '../metrics/metrics.ts';
import { startMetricsServer } from '../metrics/server.ts';
import { VERSION } from '../version.ts';
import { releaseVips } from '../net/vips.ts';
import { announcedVips, publishRoutes, withdrawRoutes } from '../net/routes.ts';
import { xdpTxAdvice, xdpTxErrors } from '../net/nic-health.ts';
import type { Role } from '../model/role.ts';
import { forgetRole, recordedRole, VipOwner } from './vip-owner.ts';
import { readApiToken } from './api-token.ts';
import { observe } from '../reconcile/observe.ts';
import { recordedDown } from '../reconcile/state.ts';
import { backendKey } from '../model/keys.ts';
import type { PlanContext } from '../reconcile/plan.ts';
import { Reconciler, type ReconcileResult } from '../reconcile/reconciler.ts';
import { PreviousOwners } from './previous-owners.ts';
import { combineServices } from '../sources/combine.ts';
import { ConfigFile, fileServices } from '../sources/config-file.ts';
import { hostname } from 'node:os';
import { clusterAccess, type ClusterAccess } from '../k8s/client.ts';
import { KubernetesSource } from '../k8s/source.ts';
import { LeaseElector } from '../k8s/lease.ts';
import type { KubernetesConfig } from '../config/schema.ts';

const log = component('director');

/**
 * How long a start waits for the Kubernetes API server's first lists before
 * it goes on with what it has: with nothing kept from the last run, long
 * enough for a slow API server; with the last run's services, briefly (they
 * are served meanwhile, and a restart should be quick).
 */
const KUBERNETES_START_WAIT_MS = 10_000;
const KUBERNETES_START_WAIT_KEPT_MS = 2000;

export interface DirectorOptions {
  configPath: string;
  overrides: ConfigOverrides;
  pinDir?: string;
  /** Remove program, pins and VIPs on stop (default: keep forwarding). */
  detachOnExit: boolean;
  /** Object file to load (upgrades, tests). */
  objectPath?: string;
}

export interface ReloadResult {
  ok: boolean;
  at: string;
  error?: string;
}

export class Director {
  readonly options: DirectorOptions;
  readonly pinDir: string;
  readonly ifindex: number;
  readonly mac: Buffer;
  readonly dp: DataPlane;
  /** The settings of the config file, with the services of every source (withSources). */
  config: Config;
  /** The config file as last read (its own services only). */
  private fileConfig: Config;
  lastReload: ReloadResult;
  /** The last change from a source other than the file (Kubernetes) the daemon applied or refused. */
  lastSourceUpdate: ReloadResult | null = null;
  lastReconcile: ReconcileResult | null = null;
  /** Keeps the data plane equal to the config and the facts (health, MACs, overrides). */
  readonly reconciler: Reconciler;
  /** The NIC each backend sits behind and its MAC. */
  private readonly paths: BackendPaths;
  private readonly health: HealthChecker;
  /** Runtime overrides by "service address" (lost on restart: the config is the lasting record). */
  private readonly overrides = new Map<string, BackendOverride>();
  private api: Server | null = null;
  private metricsServer: Server | null = null;
  private ready = false;
  readonly metrics: Metrics;
  private link: NativeLink | null = null;
  private timers: NodeJS.Timeout[] = [];
  private readonly tableCache = new Map<string, Int32Array>();
  private serviceIndex: { config: Config; byBackend: Map<string, string[]> } | null = null;
  private stopped = false;
  /** The VIP-owner role: active owns and announces the VIPs; standby keeps the maps filled, owns nothing. */
  private readonly vips: VipOwner;
  /** This daemon's hold on its pin directory (one daemon per pin directory). */
  private readonly lock: PinDirLock;
  /** Whether the data plane was found pinned at start (a restart or an upgrade). */
  private adopting = false;
  /** False while pins removed under the daemon could not be made again. */
  private pinsIntact = true;
  /** The reload under way (reloads are serialised). */
  private reloading: Promise<unknown> = Promise.resolve();
  /** The config file: settings and static services, read and watched. */
  private readonly file: ConfigFile;
  /** The Kubernetes mode's source (a `kubernetes:` section or --kubeconfig), else null. */
  private readonly kube: KubernetesSource | null;
  /** kubernetes.leaderElection: the Lease that makes this director active, else null (the role is the config's and `xdplb role`'s). */
  private readonly election: LeaseElector | null;
  /** Until when (performance.now()) it may claim the VIPs: the Lease's deadline, or the last renewal of vipClaimLease. */
  private claimUntil = 0;
  private claimTimer: NodeJS.Timeout | null = null;
  /** `xdplb drain-director`: every route withdrawn, forwarding kept (recorded: a restart stays drained). */
  private drained: boolean;
  /** The table and VIPs of the last routes published ("": none yet). */
  private publishedRoutes = '';
  /** The VIPs whose routes are in routeTable now. */
  private announced: string[] = [];
  /** Previous slot owners, lapsed once no live flow needs them (flowIdleTimeout after a change). */
  private readonly previousOwners: PreviousOwners;

  private constructor(options: DirectorOptions, file: ConfigFile, fileConfig: Config, cluster: ClusterAccess | null, pinDir: string, ifindex: number, mac: Buffer, dp: DataPlane, lock: PinDirLock) {
    this.options = options;
    this.file = file;
    this.lock = lock;
    this.fileConfig = fileConfig;
    this.kube = cluster && fileConfig.kubernetes ? this.kubernetesSource(cluster, fileConfig.kubernetes, fileConfig, pinDir) : null;
    this.config = this.withSources(fileConfig);
    this.pinDir = pinDir;
    this.ifindex = ifindex;
    this.mac = mac;
    this.dp = dp;
    this.reconciler = new Reconciler(observe(dp), {
      writer: dp,
      observe: () => observe(dp),
      context: () => this.planContext(),
      facts: this.facts,
      log,
      onTablesPatched: (ids) => this.previousOwners.changed(ids),
      onResult: (result) => {
        if (!result) return void this.metrics.reconcileFailures.inc();
        this.metrics.reconcileDuration.observe(result.durationMs / 1000);
        this.lastReconcile = result;
        this.syncRoutes(); // a backend down, up, added or gone may change what can be served
      },
    });
    this.previousOwners = new PreviousOwners({ dp, applied: () => this.reconciler.state, idleMs: () => this.config.flowIdleTimeout, log: component('flows') });
    this.paths = new BackendPaths(dp, ifindex, component('neighbours'));
    this.metrics = new Metrics(
      {
        dp,
        applied: () => this.reconciler.state,
        perBackend: () => this.config.metricsPerBackend,
        healthChecks: () => this.health.views(),
        neighbours: () => this.paths.resolution(),
        attached: () => this.attached(),
      },
      VERSION,
    );
    const kube = this.kube;
    if (kube) this.metrics.watchKubernetes(() => kube.view());
    const leaderElection = cluster ? fileConfig.kubernetes?.leaderElection : undefined;
    this.election = cluster && leaderElection ? this.leaseElector(cluster, leaderElection) : null;
    // a restart keeps the role set at run time; under leader election every start is a standby's, until it leads
    const role = this.election ? 'standby' : (recordedRole(pinDir) ?? fileConfig.role);
    if (!this.election && role !== fileConfig.role) log.info({ role, configured: fileConfig.role }, 'role as last set by xdplb role (kept across restarts)');
    this.vips = new VipOwner(role, {
      key: pinDir,
      ifindex,
      mac,
      enabled: () => this.config.ownVips,
      log: component('vips'),
      onRole: (role) => this.metrics.role(role),
      recordRole: !this.election,
      claimUntil: () => (this.election || this.config.vipClaimLease !== undefined ? this.claimUntil : Infinity),
      gate: dp,
    });
    const election = this.election;
    if (election) this.metrics.watchElection(() => election.view());
    this.metrics.watchNic(() => (this.nicTxErrors.first === null ? null : this.nicTxErrors.last - this.nicTxErrors.first));
    if (fileConfig.routeTable !== undefined) this.metrics.watchRoutes(() => ({ announced: this.announced.length, drained: this.drained }));
    this.health = new HealthChecker((service) => this.reconcileSoon('health', [service]), component('health'), (check, r) =>
      this.metrics.healthCheckDuration.observe({ check, result: r.ok ? 'ok' : 'failed' }, r.durationMs / 1000),
    );
    this.lastReload = { ok: true, at: new Date().toISOString() };
    this.drained = existsSync(runFile(pinDir, 'drained'));
    if (this.drained) log.warn({ pinDir }, 'drained (xdplb drain-director, kept across restarts): no route is published until `xdplb drain-director --undo`');
  }

  static async start(options: DirectorOptions): Promise<Director> {
    const file = new ConfigFile(options.configPath, options.overrides, component('config'));
    const config = await file.read();
    const cluster = config.kubernetes ? clusterAccess(config.kubernetes.kubeconfig) : null; // a kubeconfig that cannot be used stops the start before anything is touched
    if (!config.interface) throw new XdplbError('USAGE', 'no interface: give -i IFACE or set interface in the config');
    if (config.apiTokenFile !== undefined) apiToken(config.apiTokenFile); // an unusable token file stops the start before anything is touched
    const pinDir = options.pinDir ?? defaultPinDir(config.interface);
    const nic = directorNic(config.interface); // a NIC that is not there (or not Ethernet) stops the start before even the lock file is made
    const lock = PinDirLock.acquire(pinDir, `attach -c ${options.configPath}`); // before anything is touched
    let d: Director;
    try {
      const adopting = existsSync(`${pinDir}/services`); // no bpffs yet: nothing pinned (DataPlane.load mounts it)
      const dp = await DataPlane.load({
        pinDir,
        maglevSize: config.maglevTableSize,
        maxServices: config.capacity.services,
        maxDests: config.capacity.backends,
        maxFlows: config.capacity.flows,
        ...(options.objectPath ? { objectPath: options.objectPath } : {}),
      });
      d = new Director(options, file, config, cluster, pinDir, nic.ifindex, nic.mac, dp, lock);
      d.adopting = adopting;
    } catch (err) {
      lock.release();
      throw err;
    }
    try {
      await d.bringUp();
    } catch (err) {
      // servers and timers already started would keep a half-started daemon alive; the start's error is the one reported
      await d.stop().catch((stopErr: unknown) => log.error({ err: stopErr, startErr: err }, 'stopping a daemon that failed to start failed too'));
      throw err;
    }
    return d;
  }

  /**
   * Everything after loading the data plane: the API and metrics servers
   * first (an address that cannot be used stops the start before the NIC is
   * touched), then state, reconcile, attach, VIPs, timers.
   */
  private async bringUp(): Promise<void> {
    if (this.kube) {
      this.kube.start();
      const waitMs = this.kube.services().length > 0 ? KUBERNETES_START_WAIT_KEPT_MS : KUBERNETES_START_WAIT_MS;
      if (!(await this.kube.waitSynced(waitMs)))
        log.warn({ waitedMs: waitMs, kept: this.kube.services().length }, 'the Kubernetes API server has not been listed yet: starting with the services kept from the last run (if any); its services follow when it answers');
      this.config = this.withSources(this.fileConfig);
    }
    const config = this.config;
    log.info({ interface: config.interface, ifindex: this.ifindex, pinDir: this.pinDir, adopting: this.adopting, services: this.reconciler.state.services.size }, this.adopting ? 'adopting the pinned data plane' : 'new data plane');
    this.api = await startApi({ address: config.apiAddress, token: config.apiTokenFile === undefined ? undefined : apiToken(config.apiTokenFile), pinDir: this.pinDir, log: component('api') }, {
      daemon: () => ({ pid: process.pid, pinDir: this.pinDir, configPath: this.options.configPath }),
      state: () => this.state(),
      setOverride: (s, a, o) => this.setOverride(s, a, o),
      setRole: (role) => this.setRole(role),
      setDrained: (drained) => this.setDrained(drained),
    });
    this.metricsServer = await startMetricsServer(config.metricsAddress, this.metrics, () => this.ready && this.attached() && this.pinsIntact);
    this.paths.nics = lookupNics(config.services);
    this.paths.putTxPorts();
    this.paths.seed(this.reconciler.state);
    // adopted tables may hold previous owners: the flows' clock starts at this start
    this.previousOwners.changed([...this.reconciler.state.services.values()].map((s) => s.id));
    await this.paths.resolve(config.services, 1000);
    this.health.sync(config, recordedDown(this.reconciler.state, config.services)); // before the first reconcile, which records health verdicts
    this.reconciler.setConfig(config);
    this.reconciler.flush('start');
    this.paths.pruneTxPorts();
    this.dp.setIngressMac(this.mac); // before the attach: only frames sent to this NIC are ever forwarded (bpf/lib/ingress_mac.h)
    const { link, outcome } = await attachOrReplace(this.dp, this.pinDir, this.ifindex, config.mode);
    this.link = link;
    log.info({ outcome, mode: config.mode, program: this.dp.program.info().id }, 'XDP program in place');
    this.vips.sync(this.vipList(), true); // starting active is a takeover: every VIP is announced
    this.ready = true;
    this.election?.start(); // the maps are filled: a takeover is only the VIPs and their announcement
    this.renewStaticClaim();
    this.syncRoutes();
    this.paths.watch((changed) => this.neighboursChanged(changed, 'notice'));
    let lastPoll = performance.now();
    this.timers.push(
      setInterval(() => {
        // every POLL_MS, or every TROUBLE_POLL_MS while a backend is unresolved or stopped answering
        if (!this.paths.troubled() && performance.now() - lastPoll < NEIGHBOUR_POLL_MS - 100) return;
        lastPoll = performance.now();
        this.pollNeighbours();
      }, TROUBLE_POLL_MS),
    );
    this.timers.push(
      setInterval(() => {
        this.checkNic();
        this.checkPins();
        this.previousOwners.sweep();
        this.syncRoutes(true); // a route deleted under the daemon comes back within a second
      }, 1000),
    );
    this.file.watch(() => void this.reload('file changed'));
    log.info({ services: this.reconciler.state.services.size }, 'ready');
  }

  /**
   * Pins removed under the running daemon (an `rm` in the bpffs) are made
   * again from the objects it holds: else its program would go with it, and
   * a restart would start from empty maps. A program detached under it
   * (`xdplb detach --force`) is left so: /readyz and xdplb_xdp_attached say it.
   */
  private checkPins(): void {
    if (!this.attached()) return;
    const missing = this.dp.missingPins(this.pinDir);
    const linkMissing = !existsSync(linkPath(this.pinDir));
    if (missing.length === 0 && !linkMissing) return;
    try {
      ensurePinDir(this.pinDir);
      this.dp.repin(this.pinDir, missing);
      if (linkMissing) this.link?.pin(linkPath(this.pinDir));
      if (!this.attached()) {
        // a `detach --force` that removed the pins just now: leave its work done
        detachPins(this.pinDir);
        return;
      }
      this.pinsIntact = true;
      log.error({ pinDir: this.pinDir, pins: [...missing, ...(linkMissing ? ['link'] : [])] }, 'pins were removed under the running daemon: pinned again (xdplb detach detaches)');
    } catch (err) {
      if (this.pinsIntact) log.error({ pinDir: this.pinDir, err }, 'pins were removed under the running daemon and cannot be made again: a restart would start from empty maps');
      this.pinsIntact = false;
    }
  }

  /** Whether the program is still attached to the NIC (not detached or defunct since). */
  private attached(): boolean {
    try {
      return this.link !== null && this.link.info().ifindex === this.ifindex;
    } catch {
      return false;
    }
  }

  private pollNeighbours(): void {
    try {
      this.neighboursChanged(this.paths.poll(), 'poll');
    } catch (err) {
      log.error({ err }, 'neighbour poll failed');
    }
  }

  /** Backends whose MAC was resolved, changed or lost (by the kernel's notice, or a poll): their services are planned again. */
  private neighboursChanged(changed: string[], how: 'notice' | 'poll'): void {
    if (changed.length === 0 || this.stopped) return;
    log.info({ backends: changed, how }, 'backend MACs resolved, changed or lost');
    this.reconcileSoon('neighbours', changed.flatMap((a) => this.servicesOf().byBackend.get(a) ?? []));
  }

  /**
   * Marks services whose facts changed and lets the reconciler plan them at
   * the next turn of the event loop, with every other change that came
   * meanwhile (a failure is logged and retried by the reconciler).
   */
  private reconcileSoon(reason: string, services: Iterable<string>): void {
    this.reconciler.markDirty(services);
    this.reconciler.schedule(reason).catch(() => undefined);
  }

  private readonly facts: Facts = {
    macOf: (a, via) => this.paths.macOf(a, via),
    healthy: (s, a) => this.health.healthy(s.name, a),
    health: (s, a) => this.health.health(s.name, a),
    override: (s, a) => this.overrides.get(backendKey(s.name, a.text)) ?? null,
  };

  /** The config's services by backend address (made once per config). */
  private servicesOf(): { byBackend: Map<string, string[]> } {
    if (this.serviceIndex?.config !== this.config) {
      const byBackend = new Map<string, string[]>();
      for (const s of this.config.services)
        for (const b of s.backends) {
          const text = parseIp(b.address)?.text ?? b.address;
          byBackend.set(text, [...(byBackend.get(text) ?? []), s.name]);
        }
      this.serviceIndex = { config: this.config, byBackend };
    }
    return this.serviceIndex;
  }

  /** What plan() needs to know of this director. */
  private planContext(): PlanContext {
    return {
      maglevSize: this.dp.capacities.maglevSize,
      maxServices: this.dp.capacities.maxServices,
      maxDests: this.dp.capacities.maxDests,
      directorMac: this.mac,
      nic: (name) => this.paths.nics.get(name),
      tableCache: this.tableCache,
    };
  }

  /** Drains, removes or restores one backend of a service until the next restart. */
  setOverride(service: string, address: string, override: BackendOverride | null): string | null {
    const svc = this.config.services.find((s) => s.name === service);
    if (!svc) return `no service ${service}`;
    const ip = parseIp(address);
    if (!ip || !svc.backends.some((b) => parseIp(b.address)?.text === ip.text)) return `service ${service} has no backend ${address}`;
    const key = backendKey(service, ip.text);
    if (override) this.overrides.set(key, override);
    else this.overrides.delete(key);
    log.info({ service, backend: ip.text, override: override ?? 'none' }, 'backend override');
    this.reconciler.markDirty([service]);
    this.reconciler.flush(`override ${override ?? 'cleared'}`);
    return null;
  }

  /** The status (as read from the pins) plus what only the daemon knows. */
  state(): DaemonState {
    return {
      ...readStatus(this.dp, this.pinDir, this.reconciler.state),
      daemon: { pid: process.pid, configPath: this.options.configPath },
      lastReload: this.lastReload,
      lastReconcile: this.lastReconcile,
      failedServices: Object.fromEntries([...this.reconciler.results].filter(([, r]) => !r.ok)),
      role: this.vips.role,
      drained: this.drained,
      ...(this.nicTxErrors.first !== null && this.nicTxErrors.last > this.nicTxErrors.first
        ? { nicTxErrors: { driver: this.nicTxErrors.driver, sinceStart: this.nicTxErrors.last - this.nicTxErrors.first, advice: xdpTxAdvice(this.config.interface!, this.nicTxErrors.driver, this.config.mode) } }
        : {}),
      ...(this.config.routeTable !== undefined ? { routes: { table: this.config.routeTable, announced: this.announced } } : {}),
      ...(this.election ? { leaderElection: this.election.view() } : {}),
      overrides: Object.fromEntries(this.overrides),
      ...(this.kube ? { kubernetes: this.kube.view(), lastSourceUpdate: this.lastSourceUpdate } : {}),
    };
  }

  /** Every VIP of the services, once. */
  private vipList(): IpAddress[] {
    return [...new Set(this.config.services.map((s) => s.vip))].map(mustParseIp); // the schema's canonical text: one per address
  }

  /**
   * `xdplb role`: makes this director active (owns and announces every VIP)
   * or standby (owns none); the maps stay filled either way. Refused under
   * leader election, where the Lease decides.
   */
  setRole(role: Role): { was: Role } | { error: string } {
    if (this.election) {
      const v = this.election.view();
      return { error: `the role follows the Lease ${v.lease} (kubernetes.leaderElection; held by ${v.holder || 'nobody'}): to hand over, stop this director (SIGTERM releases the Lease)` };
    }
    return { was: this.changeRole(role) };
  }

  private changeRole(role: Role): Role {
    if (role === 'standby') this.syncRoutes(false, role); // routes go first: a router stops sending before the VIPs leave
    const was = this.vips.set(role, this.vipList());
    this.kube?.leadershipChanged();
    this.syncRoutes();
    return was;
  }

  /** `xdplb drain-director [--undo]`: withdraws every route (or publishes them again); forwarding goes on. */
  setDrained(drained: boolean): { was: boolean } {
    const was = this.drained;
    this.drained = drained;
    if (drained) writeRunFile(this.pinDir, 'drained', new Date().toISOString());
    else rmSync(runFile(this.pinDir, 'drained'), { force: true });
    this.syncRoutes();
    if (drained !== was) log.info({ drained, routeTable: this.config.routeTable ?? null }, drained ? 'drained: every route withdrawn, forwarding kept until the traffic stops' : 'undrained: the routes of the VIPs it can serve are published again');
    return { was };
  }

  /**
   * routeTable: makes the table hold a route for each VIP this director can
   * serve now (announcedVips), and no other of ours. Unchanged since the last
   * time: nothing to do, unless `force` (the periodic repair).
   */
  private syncRoutes(force = false, role: Role = this.vips?.role ?? 'standby'): void {
    const table = this.config?.routeTable;
    if (table === undefined || !this.ready || this.stopped) return;
    const vips = announcedVips(this.reconciler.state, { active: role === 'active', drained: this.drained });
    const wanted = `${table} ${vips.join(',')}`;
    if (!force && wanted === this.publishedRoutes) return;
    try {
      const changed = publishRoutes(this.pinDir, table, this.ifindex, vips);
      this.publishedRoutes = wanted;
      this.announced = vips;
      if (changed.added.length || changed.withdrawn.length) log.info({ table, ...changed, announced: vips.length }, 'routes for the routing daemon');
    } catch (err) {
      this.publishedRoutes = ''; // retried within a second
      log.error({ err, table }, 'publishing the routes failed; retried');
    }
  }

  /** The Lease's verdict: leading (until `until`) makes this director active, not leading standby at once. */
  private leadershipChanged(leading: boolean, until: number): void {
    this.claimUntil = leading ? until : 0;
    const role: Role = leading ? 'active' : 'standby';
    if (leading) this.vips.renewClaim(); // every renewal moves the gate's deadline on
    if (this.vips.role === role || (leading && this.stopped)) return; // a stopping leader still lets go
    try {
      this.changeRole(role);
    } catch (err) {
      // the NIC could not follow: as a leader it retries at the next renewal; letting go must not fail silently
      log.error({ err, role }, 'the VIPs could not follow the leader election');
    }
  }

  /**
   * Re-reads the configuration; on any error the running one stays. Reloads
   * run one after the other (a SIGHUP and a file change may overlap).
   */
  reload(why: string): Promise<ReloadResult> {
    const next = this.reloading.then(() => this.reloadNow(why));
    this.reloading = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }

  private async reloadNow(why: string): Promise<ReloadResult> {
    try {
      if (this.stopped) throw new XdplbError('DAEMON', 'the daemon is stopping');
      const fileConfig = await this.file.read();
      const fixed: (keyof Config)[] = ['interface', 'mode', 'maglevTableSize', 'metricsAddress', 'apiAddress', 'apiTokenFile', 'routeTable'];
      for (const k of fixed)
        if (fileConfig[k] !== this.fileConfig[k]) throw new XdplbError('CONFIG_INVALID', `${k} cannot change while running (${String(this.fileConfig[k])} → ${String(fileConfig[k])}): restart the daemon`);
      if (JSON.stringify(fileConfig.capacity) !== JSON.stringify(this.fileConfig.capacity))
        throw new XdplbError('CONFIG_INVALID', 'capacity cannot change while running: restart the daemon');
      const kube = fileConfig.kubernetes;
      if ((kube === undefined) !== (this.fileConfig.kubernetes === undefined) || kube?.kubeconfig !== this.fileConfig.kubernetes?.kubeconfig)
        throw new XdplbError('CONFIG_INVALID', 'the kubernetes section (or its kubeconfig) cannot be added, removed or changed while running: restart the daemon');
      if (JSON.stringify(kube?.leaderElection) !== JSON.stringify(this.fileConfig.kubernetes?.leaderElection))
        throw new XdplbError('CONFIG_INVALID', 'kubernetes.leaderElection cannot change while running: restart the daemon (SIGTERM hands the Lease over)');
      const previous = this.fileConfig;
      await this.apply(this.withSources(fileConfig), `reload (${why})`);
      this.fileConfig = fileConfig;
      if (kube && JSON.stringify(kube) !== JSON.stringify(previous.kubernetes)) this.kube?.setSettings(kube); // its services follow
      this.lastReload = { ok: true, at: new Date().toISOString() };
      this.metrics.reloadResult(true);
      log.info({ why, services: this.config.services.length }, 'configuration reloaded');
    } catch (err) {
      this.lastReload = { ok: false, at: new Date().toISOString(), error: errorMessage(err) };
      this.metrics.reloadResult(false);
      log.error({ why, err }, 'reload refused; the previous configuration stays');
    }
    return this.lastReload;
  }

  /** The Kubernetes services changed: applied like a reload, after any under way. */
  private sourcesChanged(): void {
    const next = this.reloading.then(async () => {
      if (this.stopped || !this.ready) return; // bringUp reads the sources itself
      try {
        await this.apply(this.withSources(this.fileConfig), 'kubernetes');
        this.lastSourceUpdate = { ok: true, at: new Date().toISOString() };
      } catch (err) {
        this.lastSourceUpdate = { ok: false, at: new Date().toISOString(), error: errorMessage(err) };
        log.error({ err }, 'the Kubernetes services were refused; the previous ones stay');
      }
    });
    this.reloading = next.then(
      () => undefined,
      () => undefined,
    );
  }

  /**
   * Makes the data plane serve `next` (the file's settings and every source's
   * services): only what changed is written. On any error the running
   * configuration is put back and the error thrown.
   */
  private async apply(next: Config, why: string): Promise<void> {
    if (!this.attached())
      throw new XdplbError('NOT_ATTACHED', `the program is no longer attached to ${this.config.interface} (detached under the daemon: xdplb detach --force?): restart the daemon to attach it again`);
    const nics = lookupNics(next.services); // before anything changes: a missing NIC refuses the config
    const previous = this.config;
    const previousNics = this.paths.nics;
    const known = this.paths.lastTargets; // the previous config's, from its resolve: not walked again
    this.config = next;
    this.paths.nics = nics;
    try {
      await this.paths.resolve(next.services, 500, known);
      this.health.sync(next);
      this.paths.putTxPorts();
      this.reconciler.setConfig(next); // only the services whose config changed are planned
      this.reconciler.flush(why);
      this.paths.pruneTxPorts();
      this.vips.sync(this.vipList());
    } catch (err) {
      this.config = previous;
      this.paths.nics = previousNics;
      this.health.sync(previous);
      try {
        this.reconciler.setConfig(previous);
        this.reconciler.flush('rollback');
        this.paths.pruneTxPorts();
      } catch (rollbackErr) {
        // the data plane was re-read and the reconciler retries with backoff; the change's own error is the one reported
        log.error({ err: rollbackErr, changeErr: err }, 'rollback of a refused change failed; retried');
      }
      throw err;
    }
    this.dropStaleOverrides(next);
  }

  /** Forgets the overrides of backends the config no longer has (O(overrides), not O(backends): they are few). */
  private dropStaleOverrides(config: Config): void {
    if (this.overrides.size === 0) return;
    const byName = new Map(config.services.map((s) => [s.name, s]));
    for (const key of this.overrides.keys()) {
      const cut = key.lastIndexOf(' '); // backendKey: "service address", and an address has no space
      const s = byName.get(key.slice(0, cut));
      if (!s?.backends.some((b) => b.address === key.slice(cut + 1))) this.overrides.delete(key);
    }
  }

  /** The Kubernetes source of a config's `kubernetes:` section. */
  private kubernetesSource(cluster: ClusterAccess, settings: KubernetesConfig, config: Config, pinDir: string): KubernetesSource {
    const { kubeconfig: _, ...rest } = settings;
    return new KubernetesSource(cluster, rest, {
      pinDir,
      capacity: config.capacity,
      instance: hostname(),
      log: component('kubernetes'),
      onChange: () => this.sourcesChanged(),
      isLeader: () => this.vips?.role === 'active',
    });
  }

  /**
   * vipClaimLease: renews the claim every third of it while the daemon runs
   * (a daemon that stopped renewing stops claiming the VIPs that long after).
   */
  private renewStaticClaim(): void {
    if (this.election || this.stopped) return;
    const lease = this.config.vipClaimLease;
    if (lease !== undefined) {
      this.claimUntil = performance.now() + lease;
      this.vips.renewClaim();
    }
    this.claimTimer = setTimeout(() => this.renewStaticClaim(), lease === undefined ? 1000 : Math.max(10, lease / 3));
  }

  /**
   * The NIC's own counters of XDP frames it failed to send (nic-health.ts):
   * rising, they mean the program "sends" frames that never leave. Logged
   * with the fix at most once a minute, and counted in the metrics and status.
   */
  private checkNic(): void {
    const nic = this.config.interface!;
    let read: { driver: string; stats: Record<string, number> };
    try {
      read = native.nicStats(nic);
    } catch {
      return; // a driver without ethtool counters: nothing to tell
    }
    const total = xdpTxErrors(read.stats);
    const since = (this.nicTxErrors.first ??= total);
    const rising = total > this.nicTxErrors.last;
    this.nicTxErrors.last = total;
    this.nicTxErrors.driver = read.driver;
    if (!rising || total === since) return;
    if (performance.now() - this.nicTxErrors.warnedAt < 60_000) return;
    this.nicTxErrors.warnedAt = performance.now();
    log.error({ interface: nic, driver: read.driver, xdpTxErrors: total - since }, `frames the program sends are not leaving: ${xdpTxAdvice(nic, read.driver, this.config.mode)}`);
  }

  /** The NIC's XDP send errors: at the first reading, the last one, and when the last warning went out. */
  private readonly nicTxErrors: { first: number | null; last: number; driver: string; warnedAt: number } = { first: null, last: 0, driver: '', warnedAt: -Infinity };

  /** The candidate for a config's kubernetes.leaderElection. */
  private leaseElector(cluster: ClusterAccess, l: NonNullable<KubernetesConfig['leaderElection']>): LeaseElector {
    return new LeaseElector({
      kubeconfig: cluster.kubeconfig,
      namespace: l.namespace ?? cluster.namespace,
      name: l.name,
      identity: l.identity ?? process.env.NODE_NAME ?? hostname(),
      timings: { leaseDuration: l.leaseDuration, renewDeadline: l.renewDeadline, retryPeriod: l.retryPeriod },
      log: component('lease'),
      onLeading: (leading, until) => this.leadershipChanged(leading, until),
    });
  }

  /**
   * The config file's settings with the services of every source (the file's
   * own, and the Kubernetes mode's), checked against each other: the one
   * service list the daemon works from.
   */
  private withSources(fileConfig: Config): Config {
    const file = fileServices(this.file.path, fileConfig);
    this.kube?.setClaimed(fileConfig.services);
    const services = combineServices(this.kube ? [file, this.kube] : [file], fileConfig.capacity);
    return services === fileConfig.services ? fileConfig : { ...fileConfig, services: [...services] };
  }

  /** Stops the daemon; the data plane keeps forwarding unless detachOnExit. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    if (this.claimTimer) clearTimeout(this.claimTimer);
    // a leader lets go of the VIPs first, then releases the Lease: a standby takes over at once
    await this.election?.stop().catch((err: unknown) => log.warn({ err }, 'stopping the leader election failed'));
    this.vips.close();
    this.file.close();
    await this.kube?.stop().catch((err: unknown) => log.warn({ err }, 'stopping the Kubernetes watches failed'));
    this.reconciler.stop();
    this.paths.close();
    this.health.stop();
    this.metricsServer?.closeAllConnections();
    await new Promise<void>((r) => (this.metricsServer ? this.metricsServer.close(() => r()) : r()));
    this.api?.closeAllConnections();
    await new Promise<void>((r) => (this.api ? this.api.close(() => r()) : r()));
    try {
      this.release();
    } finally {
      this.lock.release();
    }
  }

  /** The last part of stop(): the link, and the pins and VIPs when detaching on exit. */
  private release(): void {
    const forwarding = this.attached() && existsSync(linkPath(this.pinDir)); // the pin keeps it once our fd is closed
    this.link?.close();
    if (this.options.detachOnExit) {
      withdrawRoutes(this.pinDir);
      releaseVips(this.pinDir, this.ifindex);
      forgetRole(this.pinDir);
      detachPins(this.pinDir);
      log.info({ pinDir: this.pinDir }, 'detached: program, pins and VIPs removed');
    } else if (forwarding) {
      log.info({ pinDir: this.pinDir }, 'stopped; the data plane keeps forwarding');
    } else if (this.link === null) {
      log.info({ pinDir: this.pinDir }, 'stopped before the program was attached');
    } else {
      log.warn({ pinDir: this.pinDir }, 'stopped; nothing keeps forwarding: the program was detached, or its pins removed, under the daemon');
    }
  }
}

/** ARPHRD_ETHER: the director hands packets on by rewriting Ethernet addresses. */
const ARPHRD_ETHER = 1;

/** The director's NIC: it must exist and be an Ethernet interface (not lo, not a tunnel). */
/** The local API's token, read from apiTokenFile (root's, mode 0600). */
function apiToken(path: string): string {
  return readApiToken(path, 'apiTokenFile', 'CONFIG_INVALID', true);
}

function directorNic(name: string): { ifindex: number; mac: Buffer } {
  let nic: { ifindex: number; mac: Buffer; hardwareType: number };
  try {
    nic = native.interfaceInfo(name);
  } catch (err) {
    throw new XdplbError('INTERFACE', `interface ${name}: ${errorMessage(err)}`, [], { cause: err });
  }
  if (nic.hardwareType !== ARPHRD_ETHER)
    throw new XdplbError('INTERFACE', `interface ${name} is not an Ethernet interface (${nic.hardwareType === 772 ? 'it is a loopback' : `hardware type ${nic.hardwareType}`}): the director hands packets on by rewriting their Ethernet addresses`);
  return { ifindex: nic.ifindex, mac: nic.mac };
}
