// Health checks of every backend of every service that asks for them: one
// timer each, started at a random point of the first interval so checks do
// not fire in lock step. A transition logs one line and asks for a reconcile.
// A check never stops and never rejects: whatever throws in one run (a
// probe, a callback) is logged and counted, and the next run is scheduled.
import type { Config, ServiceConfig } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { HealthCheckView } from '../metrics/metrics.ts';
import type { IpAddress } from '../model/address.ts';
import { httpProbe, tcpProbe, type ProbeResult } from './probes.ts';
import { INITIAL, nextHealth, RECORDED_DOWN, type HealthState } from './state.ts';

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

export type Health = 'none' | 'up' | 'down';

export class HealthChecker {
  private readonly checks = new Map<string, Check>();
  /** Per service: the backends up at the last moment any was. */
  private readonly lastHealthy = new Map<string, Set<string>>();
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
   * ("service address" keys): backends the data plane recorded as down, which
   * a new check starts from (a daemon restart keeps a dead backend out).
   */
  sync(config: Config, recordedDown: ReadonlySet<string> = new Set()): void {
    this.services = new Map(config.services.map((s) => [s.name, s]));
    const wanted = new Set<string>();
    for (const s of config.services) {
      if (s.healthCheck.type === 'none') continue;
      const spec = JSON.stringify(s.healthCheck) + s.port;
      for (const b of s.backends) {
        const id = `${s.name} ${b.address}`;
        wanted.add(id);
        const have = this.checks.get(id);
        if (have && have.spec === spec) continue;
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
    }
    for (const name of this.lastHealthy.keys()) if (!this.services.has(name)) this.lastHealthy.delete(name);
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
    this.onProbe(hc.type, result);
    const { state, changed } = nextHealth(c.state, result.ok, hc.rise, hc.fall);
    c.state = state;
    if (changed) {
      this.log.warn({ service: c.service, backend: c.address, health: state.up ? 'up' : 'down', check: hc.type, detail: result.detail }, `backend ${state.up ? 'up' : 'down'}`);
      this.onChange(c.service);
    }
  }

  /** Runs that threw (a bug, not a backend's failure), since the start: each is logged. */
  errors(): number {
    return this.runErrors;
  }

  /** The health check's verdict alone ('none' where there is no check). */
  health(service: string, address: IpAddress): Health {
    const c = this.checks.get(`${service} ${address.text}`);
    return c ? (c.state.up ? 'up' : 'down') : 'none';
  }

  /**
   * Whether a backend may take traffic: up, or — when every backend of the
   * service is down and its policy is keep-last — one of those up last.
   */
  healthy(service: ServiceConfig, address: IpAddress): boolean {
    if (service.healthCheck.type === 'none') return true;
    const up = service.backends.filter((b) => this.checks.get(`${service.name} ${b.address}`)?.state.up ?? true).map((b) => b.address);
    if (up.length > 0) {
      this.lastHealthy.set(service.name, new Set(up));
      return up.includes(address.text);
    }
    return service.allDown === 'keep-last' && (this.lastHealthy.get(service.name)?.has(address.text) ?? true);
  }

  /** Last probe of a backend (for status and metrics). */
  lastResult(service: string, address: string): ProbeResult | null {
    return this.checks.get(`${service} ${address}`)?.last ?? null;
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
  }
}
