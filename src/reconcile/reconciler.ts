// The Reconciler: the one place that keeps the data plane equal to the
// desired state. It holds what was applied (read back from the pins at
// start), the desired state, the table cache and a dirty set of services.
// Events (a config change, a health verdict, a MAC, an override) only mark
// services dirty; one flush plans and applies them all, so a burst of events
// costs one plan. A config change dirties only the services whose config
// changed. A failed apply re-reads the data plane and is retried with
// backoff. Every flush reports a result per service.
import type { Config, ServiceConfig } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import { desiredService, type Desired, type Facts } from '../model/desired.ts';
import { sameData } from '../model/same.ts';
import { apply, countWrites, type DataPlaneWriter } from './apply.ts';
import { commit, plan, type PlanContext } from './plan.ts';
import type { Applied } from './state.ts';

export interface ReconcileResult {
  reason: string;
  /** Services the plan looked at (all of them when the set of services changed). */
  services: number;
  ops: number;
  writes: number;
  durationMs: number;
}

/** The outcome of the last reconcile that touched a service (for status, and Kubernetes Events). */
export interface ServiceResult {
  ok: boolean;
  at: string;
  /** Why it failed; the previous state stays in the data plane. */
  error?: string;
}

export interface ReconcilerOptions {
  writer: DataPlaneWriter;
  /** Reads the data plane's state back (after a failed apply). */
  observe(): Applied;
  /** The plan's view of the director (table size, capacities, NICs); read at every plan. */
  context(): PlanContext;
  facts: Facts;
  log: Logger;
  /** The services whose tables an apply changed in place (their slots may hold previous owners). */
  onTablesPatched?(serviceIds: readonly number[]): void;
  /** Called after every attempt (metrics). */
  onResult?(result: ReconcileResult | null, error: unknown): void;
  /** First retry delay after a failure, doubled up to maxRetryMs. */
  retryMs?: number;
  maxRetryMs?: number;
}

/** Settings that every service's desired state depends on: a change dirties them all. */
function sameGlobals(a: Config, b: Config): boolean {
  return a.hashSeed === b.hashSeed && a.maglevTableSize === b.maglevTableSize;
}

export class Reconciler {
  private applied: Applied;
  private readonly o: ReconcilerOptions;
  private config: Config | null = null;
  private byName = new Map<string, ServiceConfig>();
  private want: Desired = { services: new Map() };
  /** keyText of each service's desired entry, by name (a config change may move a service to another key). */
  private keyOf = new Map<string, string>();
  /** Names whose desired state must be recomputed; 'all': compare everything. */
  private dirty: Set<string> | 'all' = 'all';
  private flushTimer: NodeJS.Immediate | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelay: number;
  private pending: { reasons: Set<string>; waiters: { resolve: (r: ReconcileResult) => void; reject: (e: unknown) => void }[] } = { reasons: new Set(), waiters: [] };
  readonly results = new Map<string, ServiceResult>();
  private stopped = false;

  constructor(applied: Applied, options: ReconcilerOptions) {
    this.applied = applied;
    this.o = options;
    this.retryDelay = options.retryMs ?? 100;
  }

  /** What the data plane holds, as this reconciler knows it. */
  get state(): Applied {
    return this.applied;
  }

  /**
   * Takes a new configuration: marks dirty the services whose config changed
   * (added, removed, or different), or all of them when a setting they all
   * depend on changed. Returns the names marked.
   */
  setConfig(next: Config): ReadonlySet<string> {
    const previous = this.config;
    const byName = new Map(next.services.map((s) => [s.name, s]));
    const changed = new Set<string>();
    if (!previous || !sameGlobals(previous, next)) {
      this.dirty = 'all';
      for (const n of byName.keys()) changed.add(n);
    } else {
      for (const [name, s] of byName) if (!sameData(this.byName.get(name), s)) changed.add(name);
      for (const name of this.byName.keys()) if (!byName.has(name)) changed.add(name);
      this.markDirty(changed);
    }
    this.config = next;
    this.byName = byName;
    return changed;
  }

  /** Marks services whose facts changed (health, MAC, override) for the next flush. */
  markDirty(names: Iterable<string>): void {
    if (this.dirty === 'all') return;
    for (const n of names) this.dirty.add(n);
  }

  /**
   * Plans and applies the dirty services at the next turn of the event loop,
   * together with whatever else is marked by then. Resolves with the result
   * of the flush that carried it out; rejects when that flush failed (it is
   * retried with backoff all the same).
   */
  schedule(reason: string): Promise<ReconcileResult> {
    this.pending.reasons.add(reason);
    const done = new Promise<ReconcileResult>((resolve, reject) => this.pending.waiters.push({ resolve, reject }));
    this.flushTimer ??= setImmediate(() => {
      this.flushTimer = null;
      this.runPending();
    });
    return done;
  }

