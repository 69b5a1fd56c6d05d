// Health checks of every backend of every service that asks for them: one
// probe per backend address and effective check (subscriptions.ts), shared
// by every service that checks that address in exactly that way, each on its
// own timer, started at a random point of the first interval so probes do
// not fire in lock step. A probe's transition logs one line and, for each
// service it tells, updates what the service's verdicts let in (the all-down
// memory is kept here, where verdicts change) and asks for a reconcile;
// health() and healthy() only read.
// A probe never stops and never rejects: whatever throws in one run (a
// probe, a callback) is logged and counted, and the next run is scheduled.
import type { Config, ServiceConfig } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { IpAddress } from '../model/address.ts';
import type { Health } from '../model/health.ts';
import { backendKey } from '../model/keys.ts';
import { httpProbe, tcpProbe, type ProbeResult } from './probes.ts';
import { admits, nextHealth, nextServiceHealth, RECORDED_DOWN, startingState, type HealthState, type ServiceHealth } from './state.ts';
import { wantedProbes, type EffectiveCheck, type WantedProbe } from './subscriptions.ts';
import { countUnexpected } from '../guards.ts';

/** One health check as the checker holds it now (for metrics): one per (service, backend), its probe's. */
export interface HealthCheckView {
  service: string;
  address: string;
  /** Duration of the last probe, null before the first. */
  lastDurationMs: number | null;
  ok: number;
  failed: number;
}

/** A running probe of one address, and the services it gives verdicts to. */
interface Probe {
  key: string;
  address: string;
  check: EffectiveCheck;
  services: ReadonlySet<string>;
  state: HealthState;
  timer?: NodeJS.Timeout;
  last: ProbeResult | null;
  ok: number;
  failed: number;
}

/** One checked backend of one service, and the probe that checks it. */
interface Subscription {
  service: string;
  address: string;
  probe: Probe;
}

/** The first services a transition names: a node behind a thousand Services must not write a line of a thousand names. */
const SERVICES_LOGGED = 10;

function probeOnce(address: string, check: EffectiveCheck): Promise<ProbeResult> {
  if (check.type === 'tcp') return tcpProbe(address, check.port, check.timeout);
  return httpProbe({
    scheme: check.type,
    host: address,
    port: check.port,
    path: check.path,
    expect: check.expectStatus,
    verifyTls: check.verifyTls,
    timeoutMs: check.timeout,
    ...(check.host !== null ? { hostHeader: check.host } : {}),
  });
}

export class HealthChecker {
  /** By probeKey. */
  private probes = new Map<string, Probe>();
  /** By backendKey. */
  private subscriptions = new Map<string, Subscription>();
  /** Per checked service: its backends' verdicts together (updated where they change). */
  private readonly verdicts = new Map<string, ServiceHealth>();
  private services = new Map<string, ServiceConfig>();
  private readonly onChange: (service: string) => void;
  private readonly onProbe: (check: string, result: ProbeResult) => void;
  private readonly log: Logger;
  private runErrors = 0;

  /** onChange: a verdict of one of the service's backends changed; onProbe: every probe's outcome (for metrics). */
  constructor(onChange: (service: string) => void, log: Logger, onProbe: (check: string, result: ProbeResult) => void = () => undefined) {
    this.onChange = onChange;
    this.onProbe = onProbe;
    this.log = log;
  }

  /**
   * Starts and stops probes, and moves services between them, to match the
   * configuration. A service joining a running probe takes its verdict at
   * once; a probe no service uses any more stops. `recordedDown` (backendKey
   * keys): backends the data plane recorded as down, which a new probe
   * starts from (a daemon restart keeps a dead backend out).
   */
  sync(config: Config, recordedDown: ReadonlySet<string> = new Set()): void {
    this.services = new Map(config.services.map((s) => [s.name, s]));
    const wanted = wantedProbes(config.services);
    const before = this.subscriptions;
    const probes = new Map<string, Probe>();
    const subscriptions = new Map<string, Subscription>();
    for (const [key, w] of wanted) {
      const probe = this.probes.get(key) ?? this.start(key, w, before, recordedDown);
      probe.services = w.services;
      probes.set(key, probe);
      for (const service of w.services) subscriptions.set(backendKey(service, w.address), { service, address: w.address, probe });
    }
    for (const [key, p] of this.probes) if (!probes.has(key)) clearTimeout(p.timer);
    this.probes = probes;
    this.subscriptions = subscriptions;

    // verdicts are counted again where a service's backends are checked by other probes than before
    const changed = new Set<string>();
    for (const s of config.services) if (s.healthCheck.type !== 'none' && !this.verdicts.has(s.name)) changed.add(s.name);
    for (const [id, sub] of this.subscriptions) if (before.get(id)?.probe !== sub.probe) changed.add(sub.service);
    for (const [id, sub] of before) if (!this.subscriptions.has(id)) changed.add(sub.service);
    for (const name of this.verdicts.keys()) if ((this.services.get(name)?.healthCheck.type ?? 'none') === 'none') this.verdicts.delete(name);
    for (const name of changed) {
      const s = this.services.get(name);
      if (s && s.healthCheck.type !== 'none') this.recount(s);
    }
  }

