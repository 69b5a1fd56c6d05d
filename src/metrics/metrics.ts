// Prometheus metrics on their own registry. The data plane's per-CPU counters
// are read once per scrape, inside collect(); labels follow node_exporter's
// IPVS collector (local_address, local_port, proto, remote_address,
// remote_port). With perBackend off, backend series are left out (very
// large fleets).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ABI_VERSION, CONSTANTS, GLOBAL_STATS } from '../dataplane/abi.ts';
import type { DataPlane } from '../dataplane/dataplane.ts';
import { formatIp } from '../model/address.ts';
import type { Applied } from '../reconcile/state.ts';

const PROTO: Record<number, string> = { 6: 'TCP', 17: 'UDP' };

export interface MetricsSource {
  dp: DataPlane;
  /** What the data plane holds now (the director's applied state). */
  applied(): Applied;
  perBackend: boolean;
}

/** The XDP action each global counter stands for (the rest are events). */
function actionOf(stat: string): string | null {
  if (stat === 'xdp_tx') return 'tx';
  if (stat === 'xdp_redirect') return 'redirect';
  if (stat.startsWith('pass_')) return 'pass';
  if (stat.startsWith('drop_')) return 'drop';
  if (stat === 'aborted') return 'aborted';
  return null;
}

export class Metrics {
  readonly registry = new Registry();
  readonly reconcileDuration: Histogram;
  readonly reconcileFailures: Counter;
  readonly reloads: Counter<'result'>;

  constructor(src: MetricsSource, version: string) {
    const r = this.registry;
    const svcLabels = ['name', 'local_address', 'local_port', 'proto'] as const;
    const backendLabels = ['local_address', 'local_port', 'proto', 'remote_address', 'remote_port'] as const;
    // Registered first: prom-client collects metrics in registration order, so
    // its collect() reads every BPF counter once per scrape and fills the rest.
    const svcPackets: Counter<(typeof svcLabels)[number]> = new Counter({
      name: 'xdplb_service_packets_total',
      help: 'Packets forwarded for a service (VIP, port, protocol).',
      labelNames: svcLabels,
      registers: [r],
      collect: () => readAll(),
    });
    const svcBytes = new Counter({ name: 'xdplb_service_bytes_total', help: 'IP bytes forwarded for a service.', labelNames: svcLabels, registers: [r] });
    const svcFlows = new Counter({ name: 'xdplb_service_new_flows_total', help: 'New flows (TCP SYNs and flow-table creations) of a service.', labelNames: svcLabels, registers: [r] });
    const bPackets = new Counter({ name: 'xdplb_backend_packets_total', help: 'Packets forwarded to a backend of a service.', labelNames: backendLabels, registers: [r] });
    const bBytes = new Counter({ name: 'xdplb_backend_bytes_total', help: 'IP bytes forwarded to a backend of a service.', labelNames: backendLabels, registers: [r] });
    const bFlows = new Counter({ name: 'xdplb_backend_new_flows_total', help: 'New flows sent to a backend of a service.', labelNames: backendLabels, registers: [r] });
    const bUp = new Gauge({ name: 'xdplb_backend_up', help: '1 when the backend takes new flows (resolved, healthy, not draining).', labelNames: backendLabels, registers: [r] });
    const bWeight = new Gauge({ name: 'xdplb_backend_weight', help: 'Configured weight of a backend.', labelNames: backendLabels, registers: [r] });
    const bHealth = new Gauge({ name: 'xdplb_backend_health_up', help: 'Health-check verdict: 1 up, 0 down (absent without a check).', labelNames: backendLabels, registers: [r] });
    const actions = new Counter({ name: 'xdplb_xdp_actions_total', help: 'XDP verdicts of the program.', labelNames: ['action'], registers: [r] });
    const drops = new Counter({ name: 'xdplb_drops_total', help: 'Packets dropped, by reason.', labelNames: ['reason'], registers: [r] });
    const events = new Counter({ name: 'xdplb_datapath_events_total', help: 'Every global data-plane counter, by name.', labelNames: ['event'], registers: [r] });
    const services = new Gauge({ name: 'xdplb_services', help: 'Services in the data plane.', registers: [r] });
    new Gauge({ name: 'xdplb_build_info', help: 'Build of this xdplb (value 1).', labelNames: ['version', 'abi_version'], registers: [r] }).set({ version, abi_version: String(ABI_VERSION) }, 1);
    this.reconcileDuration = new Histogram({ name: 'xdplb_reconcile_duration_seconds', help: 'Time to plan and apply a change to the data plane.', buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2, 10], registers: [r] });
    this.reconcileFailures = new Counter({ name: 'xdplb_reconcile_failures_total', help: 'Reconciles that failed (the data plane state was re-read).', registers: [r] });
    this.reloads = new Counter({ name: 'xdplb_config_reloads_total', help: 'Configuration reloads, by result (ok, refused).', labelNames: ['result'], registers: [r] });

    function readAll(): void {
      for (const m of [svcPackets, svcBytes, svcFlows, bPackets, bBytes, bFlows, bUp, bWeight, bHealth, actions, drops, events]) m.reset();
      const applied = src.applied();
      services.set(applied.services.size);
      for (const s of applied.services.values()) {
        const base = { local_address: formatIp(s.key.addr, s.key.family), local_port: String(s.key.port), proto: PROTO[s.key.proto] ?? String(s.key.proto) };
        const t = src.dp.serviceTraffic(s.id);
        svcPackets.inc({ name: s.name, ...base }, Number(t.packets));
        svcBytes.inc({ name: s.name, ...base }, Number(t.bytes));
        svcFlows.inc({ name: s.name, ...base }, Number(t.newFlows));
        if (!src.perBackend) continue;
        for (const [address, id] of s.dests) {
          const d = applied.dests.get(id);
          if (!d) continue;
          const labels = { ...base, remote_address: address, remote_port: String(s.key.port) };
          const bt = src.dp.destTraffic(id);
          bPackets.inc(labels, Number(bt.packets));
          bBytes.inc(labels, Number(bt.bytes));
          bFlows.inc(labels, Number(bt.newFlows));
          bUp.set(labels, d.value.state === CONSTANTS.DEST_ACTIVE ? 1 : 0);
          bWeight.set(labels, d.info.weight);
          if (d.info.health !== 'none') bHealth.set(labels, d.info.health === 'up' ? 1 : 0);
        }
      }
      const g = src.dp.globalStats();
      for (const name of GLOBAL_STATS) {
        const v = Number(g[name] ?? 0n);
        events.inc({ event: name }, v);
        const action = actionOf(name);
        if (action) actions.inc({ action }, v);
        if (name.startsWith('drop_')) drops.inc({ reason: name.slice(5) }, v);
      }
    }
  }
}
