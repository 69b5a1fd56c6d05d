// Health checks of every backend of every service that asks for them: one
// timer each, started at a random point of the first interval so checks do
// not fire in lock step. A transition logs one line, updates what the
// service's verdicts let in (the all-down memory is kept here, where verdicts
// change) and asks for a reconcile; health() and healthy() only read.
// A check never stops and never rejects: whatever throws in one run (a
// probe, a callback) is logged and counted, and the next run is scheduled.
import type { Config, ServiceConfig } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { IpAddress } from '../model/address.ts';
import type { Health } from '../model/health.ts';
import { backendKey } from '../model/keys.ts';
import { httpProbe, tcpProbe, type ProbeResult } from './probes.ts';
import { admits, INITIAL, nextHealth, nextServiceHealth, RECORDED_DOWN, type HealthState, type ServiceHealth } from './state.ts';
import { countUnexpected } from '../guards.ts';

/** One health check as the checker holds it now (for metrics). */
export interface HealthCheckView {
  service: string;
  address: string;
  /** Duration of the last probe, null before the first. */
  lastDurationMs: number | null;
  ok: number;
  failed: number;
}

interface Check {
  service: string;
  address: string;
  spec: string; // the check's config, to notice a change
  state: HealthState;
  timer?: NodeJS.Timeout;
  last: ProbeResult | null;
  ok: number;
  failed: number;
}

export class HealthChecker {
  /** By backendKey. */
  private readonly checks = new Map<string, Check>();
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
   * Starts, restarts or stops checks to match the configuration. `recordedDown`
   * (backendKey keys): backends the data plane recorded as down, which a new
   * check starts from (a daemon restart keeps a dead backend out).
   */
  sync(config: Config, recordedDown: ReadonlySet<string> = new Set()): void {
    this.services = new Map(config.services.map((s) => [s.name, s]));
    const wanted = new Set<string>();
    /** Services whose set of checks changed: their verdicts are counted again. */
    const changed = new Set<string>();
    for (const s of config.services) {
      if (s.healthCheck.type === 'none') continue;
      const spec = JSON.stringify(s.healthCheck) + s.port;
      if (!this.verdicts.has(s.name)) changed.add(s.name);
      for (const b of s.backends) {
        const id = backendKey(s.name, b.address);
        wanted.add(id);
        const have = this.checks.get(id);
        if (have && have.spec === spec) continue;
        changed.add(s.name);
        if (have) clearTimeout(have.timer);
        const state = have?.state ?? (recordedDown.has(id) ? RECORDED_DOWN : INITIAL);
        const check: Check = { service: s.name, address: b.address, spec, state, last: null, ok: have?.ok ?? 0, failed: have?.failed ?? 0 };
        check.timer = setTimeout(() => void this.run(id), Math.random() * s.healthCheck.interval);
        this.checks.set(id, check);
      }
    }
    for (const [id, c] of this.checks) {
      if (wanted.has(id)) continue;
      clearTimeout(c.timer);
      this.checks.delete(id);
      changed.add(c.service);
    }
    for (const name of this.verdicts.keys()) if ((this.services.get(name)?.healthCheck.type ?? 'none') === 'none') this.verdicts.delete(name);
    for (const name of changed) {
      const s = this.services.get(name);
      if (s && s.healthCheck.type !== 'none') this.recount(s);
    }
  }

  /** Records which backends of a service are up now (and, while any is, that they were the last up). O(backends). */
  private recount(s: ServiceConfig): void {
    const up = new Set<string>();
    for (const b of s.backends) if (this.checks.get(backendKey(s.name, b.address))?.state.up ?? true) up.add(b.address);
    this.verdicts.set(s.name, nextServiceHealth(this.verdicts.get(s.name) ?? null, up));
  }

  /** One probe of a check, its verdict, the next run. Never rejects. */
  private async run(id: string): Promise<void> {
    const c = this.checks.get(id);
    const s = c && this.services.get(c.service);
    if (!c || !s || s.healthCheck.type === 'none') return;
    const hc = s.healthCheck;
    try {
      await this.probe(id, c, s);
    } catch (err) {
      this.runErrors++;
      countUnexpected();
      try {
        this.log.error({ service: c.service, backend: c.address, check: hc.type, err, runErrors: this.runErrors }, 'health check run failed; the check goes on');
      } catch {
        // a logger that throws has nowhere to say so; the count above still does
      }
    } finally {
      if (this.checks.get(id) === c) c.timer = setTimeout(() => void this.run(id), hc.interval);
    }
  }

  private async probe(id: string, c: Check, s: ServiceConfig): Promise<void> {
    const hc = s.healthCheck;
    if (hc.type === 'none') return;
    const port = hc.port ?? s.port;
    const result =
      hc.type === 'tcp'
        ? await tcpProbe(c.address, port, hc.timeout)
        : await httpProbe({ scheme: hc.type, host: c.address, port, path: hc.path, expect: hc.expectStatus, verifyTls: hc.verifyTls, timeoutMs: hc.timeout, ...(hc.host ? { hostHeader: hc.host } : {}) });
    if (this.checks.get(id) !== c) return; // removed or replaced meanwhile
    c.last = result;
    if (result.ok) c.ok++;
    else c.failed++;
    const { state, changed } = nextHealth(c.state, result.ok, hc.rise, hc.fall);
    c.state = state;
    try {
      this.onProbe(hc.type, result);
    } catch (err) {
      this.runErrors++;
      countUnexpected();
      this.log.error({ service: c.service, backend: c.address, err, runErrors: this.runErrors }, 'recording a probe failed (a bug); its verdict stands');
    }
    if (changed) {
      this.recount(this.services.get(c.service) ?? s); // the service as it is now (a reload may have changed its backends)
      this.log.warn({ service: c.service, backend: c.address, health: state.up ? 'up' : 'down', check: hc.type, detail: result.detail }, `backend ${state.up ? 'up' : 'down'}`);
      this.onChange(c.service);
    }
  }

  /** Runs that threw (a bug, not a backend's failure), since the start: each is logged. */
  errors(): number {
    return this.runErrors;
  }

  /** The health check's verdict alone ('none' where there is no check). A read: changes nothing. */
  health(service: string, address: IpAddress): Health {
    const c = this.checks.get(backendKey(service, address.text));
    return c ? (c.state.up ? 'up' : 'down') : 'none';
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
    return this.checks.get(backendKey(service, address))?.last ?? null;
  }

  /** Every check now, for metrics. */
  *views(): Iterable<HealthCheckView> {
    for (const c of this.checks.values()) {
      yield { service: c.service, address: c.address, lastDurationMs: c.last?.durationMs ?? null, ok: c.ok, failed: c.failed };
    }
  }

  stop(): void {
    for (const c of this.checks.values()) clearTimeout(c.timer);
    this.checks.clear();
    this.verdicts.clear();
  }
}
