// The Kubernetes mode as a source of services: the informers' caches,
// translated (src/k8s/translate.ts) into the services the static config
// would give, validated by the one schema, handed to the director like the
// config file's. Around the pure translation, the side effects: Events,
// status.loadBalancer (only while this director is the leader), metrics, and
// the last good service set kept in the run directory, so that a daemon
// restarted while the API server is away keeps serving what it served.
//
// Safety: until every kind has been listed once, the services are those kept
// from the last run (or none); after that, a failed or slow list or watch
// leaves the caches, and so the services, as they were. A translation that
// the schema refuses (a bug of ours) keeps the last good set too.
import { existsSync, readFileSync } from 'node:fs';
import type { Config, ServiceConfig } from '../config/schema.ts';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import { mustParseIp } from '../model/address.ts';
import { serviceKeyText } from '../model/keys.ts';
import { runFile, writeRunFile } from '../paths.ts';
import type { ServiceSource } from '../sources/source.ts';
import type { ClusterAccess } from './client.ts';
import { EventRecorder } from './events.ts';
import { statusChanges, StatusWriter } from './status.ts';
import { originOf, translate, type KubeEvent, type KubernetesSettings, type ServiceInput, type Translation } from './translate.ts';
import { ClusterWatch, type WatchView } from './watch.ts';
import { withDepartures, type Departures } from './departures.ts';
import { StableServices } from './stable.ts';

/** What the source tells status and metrics. */
export interface KubernetesView {
  readonly from: string;
  readonly server: string;
  readonly synced: boolean;
  /** When the services last changed from a translation (ms since the epoch), null before. */
  readonly lastTranslationMs: number | null;
  readonly lastTranslationDurationMs: number | null;
  readonly watches: readonly WatchView[];
  /** Kubernetes Services with at least one port served. */
  readonly servedServices: number;
  /** Current Warning decisions, by reason (each counts one Service port or address refused). */
  readonly refusals: Readonly<Record<string, number>>;
  readonly events: { readonly written: number; readonly failed: number; readonly dropped: number };
  readonly statusWrites: number;
}

export interface KubernetesSourceOptions {
  /** The director's pin directory: names its run file. */
  pinDir: string;
  capacity: Config['capacity'];
  /** The director's name as reportingInstance of its Events. */
  instance: string;
  log: Logger;
  /** The services changed (called once per translation that changed them). */
  onChange: () => void;
  /** Whether this director writes status and Events (the leader; standbys only watch). */
  isLeader: () => boolean;
}

/** The run file's content: the last good services, allocations and departing nodes. */
interface Kept {
  readonly services: readonly ServiceInput[];
  readonly allocations: Readonly<Record<string, readonly string[]>>;
  readonly departures: Readonly<Record<string, Readonly<Record<string, number>>>>;
}

/**
 * Drops every service whose (protocol, VIP, port) another source claims
 * (static services come first: they are written by the director's operator),
 * each with a Warning. Pure.
 */
export function withoutClaimed(services: readonly ServiceInput[], claimed: ReadonlyMap<string, string>): { services: ServiceInput[]; events: KubeEvent[] } {
  const kept: ServiceInput[] = [];
  const events: KubeEvent[] = [];
  for (const s of services) {
    const key = serviceKeyText(s.protocol ?? 'tcp', mustParseIp(s.vip), s.port ?? 0);
    const owner = claimed.get(key);
    if (owner === undefined) kept.push(s);
    else events.push({ service: originOf(s.name), type: 'Warning', reason: 'PortConflict', message: `${key} is not served: the director's static service ${owner} has it` });
  }
  return { services: kept, events };
}

const KEEP_EVERY_MS = 5000;

export class KubernetesSource implements ServiceSource {
  readonly name = 'kubernetes';
  private readonly access: ClusterAccess;
  private settings: KubernetesSettings;
  private readonly o: KubernetesSourceOptions;
  private readonly watch: ClusterWatch;
  private readonly events: EventRecorder;
  private readonly status: StatusWriter;
  /** The services last accepted (kept from the last run until the first translation). */
  private readonly stable = new StableServices();
  private allocations: ReadonlyMap<string, readonly string[]> = new Map();
  private departures: Departures = new Map();
  private drainTimer: NodeJS.Timeout | null = null;
  private claimed: ReadonlyMap<string, string> = new Map();
  private pending: NodeJS.Immediate | null = null;
  private lastTranslation: Translation | null = null;
  private lastTranslationMs: number | null = null;
  private lastTranslationDurationMs: number | null = null;
  private keptText = '';
  private keepTimer: NodeJS.Timeout | null = null;
  private readonly syncWaiters: (() => void)[] = [];
  private stopped = false;

  constructor(access: ClusterAccess, settings: KubernetesSettings, options: KubernetesSourceOptions) {
    this.access = access;
    this.settings = settings;
    this.o = options;
    this.watch = new ClusterWatch(access.kubeconfig, () => this.schedule(), options.log);
    this.events = new EventRecorder(access.kubeconfig, options.instance, options.log);
    this.status = new StatusWriter(access.kubeconfig, () => this.schedule(), options.log);
    this.restore();
  }

  services(): readonly ServiceConfig[] {
    return this.stable.current().configs;
  }

