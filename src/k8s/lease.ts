// Leader election on a coordination.k8s.io Lease, the way client-go's
// leaderelection package does it, with timings for a director: the leader
// renews every retryPeriod; the others read the Lease as often, and take it
// once it has not changed for leaseDuration *as they saw it* (their own
// clock: no clock is compared with another's). Writes carry the
// resourceVersion they read, so two candidates never both win one change.
//
// Never two owners. The leader holds the VIPs only until renewDeadline after
// it *sent* its last successful renewal; a candidate saw that renewal after
// it was written, so after it was sent, and waits leaseDuration from then. So
// the leader has let go leaseDuration - renewDeadline (300 ms by default)
// before anyone else may take over, and the data plane enforces the same
// deadline without the daemon (the ownership gate: a stalled or killed
// daemon stops claiming the VIPs at it). A graceful stop lets go first, then
// releases the Lease (holder ""), which a standby takes at its next read.
import { CoordinationV1Api, Observable, V1MicroTime, type ConfigurationOptions, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';

export interface LeaseTimings {
  /** How long a Lease that has not changed is someone's (whole seconds: the Lease says leaseDurationSeconds). */
  readonly leaseDuration: number;
  /** The leader lets go this long after sending its last successful renewal. */
  readonly renewDeadline: number;
  /** How often the leader renews and the others read. */
  readonly retryPeriod: number;
}

/** The Lease as a candidate reads it. */
export interface LeaseRecord {
  /** "" when released (or never held). */
  readonly holder: string;
  readonly durationMs: number;
  readonly transitions: number;
  /** When its holder last wrote it, by the holder's clock (shown, never compared). */
  readonly renewTime: Date | null;
  readonly resourceVersion: string;
}

export function recordOf(lease: V1Lease): LeaseRecord {
  const s = lease.spec ?? {};
  return {
    holder: s.holderIdentity ?? '',
    durationMs: (s.leaseDurationSeconds ?? 0) * 1000,
    transitions: s.leaseTransitions ?? 0,
    renewTime: s.renewTime ? new Date(s.renewTime) : null,
    resourceVersion: lease.metadata?.resourceVersion ?? '',
  };
}

/** When this candidate first saw the Lease as it is now (its resourceVersion), by its own monotonic clock. */
export interface Sighting {
  readonly resourceVersion: string;
  readonly at: number;
}

export type LeaseStep = 'create' | 'renew' | 'acquire' | 'wait';

/**
 * What a candidate does with the Lease it just read (null: there is none):
 * create it, renew it (its own), acquire it (released, or unchanged for its
 * duration since first seen), or wait. Pure.
 */
export function leaseStep(self: string, record: LeaseRecord | null, seen: Sighting | null, now: number): LeaseStep {
  if (!record) return 'create';
  if (record.holder === self) return 'renew';
  if (record.holder === '') return 'acquire';
  if (seen && seen.resourceVersion === record.resourceVersion && now - seen.at >= record.durationMs) return 'acquire';
  return 'wait';
}

/** The sighting after reading record at now: kept while the Lease is unchanged. Pure. */
export function sightingAfter(seen: Sighting | null, record: LeaseRecord | null, now: number): Sighting | null {
  if (!record) return null;
  return seen?.resourceVersion === record.resourceVersion ? seen : { resourceVersion: record.resourceVersion, at: now };
}

export interface ElectionView {
  readonly lease: string;
  readonly identity: string;
  readonly leading: boolean;
  /** The holder as last read or written ("" released, null never read). */
  readonly holder: string | null;
  /** Seconds since the Lease last changed, as this director saw it (null: not read yet). */
  readonly ageSeconds: number | null;
  readonly transitions: number;
  readonly errors: number;
}

export interface ElectorOptions {
  readonly kubeconfig: KubeConfig;
  readonly namespace: string;
  readonly name: string;
  /** This director's identity in the Lease (unique among the candidates). */
  readonly identity: string;
  readonly timings: LeaseTimings;
  readonly log: Logger;
  /**
   * Called when this director starts or stops leading; while leading, again
   * after every renewal, with the monotonic time (performance.now()) until
   * which it may claim the VIPs. Must not throw; it lets go synchronously.
   */
  onLeading(leading: boolean, until: number): void;
}

export class LeaseElector {
  private readonly o: ElectorOptions;
  private readonly api: CoordinationV1Api;
  private lease: V1Lease | null = null;
  private seen: Sighting | null = null;
  private leading = false;
  /** While leading: the monotonic time at which it lets go unless renewed. */
  private until = 0;
  private tickTimer: NodeJS.Timeout | null = null;
  private expiry: NodeJS.Timeout | null = null;
  private stopped = false;
  private errors = 0;

  constructor(o: ElectorOptions) {
    this.o = o;
    this.api = o.kubeconfig.makeApiClient(CoordinationV1Api);
  }

  get isLeading(): boolean {
    return this.leading;
  }

  start(): void {
    this.o.log.info({ lease: this.leaseName(), identity: this.o.identity, ...this.o.timings }, 'leader election: a candidate for the Lease');
    void this.tick();
  }

  view(): ElectionView {
    const r = this.lease ? recordOf(this.lease) : null;
    return {
      lease: this.leaseName(),
      identity: this.o.identity,
      leading: this.leading,
      holder: r ? r.holder : null,
      ageSeconds: this.seen ? (performance.now() - this.seen.at) / 1000 : null,
      transitions: r?.transitions ?? 0,
      errors: this.errors,
    };
  }

  /** Lets go (if leading), then releases the Lease so that a standby takes it at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.tickTimer) clearTimeout(this.tickTimer);
    const wasLeading = this.leading;
    this.letGo('stopping');
    if (!wasLeading || !this.lease) return;
    const released = this.withSpec({ holderIdentity: '', leaseDurationSeconds: 1, renewTime: new V1MicroTime(), acquireTime: new V1MicroTime() });
    try {
      await this.bounded((options) => this.api.replaceNamespacedLease({ namespace: this.o.namespace, name: this.o.name, body: released }, options), this.o.timings.renewDeadline);
      this.o.log.info({ lease: this.leaseName() }, 'leader election: Lease released');
    } catch (err) {
      this.o.log.warn({ lease: this.leaseName(), err: errorMessage(err) }, 'leader election: releasing the Lease failed; a standby takes it when it expires');
    }
  }

  private leaseName(): string {
    return `${this.o.namespace}/${this.o.name}`;
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.step();
    } catch (err) {
      this.errors++;
      this.o.log.warn({ lease: this.leaseName(), err: errorMessage(err) }, 'leader election: the Lease could not be read or written');
    }
    if (!this.stopped) this.tickTimer = setTimeout(() => void this.tick(), this.o.timings.retryPeriod);
  }

  private async step(): Promise<void> {
    const t = this.o.timings;
    if (this.leading && this.lease) {
      await this.write('renew', this.withSpec({ renewTime: new V1MicroTime() }));
      return;
    }
    let current: V1Lease | null;
    try {
      current = await this.bounded((options) => this.api.readNamespacedLease({ namespace: this.o.namespace, name: this.o.name }, options), t.renewDeadline);
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
      current = null;
    }
    const now = performance.now();
    const record = current ? recordOf(current) : null;
    this.seen = sightingAfter(this.seen, record, now);
    this.lease = current;
    const step = leaseStep(this.o.identity, record, this.seen, now);
    if (step === 'wait') return;
    if (step === 'create') {
      await this.write('create', { metadata: { name: this.o.name, namespace: this.o.namespace }, spec: this.holderSpec(0) });
      return;
    }
    // renew (the Lease names this director: a restart that came back before it expired) or acquire
    const transitions = record!.transitions + (record!.holder === this.o.identity ? 0 : 1);
    await this.write(step, { ...current!, spec: { ...this.holderSpec(transitions), acquireTime: step === 'renew' ? current!.spec?.acquireTime : new V1MicroTime() } });
  }

  private holderSpec(transitions: number): NonNullable<V1Lease['spec']> {
    return {
      holderIdentity: this.o.identity,
      leaseDurationSeconds: Math.round(this.o.timings.leaseDuration / 1000),
      acquireTime: new V1MicroTime(),
      renewTime: new V1MicroTime(),
      leaseTransitions: transitions,
    };
  }

  private withSpec(spec: Partial<NonNullable<V1Lease['spec']>>): V1Lease {
    return { ...this.lease!, spec: { ...this.lease!.spec, ...spec } };
  }

  /** Creates or replaces the Lease as this director's; on success it leads until renewDeadline after sending. */
  private async write(step: Exclude<LeaseStep, 'wait'>, body: V1Lease): Promise<void> {
    const sent = performance.now();
    const t = this.o.timings;
    // a leader waits no longer than it may lead; a candidate no longer than a leader would
    const budget = this.leading ? Math.max(1, this.until - sent) : t.renewDeadline;
    let written: V1Lease;
    try {
      written = await this.bounded(
        (options) =>
          step === 'create'
            ? this.api.createNamespacedLease({ namespace: this.o.namespace, body }, options)
            : this.api.replaceNamespacedLease({ namespace: this.o.namespace, name: this.o.name, body }, options),
        budget,
      );
    } catch (err) {
      const code = (err as { code?: number }).code;
      // 409: someone else wrote it since it was read; read it again (the expiry timer still runs)
      if (code === 409) {
        if (this.leading) this.letGo('another candidate wrote the Lease');
        this.lease = null;
        return;
      }
      throw err;
    }
    if (this.stopped) return; // stop() has let go, and releases it
    this.lease = written;
    this.seen = { resourceVersion: written.metadata?.resourceVersion ?? '', at: performance.now() };
    this.until = sent + t.renewDeadline;
    if (this.expiry) clearTimeout(this.expiry);
    this.expiry = setTimeout(() => this.letGo(`not renewed within ${t.renewDeadline} ms`), Math.max(0, this.until - performance.now()));
    if (!this.leading) {
      this.leading = true;
      this.o.log.info({ lease: this.leaseName(), identity: this.o.identity, step }, 'leader election: this director leads');
    }
    this.o.onLeading(true, this.until);
  }

  private letGo(why: string): void {
    if (this.expiry) clearTimeout(this.expiry);
    this.expiry = null;
    if (!this.leading) return;
    this.leading = false;
    this.until = 0;
    this.o.log.warn({ lease: this.leaseName(), identity: this.o.identity, why }, 'leader election: this director no longer leads');
    this.o.onLeading(false, 0);
  }

  /** Runs an API request that is aborted after ms (an abort counts as an error). */
  private async bounded<T>(request: (options: ConfigurationOptions) => Promise<T>, ms: number): Promise<T> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error(`no answer within ${Math.round(ms)} ms`)), ms);
    try {
      return await request({
        // as the client's own setHeaderOptions does it (Observable: the type its option takes)
        middleware: [{ pre: (ctx) => (ctx.setSignal(abort.signal), new Observable(Promise.resolve(ctx))), post: (r) => new Observable(Promise.resolve(r)) }],
        middlewareMergeStrategy: 'append',
      });
    } finally {
      clearTimeout(timer);
    }
  }
}
