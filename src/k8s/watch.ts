// The director's view of the cluster: one informer (list, then watch) per
// kind it reads (Services, EndpointSlices, Nodes), each holding the objects
// of its last good list plus the watch events since. The client relists by
// itself when a watch ends with 410 Gone (the resourceVersion expired) or
// times out; on any other error it stops, and this restarts it, backing off
// from 1 s to 30 s. A failed or slow list changes nothing: the cache keeps
// what it had until a list succeeds, so an API server that stops answering
// never empties the director's services.
import { CoreV1Api, DiscoveryV1Api, makeInformer, type Informer, type KubeConfig, type KubernetesListObject, type KubernetesObject, type ObjectCache, type V1EndpointSlice, type V1Node, type V1Service } from '@kubernetes/client-node';
import type { Logger } from '../log.ts';
import type { Snapshot } from './translate.ts';

export const WATCHED = ['services', 'endpointslices', 'nodes'] as const;
export type WatchedKind = (typeof WATCHED)[number];

/** One informer's state, for status and metrics. */
export interface WatchView {
  readonly kind: WatchedKind;
  /** The last list or watch request succeeded, and no error came since. */
  readonly up: boolean;
  /** When a list last succeeded (ms since the epoch), null before the first. */
  readonly lastListMs: number | null;
  /** Lists after the first (410 Gone, reconnects after errors). */
  readonly relists: number;
  readonly errors: number;
  readonly objects: number;
  readonly lastError: string | null;
}

const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30_000;

class Watched<T extends KubernetesObject> {
  readonly kind: WatchedKind;
  readonly informer: Informer<T> & ObjectCache<T>;
  private up = false;
  private lists = 0;
  private lastListMs: number | null = null;
  private errors = 0;
  private lastError: string | null = null;
  private backoffMs = BACKOFF_MIN_MS;
  private retry: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(kind: WatchedKind, kc: KubeConfig, path: string, list: () => Promise<KubernetesListObject<T>>, onChange: () => void, log: Logger) {
    this.kind = kind;
    const listed = () =>
      list().then((result) => {
        this.lists++;
        this.lastListMs = Date.now();
        this.markUp();
        onChange(); // runs after the client has put the list's objects in its cache (a later turn)
        return result;
      });
    this.informer = makeInformer(kc, path, listed);
    const changed = () => {
      this.markUp();
      onChange();
    };
    this.informer.on('add', changed);
    this.informer.on('update', changed);
    this.informer.on('delete', changed);
    this.informer.on('error', (err: unknown) => {
      this.up = false;
      this.errors++;
      this.lastError = describe(err);
      if (this.stopped) return;
      log.warn({ kind, err: this.lastError, retryInMs: this.backoffMs }, 'watch failed; the cache stays as it was, retrying');
      this.retry = setTimeout(() => {
        this.retry = null;
        void this.start();
      }, this.backoffMs);
      this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
    });
  }

  private markUp(): void {
    this.up = true;
    this.backoffMs = BACKOFF_MIN_MS;
  }

  /** Lists (unless the cache can resume from its resourceVersion) and watches; resolves once the watch is open or has failed. */
  async start(): Promise<void> {
    this.stopped = false;
    const errors = this.errors;
    await this.informer.start().catch(() => undefined); // failures come through 'error'
    if (this.errors === errors && !this.stopped) this.markUp(); // a quiet watch sends nothing to say it is open
  }

  /** Whether a list has succeeded once: the cache holds the cluster's objects, not nothing. */
  listed(): boolean {
    return this.lists > 0;
  }

  view(): WatchView {
    return { kind: this.kind, up: this.up, lastListMs: this.lastListMs, relists: Math.max(0, this.lists - 1), errors: this.errors, objects: this.informer.list().length, lastError: this.lastError };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    await this.informer.stop();
  }
}

/** What an error from the client says: the API's status message, else the error's. */
function describe(err: unknown): string {
  const e = err as { code?: number; statusCode?: number; body?: unknown; message?: string };
  const code = e?.code ?? e?.statusCode;
  let message = e?.message ?? String(err);
  if (typeof e?.body === 'string') {
    try {
      message = (JSON.parse(e.body) as { message?: string }).message ?? message;
    } catch {
      /* not a Status object */
    }
  }
  return typeof code === 'number' ? `${code}: ${message}` : message;
}

/** The informers of the kinds the translation reads. */
export class ClusterWatch {
  private readonly services: Watched<V1Service>;
  private readonly slices: Watched<V1EndpointSlice>;
  private readonly nodes: Watched<V1Node>;

  /** onChange: an object changed or a list completed (called often: coalesce). */
  constructor(kc: KubeConfig, onChange: () => void, log: Logger) {
    const core = kc.makeApiClient(CoreV1Api);
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    this.services = new Watched('services', kc, '/api/v1/services', () => core.listServiceForAllNamespaces(), onChange, log);
    this.slices = new Watched('endpointslices', kc, '/apis/discovery.k8s.io/v1/endpointslices', () => discovery.listEndpointSliceForAllNamespaces(), onChange, log);
    this.nodes = new Watched('nodes', kc, '/api/v1/nodes', () => core.listNode(), onChange, log);
  }

  private all(): Watched<KubernetesObject>[] {
    return [this.services, this.slices, this.nodes] as Watched<KubernetesObject>[];
  }

  async start(): Promise<void> {
    await Promise.all(this.all().map((w) => w.start()));
  }

  /** Whether every kind has been listed once (before that, a snapshot would be missing objects, not empty). */
  synced(): boolean {
    return this.all().every((w) => w.listed());
  }

  snapshot(): Snapshot {
    return { services: this.services.informer.list(), endpointSlices: this.slices.informer.list(), nodes: this.nodes.informer.list() };
  }

  /** A Service from the cache, by namespace and name. */
  service(namespace: string, name: string): V1Service | undefined {
    return this.services.informer.get(name, namespace);
  }

  views(): WatchView[] {
    return this.all().map((w) => w.view());
  }

  async stop(): Promise<void> {
    await Promise.all(this.all().map((w) => w.stop()));
  }
}
