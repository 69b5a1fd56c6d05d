// status.loadBalancer of the LoadBalancer Services of ours: what it should
// say (pure: statusChanges), and the writer that makes it so through the
// status subresource. An address is written with ipMode VIP: the node
// receives packets for the address itself (as Direct Routing needs), so
// kube-proxy must not short-cut it inside the cluster. An address is
// released (the ingress emptied) when the Service is no longer a load
// balancer of ours, or has lost its address; a Service that stops being a
// LoadBalancer has its status cleared by the API server itself.
import { CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig, type V1LoadBalancerIngress, type V1Service } from '@kubernetes/client-node';
import type { Logger } from '../log.ts';
import { isOurLoadBalancer, objectKey, type KubernetesSettings } from './translate.ts';

export interface StatusChange {
  /** "namespace/name" */
  readonly service: string;
  readonly namespace: string;
  readonly name: string;
  readonly ingress: readonly V1LoadBalancerIngress[];
}

function sameIngress(a: readonly V1LoadBalancerIngress[], b: readonly V1LoadBalancerIngress[]): boolean {
  return a.length === b.length && a.every((x, i) => x.ip === b[i]!.ip && (x.ipMode ?? '') === (b[i]!.ipMode ?? '') && !x.hostname && !b[i]!.hostname);
}

/**
 * The status writes that make every Service say what the translation gave it:
 * for a LoadBalancer of ours, its allocated addresses (none: an empty
 * ingress); for any other Service that this director wrote an address to
 * (`written`), an empty ingress. Services already right are left alone.
 */
export function statusChanges(services: readonly V1Service[], allocations: ReadonlyMap<string, readonly string[]>, settings: KubernetesSettings, written: ReadonlySet<string>): StatusChange[] {
  const changes: StatusChange[] = [];
  for (const s of services) {
    const key = objectKey(s);
    const ours = isOurLoadBalancer(s, settings) && s.metadata?.deletionTimestamp === undefined;
    if (!ours && !written.has(key)) continue;
    const want = ours ? (allocations.get(key) ?? []).map((ip): V1LoadBalancerIngress => ({ ip, ipMode: 'VIP' })) : [];
    const have = s.status?.loadBalancer?.ingress ?? [];
    if (!sameIngress(have, want)) changes.push({ service: key, namespace: s.metadata?.namespace ?? 'default', name: s.metadata?.name ?? '', ingress: want });
  }
  return changes;
}

/** Writes in flight at once: a thousand new LoadBalancers must not be a thousand PATCHes at once (the API server answers 429). */
const MAX_IN_FLIGHT = 8;
/** A write that succeeded is not sent again for this long, while the informer catches up with it. */
const SETTLE_MS = 5000;

/**
 * Applies status changes, one request per Service (a JSON merge patch of
 * status.loadBalancer, so nothing else in the status is touched), at most
 * MAX_IN_FLIGHT at once. A write still queued, in flight, or just made is not
 * sent again; a failed one is retried when the writer is next given changes
 * (onRetry asks for that after a backoff: 1 s doubling to 30 s).
 */
export class StatusWriter {
  private readonly core: CoreV1Api;
  private readonly log: Logger;
  private readonly onRetry: () => void;
  /** Services whose status this process set to one of our addresses. */
  readonly written = new Set<string>();
  /** The ingress (JSON) queued or in flight, by Service. */
  private readonly pending = new Map<string, string>();
  private readonly queue: StatusChange[] = [];
  private inFlight = 0;
  /** The ingress (JSON) last written, and when, by Service. */
  private readonly recent = new Map<string, { body: string; at: number }>();
  private retry: NodeJS.Timeout | null = null;
  private failures = 0;
  writes = 0;

  constructor(kc: KubeConfig, onRetry: () => void, log: Logger) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.onRetry = onRetry;
    this.log = log;
  }

  apply(changes: readonly StatusChange[]): void {
    const now = Date.now();
    for (const c of changes) {
      const body = JSON.stringify(c.ingress);
      if (this.pending.get(c.service) === body) continue;
      const recent = this.recent.get(c.service);
      if (recent && recent.body === body && now - recent.at < SETTLE_MS) continue;
      this.pending.set(c.service, body);
      this.queue.push(c);
    }
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < MAX_IN_FLIGHT && this.queue.length > 0) {
      const c = this.queue.shift()!;
      this.inFlight++;
      void this.write(c).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async write(c: StatusChange): Promise<void> {
    const body = JSON.stringify(c.ingress);
    try {
      await this.core.patchNamespacedServiceStatus({ name: c.name, namespace: c.namespace, body: { status: { loadBalancer: { ingress: c.ingress } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
      this.writes++;
      this.failures = 0;
      this.recent.set(c.service, { body, at: Date.now() });
      if (c.ingress.length > 0) this.written.add(c.service);
      else this.written.delete(c.service);
      this.log.info({ service: c.service, ingress: c.ingress.map((i) => i.ip) }, c.ingress.length > 0 ? 'status.loadBalancer written' : 'status.loadBalancer released');
    } catch (err) {
      if ((err as { code?: number }).code === 404) return; // deleted meanwhile: nothing to say
      this.failures++;
      this.log.warn({ service: c.service, err }, 'status.loadBalancer write failed; retried');
      this.scheduleRetry();
    } finally {
      if (this.pending.get(c.service) === body) this.pending.delete(c.service);
    }
  }

  private scheduleRetry(): void {
    if (this.retry) return;
    const delay = Math.min(1000 * 2 ** Math.min(this.failures - 1, 5), 30_000);
    this.retry = setTimeout(() => {
      this.retry = null;
      this.onRetry();
    }, delay);
  }

  stop(): void {
    if (this.retry) clearTimeout(this.retry);
    this.queue.length = 0;
  }
}
