// Preloaded into the daemon by `npm run bench:k8s -- --stages` (node
// --import): times the steps of the director's Kubernetes path without a
// change to src/. It wraps, on their classes' prototypes (the same module
// instances the daemon then loads), the methods whose cost the benchmark
// breaks down, and the client's Watch to stamp each watch event's arrival;
// every call becomes one JSON line (epoch ms, sub-ms) appended to
// $XDPLB_BENCH_STAGES, in batches. A method that is not there (renamed since)
// is recorded as missing, and the daemon runs on unchanged.
import { appendFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { DataPlane } from '../src/dataplane/dataplane.ts';
import { BackendPaths } from '../src/director/backend-paths.ts';
import { Director } from '../src/director/director.ts';
import { VipOwner } from '../src/director/vip-owner.ts';
import { HealthChecker } from '../src/health/checker.ts';
import { KubernetesSource } from '../src/k8s/source.ts';
import { StableServices } from '../src/k8s/stable.ts';
import { Reconciler } from '../src/reconcile/reconciler.ts';

/** One timed call ("start"/"end") or one watch event ("at"). */
export interface StageRecord {
  fn: string;
  start?: number;
  end?: number;
  at?: number;
  failed?: boolean;
  missing?: boolean;
  /** Watch events: the resource path, object name and resourceVersion. */
  path?: string;
  type?: string;
  name?: string;
  rv?: string;
}

const out = process.env.XDPLB_BENCH_STAGES;
const now = () => performance.timeOrigin + performance.now();
const pending: string[] = [];
const flush = () => {
  if (out && pending.length > 0) appendFileSync(out, pending.splice(0).join(''));
};
const record = (r: StageRecord) => pending.push(`${JSON.stringify(r)}\n`);

type Callable = (this: unknown, ...args: any[]) => unknown;

function wrap(target: object, name: string, fn: string): void {
  const holder = target as Record<string, Callable>;
  const original = holder[name];
  if (typeof original !== 'function') return void record({ fn, missing: true });
  holder[name] = function (this: unknown, ...args: unknown[]) {
    const start = now();
    let result: unknown;
    try {
      result = original.apply(this, args);
    } catch (err) {
      record({ fn, start, end: now(), failed: true });
      throw err;
    }
    if (result instanceof Promise)
      return result.then(
        (v: unknown) => (record({ fn, start, end: now() }), v),
        (err: unknown) => {
          record({ fn, start, end: now(), failed: true });
          throw err;
        },
      );
    record({ fn, start, end: now() });
    return result;
  };
}

if (out) {
  record({ fn: 'preload', at: now() });
  wrap(DataPlane, 'load', 'DataPlane.load');
  wrap(k8s.CoreV1Api.prototype, 'listServiceForAllNamespaces', 'list services');
  wrap(k8s.DiscoveryV1Api.prototype, 'listEndpointSliceForAllNamespaces', 'list endpointslices');
  wrap(k8s.CoreV1Api.prototype, 'listNode', 'list nodes');
  wrap(KubernetesSource.prototype, 'translateNow', 'source.translateNow');
  wrap(KubernetesSource.prototype, 'keepNow', 'source.keepNow');
  wrap(StableServices.prototype, 'accept', 'stable.accept');
  wrap(Director.prototype, 'bringUp', 'director.bringUp');
  wrap(Director.prototype, 'apply', 'director.apply');
  wrap(Director.prototype, 'withSources', 'director.withSources');
  wrap(BackendPaths.prototype, 'targets', 'paths.targets');
  wrap(BackendPaths.prototype, 'resolve', 'paths.resolve');
  wrap(HealthChecker.prototype, 'sync', 'health.sync');
  wrap(Reconciler.prototype, 'setConfig', 'reconciler.setConfig');
  wrap(Reconciler.prototype, 'flush', 'reconciler.flush');
  wrap(VipOwner.prototype, 'sync', 'vips.sync');
  const proto = k8s.Watch.prototype as unknown as Record<string, Callable>;
  const watch = proto.watch!;
  proto.watch = function (this: unknown, path: string, params: unknown, callback: (type: string, obj: k8s.KubernetesObject, data: unknown) => void, done: unknown) {
    const stamped = (type: string, obj: k8s.KubernetesObject, data: unknown) => {
      record({ fn: 'event', at: now(), path, type, name: `${obj?.metadata?.namespace}/${obj?.metadata?.name}`, rv: obj?.metadata?.resourceVersion ?? '' });
      callback(type, obj, data);
    };
    return watch.call(this, path, params, stamped, done);
  };
  setInterval(flush, 200).unref();
  process.on('exit', flush);
}
