// npm run bench:control [-- --json]
// Control-plane scale: the Reconciler (desired(), plan(), apply()) of 10,000 services x 10
// backends from cold into a real (unattached) data plane, Maglev 16381, then
// one backend change in the loaded state — as the director makes it for a
// health verdict, a drain or a MAC, and through a config reload (the
// reconciler plans only the services whose config changed) — through the
// director's own Reconciler, and one /metrics scrape of it. Reports wall time, map writes and
// the process's RSS (after the cold start, and after the scrape); the RSS of the same process before loading anything is
// the baseline. Two shapes: every service on the same 10 nodes (Kubernetes:
// backends are nodes, so tables repeat) and 10 distinct backends per service, each
// measured in a fresh child process of its own.
import { parseConfigText, validateConfig } from '../src/config/load.ts';
import { dump } from 'js-yaml';
import { DataPlane } from '../src/dataplane/dataplane.ts';
import { Metrics } from '../src/metrics/metrics.ts';
import type { Facts } from '../src/model/desired.ts';
import type { PlanContext } from '../src/reconcile/plan.ts';
import { backendKey } from '../src/model/keys.ts';
import { Reconciler } from '../src/reconcile/reconciler.ts';
import { observe } from '../src/reconcile/observe.ts';
import { component } from '../src/log.ts';
import { rmSync } from 'node:fs';

const JSON_OUT = process.argv.includes('--json');
const SERVICES = 10_000;
const BACKENDS = 10;
const MAGLEV = 16381;
const mb = (n: number) => Math.round(n / 1048576);
const baselineRss = process.memoryUsage().rss;
const quiet = component('bench').child({}, { level: 'silent' });

/** Backends whose health check says down ("service address"). */
const down = new Set<string>();
const facts: Facts = {
  macOf: (a) => Buffer.from([2, 0, ...a.bytes.subarray(0, 4)]),
  healthy: (s, a) => !down.has(backendKey(s.name, a.text)),
  health: (s, a) => (down.has(backendKey(s.name, a.text)) ? 'down' : 'up'),
};

function services(shape: 'shared' | 'distinct', changed = false) {
  return Array.from({ length: SERVICES }, (_, s) => ({
    name: `svc-${s}`,
    vip: `10.${100 + (s >> 16)}.${(s >> 8) & 255}.${s & 255}`,
    port: 80,
    backends: Array.from({ length: BACKENDS }, (_, b) => ({
      address: shape === 'shared' ? `10.240.1.${b + 1}` : `10.${200 + ((s * BACKENDS + b) >> 16)}.${((s * BACKENDS + b) >> 8) & 255}.${(s * BACKENDS + b) & 255}`,
      weight: changed && s === 1234 && b === 3 ? 2 : 1,
    })),
  }));
}

async function run(shape: 'shared' | 'distinct') {
  const capacity = { services: SERVICES + 16, backends: SERVICES * BACKENDS + 16, flows: 65536 };
  const pinDir = `/sys/fs/bpf/xdplb-bench-${process.pid}`;
  rmSync(pinDir, { recursive: true, force: true });
  try {
    return await measure(shape, capacity, pinDir);
  } finally {
    rmSync(pinDir, { recursive: true, force: true });
  }
}