  /** The services kept from the last run, as long as nothing newer is known. */
  private restore(): void {
    const path = runFile(this.o.pinDir, 'kubernetes.json');
    if (!existsSync(path)) return;
    try {
      const kept = JSON.parse(readFileSync(path, 'utf8')) as Kept;
      this.stable.accept(kept.services, this.o.capacity);
      this.allocations = new Map(Object.entries(kept.allocations));
      this.departures = new Map(Object.entries(kept.departures ?? {}).map(([name, d]) => [name, new Map(Object.entries(d))]));
      this.keptText = JSON.stringify(kept);
      this.o.log.info({ services: kept.services.length, path }, 'Kubernetes services of the last run kept until the API server has been listed');
    } catch (err) {
      this.o.log.warn({ path, err: errorMessage(err) }, 'the Kubernetes services of the last run cannot be read: none kept');
    }
  }

  start(): void {
    this.o.log.info({ server: this.access.server, from: this.access.from }, 'watching Services, EndpointSlices and Nodes');
    void this.watch.start();
  }

  /** Resolves once every kind has been listed (true), or after timeoutMs (false). */
  waitSynced(timeoutMs: number): Promise<boolean> {
    if (this.lastTranslation) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.syncWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** New settings (a reloaded config): translated again at once. */
  setSettings(settings: KubernetesSettings): void {
    this.settings = settings;
    this.schedule();
  }

  /** The keys of the other sources' services, and their names: the Kubernetes services leave them alone. */
  setClaimed(services: readonly ServiceConfig[]): void {
    const claimed = new Map(services.map((s) => [serviceKeyText(s.protocol, mustParseIp(s.vip), s.port), s.name]));
    const same = claimed.size === this.claimed.size && [...claimed].every(([k, v]) => this.claimed.get(k) === v);
    if (same) return;
    this.claimed = claimed;
    this.schedule();
  }

  /** The leader changed: write what a standby only tracked. */
  leadershipChanged(): void {
    this.schedule();
  }

  /** Translates at the next turn of the event loop, once for every change that came meanwhile. */
  private schedule(): void {
    if (this.pending || this.stopped) return;
    this.pending = setImmediate(() => {
      this.pending = null;
      this.translateNow();
    });
  }

  private translateNow(): void {
    if (!this.watch.synced()) return;
    const started = performance.now();
    const snapshot = this.watch.snapshot();
    let t: Translation;
    let departed: ReturnType<typeof withDepartures>;
    let changed: boolean;
    try {
      t = translate(snapshot, this.settings, this.allocations);
      const free = withoutClaimed(t.services, this.claimed);
      t = { ...t, events: [...t.events, ...free.events] };
      departed = withDepartures(this.stable.current().inputs, free.services, this.departures, Date.now(), this.settings.drainTimeout);
      changed = this.stable.accept(departed.services, this.o.capacity);
    } catch (err) {
      this.o.log.error({ err }, 'the Kubernetes objects could not be translated: the last good services stay');
      return;
    }
    const leader = this.o.isLeader();
    this.events.record(t.events, leader, (key) => {
      const [ns = '', name = ''] = key.split('/');
      return this.watch.service(ns, name);
    });
    if (leader) this.status.apply(statusChanges(snapshot.services, t.allocations, this.settings, this.status.written));
    this.allocations = t.allocations;
    this.departures = departed.departures;
    this.drainUntil(departed.nextDeadline);
    this.lastTranslation = t;
    this.lastTranslationDurationMs = performance.now() - started;
    for (const w of this.syncWaiters.splice(0)) w();
    if (!changed) return;
    this.lastTranslationMs = Date.now();
    this.keep();
    this.o.onChange();
  }

  /** Translates again when the first departing node's drain ends. */
  private drainUntil(deadline: number | null): void {
    if (this.drainTimer) clearTimeout(this.drainTimer);
    this.drainTimer = deadline === null ? null : setTimeout(() => this.schedule(), Math.max(0, deadline - Date.now()) + 10);
  }

  /**
   * Keeps the last good services in the run directory, at most every
   * KEEP_EVERY_MS (and at a stop): at 1,000 Services × 50 nodes the file is
   * ~10 MB, ~30 ms to write, so not at every change.
   */
  private keep(): void {
    if (this.keepTimer) return;
    this.keepTimer = setTimeout(() => {
      this.keepTimer = null;
      this.keepNow();
    }, KEEP_EVERY_MS);
  }

  private keepNow(): void {
    const departures = Object.fromEntries([...this.departures].map(([name, d]) => [name, Object.fromEntries(d)]));
    const text = JSON.stringify({ services: this.stable.current().inputs, allocations: Object.fromEntries(this.allocations), departures } satisfies Kept);
    if (text === this.keptText) return;
    try {
      writeRunFile(this.o.pinDir, 'kubernetes.json', text);
      this.keptText = text;
    } catch (err) {
      this.o.log.warn({ err: errorMessage(err) }, 'cannot keep the Kubernetes services in the run directory (a restart without the API server would start without them)');
    }
  }

  view(): KubernetesView {
    const t = this.lastTranslation;
    const refusals: Record<string, number> = {};
    for (const e of t?.events ?? []) if (e.type === 'Warning') refusals[e.reason] = (refusals[e.reason] ?? 0) + 1;
    return {
      from: this.access.from,
      server: this.access.server,
      synced: this.watch.synced(),
      lastTranslationMs: this.lastTranslationMs,
      lastTranslationDurationMs: this.lastTranslationDurationMs,
      watches: this.watch.views(),
      servedServices: new Set(this.stable.current().inputs.map((s) => originOf(s.name))).size,
      refusals,
      events: { written: this.events.written, failed: this.events.failed, dropped: this.events.dropped },
      statusWrites: this.status.writes,
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.pending) clearImmediate(this.pending);
    if (this.drainTimer) clearTimeout(this.drainTimer);
    if (this.keepTimer) {
      clearTimeout(this.keepTimer);
      this.keepNow();
    }
    this.status.stop();
    await this.watch.stop();
  }
}