  /**
   * Plans and applies now (what schedule() does later). On a failed apply it
   * re-reads the data plane, schedules a retry with backoff, and throws the
   * apply's error.
   */
  flush(reason: string): ReconcileResult {
    const config = this.config;
    if (!config) throw new Error('Reconciler.flush before setConfig');
    const started = performance.now();
    const names = this.dirty === 'all' ? null : this.dirty;
    const scope = names ? this.recompute(config, names) : this.recomputeAll(config);
    this.dirty = new Set();
    const at = new Date().toISOString();
    const touched = names ?? this.byName.keys();
    try {
      const p = plan(this.applied, this.want, this.o.context(), scope ?? undefined);
      const { patchedTables } = apply(this.o.writer, p.ops);
      commit(this.applied, p.delta);
      // the set of services may have changed: the exact VIP set follows it (a VIP added is known to the slow
      // paths an apply late, a VIP gone stays that long: both only decide drop or pass of a frame no service takes)
      if (!scope) this.o.writer.syncVipSet(this.applied.services.values());
      if (patchedTables.length > 0) this.o.onTablesPatched?.(patchedTables);
      const result: ReconcileResult = { reason, services: scope?.size ?? this.want.services.size, ops: p.ops.length, writes: countWrites(p.ops), durationMs: performance.now() - started };
      for (const n of touched) if (this.byName.has(n)) this.results.set(n, { ok: true, at });
      for (const n of this.results.keys()) if (!this.byName.has(n)) this.results.delete(n);
      this.retryDelay = this.o.retryMs ?? 100;
      this.o.onResult?.(result, null);
      if (p.ops.length > 0) this.o.log.info(result, 'reconciled');
      return result;
    } catch (err) {
      this.dirty = 'all'; // what was written before the failure is unknown: compare everything next time
      const error = err instanceof Error ? err.message : String(err);
      for (const n of names ?? this.byName.keys()) if (this.byName.has(n)) this.results.set(n, { ok: false, at, error });
      try {
        this.applied = this.o.observe();
      } catch (readErr) {
        this.o.log.error({ err: readErr, applyErr: err }, 'the data plane cannot be read back after a failed apply; retried');
      }
      this.o.onResult?.(null, err);
      this.scheduleRetry();
      throw err;
    }
  }

  /** Stops retries and pending flushes (their promises reject). */
  stop(): void {
    this.stopped = true;
    if (this.flushTimer) clearImmediate(this.flushTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.flushTimer = null;
    this.retryTimer = null;
    for (const w of this.pending.waiters) w.reject(new Error('the reconciler was stopped'));
    this.pending = { reasons: new Set(), waiters: [] };
  }

  private runPending(): void {
    const { reasons, waiters } = this.pending;
    this.pending = { reasons: new Set(), waiters: [] };
    if (this.stopped) {
      for (const w of waiters) w.reject(new Error('the reconciler was stopped'));
      return;
    }
    const reason = [...reasons].join(', ');
    try {
      const r = this.flush(reason);
      for (const w of waiters) w.resolve(r);
    } catch (err) {
      this.o.log.error({ err, reason }, 'reconcile failed; the data plane was re-read and the change is retried');
      for (const w of waiters) w.reject(err);
    }
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.stopped) return;
    const delay = this.retryDelay;
    this.retryDelay = Math.min(delay * 2, this.o.maxRetryMs ?? 10_000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.schedule('retry').catch(() => undefined); // a failure schedules the next retry itself
    }, delay);
  }

  /** Recomputes the desired state of `names`; returns the plan's scope, or null when the set of services changed (compare all). */
  private recompute(config: Config, names: ReadonlySet<string>): Set<string> | null {
    // every old entry leaves first: a renamed service, or two that swap keys, must not remove another's new entry
    const before = new Map<string, string>();
    for (const name of names) {
      const oldKey = this.keyOf.get(name);
      if (oldKey === undefined) continue;
      before.set(name, oldKey);
      this.want.services.delete(oldKey);
      this.keyOf.delete(name);
    }
    const scope = new Set<string>();
    const after = new Set<string>();
    for (const name of names) {
      const s = this.byName.get(name);
      if (!s) continue;
      const ws = desiredService(config, s, this.o.facts);
      this.want.services.set(ws.keyText, ws);
      this.keyOf.set(name, ws.keyText);
      scope.add(ws.keyText);
      after.add(ws.keyText);
    }
    // the same keys before and after: only their contents changed, and the plan looks at them alone
    const membership = before.size !== after.size || [...before.values()].some((k) => !after.has(k));
    return membership ? null : scope;
  }

  private recomputeAll(config: Config): null {
    this.want = { services: new Map() };
    this.keyOf = new Map();
    for (const s of config.services) {
      const ws = desiredService(config, s, this.o.facts);
      this.want.services.set(ws.keyText, ws);
      this.keyOf.set(s.name, ws.keyText);
    }
    return null;
  }
}

