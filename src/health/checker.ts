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
import { admits, INITIAL, nextHealth, nextServiceHealth, RECORDED_DOWN, startingState, type HealthState, type ServiceHealth } from './state.ts';
import { serviceProbes, type EffectiveCheck, type ServiceProbe } from './subscriptions.ts';
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
  services: Set<string>;
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
  private readonly probes = new Map<string, Probe>();
  /** By backendKey. */
  private readonly subscriptions = new Map<string, Subscription>();
  /** The probes each service asked for at its last sync, by service name. */
  private readonly probesOf = new Map<string, ServiceProbe[]>();
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
   * configuration. Only services that are not the same objects as at the
   * last sync are looked at (a validated config is frozen, and sources keep
   * unchanged services as they were): a change of one service among
   * thousands costs that service. A service joining a running probe takes
   * its verdict at once; a probe no service uses any more stops.
   * `recordedDown` (backendKey keys): backends the data plane recorded as
   * down, which a new probe starts from (a daemon restart keeps a dead
   * backend out).
   */
  sync(config: Config, recordedDown: ReadonlySet<string> = new Set()): void {
    const next = new Map(config.services.map((s) => [s.name, s]));
    /** What each leaving subscription's probe knew, by backendKey: a service whose check changed starts from it. */
    const known = new Map<string, HealthState>();
    const touched = new Set<Probe>();
    const changed: string[] = [];
    for (const [name, s] of this.services) if (next.get(name) !== s) this.unsubscribe(name, known, touched);
    /** Probes started by this sync, with what their services knew of the address. */
    const started = new Map<Probe, HealthState[]>();
    for (const [name, s] of next) {
      if (this.services.get(name) === s) continue;
      changed.push(name);
      const probes = serviceProbes(s);
      this.probesOf.set(name, probes);
      for (const { key, address, check } of probes) {
        const id = backendKey(name, address);
        let probe = this.probes.get(key);
        if (!probe) {
          probe = { key, address, check, services: new Set(), state: INITIAL, last: null, ok: 0, failed: 0 };
          this.probes.set(key, probe);
          started.set(probe, []);
        }
        const state = known.get(id) ?? (recordedDown.has(id) ? RECORDED_DOWN : undefined);
        if (state) started.get(probe)?.push(state);
        probe.services.add(name);
        touched.add(probe);
        this.subscriptions.set(id, { service: name, address, probe });
      }
    }
    for (const [probe, states] of started) {
      probe.state = startingState(states);
      probe.timer = setTimeout(() => void this.run(probe), Math.random() * probe.check.interval);
    }
    for (const probe of touched)
      if (probe.services.size === 0) {
        clearTimeout(probe.timer);
        this.probes.delete(probe.key);
      }
    this.services = next;
    for (const name of changed) {
      const s = next.get(name)!;
      if (s.healthCheck.type === 'none') this.verdicts.delete(name);
      else this.recount(s);
    }
  }

  /** A service leaves its probes (gone, or changed: it subscribes again), leaving what they knew in `known`. */
  private unsubscribe(name: string, known: Map<string, HealthState>, touched: Set<Probe>): void {
    for (const { address } of this.probesOf.get(name) ?? []) {
      const id = backendKey(name, address);
      const sub = this.subscriptions.get(id);
      if (!sub) continue;
      known.set(id, sub.probe.state);
      sub.probe.services.delete(name);
      touched.add(sub.probe);
      this.subscriptions.delete(id);
    }
    this.probesOf.delete(name);
    this.verdicts.delete(name);
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
    this.probesOf.clear();
    this.verdicts.clear();
    this.services = new Map();
  }
}