  /**
   * A new probe, its first run at a random point of its first interval. It
   * starts from what its services knew of the address: the probe each moves
   * from (its check changed), else the data plane's record.
   */
  private start(key: string, w: WantedProbe, before: ReadonlyMap<string, Subscription>, recordedDown: ReadonlySet<string>): Probe {
    const known: HealthState[] = [];
    for (const service of w.services) {
      const id = backendKey(service, w.address);
      const state = before.get(id)?.probe.state ?? (recordedDown.has(id) ? RECORDED_DOWN : undefined);
      if (state) known.push(state);
    }
    const probe: Probe = { key, address: w.address, check: w.check, services: w.services, state: startingState(known), last: null, ok: 0, failed: 0 };
    probe.timer = setTimeout(() => void this.run(probe), Math.random() * w.check.interval);
    return probe;
  }

  /** Records which backends of a service are up now (and, while any is, that they were the last up). O(backends). */
  private recount(s: ServiceConfig): void {
    const up = new Set<string>();
    for (const b of s.backends) if (this.subscriptions.get(backendKey(s.name, b.address))?.probe.state.up ?? true) up.add(b.address);
    this.verdicts.set(s.name, nextServiceHealth(this.verdicts.get(s.name) ?? null, up));
  }

  /** One run of a probe, its verdict, the next run. Never rejects. */
  private async run(probe: Probe): Promise<void> {
    try {
      const result = await probeOnce(probe.address, probe.check);
      if (this.probes.get(probe.key) !== probe) return; // stopped meanwhile: no one to tell
      this.record(probe, result);
    } catch (err) {
      this.bug(err, { backend: probe.address, check: probe.check.type }, 'health check run failed; the check goes on');
    } finally {
      if (this.probes.get(probe.key) === probe) probe.timer = setTimeout(() => void this.run(probe), probe.check.interval);
    }
  }

  /** A probe's result: its counts, its verdict and, when that changed, every service it tells. */
  private record(probe: Probe, result: ProbeResult): void {
    probe.last = result;
    if (result.ok) probe.ok++;
    else probe.failed++;
    const { state, changed } = nextHealth(probe.state, result.ok, probe.check.rise, probe.check.fall);
    probe.state = state;
    try {
      this.onProbe(probe.check.type, result);
    } catch (err) {
      this.bug(err, { backend: probe.address }, 'recording a probe failed (a bug); its verdict stands');
    }
    if (!changed) return;
    const health = state.up ? 'up' : 'down';
    const services = [...probe.services];
    this.log.warn(
      { backend: probe.address, port: probe.check.port, health, check: probe.check.type, detail: result.detail, services: services.slice(0, SERVICES_LOGGED), serviceCount: services.length },
      `backend ${health}`,
    );
    // every service's memory first: a reconcile asked for by the first may read the others
    for (const name of services) {
      const s = this.services.get(name);
      if (s) this.recount(s);
    }
    for (const service of services) {
      try {
        this.onChange(service);
      } catch (err) {
        this.bug(err, { service, backend: probe.address }, 'asking for a reconcile failed (a bug); the other services are still told');
      }
    }
  }

  /** Counts and logs what threw where nothing should. */
  private bug(err: unknown, fields: Record<string, unknown>, message: string): void {
    this.runErrors++;
    countUnexpected();
    try {
      this.log.error({ ...fields, err, runErrors: this.runErrors }, message);
    } catch {
      // a logger that throws has nowhere to say so; the count above still does
    }
  }

  /** Runs that threw (a bug, not a backend's failure), since the start: each is logged. */
  errors(): number {
    return this.runErrors;
  }

  /** The health check's verdict alone ('none' where there is no check). A read: changes nothing. */
  health(service: string, address: IpAddress): Health {
    const sub = this.subscriptions.get(backendKey(service, address.text));
    return sub ? (sub.probe.state.up ? 'up' : 'down') : 'none';
  }

  /**
   * Whether a backend may take traffic: up, or — when every backend of the
   * service is down and its policy is keep-last — one of those up last; true
   * without a check. A read (O(1)): changes nothing.
   */
  healthy(service: string, address: IpAddress): boolean {
    const verdicts = this.verdicts.get(service);
    const s = this.services.get(service);
    return !verdicts || !s || admits(verdicts, s.allDown, address.text);
  }

  /** Last probe of a backend (for status and metrics). */
  lastResult(service: string, address: string): ProbeResult | null {
    return this.subscriptions.get(backendKey(service, address))?.probe.last ?? null;
  }

  /** Every checked backend of every service now, for metrics: what its (shared) probe counted. */
  *views(): Iterable<HealthCheckView> {
    for (const { service, address, probe } of this.subscriptions.values()) {
      yield { service, address, lastDurationMs: probe.last?.durationMs ?? null, ok: probe.ok, failed: probe.failed };
    }
  }

  stop(): void {
    for (const p of this.probes.values()) clearTimeout(p.timer);
    this.probes.clear();
    this.subscriptions.clear();
    this.verdicts.clear();
  }
}