async function measure(shape: 'shared' | 'distinct', capacity: { services: number; backends: number; flows: number }, pinDir: string) {
  const dp = await DataPlane.load({ pinDir, maglevSize: MAGLEV, maxServices: capacity.services, maxDests: capacity.backends, maxFlows: capacity.flows });
  const ctx: PlanContext = { maglevSize: MAGLEV, maxServices: capacity.services, maxDests: capacity.backends, directorMac: Buffer.from('020000000002', 'hex'), tableCache: new Map() };
  const reconcilerOf = (d: DataPlane) => new Reconciler(observe(d), { writer: d, observe: () => observe(d), context: () => ctx, facts, log: quiet });
  const config = validateConfig({ maglevTableSize: MAGLEV, capacity, services: services(shape) });
  const r = reconcilerOf(dp);
  let t = performance.now();
  r.setConfig(config);
  const cold = r.flush('cold');
  const coldMs = performance.now() - t;
  const rss = process.memoryUsage().rss;
  const metrics = new Metrics({ dp, applied: () => r.state, perBackend: () => true }, 'bench');
  t = performance.now();
  let scrapeBytes = 0;
  for await (const chunk of metrics.chunks()) scrapeBytes += chunk.length; // as the server writes it: chunk by chunk
  const scrapeMs = performance.now() - t;
  const scrapedRss = process.memoryUsage().rss;
  const changedConfig = validateConfig({ maglevTableSize: MAGLEV, capacity, services: services(shape, true) });
  // one health verdict: the director marks that service dirty, and the reconciler plans it alone
  const health: number[] = [];
  let healthWrites = 0;
  for (const [i, s] of [1234, 4321, 777, 9000, 55].entries()) {
    const svc = config.services[s]!;
    down.add(backendKey(svc.name, svc.backends[i]!.address));
    t = performance.now();
    r.markDirty([svc.name]);
    healthWrites = r.flush('health').writes;
    health.push(performance.now() - t);
  }
  health.sort((a, b) => a - b);
  // the same kind of change through a config reload (validated config in hand: parsing is measured below)
  t = performance.now();
  r.setConfig(changedConfig);
  const diffMs = performance.now() - t;
  const one = r.flush('reload');
  const oneMs = performance.now() - t;
  // a daemon restart: adopt the pins, read the state back, plan against the same config (writes nothing)
  t = performance.now();
  const again = await DataPlane.load({ pinDir, maglevSize: MAGLEV, maxServices: capacity.services, maxDests: capacity.backends, maxFlows: capacity.flows });
  const restarted = reconcilerOf(again);
  restarted.setConfig(changedConfig);
  const adopted = restarted.flush('restart');
  const restartMs = performance.now() - t;
  return {
    shape,
    services: SERVICES,
    backends: BACKENDS,
    cold_ms: Math.round(coldMs),
    cold_writes: cold.writes,
    health_change_ms: +health[2]!.toFixed(2),
    health_change_max_ms: +health[4]!.toFixed(2),
    health_change_writes: healthWrites,
    reload_change_ms: +oneMs.toFixed(2),
    reload_change_diff_ms: +diffMs.toFixed(2),
    reload_change_services_planned: one.services,
    reload_change_writes: one.writes,
    restart_ms: Math.round(restartMs),
    restart_writes: adopted.writes,
    scrape_ms: Math.round(scrapeMs),
    scrape_kb: Math.round(scrapeBytes / 1024),
    rss_mb: mb(rss),
    rss_after_scrape_mb: mb(scrapedRss),
    baseline_rss_mb: mb(baselineRss),
  };
}

/** Reading the 10k-service config as a reload does: parse (YAML, or JSON) + validate; baseline: JSON.parse alone. */
function configLoad() {
  const doc = { interface: 'eth1', maglevTableSize: MAGLEV, capacity: { services: SERVICES + 16, backends: SERVICES * BACKENDS + 16 }, services: services('distinct') };
  const texts = { yaml: dump(doc, { flowLevel: 3 }), json: JSON.stringify(doc) };
  const best = (fn: () => unknown) => {
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      fn();
      times.push(performance.now() - t);
    }
    return Math.round(Math.min(...times));
  };
  return {
    config_yaml_ms: best(() => validateConfig(parseConfigText(texts.yaml, 'bench.yaml'))),
    config_json_ms: best(() => validateConfig(parseConfigText(texts.json, 'bench.json'))),
    baseline_json_parse_ms: best(() => JSON.parse(texts.json)),
    config_kb: Math.round(texts.yaml.length / 1024),
  };
}

/** Each shape in a fresh process of its own (`--shape X` prints its row as JSON), so its RSS carries nothing of the other's. */
async function inChild(shape: 'shared' | 'distinct'): Promise<Awaited<ReturnType<typeof run>>> {
  const { execFileSync } = await import('node:child_process');
  const out = execFileSync(process.execPath, [...process.execArgv, process.argv[1]!, '--shape', shape], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split('\n').at(-1)!);
}

const shapeArg = process.argv.indexOf('--shape');
if (shapeArg >= 0) {
  console.log(JSON.stringify(await run(process.argv[shapeArg + 1] as 'shared' | 'distinct')));
  process.exit(0);
}
const rows = [await inChild('shared'), await inChild('distinct')];
const load = configLoad();
if (JSON_OUT) for (const r of [...rows, load]) console.log(JSON.stringify(r));
else {
  console.log(`xdplb control plane: ${SERVICES} services x ${BACKENDS} backends, Maglev ${MAGLEV}; targets: cold <= 3000 ms, one change <= 10 ms, RSS <= 250 MB`);
  for (const r of rows)
    console.log(
      `${r.shape.padEnd(9)} cold ${r.cold_ms} ms, ${r.cold_writes} map writes; ` +
        `one backend down (health) ${r.health_change_ms} ms (max of 5: ${r.health_change_max_ms}), ${r.health_change_writes} writes; ` +
        `one weight changed by reload ${r.reload_change_ms} ms (finding it among the services ${r.reload_change_diff_ms} ms; ${r.reload_change_services_planned} service planned), ${r.reload_change_writes} writes; ` +
        `restart (adopt, read back, plan) ${r.restart_ms} ms, ${r.restart_writes} writes; RSS ${r.rss_mb} MB (baseline ${r.baseline_rss_mb} MB); ` +
        `one /metrics scrape ${r.scrape_ms} ms (${r.scrape_kb} KiB), RSS after it ${r.rss_after_scrape_mb} MB`,
    );
  console.log(
    `reading the config (as a reload does): YAML ${load.config_yaml_ms} ms (${load.config_kb} KiB), JSON ${load.config_json_ms} ms; baseline JSON.parse alone ${load.baseline_json_parse_ms} ms`,
  );
}
